"""Execute once, verify many, end to end (DESIGN sections 4, 5, 6, 9).

A dev producer runs every INFER and EMBED call of the example contract once, on its
sidecar processes; a follower with no sidecar at all imports each block from the
attestations and ends with the same block hashes, state roots and receipts. Around that:
the attested transaction's two faces (0x13 on the wire, the user's hash everywhere else),
eth_call with and without the model, gas that depends on the input only, failed calls
that fail like a revert without stalling a block, the sibyl_ RPC, the registries as
contracts see them, and ``sibyl import`` of the exported chain with no sidecar.
"""

import subprocess
from dataclasses import dataclass, field

import nodes
import pytest
import rlp
from ai_chain import (
    DEV_EXECUTOR,
    DEV_GENESIS,
    DEV_MODELS,
    EMBED,
    EMBED_ID,
    EXECUTOR_REGISTRY,
    INFER,
    MODEL_REGISTRY,
    MODELS,
    ONNX_ID,
    SHAPE,
    TORCH_ID,
    ZK_ID,
    Wallet,
    assert_follower_agrees,
    calldata,
    deploy_consumer,
    embed_input,
    head,
    hexstr,
    infer_input,
    receipts_of,
    send_together,
    shut_down,
    start_follower,
    start_producer,
    wait_until,
)
from eth_abi import decode as abi_decode
from eth_account import Account
from eth_utils import keccak
from nodes import CHAIN_ID, DEV_KEYS, rpc

from chain.genesis import load_genesis
from chain.storage import codec
from sidecars.abi import INFER_ADDRESS
from sidecars.attestation import attestation_digest, recover_signer, sync_context
from sidecars.runtimes import load_model

ETHER = 10**18
ERROR_SELECTOR = bytes.fromhex("08c379a0")
INPUTS = [
    [1_500_000, -2_250_000, 750_000, 3_125_000],
    [-1_000_000, 500_000, 2_000_000, -250_000],
    [4_000_000, 1_000_000, -3_000_000, 2_500_000],
    [250_000, 250_000, 250_000, 250_000],
    [-3_500_000, 2_750_000, 1_250_000, -500_000],
]
TEXTS = [
    "Sibyl runs each model once and every node checks the signature.",
    "A follower needs no GPU.",
    "hello",
]
EXECUTOR_ABI = [
    {"type": "function", "name": "register", "stateMutability": "payable",
     "inputs": [{"name": "capabilities", "type": "uint256"}], "outputs": []},
    {"type": "function", "name": "deregister", "stateMutability": "nonpayable",
     "inputs": [], "outputs": []},
    {"type": "function", "name": "getExecutor", "stateMutability": "view",
     "inputs": [{"name": "executor", "type": "address"}],
     "outputs": [{"name": "capabilities", "type": "uint256"}, {"name": "stake", "type": "uint256"},
                 {"name": "active", "type": "bool"}]},
    {"type": "function", "name": "isExecutor", "stateMutability": "view",
     "inputs": [{"name": "executor", "type": "address"}, {"name": "capability", "type": "uint8"}],
     "outputs": [{"name": "", "type": "bool"}]},
]  # fmt: skip
MODEL_ABI = [
    {"type": "function", "name": "registerModel", "stateMutability": "nonpayable",
     "inputs": [{"name": "id", "type": "bytes32"}, {"name": "name", "type": "string"},
                {"name": "kind", "type": "uint8"}, {"name": "inputShape", "type": "uint32[]"},
                {"name": "outputShape", "type": "uint32[]"}, {"name": "decimals", "type": "uint8"},
                {"name": "quorum", "type": "uint8"}, {"name": "mode", "type": "uint8"},
                {"name": "gasBase", "type": "uint64"}, {"name": "gasPerUnit", "type": "uint64"},
                {"name": "outputLimit", "type": "uint32"}],
     "outputs": []},
    {"type": "function", "name": "isRegistered", "stateMutability": "view",
     "inputs": [{"name": "id", "type": "bytes32"}], "outputs": [{"name": "", "type": "bool"}]},
    {"type": "function", "name": "admin", "stateMutability": "view",
     "inputs": [], "outputs": [{"name": "", "type": "address"}]},
]  # fmt: skip


@dataclass
class Sent:
    """A transaction of the traffic and the AI calls it makes: (precompile, input)."""

    raw: bytes
    calls: list[tuple[str, bytes]]
    tx_hash: str = ""
    receipt: dict = field(default_factory=dict)


@dataclass
class Traffic:
    torch: object
    onnx: object
    sent: list[Sent]


# fixtures


@pytest.fixture(scope="module")
def producer(tmp_path_factory):
    node = start_producer(tmp_path_factory.mktemp("ai") / "producer")
    yield node
    shut_down(node)


@pytest.fixture(scope="module")
def follower(tmp_path_factory, producer):
    node = start_follower(tmp_path_factory.mktemp("ai") / "follower", producer.url)
    yield node
    shut_down(node)


@pytest.fixture(scope="module")
def w3(producer):
    return producer.w3()


@pytest.fixture(scope="module")
def wallets(w3):
    return [Wallet(w3, key) for key in DEV_KEYS[:4]]


@pytest.fixture(scope="module")
def runtimes():
    """The bundled tensor models, run in this process to know what the chain must hold."""
    return {
        TORCH_ID: load_model("torch", DEV_MODELS / "mlp.pt", TORCH_ID),
        ONNX_ID: load_model("onnx", DEV_MODELS / "mlp.onnx", ONNX_ID),
    }


def expected_output(runtimes, model_id: bytes, values: list[int]) -> bytes:
    return runtimes[model_id].run(INFER_ADDRESS, model_id, infer_input(model_id, values))


def infer_request(data: bytes) -> tuple[bytes, list[int]]:
    """The model id and values of an INFER input."""
    model_id, values, _, _ = abi_decode(["bytes32", "int256[]", "uint32[]", "uint8"], data)
    return model_id, list(values)


def predict(consumer, model_id: bytes, values: list[int]) -> tuple[bytes, list]:
    return calldata(consumer, "predict", values, SHAPE), [(INFER, infer_input(model_id, values))]


def predict_twice(consumer, model_id: bytes, a: list[int], b: list[int]) -> tuple[bytes, list]:
    data = calldata(consumer, "predictTwice", a, b, SHAPE)
    return data, [(INFER, infer_input(model_id, a)), (INFER, infer_input(model_id, b))]


def embed_text(consumer, text: str) -> tuple[bytes, list]:
    return calldata(consumer, "embedText", text), [(EMBED, embed_input(EMBED_ID, text))]


@pytest.fixture(scope="module")
def traffic(producer, w3, wallets) -> Traffic:
    """Both example contracts (on the torch and on the ONNX MLP) calling INFER and EMBED
    in many transactions, some sent in one batch so that they share a block."""
    deployer, alice, bob, carol = wallets
    torch = deploy_consumer(deployer, TORCH_ID)
    onnx = deploy_consumer(deployer, ONNX_ID)
    batches = [
        [
            (alice, torch.address, *predict(torch, TORCH_ID, INPUTS[0])),
            (bob, onnx.address, *predict(onnx, ONNX_ID, INPUTS[0])),
            (carol, torch.address, *embed_text(torch, TEXTS[0])),
            (alice, torch.address, *predict_twice(torch, TORCH_ID, INPUTS[1], INPUTS[2])),
        ],
        [
            (bob, torch.address, *predict(torch, TORCH_ID, INPUTS[3])),
            (carol, onnx.address, *embed_text(onnx, TEXTS[1])),
            (alice, onnx.address, *predict(onnx, ONNX_ID, INPUTS[1])),
            (bob, onnx.address, *predict_twice(onnx, ONNX_ID, INPUTS[3], INPUTS[4])),
        ],
        [(alice, torch.address, *predict(torch, TORCH_ID, INPUTS[4]))],
        [(carol, torch.address, *embed_text(torch, TEXTS[2]))],
    ]
    sent: list[Sent] = []
    for batch in batches:
        group = []
        for wallet, to, data, calls in batch:
            gas = 10_000_000 if calls[0][0] == EMBED else 1_000_000  # 384 fresh slots
            group.append(Sent(wallet.sign(to, data, gas=gas), calls))
        hashes = send_together(producer.url, [item.raw for item in group])
        for item, tx_hash in zip(group, hashes, strict=True):
            item.tx_hash = tx_hash
        for item in group:
            receipts_of(w3, [item.tx_hash])
            item.receipt = rpc(producer.url, "eth_getTransactionReceipt", [item.tx_hash])["result"]
            assert item.receipt["status"] == "0x1", item.receipt
        sent += group
    return Traffic(torch, onnx, sent)


# the follower and the receipts


def test_follower_without_sidecars_imports_every_ai_block_with_identical_roots_and_receipts(
    producer, follower, traffic
):
    top = assert_follower_agrees(producer, follower)
    assert top >= 6
    for batch in (traffic.sent[0:4], traffic.sent[4:8]):  # each sent in one JSON-RPC batch
        assert len({s.receipt["blockNumber"] for s in batch}) == 1, "they share a block"
    assert "block rejected" not in follower.log()


def test_a_follower_without_sidecars_traces_ai_calls_from_their_attestations(
    producer, follower, traffic
):
    sent = next(s for s in traffic.sent if len(s.calls) == 2)  # predictTwice
    assert_follower_agrees(producer, follower)
    trees = [
        rpc(node.url, "debug_traceTransaction", [sent.tx_hash, {"tracer": "callTracer"}])
        for node in (producer, follower)
    ]
    assert trees[0] == trees[1] and "result" in trees[0], trees

    def frames(frame):
        yield frame
        for call in frame.get("calls", []):
            yield from frames(call)

    calls = [c for c in frames(trees[0]["result"]) if c["to"] == INFER.lower()]
    outputs = [c["output"] for c in sent.receipt["spcCalls"]]
    assert [(c["type"], c["input"], c["output"]) for c in calls] == [
        ("CALL", hexstr(data), output)
        for (_, data), output in zip(sent.calls, outputs, strict=True)
    ]


def test_receipts_record_each_ai_call_with_its_input_hash_output_and_signer(traffic, runtimes):
    for sent in traffic.sent:
        calls = sent.receipt["spcCalls"]
        assert [c["address"] for c in calls] == [precompile for precompile, _ in sent.calls]
        assert [c["inputHash"] for c in calls] == [hexstr(keccak(i)) for _, i in sent.calls]
        assert all(c["status"] == "0x1" for c in calls)
        assert all(c["signers"] == [DEV_EXECUTOR] for c in calls)
        for call, (precompile, data) in zip(calls, sent.calls, strict=True):
            if precompile == INFER:
                output = expected_output(runtimes, *infer_request(data))
                assert call["output"] == hexstr(output)
    twice = [s for s in traffic.sent if len(s.calls) == 2]
    assert len(twice) == 2 and all(len(s.receipt["spcCalls"]) == 2 for s in twice)


def test_stored_predictions_equal_the_model_run_in_process_with_the_same_fixed_point(
    w3, traffic, runtimes
):
    for consumer in (traffic.torch, traffic.onnx):
        mine = [s for s in traffic.sent if s.receipt["to"] == consumer.address.lower()]
        predictions = [s for s in mine if s.calls[0][0] == INFER]
        assert len(predictions) >= 3
        for sent in predictions:
            receipt = w3.eth.get_transaction_receipt(sent.tx_hash)
            events = consumer.events.Predicted().process_receipt(receipt)
            expected = [
                abi_decode(["int256[]", "uint32[]"], expected_output(runtimes, *infer_request(d)))
                for _, d in sent.calls
            ]
            assert [list(e.args.output) for e in events] == [list(v) for v, _ in expected]
            assert all(list(shape) == [1, 2] for _, shape in expected)
        last = max(
            consumer.events.Predicted().get_logs(from_block=0),
            key=lambda log: (log.blockNumber, log.logIndex),
        )
        assert consumer.functions.predictionLength().call() == 2
        stored = [consumer.functions.lastPrediction(i).call() for i in range(2)]
        assert stored == list(last.args.output)
        assert [consumer.functions.lastShape(i).call() for i in range(2)] == [1, 2]


def test_embeddings_have_384_dimensions_and_equal_the_attested_output(traffic):
    embedded = traffic.torch.events.Embedded().get_logs(from_block=0)
    assert len(embedded) == 2 and all(log.args.dimensions == 384 for log in embedded)
    assert traffic.torch.functions.embeddingLength().call() == 384
    last = next(s for s in traffic.sent if s.calls[0][1] == embed_input(EMBED_ID, TEXTS[2]))
    (vector,) = abi_decode(["int256[]"], bytes.fromhex(last.receipt["spcCalls"][0]["output"][2:]))
    assert len(vector) == 384 and any(vector)
    for i in (0, 1, 200, 383):
        assert traffic.torch.functions.lastEmbedding(i).call() == vector[i]


def test_attested_transaction_is_0x13_on_the_wire_and_the_users_hash_everywhere_else(
    producer, traffic
):
    sent = next(s for s in traffic.sent if len(s.calls) == 2)
    raw = bytes.fromhex(rpc(producer.url, "debug_getRawTransaction", [sent.tx_hash])["result"][2:])
    assert raw[0] == 0x13
    inner, results = rlp.decode(raw[1:])
    assert inner == sent.raw and hexstr(keccak(inner)) == sent.tx_hash
    tx_hash = bytes.fromhex(sent.tx_hash[2:])
    for index, (result, (precompile, data)) in enumerate(zip(results, sent.calls, strict=True)):
        address, input_hash, status, output, signatures = result
        assert (hexstr(address), input_hash, status) == (precompile, keccak(data), b"\x01")
        digest = attestation_digest(
            CHAIN_ID, address, data[:32], input_hash, keccak(output), sync_context(tx_hash, index)
        )
        assert [hexstr(recover_signer(digest, s)) for s in signatures] == [DEV_EXECUTOR]

    tx = rpc(producer.url, "eth_getTransactionByHash", [sent.tx_hash])["result"]
    assert tx["hash"] == sent.tx_hash and tx["type"] == "0x2"
    receipt = sent.receipt
    assert receipt["transactionHash"] == sent.tx_hash and receipt["type"] == "0x2"
    assert receipt["logs"] and all(
        log["transactionHash"] == sent.tx_hash for log in receipt["logs"]
    )
    logs = rpc(
        producer.url,
        "eth_getLogs",
        [{"blockHash": receipt["blockHash"], "address": receipt["to"]}],
    )["result"]
    assert sent.tx_hash in {log["transactionHash"] for log in logs}

    number = receipt["blockNumber"]
    block = rpc(producer.url, "eth_getBlockByNumber", [number, False])["result"]
    assert sent.tx_hash in block["transactions"]
    full = rpc(producer.url, "eth_getBlockByNumber", [number, True])["result"]
    assert sent.tx_hash in [t["hash"] for t in full["transactions"]]
    raw_block = bytes.fromhex(rpc(producer.url, "debug_getRawBlock", [number])["result"][2:])
    decoded = codec.decode_any_block(load_genesis(DEV_GENESIS).config, raw_block)
    index = int(receipt["transactionIndex"], 16)
    assert decoded.transactions[index].encode() == raw
    assert hexstr(decoded.transactions[index].hash) == sent.tx_hash


# eth_call and eth_estimateGas


def test_eth_call_runs_the_model_on_a_node_with_its_sidecar(producer, traffic, runtimes):
    for consumer, model_id in ((traffic.torch, TORCH_ID), (traffic.onnx, ONNX_ID)):
        expected, _ = abi_decode(
            ["int256[]", "uint32[]"], expected_output(runtimes, model_id, INPUTS[2])
        )
        assert consumer.functions.peek(INPUTS[2], SHAPE).call() == list(expected)
        assert consumer.functions.peek(INPUTS[2], SHAPE).estimate_gas() > 30_000 + 4 * 200


def test_eth_call_and_estimate_gas_without_the_model_fail_with_32002_naming_it(
    producer, follower, traffic
):
    consumer = traffic.torch.address
    wait_until(
        lambda: rpc(follower.url, "eth_getCode", [consumer, "latest"])["result"] != "0x",
        "the follower to import the example contract",
    )
    calls = [
        (consumer, calldata(traffic.torch, "peek", INPUTS[0], SHAPE), TORCH_ID),
        (INFER, infer_input(ONNX_ID, INPUTS[0]), ONNX_ID),
        (EMBED, embed_input(EMBED_ID, "no sidecar here"), EMBED_ID),
    ]
    for to, data, model_id in calls:
        call = {"to": to, "data": hexstr(data)}
        for method, params in (("eth_call", [call, "latest"]), ("eth_estimateGas", [call])):
            error = rpc(follower.url, method, params)["error"]
            assert error["code"] == -32002, (method, error)
            assert hexstr(model_id) in error["message"], (method, error)
            assert "sidecar" in error["message"]
            assert "result" in rpc(producer.url, method, params)


# gas


def calldata_gas(data: bytes) -> int:
    return sum(4 if byte == 0 else 16 for byte in data)


def test_gas_follows_the_input_and_the_models_schedule_never_the_output(
    producer, w3, wallets, traffic, runtimes
):
    schedule = {
        m["id"]: (int(m["gasBase"], 16), int(m["gasPerUnit"], 16))
        for m in rpc(producer.url, "sibyl_models")["result"]
    }
    a = INPUTS[0]
    b = [2_500_000, -1_250_000, 1_750_000, 4_125_000]  # as many zero bytes as ``a``
    assert calldata_gas(infer_input(TORCH_ID, a)) == calldata_gas(infer_input(TORCH_ID, b))
    out_a, out_b = (expected_output(runtimes, TORCH_ID, v) for v in (a, b))
    assert out_a != out_b

    # calling the precompiles directly: intrinsic gas plus the schedule, nothing else
    _, alice, bob, carol = wallets
    short, long = "ten bytes!", "a text four times as long as the other"
    direct = [
        (alice, INFER, infer_input(TORCH_ID, a), TORCH_ID, len(a)),
        (bob, INFER, infer_input(TORCH_ID, b), TORCH_ID, len(b)),
        (carol, INFER, infer_input(ONNX_ID, a), ONNX_ID, len(a)),
        (alice, EMBED, embed_input(EMBED_ID, short), EMBED_ID, len(short.encode())),
        (bob, EMBED, embed_input(EMBED_ID, long), EMBED_ID, len(long.encode())),
    ]
    raws = [wallet.sign(to, data, gas=200_000) for wallet, to, data, _, _ in direct]
    hashes = send_together(producer.url, raws)
    receipts = receipts_of(w3, hashes)
    for receipt, (_, _, data, model_id, units) in zip(receipts, direct, strict=True):
        base, per_unit = schedule[hexstr(model_id)]
        assert receipt.status == 1
        assert receipt.gasUsed == 21_000 + calldata_gas(data) + base + per_unit * units
    assert receipts[0].gasUsed == receipts[1].gasUsed
    outputs = [rpc(producer.url, "eth_getTransactionReceipt", [h])["result"] for h in hashes[:2]]
    assert [o["spcCalls"][0]["output"] for o in outputs] == [hexstr(out_a), hexstr(out_b)]

    # through the example contract, whose storage already holds a prediction
    first = alice.send(traffic.torch.address, calldata(traffic.torch, "predict", a, SHAPE))
    second = bob.send(traffic.torch.address, calldata(traffic.torch, "predict", b, SHAPE))
    assert first.status == second.status == 1
    assert first.gasUsed == second.gasUsed


# failures


def model_record(model_id: bytes, name: str, kind: int) -> tuple:
    """registerModel's arguments: a tensor model taking [1, 4] and giving [1, 2], 6
    decimals, quorum 1, attest mode, gas 40000 + 300 a value, outputs up to 4096 bytes."""
    return (model_id, name, kind, [1, 4], [1, 2], 6, 1, 0, 40_000, 300, 4096)


def revert_reason(data: bytes) -> str:
    assert data[:4] == ERROR_SELECTOR, data
    (reason,) = abi_decode(["string"], data[4:])
    return reason


def test_failed_ai_calls_fail_like_a_revert_and_the_block_goes_on(
    producer, follower, w3, wallets, traffic
):
    deployer, alice, bob, carol = wallets
    ghost_id = keccak(b"sibyl tests: a registered model no sidecar serves")
    models = w3.eth.contract(address=w3.to_checksum_address(MODEL_REGISTRY), abi=MODEL_ABI)
    register = calldata(models, "registerModel", *model_record(ghost_id, "ghost", kind=0))
    assert deployer.send(MODEL_REGISTRY, register).status == 1
    unknown = deploy_consumer(deployer, keccak(b"sibyl tests: never registered"))
    embed_on_infer_model = deploy_consumer(deployer, TORCH_ID, embedder_id=TORCH_ID)
    ghost = deploy_consumer(deployer, ghost_id)
    failures_before = traffic.torch.functions.failures().call()

    cases = [
        (alice, traffic.torch, calldata(traffic.torch, "predict", [1, 2, 3], [1, 3]),
         "INFER: input shape [1, 3] does not match the model's [1, 4]"),
        (bob, unknown, calldata(unknown, "predict", INPUTS[0], SHAPE),
         f"INFER: model {hexstr(keccak(b'sibyl tests: never registered'))} is not registered "
         "for INFER"),
        (carol, embed_on_infer_model, calldata(embed_on_infer_model, "embedText", "hi"),
         f"EMBED: model {hexstr(TORCH_ID)} is not registered for EMBED"),
        (deployer, ghost, calldata(ghost, "predict", INPUTS[0], SHAPE),
         "INFER: the sidecar call failed"),
    ]  # fmt: skip
    hashes = send_together(
        producer.url, [w.sign(c.address, data, gas=1_000_000) for w, c, data, _ in cases]
    )
    receipts = receipts_of(w3, hashes)
    assert len({r.blockNumber for r in receipts}) == 1, "all four calls share a block"
    for receipt, (_, consumer, _, reason) in zip(receipts, cases, strict=True):
        assert receipt.status == 1
        (event,) = consumer.events.CallFailed().process_receipt(receipt)
        assert revert_reason(event.args.reason) == reason
    assert traffic.torch.functions.failures().call() == failures_before + 1
    for consumer in (unknown, embed_on_infer_model, ghost):
        assert consumer.functions.failures().call() == 1

    # refused before any model runs: no AI result at all; a sidecar failure: a failed
    # result with no output and no signature
    spc = [
        rpc(producer.url, "eth_getTransactionReceipt", [h])["result"]["spcCalls"] for h in hashes
    ]
    assert spc[:3] == [[], [], []]
    ghost_input = infer_input(ghost_id, INPUTS[0])
    assert spc[3] == [
        {"address": INFER, "inputHash": hexstr(keccak(ghost_input)), "status": "0x0",
         "output": "0x", "signers": []}
    ]  # fmt: skip
    raw = bytes.fromhex(rpc(producer.url, "debug_getRawTransaction", [hashes[3]])["result"][2:])
    assert raw[0] == 0x13
    assert rlp.decode(raw[1:])[1] == [[INFER_ADDRESS, keccak(ghost_input), b"", b"", []]]

    assert_follower_agrees(producer, follower)
    assert "block rejected" not in follower.log()


# the sibyl_ namespace and the registries


def test_sibyl_rpc_describes_models_executors_and_sidecars(producer, follower):
    models = {m["id"]: m for m in rpc(producer.url, "sibyl_models")["result"]}
    for model_id, name, kind in (
        (TORCH_ID, "dev-mlp-torch", "torch"),
        (ONNX_ID, "dev-mlp-onnx", "onnx"),
    ):
        assert models[hexstr(model_id)] | {"gasBase": 0, "gasPerUnit": 0, "outputLimit": 0} == {
            "id": hexstr(model_id), "name": name, "kind": kind, "precompile": INFER,
            "inputShape": [1, 4], "outputShape": [1, 2], "decimals": 6, "quorum": 1,
            "mode": "attest", "gasBase": 0, "gasPerUnit": 0, "outputLimit": 0,
        }  # fmt: skip
    embed = models[hexstr(EMBED_ID)]
    assert (embed["kind"], embed["precompile"], embed["inputShape"], embed["outputShape"]) == (
        "embed",
        EMBED,
        None,
        None,
    )

    executors = {e["address"]: e for e in rpc(producer.url, "sibyl_executors")["result"]}
    assert executors[DEV_EXECUTOR] == {
        "address": DEV_EXECUTOR,
        "capabilities": ["infer", "embed", "llm", "zk"],
        "stake": "0x0",
        "active": True,
    }

    sidecars = rpc(producer.url, "sibyl_sidecars")["result"]
    assert {m for s in sidecars for m in s["models"]} == {
        hexstr(TORCH_ID),
        hexstr(ONNX_ID),
        hexstr(EMBED_ID),
        MODELS["llm"]["id"],
        hexstr(ZK_ID),
    }
    for sidecar in sidecars:
        assert set(sidecar) == {
            "name", "runtime", "endpoint", "healthy", "state", "models", "executor"
        }  # fmt: skip
        assert sidecar["runtime"] == "process" and sidecar["healthy"] is True
        assert sidecar["state"] == "healthy"
        assert sidecar["executor"] == DEV_EXECUTOR
        assert sidecar["endpoint"].startswith("127.0.0.1:")
    assert rpc(follower.url, "sibyl_sidecars")["result"] == []


def test_an_account_stakes_to_become_an_executor_and_gets_the_stake_back_when_it_leaves(
    producer, follower, w3, wallets
):
    fresh = Account.create()
    assert wallets[0].send(fresh.address, gas=21_000, value=5 * ETHER).status == 1
    executor = Wallet(w3, fresh.key)
    registry = w3.eth.contract(address=w3.to_checksum_address(EXECUTOR_REGISTRY), abi=EXECUTOR_ABI)
    held = w3.eth.get_balance(registry.address)

    joined = executor.send(EXECUTOR_REGISTRY, calldata(registry, "register", 1), 300_000, 2 * ETHER)
    assert joined.status == 1
    listed = {e["address"]: e for e in rpc(producer.url, "sibyl_executors")["result"]}
    assert listed[fresh.address.lower()] == {
        "address": fresh.address.lower(),
        "capabilities": ["infer"],
        "stake": hex(2 * ETHER),
        "active": True,
    }
    assert registry.functions.getExecutor(fresh.address).call() == [1, 2 * ETHER, True]
    assert registry.functions.isExecutor(fresh.address, 0).call() is True
    assert registry.functions.isExecutor(fresh.address, 1).call() is False
    assert w3.eth.get_balance(registry.address) == held + 2 * ETHER

    before = w3.eth.get_balance(fresh.address)
    left = executor.send(EXECUTOR_REGISTRY, calldata(registry, "deregister"), 300_000)
    assert left.status == 1
    fee = left.gasUsed * left.effectiveGasPrice
    assert w3.eth.get_balance(fresh.address) == before + 2 * ETHER - fee
    assert w3.eth.get_balance(registry.address) == held
    listed = {e["address"]: e for e in rpc(producer.url, "sibyl_executors")["result"]}
    assert listed[fresh.address.lower()]["active"] is False
    assert listed[fresh.address.lower()]["stake"] == "0x0"
    assert registry.functions.getExecutor(fresh.address).call() == [1, 0, False]
    assert_follower_agrees(producer, follower)


def test_only_the_registry_admin_registers_models(producer, follower, w3, wallets):
    admin, outsider = wallets[0], wallets[1]
    models = w3.eth.contract(address=w3.to_checksum_address(MODEL_REGISTRY), abi=MODEL_ABI)
    assert models.functions.admin().call() == admin.address
    model_id = keccak(b"sibyl tests: an ONNX model the admin registers")
    data = calldata(models, "registerModel", *model_record(model_id, "admin-mlp", kind=1))

    call = {"from": outsider.address, "to": MODEL_REGISTRY, "data": hexstr(data)}
    error = rpc(producer.url, "eth_call", [call, "latest"])["error"]
    reason = "ModelRegistry: only the registry admin may change models"
    assert error["code"] == 3 and error["message"] == f"execution reverted: {reason}"
    assert revert_reason(bytes.fromhex(error["data"][2:])) == reason
    assert outsider.send(MODEL_REGISTRY, data, 1_000_000).status == 0
    assert models.functions.isRegistered(model_id).call() is False

    assert admin.send(MODEL_REGISTRY, data, 1_000_000).status == 1
    assert models.functions.isRegistered(model_id).call() is True
    listed = {m["id"]: m for m in rpc(producer.url, "sibyl_models")["result"]}
    assert listed[hexstr(model_id)] == {
        "id": hexstr(model_id), "name": "admin-mlp", "kind": "onnx", "precompile": INFER,
        "inputShape": [1, 4], "outputShape": [1, 2], "decimals": 6, "quorum": 1,
        "mode": "attest", "gasBase": hex(40_000), "gasPerUnit": hex(300),
        "outputLimit": hex(4096),
    }  # fmt: skip
    top = assert_follower_agrees(producer, follower)
    assert (
        rpc(follower.url, "sibyl_models", [hex(top)])["result"]
        == rpc(producer.url, "sibyl_models", [hex(top)])["result"]
    )


def test_a_model_registered_mid_block_is_known_to_the_next_transaction_of_the_block(
    producer, follower, w3, wallets
):
    admin, caller = wallets[0], wallets[2]
    models = w3.eth.contract(address=w3.to_checksum_address(MODEL_REGISTRY), abi=MODEL_ABI)
    model_id = keccak(b"sibyl tests: a model registered between two calls of one block")
    register = calldata(models, "registerModel", *model_record(model_id, "late-mlp", kind=1))
    call = infer_input(model_id, INPUTS[0])
    raws = [caller.sign(INFER, call, 200_000), admin.sign(MODEL_REGISTRY, register)]
    raws.append(caller.sign(INFER, call, 200_000))

    before, registered, after = receipts_of(w3, send_together(producer.url, raws))
    assert before.blockNumber == registered.blockNumber == after.blockNumber
    assert registered.status == 1
    # refused as unknown before, charged by the new model's schedule after (no sidecar
    # serves it, so the call itself fails)
    assert before.status == after.status == 0
    intrinsic = 21_000 + calldata_gas(call)
    floor = 21_000 + 10 * calldata_gas(call) // 4  # EIP-7623
    assert before.gasUsed == max(intrinsic + 3_000, floor)
    assert after.gasUsed == intrinsic + 40_000 + 300 * len(INPUTS[0])
    assert_follower_agrees(producer, follower)


# block files


def sibyl(*args: str) -> subprocess.CompletedProcess:
    return nodes.sibyl(*args, timeout=300)


def test_sibyl_import_validates_the_exported_ai_chain_with_no_sidecar(producer, traffic, tmp_path):
    top = head(producer.url)
    exported = tmp_path / "ai-chain.rlp"
    result = sibyl("export", str(exported), "--datadir", str(producer.datadir))
    assert result.returncode == 0, result.stderr
    assert f"exported {top} blocks" in result.stdout

    copy = tmp_path / "copy"
    result = nodes.import_blocks(DEV_GENESIS, exported, copy, timeout=300)
    assert result.returncode == 0, result.stderr
    assert f"imported {top} blocks" in result.stdout

    again = tmp_path / "again.rlp"
    assert sibyl("export", str(again), "--datadir", str(copy)).returncode == 0
    assert again.read_bytes() == exported.read_bytes()
