"""Every request has a bounded cost and never blocks others: calls and estimates run off
the event loop within a gas cap and a time cap, traces within a time and memory bound,
proofs within a key count."""

import threading

import pytest
from nodes import dev_node, rpc

LOOP = "0x5b600056"  # init code JUMPDEST PUSH1 0 JUMP: runs until it has no gas or time


@pytest.fixture(scope="module")
def bounded_node(tmp_path_factory):
    """A dev node with small caps, so that hitting them is quick."""
    root = tmp_path_factory.mktemp("bounded")
    config = root / "node.toml"
    config.write_text(
        "rpc_evm_timeout = 1.0\n"
        "rpc_gas_cap = 30_000_000\n"
        "[rpc]\n"
        "max_trace_timeout = 1.5\n"
        "max_trace_bytes = 2_000_000\n"
    )
    process = dev_node(root / "data", "--config", str(config))
    yield process
    process.kill()


def test_a_looping_call_stops_at_the_time_cap_while_others_are_served(bounded_node):
    url = bounded_node.url
    answers: list[dict] = []
    running = threading.Thread(
        target=lambda: answers.append(rpc(url, "eth_call", [{"data": LOOP}], timeout=60))
    )
    running.start()
    served_meanwhile = 0
    while running.is_alive():
        assert "result" in rpc(url, "eth_blockNumber", timeout=60)
        served_meanwhile += running.is_alive()
    running.join()
    assert served_meanwhile > 0
    assert answers[0]["error"] == {"code": -32000, "message": "execution aborted (timeout = 1s)"}


def test_an_estimate_of_a_loop_stops_at_the_time_cap(bounded_node):
    answer = rpc(bounded_node.url, "eth_estimateGas", [{"data": LOOP}], timeout=60)
    assert answer["error"]["code"] == -32000
    assert answer["error"]["message"] in (
        "execution aborted (timeout = 1s)",
        "gas required exceeds allowance (30000000)",
    )


def test_call_gas_above_the_cap_is_capped_not_refused(tmp_path):
    config = tmp_path / "node.toml"
    config.write_text("rpc_gas_cap = 100_000\n")
    node = dev_node(tmp_path / "data", "--config", str(config))
    try:
        call = {"data": LOOP, "gas": hex(10**12)}
        assert rpc(node.url, "eth_call", [call])["error"]["message"] == "out of gas"
        estimate = rpc(node.url, "eth_estimateGas", [call])["error"]
        assert estimate["message"] == "gas required exceeds allowance (100000)"
        plain = rpc(node.url, "eth_call", [{"data": "0x600160005260206000f3", "gas": hex(10**12)}])
        assert plain["result"] == "0x" + "00" * 31 + "01"
    finally:
        node.kill()


def test_a_trace_cannot_ask_for_more_time_than_the_node_allows(bounded_node):
    options = {"timeout": "1h", "disableStack": True, "limit": 1}
    answer = rpc(bounded_node.url, "debug_traceCall", [{"data": LOOP}, "latest", options], 60)
    assert answer["error"] == {"code": -32000, "message": "execution timeout"}
    assert "result" in rpc(bounded_node.url, "eth_blockNumber")


def test_a_trace_larger_than_the_memory_bound_is_refused(bounded_node):
    answer = rpc(bounded_node.url, "debug_traceCall", [{"data": LOOP}, "latest"], timeout=60)
    assert answer["error"]["code"] == -32000
    assert answer["error"]["message"].startswith("trace larger than 2000000 bytes")


def test_a_proof_of_more_keys_than_geth_allows_is_invalid_params(bounded_node):
    keys = ["0x" + f"{i:064x}" for i in range(1025)]
    address = "0x" + "11" * 20
    answer = rpc(bounded_node.url, "eth_getProof", [address, keys, "latest"], timeout=60)
    assert answer["error"] == {
        "code": -32602,
        "message": "too many storage keys requested (max 1024, got 1025)",
    }
    assert "result" in rpc(bounded_node.url, "eth_getProof", [address, keys[:1024], "latest"], 60)
