"""ZK_PROVE (0x…0803) as an async job, with real processes (DESIGN sections 4–6, issue 15).

A producer on a genesis that registers **no executor** and no ZK model serves the dev ZK
MLP (``genesis/models/zk-mlp``) with a zk sidecar whose key nobody trusts. The registry
admin registers the model in ``prove`` mode with its verifying key hash (the
``registerModel`` overload), and ``ProvedPrediction`` asks ZK_PROVE for proven
inferences: each job is delivered (0x12) with ``abi.encode(values, shape, proof)`` and no
signature. A follower with ``--sidecars none`` accepts the deliveries on their proofs
alone and imports identical state; a fake peer serves it forged deliveries, each
rejected with its precise reason. Bad requests fail (``success == false``) and create no
job.
"""

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from ai_chain import (
    DEV_EXECUTOR_KEY,
    DEV_GENESIS,
    MODEL_REGISTRY,
    MODELS,
    SHAPE,
    ZK_ID,
    Wallet,
    calldata,
    hexstr,
    wait_until,
)
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import function_signature_to_4byte_selector, keccak
from fake_peer import with_transactions
from forgery import (
    DEV_KEY,
    ZK_MODEL,
    assert_follower_imports_the_genuine_chain,
    attack,
    block_at,
    delivery_in,
    follower_of,
    peer_at_genesis,
    producer_on,
    zk_model_with_other_keys,
)
from hexbytes import HexBytes
from jobs_chain import JOBS, get_job, settled
from nodes import CHAIN_ID, DEV_KEYS, REPO, rpc
from web3.logs import DISCARD

from chain.ai import jobs
from chain.ai.delivery import DeliveryTransaction
from chain.genesis import complete_genesis, load_genesis
from sidecars import zk
from sidecars.abi import ZK_PROVE_ADDRESS, decode_prove_output, encode_prove_output
from sidecars.attestation import attestation_digest, sign_digest

ZK_ENTRY = MODELS["zk"]
ZK_VERIFY = "0x0000000000000000000000000000000000000804"
ARTIFACT = json.loads((REPO / "contracts/build/ProvedPrediction.json").read_text())
VALUES = [500_000, -250_000, 1_000_000, 125_000]
OTHER_VALUES = [-1_000_000, 1_500_000, 250_000, -750_000]
ATTEST_ID = keccak(b"sibyl tests: a zk model registered in attest mode")
GAS_BASE, GAS_PER_UNIT = 50_000, 1_000
TTL = 40
FUND = 10**17
RECORD_TYPES = [
    "bytes32", "string", "uint8", "uint32[]", "uint32[]", "uint8", "uint8", "uint8", "uint64",
    "uint64", "uint32",
]  # fmt: skip


def registry_call(signature: str, *args) -> bytes:
    types = signature[signature.index("(") + 1 : -1].split(",")
    return function_signature_to_4byte_selector(signature) + abi_encode(types, list(args))


def register_model(model_id: bytes, name: str, mode: int, key_hash: bytes | None) -> bytes:
    record = [model_id, name, 4, [1, 4], [1, 2], 6, 1, mode, GAS_BASE, GAS_PER_UNIT, 16384]
    signature = "registerModel(" + ",".join(RECORD_TYPES) + ")"
    if key_hash is None:
        return registry_call(signature, *record)
    return registry_call(signature[:-1] + ",bytes32)", *record, key_hash)


def write_genesis(path: Path) -> Path:
    """dev.json with no executor and no ZK model: the test registers the model itself."""
    genesis = json.loads(DEV_GENESIS.read_text())
    genesis["sibyl"]["executors"] = []
    genesis["sibyl"]["models"] = [m for m in genesis["sibyl"]["models"] if m["kind"] != "zk"]
    path.write_text(json.dumps(complete_genesis(json.dumps(genesis).encode()), indent=2))
    return path


def write_config(directory: Path) -> Path:
    path = directory / "sibyl.toml"
    path.write_text(
        f'[[sidecars]]\nname = "zk-mlp"\nruntime = "zk"\nmodel = "{ZK_MODEL}"\n'
        f'model_id = "{ZK_ENTRY["id"]}"\nexecutor_key = "{DEV_EXECUTOR_KEY}"\n'
    )
    return path


def refusal_reason(contract) -> str:
    data = bytes(contract.functions.lastRefusal().call())
    return abi_decode(["string"], data[4:])[0]


def deploy(wallet: Wallet, fund: int = FUND):
    factory = wallet.w3.eth.contract(abi=ARTIFACT["abi"], bytecode=ARTIFACT["bytecode"])
    receipt = wallet.send(
        None, bytes(HexBytes(factory.constructor(ZK_ID).data_in_transaction)), 3_000_000
    )
    assert receipt.status == 1
    contract = wallet.w3.eth.contract(address=receipt.contractAddress, abi=ARTIFACT["abi"])
    if fund:
        assert wallet.send(contract.address, calldata(contract, "fund"), value=fund).status == 1
    return contract


def created_jobs(receipt) -> list:
    return [
        log
        for log in receipt.logs
        if log.address.lower() == JOBS
        and log.topics[0] == HexBytes(jobs.CREATED.to_bytes(32, "big"))
    ]


@pytest.fixture(scope="module")
def chain_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("zk-prove")


@pytest.fixture(scope="module")
def genesis_file(chain_dir) -> Path:
    return write_genesis(chain_dir / "genesis.json")


@pytest.fixture(scope="module")
def producer(chain_dir, genesis_file):
    with producer_on(chain_dir / "producer", genesis_file, write_config(chain_dir)) as node:
        yield node


@pytest.fixture(scope="module")
def admin(producer) -> Wallet:
    return Wallet(producer.w3(), DEV_KEYS[0])


@pytest.fixture(scope="module")
def registered(producer, admin):
    """The dev ZK MLP in prove mode with its key hash, and a ZK model in attest mode."""
    key_hash = bytes.fromhex(ZK_ENTRY["verifyingKeyHash"][2:])
    receipt = admin.send(MODEL_REGISTRY, register_model(ZK_ID, "zk-mlp", 2, key_hash))
    assert receipt.status == 1
    receipt = admin.send(MODEL_REGISTRY, register_model(ATTEST_ID, "zk-attest", 0, None))
    assert receipt.status == 1
    return key_hash


@dataclass
class Proven:
    a: bytes  # job of VALUES
    b: bytes  # job of OTHER_VALUES
    contract: object
    prices: dict[bytes, int]  # each job's request's gas price


@pytest.fixture(scope="module")
def proven(producer, admin, registered) -> Proven:
    contract = deploy(admin)
    asked = []
    for values in (VALUES, OTHER_VALUES):
        receipt = admin.send(contract.address, calldata(contract, "request", values, SHAPE, TTL))
        assert receipt.status == 1 and contract.functions.refused().call() == 0
        (event,) = contract.events.Requested().process_receipt(receipt, errors=DISCARD)
        asked.append((bytes(event.args.jobId), receipt.effectiveGasPrice))
    for job_id, _ in asked:
        wait_until(lambda j=job_id: settled(producer.url, j), "the proof's delivery", timeout=120)
    return Proven(asked[0][0], asked[1][0], contract, dict(asked))


# the producer's side


def test_registry_registers_a_prove_model_with_its_key_hash(producer, admin, registered):
    w3 = producer.w3()
    call = {"to": MODEL_REGISTRY, "data": hexstr(registry_call("verifyingKeyHash(bytes32)", ZK_ID))}
    assert bytes(w3.eth.call(call)) == registered
    call["data"] = hexstr(registry_call("verifyingKeyHash(bytes32)", ATTEST_ID))
    assert bytes(w3.eth.call(call)) == b"\x00" * 32
    (model,) = [m for m in rpc(producer.url, "sibyl_models")["result"] if m["id"] == hexstr(ZK_ID)]
    assert model["mode"] == "prove" and model["verifyingKeyHash"] == hexstr(registered)
    # the old ABI keeps refusing prove mode; the overload refuses a key for other modes
    for data, reason in [
        (
            register_model(keccak(b"x"), "x", 2, None),
            "the registerModel overload that ends in bytes32",
        ),
        (register_model(keccak(b"x"), "x", 0, registered), "for prove-mode models only"),
        (register_model(keccak(b"x"), "x", 2, b"\x00" * 32), "verifyingKeyHash must not be zero"),
    ]:
        answer = rpc(
            producer.url,
            "eth_call",
            [{"from": admin.address, "to": MODEL_REGISTRY, "data": hexstr(data)}],
        )
        assert reason in answer["error"]["message"], answer
    stranger = Wallet(w3, DEV_KEYS[5])
    answer = rpc(
        producer.url,
        "eth_call",
        [
            {
                "from": stranger.address,
                "to": MODEL_REGISTRY,
                "data": hexstr(register_model(keccak(b"x"), "x", 2, registered)),
            }
        ],
    )
    assert "only the registry admin may change models" in answer["error"]["message"]


def test_zk_prove_jobs_deliver_proven_values_to_the_callback(producer, proven):
    url = producer.url
    for job_id, values in ((proven.a, VALUES), (proven.b, OTHER_VALUES)):
        job = get_job(url, job_id)
        assert job["status"] == "delivered" and job["signers"] == []
        assert job["precompile"] == "0x" + ZK_PROVE_ADDRESS.hex()
        status, outputs, shape, proof_hash = proven.contract.functions.prediction(job_id).call()
        assert status == 1 and shape == [1, 2] and len(outputs) == 2
        delivered = decode_prove_output(bytes.fromhex(job["output"][2:]))
        assert (list(outputs), list(shape)) == (delivered[0], delivered[1])
        proof = delivered[2]
        assert proof_hash == keccak(proof)
        # the proof the callback stored verifies for the request's values (ZK_VERIFY)
        check = abi_encode(
            ["bytes32", "int256[]", "int256[]", "uint8", "bytes"],
            [ZK_ID, values, outputs, 6, proof],
        )
        word = rpc(url, "eth_call", [{"to": ZK_VERIFY, "data": hexstr(check)}])["result"]
        assert int(word, 16) == 1
    # the input JOBS kept for the check is gone once the job settled
    slot = jobs.mapping_slot(proven.a, jobs.INPUT_MAP)
    assert int(rpc(url, "eth_getStorageAt", [JOBS, hex(slot), "latest"])["result"], 16) == 0


def test_the_fee_of_a_proven_delivery_goes_to_the_fee_recipient(producer, proven):
    """No signer to pay: the fee of each proven job, and the gas its callback used (both at
    its request's gas price), go to the fee recipient of the block that delivered it."""
    w3 = producer.w3()
    job = get_job(producer.url, proven.a)
    block = w3.eth.get_block(int(job["settledBlock"], 16), full_transactions=True)
    receipts = [w3.eth.get_transaction_receipt(tx.hash) for tx in block.transactions]
    delivered = {
        HexBytes(get_job(producer.url, j)["deliveryTransaction"]): (j, values)
        for j, values in ((proven.a, VALUES), (proven.b, OTHER_VALUES))
    }
    paid = 0
    for receipt in receipts:
        if receipt.transactionHash in delivered:
            job_id, values = delivered[receipt.transactionHash]
            price = proven.prices[job_id]
            paid += (GAS_BASE + GAS_PER_UNIT * len(values)) * price + receipt.gasUsed * price
        else:
            paid += (receipt.effectiveGasPrice - block.baseFeePerGas) * receipt.gasUsed
    assert proven.a in {j for j, _ in delivered.values()}
    before = w3.eth.get_balance(block.miner, block.number - 1)
    assert w3.eth.get_balance(block.miner, block.number) - before == paid


def test_bad_requests_fail_and_create_no_job(producer, admin, registered, proven):
    w3 = producer.w3()
    contract = proven.contract
    pending = rpc(producer.url, "sibyl_pendingJobs")["result"]

    def refused(target, reason: str) -> None:
        before = target.functions.refused().call()
        receipt = admin.send(target.address, calldata(target, "request", VALUES, SHAPE, TTL))
        assert receipt.status == 1 and target.functions.refused().call() == before + 1
        assert reason in refusal_reason(target), refusal_reason(target)
        assert created_jobs(receipt) == []

    unknown = keccak(b"sibyl tests: no such model")
    assert admin.send(contract.address, calldata(contract, "setModel", unknown)).status == 1
    refused(contract, f"ZK_PROVE: model 0x{unknown.hex()} is not registered for ZK_PROVE")
    assert admin.send(contract.address, calldata(contract, "setModel", ATTEST_ID)).status == 1
    refused(
        contract,
        f"ZK_PROVE: model 0x{ATTEST_ID.hex()} is registered in attest mode, ZK_PROVE needs "
        "prove mode",
    )
    assert admin.send(contract.address, calldata(contract, "setModel", ZK_ID)).status == 1
    poor = deploy(admin, fund=0)
    refused(poor, "ZK_PROVE: balance 0 in JOBS is below the job's fee and callback gas")
    assert rpc(producer.url, "sibyl_pendingJobs")["result"] == pending
    assert w3.eth.get_balance(JOBS) >= 0


def test_failed_and_expired_proofs_reach_the_callback(producer, admin, registered, proven):
    """An input outside the circuit's range fails on the prover (status 2); a prove model
    no sidecar serves expires at its deadline (status 3): the contract stores no values,
    and JOBS drops the input it kept."""
    contract = proven.contract
    lonely = keccak(b"sibyl tests: a prove model nobody serves")
    assert admin.send(MODEL_REGISTRY, register_model(lonely, "lonely", 2, registered)).status == 1
    asked = {}
    for model, values, ttl in ((ZK_ID, [10**15, 0, 0, 0], TTL), (lonely, VALUES, 3)):
        assert admin.send(contract.address, calldata(contract, "setModel", model)).status == 1
        receipt = admin.send(contract.address, calldata(contract, "request", values, SHAPE, ttl))
        (event,) = contract.events.Requested().process_receipt(receipt, errors=DISCARD)
        asked[model] = bytes(event.args.jobId)
    assert admin.send(contract.address, calldata(contract, "setModel", ZK_ID)).status == 1
    for model, status, name in ((ZK_ID, 2, "failed"), (lonely, 3, "expired")):
        job_id = asked[model]
        job = wait_until(lambda j=job_id: settled(producer.url, j), f"the {name} job", 120)
        assert job["status"] == name and job["output"] in ("0x", None) and job["signers"] == []
        stored, values, shape, proof_hash = contract.functions.prediction(job_id).call()
        assert (stored, values, shape, proof_hash) == (status, [], [], b"\x00" * 32)
        slot = jobs.mapping_slot(job_id, jobs.INPUT_MAP)
        word = rpc(producer.url, "eth_getStorageAt", [JOBS, hex(slot), "latest"])["result"]
        assert int(word, 16) == 0


# the follower


@pytest.fixture(scope="module")
def config(genesis_file):
    return load_genesis(genesis_file).config


@pytest.fixture(scope="module")
def peer(producer, proven):
    with peer_at_genesis(producer) as fake:
        yield fake


@pytest.fixture(scope="module")
def follower(chain_dir, genesis_file, peer):
    with follower_of(chain_dir / "follower", genesis_file, peer) as node:
        yield node


@pytest.fixture(scope="module")
def other_key_model(tmp_path_factory) -> Path:
    return zk_model_with_other_keys(tmp_path_factory.mktemp("other-key"))


def unsigned(job_id: bytes, output: bytes) -> DeliveryTransaction:
    return DeliveryTransaction(job_id, jobs.OK, output)


def signed(job_id: bytes, input_: bytes, output: bytes) -> DeliveryTransaction:
    digest = attestation_digest(
        CHAIN_ID, ZK_PROVE_ADDRESS, ZK_ID, keccak(input_), keccak(output), job_id
    )
    return DeliveryTransaction(job_id, jobs.OK, output, (sign_digest(DEV_KEY, digest),))


def test_follower_rejects_each_forged_delivery_with_its_reason(
    producer, config, proven, peer, follower, other_key_model
):
    url = producer.url
    job_a, job_b = get_job(url, proven.a), get_job(url, proven.b)
    input_a = bytes.fromhex(job_a["input"][2:])
    outputs, shape, proof = decode_prove_output(bytes.fromhex(job_a["output"][2:]))
    genuine = zk.Proof.decode(proof)
    other_outputs, other_inputs = zk.prove(
        zk.load_circuit(ZK_MODEL, zk.PROVER_FILES), OTHER_VALUES, 6
    )
    key_outputs, other_key = zk.prove(zk.load_circuit(other_key_model, zk.PROVER_FILES), VALUES, 6)
    assert key_outputs == outputs
    flipped = bytearray(genuine.snark)
    flipped[len(flipped) // 2] ^= 0x01
    changed = [outputs[0] + 1, *outputs[1:]]

    def output(values=outputs, proof_=proof) -> bytes:
        return encode_prove_output(values, shape, proof_)

    a, b = proven.a, proven.b
    no_proof = abi_encode(["int256[]", "uint32[]"], [outputs, shape])
    other_key_proof = output(proof_=other_key.encode())
    flipped_proof = output(proof_=zk.Proof(genuine.instances, bytes(flipped)).encode())
    corpus = [
        (a, unsigned(a, output(other_outputs, other_inputs.encode())), "proof is for other inputs"),
        (a, unsigned(a, output(changed)), "proof is for other outputs"),
        (a, unsigned(a, other_key_proof), "proof does not verify with the model's verifying key"),
        (a, unsigned(a, output(proof_=proof[:-40])), "proof is not abi.encode(uint256[] instances"),
        (a, unsigned(a, flipped_proof), "proof does not verify with the model's verifying key"),
        (a, signed(a, input_a, output(proof_=b"")), "the model is in prove mode and the result"),
        (a, signed(a, input_a, output()), "a prove-mode result carries a proof, not signatures"),
        (a, signed(a, input_a, no_proof), "output is not abi.encode(int256[] values, uint32[]"),
        # a valid proof (job a's) moved to job b, which asked about other values
        (b, unsigned(b, bytes.fromhex(job_a["output"][2:])), "proof is for other inputs"),
    ]  # fmt: skip
    settled_at = {
        proven.a: int(job_a["settledBlock"], 16),
        proven.b: int(job_b["settledBlock"], 16),
    }
    for job_id, forged, reason in sorted(corpus, key=lambda item: settled_at[item[0]]):
        block = block_at(producer, config, settled_at[job_id])
        index, _ = delivery_in(block, job_id)
        transactions = list(block.transactions)
        transactions[index] = forged
        answer = attack(peer, follower, with_transactions(block, transactions))
        assert f"delivery of job 0x{job_id.hex()}: {reason}" in answer, answer


def test_follower_imports_the_proven_jobs_with_identical_state(producer, proven, peer, follower):
    assert_follower_imports_the_genuine_chain(producer, peer, follower)
    for job_id in (proven.a, proven.b):
        assert get_job(follower.url, job_id) == get_job(producer.url, job_id)
