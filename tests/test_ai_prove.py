"""Prove mode and ZK_VERIFY (DESIGN sections 4 and 5, issue 15), with real processes.

A producer on a genesis that registers **no executor at all** serves the dev ZK MLP
(``genesis/models/zk-mlp``, mode ``prove``) with a zk sidecar whose key nobody trusts. A
follower with ``--sidecars none`` imports its blocks on the strength of the proofs alone.
A fake peer then serves the follower forged variants of the genuine blocks (the mutation
corpus), each rejected with its precise reason; and a contract asks ZK_VERIFY about the
genuine proof and every mutation, in a transaction and through eth_call.
"""

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from ai_chain import (
    DEV_EXECUTOR_KEY,
    DEV_GENESIS,
    MODELS,
    SHAPE,
    ZK_ID,
    Wallet,
    calldata,
    hexstr,
    receipts_of,
    send_together,
)
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import keccak
from forgery import (
    DEV_KEY,
    ZK_MODEL,
    ai_transactions,
    assert_follower_imports_the_genuine_chain,
    attack,
    block_at,
    changed_output,
    follower_of,
    peer_at_genesis,
    producer_on,
    with_results,
    zk_model_with_other_keys,
)
from hexbytes import HexBytes
from nodes import DEV_KEYS, REPO, free_port, rpc, sibyl

from chain.ai.attested import SpcResult
from chain.genesis import complete_genesis, load_genesis, parse_genesis
from chain.genesis_values import GenesisError
from sidecars import zk
from sidecars.attestation import attestation_digest, sign_digest, sync_context

ZK_ENTRY = MODELS["zk"]
ZK_VERIFY = "0x0000000000000000000000000000000000000804"
ARTIFACT = REPO / "contracts" / "build" / "ProvenInference.json"
VALUES = [500_000, -250_000, 1_000_000, 125_000]
OTHER_VALUES = [-1_000_000, 1_500_000, 250_000, -750_000]


def write_genesis(path: Path) -> Path:
    """dev.json with no executor registered: nobody's signature counts for anything."""
    genesis = json.loads(DEV_GENESIS.read_text())
    genesis["sibyl"]["executors"] = []
    assert any(
        m["id"] == ZK_ENTRY["id"] and m["mode"] == "prove" for m in genesis["sibyl"]["models"]
    )
    path.write_text(json.dumps(complete_genesis(json.dumps(genesis).encode()), indent=2))
    return path


def write_config(directory: Path) -> Path:
    path = directory / "sibyl.toml"
    path.write_text(
        f'[[sidecars]]\nname = "zk-mlp"\nruntime = "zk"\nmodel = "{ZK_MODEL}"\n'
        f'model_id = "{ZK_ENTRY["id"]}"\nexecutor_key = "{DEV_EXECUTOR_KEY}"\n'
    )
    return path


@dataclass
class Genuine:
    one: int  # block of one predict (one prove-mode INFER call)
    pair: int  # block of two predicts with different inputs


@pytest.fixture(scope="module")
def chain_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("prove")


@pytest.fixture(scope="module")
def genesis_file(chain_dir) -> Path:
    return write_genesis(chain_dir / "genesis.json")


@pytest.fixture(scope="module")
def producer(chain_dir, genesis_file):
    with producer_on(chain_dir / "producer", genesis_file, write_config(chain_dir)) as node:
        yield node


@pytest.fixture(scope="module")
def contract(producer):
    artifact = json.loads(ARTIFACT.read_text())
    w3 = producer.w3()
    factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    deployer = Wallet(w3, DEV_KEYS[0])
    data = bytes(HexBytes(factory.constructor(ZK_ID).data_in_transaction))
    receipt = deployer.send(None, data, 3_000_000)
    assert receipt.status == 1
    return w3.eth.contract(address=receipt.contractAddress, abi=artifact["abi"])


@pytest.fixture(scope="module")
def genuine(producer, contract) -> Genuine:
    w3 = producer.w3()
    alice, bob = Wallet(w3, DEV_KEYS[1]), Wallet(w3, DEV_KEYS[2])
    receipt = alice.send(contract.address, calldata(contract, "predict", VALUES, SHAPE))
    assert receipt.status == 1 and contract.functions.failures().call() == 0
    spc = rpc(producer.url, "eth_getTransactionReceipt", [hexstr(receipt.transactionHash)])
    assert [c["signers"] for c in spc["result"]["spcCalls"]] == [[]]  # a proof, no signer
    pair = receipts_of(
        w3,
        send_together(
            producer.url,
            [
                alice.sign(contract.address, calldata(contract, "predict", VALUES, SHAPE)),
                bob.sign(contract.address, calldata(contract, "predict", OTHER_VALUES, SHAPE)),
            ],
        ),
    )
    assert pair[0].blockNumber == pair[1].blockNumber
    assert contract.functions.failures().call() == 0
    return Genuine(receipt.blockNumber, pair[0].blockNumber)


@pytest.fixture(scope="module")
def config(genesis_file):
    return load_genesis(genesis_file).config


def replaced(result: SpcResult, **fields) -> SpcResult:
    values = {name: getattr(result, name) for name in SpcResult.__dataclass_fields__}
    return SpcResult(**(values | fields))


@pytest.fixture(scope="module")
def one(producer, config, genuine):
    """The block of one predict, its AI transaction's index and its recorded result."""
    block = block_at(producer, config, genuine.one)
    (index,) = ai_transactions(block)
    (result,) = block.transactions[index].results
    assert result.signatures == () and result.proof
    return block, index, result


@pytest.fixture(scope="module")
def other_key_model(tmp_path_factory) -> Path:
    return zk_model_with_other_keys(tmp_path_factory.mktemp("other-key"))


@dataclass
class Mutation:
    name: str
    inputs: list[int]
    outputs: list[int]
    proof: bytes


@pytest.fixture(scope="module")
def mutations(one, other_key_model) -> list[Mutation]:
    """Each mutation of the genuine (inputs, outputs, proof), as ZK_VERIFY sees it."""
    _, _, result = one
    outputs = list(abi_decode(["int256[]", "uint32[]"], result.output)[0])
    genuine = zk.Proof.decode(result.proof)
    _, other_inputs = zk.prove(zk.load_circuit(ZK_MODEL, zk.PROVER_FILES), OTHER_VALUES, 6)
    _, other_key = zk.prove(zk.load_circuit(other_key_model, zk.PROVER_FILES), VALUES, 6)
    flipped = bytearray(genuine.snark)
    flipped[len(flipped) // 2] ^= 0x01
    return [
        Mutation("proof for other inputs", VALUES, outputs, other_inputs.encode()),
        Mutation("other outputs", VALUES, [outputs[0] + 1, outputs[1]], result.proof),
        Mutation("another model's key", VALUES, outputs, other_key.encode()),
        Mutation("truncated", VALUES, outputs, result.proof[:-40]),
        Mutation(
            "truncated snark",
            VALUES,
            outputs,
            zk.Proof(genuine.instances, genuine.snark[:-64]).encode(),
        ),
        Mutation(
            "bit-flipped", VALUES, outputs, zk.Proof(genuine.instances, bytes(flipped)).encode()
        ),
        Mutation("moved to other inputs", OTHER_VALUES, outputs, result.proof),
        Mutation("no proof", VALUES, outputs, b""),
    ]


# the follower


@pytest.fixture(scope="module")
def peer(producer, genuine):
    with peer_at_genesis(producer) as fake:
        yield fake


@pytest.fixture(scope="module")
def follower(chain_dir, genesis_file, peer):
    with follower_of(chain_dir / "follower", genesis_file, peer) as node:
        yield node


def test_follower_rejects_each_forged_proof_with_its_reason(peer, follower, one, other_key_model):
    block, index, result = one
    tx = block.transactions[index]
    where = f"AI call 0 of transaction 0x{tx.hash.hex()}: "
    genuine = zk.Proof.decode(result.proof)
    _, other_inputs = zk.prove(zk.load_circuit(ZK_MODEL, zk.PROVER_FILES), OTHER_VALUES, 6)
    _, other_key = zk.prove(zk.load_circuit(other_key_model, zk.PROVER_FILES), VALUES, 6)
    flipped = bytearray(genuine.snark)
    flipped[len(flipped) // 2] ^= 0x01
    signed = sign_digest(
        DEV_KEY,
        attestation_digest(
            19183, result.precompile, ZK_ID, result.input_hash, keccak(result.output),
            sync_context(tx.hash, 0),
        ),
    )  # fmt: skip
    corpus = [
        (replaced(result, proof=other_inputs.encode()), "proof is for other inputs"),
        (replaced(result, output=changed_output(result.output)), "proof is for other outputs"),
        (
            replaced(result, proof=other_key.encode()),
            "proof does not verify with the model's verifying key",
        ),
        (
            replaced(result, proof=result.proof[:-40]),
            "proof is not abi.encode(uint256[] instances, bytes snark)",
        ),
        (
            replaced(result, proof=zk.Proof(genuine.instances, genuine.snark[:-64]).encode()),
            "proof does not verify with the model's verifying key",
        ),
        (
            replaced(result, proof=zk.Proof(genuine.instances, bytes(flipped)).encode()),
            "proof does not verify with the model's verifying key",
        ),
        (
            replaced(result, signatures=(signed,), proof=b""),
            "the model is in prove mode and the result has no proof",
        ),
        (
            replaced(result, signatures=(signed,)),
            "a prove-mode result carries a proof, not signatures",
        ),
    ]
    for forged, reason in corpus:
        assert where + reason in attack(peer, follower, with_results(block, index, [forged]))


def test_follower_rejects_a_valid_proof_moved_to_another_call(
    producer, config, genuine, peer, follower
):
    block = block_at(producer, config, genuine.pair)
    first, second = ai_transactions(block)
    a, b = block.transactions[first].results[0], block.transactions[second].results[0]
    moved = with_results(block, second, [replaced(b, proof=a.proof)])
    reason = attack(peer, follower, moved)
    tx = block.transactions[second]
    assert f"AI call 0 of transaction 0x{tx.hash.hex()}: proof is for other inputs" in reason


# ZK_VERIFY


def verify_input(mutation: Mutation) -> bytes:
    return abi_encode(
        ["bytes32", "int256[]", "int256[]", "uint8", "bytes"],
        [ZK_ID, mutation.inputs, mutation.outputs, 6, mutation.proof],
    )


def test_zk_verify_is_true_for_the_real_proof_and_false_for_every_mutation(
    producer, contract, one, mutations
):
    _, _, result = one
    outputs = list(abi_decode(["int256[]", "uint32[]"], result.output)[0])
    assert contract.functions.check(VALUES, outputs, result.proof).call() is True
    real = Mutation("real", VALUES, outputs, result.proof)
    word = rpc(producer.url, "eth_call", [{"to": ZK_VERIFY, "data": hexstr(verify_input(real))}])
    assert int(word["result"], 16) == 1
    for mutation in mutations:
        check = contract.functions.check(mutation.inputs, mutation.outputs, mutation.proof)
        assert check.call() is False, mutation.name
        call = {"to": ZK_VERIFY, "data": hexstr(verify_input(mutation))}
        assert int(rpc(producer.url, "eth_call", [call])["result"], 16) == 0, mutation.name


def test_zk_verify_in_transactions_and_the_follower_agrees(
    producer, contract, one, mutations, peer, follower
):
    _, _, result = one
    outputs = list(abi_decode(["int256[]", "uint32[]"], result.output)[0])
    w3 = producer.w3()
    wallet = Wallet(w3, DEV_KEYS[3])
    data = calldata(contract, "accept", VALUES, outputs, result.proof)
    accepted = wallet.send(contract.address, data)
    assert accepted.status == 1
    assert contract.events.Accepted().process_receipt(accepted)
    assert [contract.functions.lastAccepted(i).call() for i in range(2)] == outputs
    for mutation in mutations:
        data = calldata(contract, "accept", mutation.inputs, mutation.outputs, mutation.proof)
        receipt = wallet.send(contract.address, data)
        assert receipt.status == 1 and contract.events.Rejected().process_receipt(receipt)

    # every genuine block, forged ones rejected before, imports with identical state
    assert_follower_imports_the_genuine_chain(producer, peer, follower)


def test_sibyl_models_shows_prove_mode_and_the_key_hash(producer):
    (model,) = [m for m in rpc(producer.url, "sibyl_models")["result"] if m["id"] == ZK_ENTRY["id"]]
    assert model["mode"] == "prove" and model["kind"] == "zk"
    assert model["verifyingKeyHash"] == ZK_ENTRY["verifyingKeyHash"]


# start-up


def run_node(genesis: Path, datadir: Path):
    return sibyl(
        "run", "--genesis", str(genesis), "--datadir", str(datadir), "--sidecars", "none",
        "--http-port", str(free_port()), "--engine-port", str(free_port()), timeout=60,
    )  # fmt: skip


def test_node_refuses_to_start_without_a_registered_prove_models_key(tmp_path: Path):
    genesis = json.loads(DEV_GENESIS.read_text())
    (model,) = [m for m in genesis["sibyl"]["models"] if m["mode"] == "prove"]
    model["verifyingKeyHash"] = "0x" + "ab" * 32
    path = tmp_path / "genesis.json"
    path.write_text(json.dumps(complete_genesis(json.dumps(genesis).encode())))
    result = run_node(path, tmp_path / "d")
    assert result.returncode != 0
    message = f"model {ZK_ENTRY['id']} (dev-mlp-zk, prove mode): the verifying key files in"
    assert message in result.stderr
    assert "hash to " + ZK_ENTRY["verifyingKeyHash"] in result.stderr
    assert "Traceback" not in result.stderr

    model["id"] = "0x" + "cd" * 32
    path.write_text(json.dumps(complete_genesis(json.dumps(genesis).encode())))
    result = run_node(path, tmp_path / "e")
    assert result.returncode != 0
    assert (
        "needs its verifying key (hash 0x" + "ab" * 32 + "): no model directory in" in result.stderr
    )
    assert "Traceback" not in result.stderr


def test_genesis_refuses_a_prove_model_without_its_key_hash_or_of_another_kind():
    genesis = json.loads(DEV_GENESIS.read_text())
    (model,) = [m for m in genesis["sibyl"]["models"] if m["mode"] == "prove"]
    del model["verifyingKeyHash"]
    with pytest.raises(GenesisError, match=r"verifyingKeyHash: required for mode prove"):
        parse_genesis(json.dumps(genesis).encode())
    model["verifyingKeyHash"], model["kind"] = ZK_ENTRY["verifyingKeyHash"], "onnx"
    with pytest.raises(GenesisError, match=r"mode: prove needs a model of kind zk, not onnx"):
        parse_genesis(json.dumps(genesis).encode())
