"""Replicate-mode models: every node re-runs them in-process, so no sidecar, no
attestation and no recorded result is involved, and a follower still agrees."""

import json

import eth_abi
import pytest
from ai_chain import (
    ONNX_ID,
    SHAPE,
    Wallet,
    assert_follower_agrees,
    calldata,
    deploy_consumer,
    infer_input,
    shut_down,
)
from nodes import DEV_KEYS, REPO, NodeProcess, rpc

from chain.genesis import complete_genesis
from sidecars.abi import INFER_ADDRESS
from sidecars.runtimes import load_model


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """A producer and a follower, neither with a sidecar, on a genesis whose ONNX model
    is in replicate mode."""
    root = tmp_path_factory.mktemp("replicate")
    genesis = json.loads((REPO / "genesis" / "dev.json").read_text())
    for model in genesis["sibyl"]["models"]:
        if model["kind"] == "onnx":
            model["mode"] = "replicate"
    path = root / "genesis.json"
    path.write_text(json.dumps(complete_genesis(json.dumps(genesis).encode())))
    common = ["--dev", "--genesis", str(path), "--sidecars", "none"]
    producer = NodeProcess(root / "producer", common).start()
    follower = NodeProcess(root / "follower", [*common, "--follow", producer.url]).start()
    yield producer, follower
    shut_down(follower)
    shut_down(producer)


def test_replicate_model_runs_on_every_node_without_sidecars(chain):
    producer, follower = chain
    wallet = Wallet(producer.w3(), DEV_KEYS[0])
    consumer = deploy_consumer(wallet, ONNX_ID)
    values = [1_500_000, -250_000, 750_000, 2_000_000]
    receipt = wallet.send(consumer.address, calldata(consumer, "predict", values, SHAPE))
    assert receipt.status == 1
    assert consumer.functions.failures().call() == 0

    expected_input = infer_input(ONNX_ID, values)
    model = load_model("onnx", REPO / "genesis" / "models" / "mlp.onnx", ONNX_ID)
    expected, _ = eth_abi.decode(
        ["int256[]", "uint32[]"], model.run(INFER_ADDRESS, ONNX_ID, expected_input)
    )
    stored = [consumer.functions.lastPrediction(i).call() for i in range(2)]
    assert stored == list(expected)

    # not attested: the user's own transaction type, no AI results in the receipt
    raw = rpc(producer.url, "debug_getRawTransaction", [receipt.transactionHash.to_0x_hex()])
    assert raw["result"].startswith("0x02")
    full = rpc(producer.url, "eth_getTransactionReceipt", [receipt.transactionHash.to_0x_hex()])
    assert full["result"]["spcCalls"] == []

    assert_follower_agrees(producer, follower)
    # and the follower answers eth_call on the model itself
    follower_consumer = follower.w3().eth.contract(address=consumer.address, abi=consumer.abi)
    assert follower_consumer.functions.peek(values, SHAPE).call() == stored
