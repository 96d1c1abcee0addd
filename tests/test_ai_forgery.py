"""The adversarial corpus: blocks whose AI results were forged, and the follower that
rejects every one of them (DESIGN section 5, issue 4).

A producer on a test genesis (executors K2 with ``infer`` and K3 with ``embed`` only, the
ONNX MLP needing two attestations) makes genuine blocks with AI calls. A fake peer in
this process serves the producer's chain to a follower with no sidecar, except that at
the height under attack it serves a forged variant of the genuine block. Each variant
must be rejected with its precise reason while the follower keeps its head; at the end
each genuine block is served and imported. A rejected block hash is never retried, but
every variant has its own hash, so one follower is fed variant after variant.
"""

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from ai_chain import (
    DEV_EXECUTOR,
    DEV_EXECUTOR_KEY,
    DEV_GENESIS,
    DEV_MODELS,
    INFER,
    ONNX_ID,
    SHAPE,
    TORCH_ID,
    Wallet,
    calldata,
    deploy_consumer,
    head,
    hexstr,
    infer_input,
    receipts_of,
    send_together,
    wait_until,
)
from eth_keys import keys
from eth_utils import keccak
from fake_peer import REJECTED, with_transactions
from forgery import (
    DEV_KEY,
    ai_transactions,
    assert_follower_imports_the_genuine_chain,
    attack,
    block_at,
    changed_output,
    follower_of,
    peer_at_genesis,
    producer_on,
    random_signature,
    with_results,
)
from nodes import CHAIN_ID, DEV_KEYS, rpc

from chain.ai.attested import AttestedTransaction, SpcResult
from chain.genesis import complete_genesis, load_genesis
from sidecars.attestation import attestation_digest, sign_digest, sync_context
from sidecars.keys import write_key

K2 = keys.PrivateKey(keccak(b"sibyl tests: executor K2, infer"))
K3 = keys.PrivateKey(keccak(b"sibyl tests: executor K3, embed only"))
OUTSIDER = keys.PrivateKey(keccak(b"sibyl tests: a key no registry knows"))
VALUES = [1_500_000, -2_250_000, 750_000, 3_125_000]
OTHER_VALUES = [-1_000_000, 500_000, 2_000_000, -250_000]


def address(key: keys.PrivateKey) -> str:
    return key.public_key.to_canonical_address().hex()


# the chain under attack


def write_genesis(path: Path) -> Path:
    """dev.json plus executors K2 (infer) and K3 (embed only); the ONNX MLP needs 2."""
    genesis = json.loads(DEV_GENESIS.read_text())
    genesis["sibyl"]["executors"] += [
        {"address": "0x" + address(K2), "capabilities": ["infer"], "stake": "0x0"},
        {"address": "0x" + address(K3), "capabilities": ["embed"], "stake": "0x0"},
    ]
    for model in genesis["sibyl"]["models"]:
        if model["id"] == hexstr(ONNX_ID):
            model["quorum"] = 2
    path.write_text(json.dumps(complete_genesis(json.dumps(genesis).encode()), indent=2))
    return path


def write_config(directory: Path) -> Path:
    """Sidecars: the torch MLP (dev key); the ONNX MLP three times: first with a key no
    registry knows (whose signatures the builder must leave out), then the dev key and
    K2's, the two executors that make its quorum."""
    write_key(directory / "k2.key", K2)
    write_key(directory / "outsider.key", OUTSIDER)
    sidecars = [
        ("torch-dev", "torch", DEV_MODELS / "mlp.pt", TORCH_ID, DEV_EXECUTOR_KEY),
        ("onnx-outsider", "onnx", DEV_MODELS / "mlp.onnx", ONNX_ID, directory / "outsider.key"),
        ("onnx-dev", "onnx", DEV_MODELS / "mlp.onnx", ONNX_ID, DEV_EXECUTOR_KEY),
        ("onnx-k2", "onnx", DEV_MODELS / "mlp.onnx", ONNX_ID, directory / "k2.key"),
    ]
    tables = [
        f'[[sidecars]]\nname = "{name}"\nruntime = "{runtime}"\nmodel = "{model}"\n'
        f'model_id = "{hexstr(model_id)}"\nexecutor_key = "{key}"\n'
        for name, runtime, model, model_id, key in sidecars
    ]
    path = directory / "sibyl.toml"
    path.write_text("\n".join(tables))
    return path


@dataclass
class Genuine:
    """The genuine blocks under attack, by what they hold."""

    torch: int  # one predict on the torch MLP (one attestation)
    onnx: int  # one predict on the ONNX MLP (two attestations, quorum 2)
    twice: int  # predictTwice with identical inputs (two calls, same input)
    pair: int  # two predict transactions with identical inputs


@pytest.fixture(scope="module")
def chain_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("forgery")


@pytest.fixture(scope="module")
def genesis_file(chain_dir) -> Path:
    return write_genesis(chain_dir / "genesis.json")


@pytest.fixture(scope="module")
def producer(chain_dir, genesis_file):
    with producer_on(chain_dir / "producer", genesis_file, write_config(chain_dir)) as node:
        yield node


@pytest.fixture(scope="module")
def genuine(producer) -> Genuine:
    w3 = producer.w3()
    alice, bob = Wallet(w3, DEV_KEYS[1]), Wallet(w3, DEV_KEYS[2])
    deployer = Wallet(w3, DEV_KEYS[0])
    torch = deploy_consumer(deployer, TORCH_ID)
    onnx = deploy_consumer(deployer, ONNX_ID)

    def mined(wallet: Wallet, contract, function: str, *args) -> dict:
        receipt = wallet.send(contract.address, calldata(contract, function, *args))
        assert receipt.status == 1 and contract.functions.failures().call() == 0
        return rpc(producer.url, "eth_getTransactionReceipt", [hexstr(receipt.transactionHash)])[
            "result"
        ]

    one = mined(alice, torch, "predict", VALUES, SHAPE)
    assert [c["signers"] for c in one["spcCalls"]] == [[DEV_EXECUTOR]]
    quorum = mined(alice, onnx, "predict", VALUES, SHAPE)
    (signers,) = [c["signers"] for c in quorum["spcCalls"]]
    assert sorted(signers) == sorted([DEV_EXECUTOR, "0x" + address(K2)])  # not the outsider
    twice = mined(alice, torch, "predictTwice", OTHER_VALUES, OTHER_VALUES, SHAPE)
    assert len(twice["spcCalls"]) == 2

    data = calldata(torch, "predict", OTHER_VALUES, SHAPE)
    pair = receipts_of(
        w3, send_together(producer.url, [w.sign(torch.address, data) for w in (alice, bob)])
    )
    assert pair[0].blockNumber == pair[1].blockNumber
    assert torch.functions.failures().call() == 0
    numbers = [int(r["blockNumber"], 16) for r in (one, quorum, twice)] + [pair[0].blockNumber]
    assert numbers == sorted(set(numbers))
    return Genuine(*numbers)


@pytest.fixture(scope="module")
def peer(producer, genuine):
    with peer_at_genesis(producer) as fake:
        yield fake


@pytest.fixture(scope="module")
def follower(chain_dir, genesis_file, peer):
    with follower_of(chain_dir / "follower", genesis_file, peer) as node:
        yield node


@pytest.fixture(scope="module")
def config(genesis_file):
    return load_genesis(genesis_file).config


# forging


def ai_tx_index(block) -> int:
    (index,) = ai_transactions(block)
    return index


def resigned(
    result: SpcResult, tx_hash: bytes, call_index: int, model_id: bytes, signers: list,
    chain_id: int = CHAIN_ID, output: bytes | None = None,
) -> SpcResult:  # fmt: skip
    """``result`` signed by ``signers`` over the digest of DESIGN section 5."""
    output = result.output if output is None else output
    digest = attestation_digest(
        chain_id, result.precompile, model_id, result.input_hash, keccak(output),
        sync_context(tx_hash, call_index),
    )  # fmt: skip
    signatures = tuple(sign_digest(key, digest) for key in signers)
    return SpcResult(result.precompile, result.input_hash, result.status, output, signatures)


# the corpus


@pytest.fixture(scope="module")
def torch_block(producer, config, genuine):
    return block_at(producer, config, genuine.torch)


def test_follower_rejects_a_forged_signature(peer, follower, torch_block):
    index = ai_tx_index(torch_block)
    (result,) = torch_block.transactions[index].results
    forged = SpcResult(
        result.precompile, result.input_hash, result.status, result.output, (random_signature(),)
    )
    reason = attack(peer, follower, with_results(torch_block, index, [forged]))
    assert re.search(
        r"AI call 0 of transaction 0x[0-9a-f]{64}: attestation 0: (signature does not recover "
        r"to a public key|signer 0x[0-9a-f]{40} is not a registered executor)",
        reason,
    ), reason


def test_follower_rejects_result_signed_by_unregistered_key(peer, follower, torch_block):
    index = ai_tx_index(torch_block)
    tx = torch_block.transactions[index]
    forged = resigned(tx.results[0], tx.hash, 0, TORCH_ID, [OUTSIDER])
    reason = attack(peer, follower, with_results(torch_block, index, [forged]))
    assert (
        f"AI call 0 of transaction 0x{tx.hash.hex()}: attestation 0: signer "
        f"0x{address(OUTSIDER)} is not a registered executor"
    ) in reason


def test_follower_rejects_result_signed_by_executor_without_the_capability(
    peer, follower, torch_block
):
    index = ai_tx_index(torch_block)
    tx = torch_block.transactions[index]
    forged = resigned(tx.results[0], tx.hash, 0, TORCH_ID, [K3])
    reason = attack(peer, follower, with_results(torch_block, index, [forged]))
    assert (
        f"attestation 0: executor 0x{address(K3)} is not active with the infer capability"
    ) in reason


def test_follower_rejects_output_changed_after_signing(peer, follower, torch_block):
    index = ai_tx_index(torch_block)
    (result,) = torch_block.transactions[index].results
    forged = SpcResult(
        result.precompile, result.input_hash, result.status, changed_output(result.output),
        result.signatures,
    )  # fmt: skip
    reason = attack(peer, follower, with_results(torch_block, index, [forged]))
    assert re.search(r"attestation 0: signer 0x[0-9a-f]{40} is not a registered executor", reason)
    assert DEV_EXECUTOR not in reason


def test_follower_rejects_result_replayed_from_another_chain(peer, follower, torch_block):
    index = ai_tx_index(torch_block)
    tx = torch_block.transactions[index]
    forged = resigned(tx.results[0], tx.hash, 0, TORCH_ID, [DEV_KEY], chain_id=1)
    reason = attack(peer, follower, with_results(torch_block, index, [forged]))
    assert re.search(r"attestation 0: signer 0x[0-9a-f]{40} is not a registered executor", reason)
    assert DEV_EXECUTOR not in reason


def test_follower_rejects_transaction_whose_results_are_missing(peer, follower, torch_block):
    index = ai_tx_index(torch_block)
    tx = torch_block.transactions[index]
    transactions = list(torch_block.transactions)
    transactions[index] = tx.inner  # the user's transaction, without its 0x13 wrapper
    reason = attack(peer, follower, with_transactions(torch_block, transactions))
    assert f"AI call 0 of transaction 0x{tx.hash.hex()}: no recorded result" in reason


def test_follower_rejects_an_extra_result(peer, follower, torch_block):
    index = ai_tx_index(torch_block)
    tx = torch_block.transactions[index]
    extra = with_results(torch_block, index, [tx.results[0], tx.results[0]])
    reason = attack(peer, follower, extra)
    assert f"transaction 0x{tx.hash.hex()} carries 2 AI results but made 1 AI calls" in reason


def test_follower_rejects_result_for_another_input_or_precompile(peer, follower, torch_block):
    index = ai_tx_index(torch_block)
    tx = torch_block.transactions[index]
    (result,) = tx.results
    other_input = keccak(infer_input(TORCH_ID, OTHER_VALUES))
    forged = resigned(
        SpcResult(result.precompile, other_input, result.status, result.output, ()),
        tx.hash, 0, TORCH_ID, [DEV_KEY],
    )  # fmt: skip
    reason = attack(peer, follower, with_results(torch_block, index, [forged]))
    assert "AI call 0 of transaction" in reason and "result is for another input" in reason

    embed = bytes.fromhex("0000000000000000000000000000000000000801")
    forged = SpcResult(embed, result.input_hash, result.status, result.output, result.signatures)
    reason = attack(peer, follower, with_results(torch_block, index, [forged]))
    assert f"result is for precompile 0x{embed.hex()}, the call went to 0x{INFER[2:]}" in reason


def test_follower_rejects_results_short_of_the_quorum_or_signed_twice(
    producer, config, genuine, peer, follower
):
    block = block_at(producer, config, genuine.onnx)
    index = ai_tx_index(block)
    (result,) = block.transactions[index].results
    assert len(result.signatures) == 2

    def signed_by(*signatures: bytes) -> SpcResult:
        return SpcResult(
            result.precompile, result.input_hash, result.status, result.output, signatures
        )

    for kept in result.signatures:
        reason = attack(peer, follower, with_results(block, index, [signed_by(kept)]))
        assert "AI call 0 of transaction" in reason
        assert "1 attestations, the model needs 2" in reason
    twice = signed_by(result.signatures[0], result.signatures[0])
    reason = attack(peer, follower, with_results(block, index, [twice]))
    assert re.search(r"executor 0x[0-9a-f]{40} signed twice", reason), reason


def test_follower_rejects_result_moved_to_another_call_index(
    producer, config, genuine, peer, follower
):
    block = block_at(producer, config, genuine.twice)
    index = ai_tx_index(block)
    tx = block.transactions[index]
    first, second = tx.results
    assert (first.input_hash, first.output) == (second.input_hash, second.output)
    assert first.signatures != second.signatures  # only the context differs

    reason = attack(peer, follower, with_results(block, index, [second, first]))
    assert f"AI call 0 of transaction 0x{tx.hash.hex()}: attestation 0: signer" in reason
    assert "is not a registered executor" in reason

    reason = attack(peer, follower, with_results(block, index, [first]))
    assert f"AI call 1 of transaction 0x{tx.hash.hex()}: no recorded result" in reason


def test_follower_rejects_result_moved_to_another_transaction(
    producer, config, genuine, peer, follower
):
    block = block_at(producer, config, genuine.pair)
    txs = list(block.transactions)
    assert len(txs) == 2 and all(isinstance(tx, AttestedTransaction) for tx in txs)
    (a,), (b,) = txs[0].results, txs[1].results
    assert (a.input_hash, a.output) == (b.input_hash, b.output)

    swapped = [AttestedTransaction(txs[0].inner, (b,)), AttestedTransaction(txs[1].inner, (a,))]
    reason = attack(peer, follower, with_transactions(block, swapped))
    assert f"AI call 0 of transaction 0x{txs[0].hash.hex()}: attestation 0: signer" in reason
    assert "is not a registered executor" in reason


def test_follower_imports_the_genuine_blocks_after_every_forgery(producer, genuine, peer, follower):
    assert_follower_imports_the_genuine_chain(producer, peer, follower)
    rejected = [REJECTED.search(line) for line in follower.log().splitlines()]
    assert {int(m[1]) for m in rejected if m} == {
        genuine.torch,
        genuine.onnx,
        genuine.twice,
        genuine.pair,
    }

    # and it goes on following blocks made afterwards
    w3 = producer.w3()
    receipt = Wallet(w3, DEV_KEYS[3]).send(INFER, infer_input(TORCH_ID, VALUES), gas=200_000)
    assert receipt.status == 1
    peer.serve(receipt.blockNumber)
    wait_until(lambda: head(follower.url) == receipt.blockNumber, "the next block")
    copy = rpc(follower.url, "eth_getTransactionReceipt", [hexstr(receipt.transactionHash)])
    assert [c["signers"] for c in copy["result"]["spcCalls"]] == [[DEV_EXECUTOR]]
