"""debug_traceTransaction over JSON-RPC from web3.py, in geth's shapes: the struct logger
(one entry per opcode, gas accounted to the unit) and callTracer (the call tree)."""

import json
import threading
import time
from pathlib import Path

import pytest
from ai_chain import send_together
from eth_utils import to_checksum_address
from hexbytes import HexBytes
from nodes import REPO, rpc
from test_web3_e2e import GWEI, call_tx, raw, sign, transact

from chain.genesis import genesis_block, load_genesis
from chain.simulate import CallArgs, Simulator
from chain.trace import trace_call
from chain.tracers import TraceOptions, TraceTimeout
from scheduler.state import SCHEDULER as SCHEDULER_ADDRESS

FIXTURES = Path(__file__).resolve().parent / "fixtures"
BALANCE_SLOT = 3  # Token.sol's balanceOf mapping


def artifact(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def deploy(w3, account, name: str, *args):
    compiled = artifact(name)
    factory = w3.eth.contract(abi=compiled["abi"], bytecode=compiled["bytecode"])
    receipt = transact(w3, account, {"data": factory.constructor(*args).data_in_transaction})
    return w3.eth.contract(address=receipt.contractAddress, abi=compiled["abi"])


def trace(w3, tx_hash, options: dict | None = None) -> dict:
    params = [tx_hash.to_0x_hex()] + ([options] if options is not None else [])
    response = w3.provider.make_request("debug_traceTransaction", params)
    assert "error" not in response, response
    return response["result"]


def intrinsic_gas(data: bytes) -> int:
    return 21000 + sum(16 if b else 4 for b in data)


@pytest.fixture(scope="module")
def token(w3, accounts):
    return deploy(w3, accounts[0], "Token", "Traced", "TRC", 10**24)


@pytest.fixture(scope="module")
def transfer(w3, accounts, token):
    """A token transfer to a fresh holder: (receipt, calldata)."""
    tx = call_tx(token.functions.transfer(accounts[5].address, 12345), accounts[0])
    return transact(w3, accounts[0], tx), bytes.fromhex(tx["data"][2:])


def test_struct_logs_account_for_every_unit_of_gas(w3, accounts, transfer):
    receipt, data = transfer
    result = trace(w3, receipt.transactionHash)
    logs = result["structLogs"]

    assert result["failed"] is False
    assert result["gas"] == receipt.gasUsed
    assert result["returnValue"] == "0x" + (1).to_bytes(32, "big").hex()  # true
    assert logs[0] == {"pc": 0, "op": "PUSH1", "gas": logs[0]["gas"], "gasCost": 3,
                       "depth": 1, "stack": []}  # fmt: skip
    assert logs[-1]["op"] == "RETURN"
    # one frame: each opcode starts with the gas the one before left
    for before, after in zip(logs, logs[1:], strict=False):
        assert after["gas"] == before["gas"] - before["gasCost"], (before, after)
    executed = logs[0]["gas"] - logs[-1]["gas"] + logs[-1]["gasCost"]
    assert intrinsic_gas(data) + executed == receipt.gasUsed  # no refunds in a transfer

    # the recipient's new balance, as the SSTORE that wrote it shows it
    slot = int.from_bytes(
        w3.keccak(bytes(12) + bytes.fromhex(accounts[5].address[2:]) + bytes(31) + bytes([3])),
        "big",
    )
    stores = [entry for entry in logs if entry["op"] == "SSTORE"]
    assert any(entry["storage"].get(f"{slot:064x}") == f"{12345:064x}" for entry in stores)


def test_struct_logger_switches_add_and_drop_fields(w3, transfer):
    receipt, _ = transfer
    logs = trace(w3, receipt.transactionHash, {"disableStack": True, "disableStorage": True,
                                               "enableMemory": True})["structLogs"]  # fmt: skip
    assert all("stack" not in entry and "storage" not in entry for entry in logs)
    assert "memory" not in logs[0]  # empty memory is left out, as geth does
    memory = [entry["memory"] for entry in logs if "memory" in entry]
    assert memory and all(len(word) == 64 for words in memory for word in words)
    assert memory[0][2] == f"{0x80:064x}"  # Solidity's free memory pointer at 0x40


def test_call_tracer_reports_the_call_tree(w3, accounts):
    relay, leaf = deploy(w3, accounts[0], "Relay"), deploy(w3, accounts[0], "Leaf")
    tx = call_tx(relay.functions.fanOut(leaf.address), accounts[0])
    receipt = transact(w3, accounts[0], {**tx, "value": 5, "gas": 500_000})
    assert receipt.status == 1
    top = trace(w3, receipt.transactionHash, {"tracer": "callTracer"})

    sender, relay_at, leaf_at = (a.lower() for a in (accounts[0].address, relay.address,
                                                       leaf.address))  # fmt: skip
    assert top["type"] == "CALL" and top["from"] == sender and top["to"] == relay_at
    assert top["value"] == "0x5" and top["input"] == tx["data"]
    assert int(top["gas"], 16) == 500_000 and int(top["gasUsed"], 16) == receipt.gasUsed
    assert top["output"] == "0x" + (5 + 1).to_bytes(32, "big").hex()  # the delegated store
    assert "error" not in top

    kinds = [(call["type"], call["from"], call.get("value")) for call in top["calls"]]
    assert kinds == [
        ("CALL", relay_at, "0x5"),
        ("STATICCALL", relay_at, None),
        ("DELEGATECALL", relay_at, "0x5"),
        ("CREATE2", relay_at, "0x0"),
        ("STATICCALL", relay_at, None),  # fail() is pure
        ("CALL", relay_at, "0x0"),
    ]
    deposit, peek, delegated, created, failed, _ = top["calls"]
    assert deposit["to"] == peek["to"] == delegated["to"] == failed["to"] == leaf_at
    assert peek["output"] == "0x" + (5).to_bytes(32, "big").hex()
    assert created["output"] == w3.eth.get_code(to_checksum_address(created["to"])).to_0x_hex()
    assert failed["error"] == "execution reverted"
    assert failed["revertReason"] == "Leaf: always fails"
    for call in top["calls"]:
        assert int(call["gasUsed"], 16) <= int(call["gas"], 16)

    # withLog: each frame's own logs, placed among its calls; a reverted frame has none
    logged = trace(w3, receipt.transactionHash,
                   {"tracer": "callTracer", "tracerConfig": {"withLog": True}})  # fmt: skip
    receipt_logs = [(log.address.lower(), log.data.to_0x_hex()) for log in receipt.logs]
    (fanned,) = logged["logs"]
    assert fanned["position"] == hex(6) and (fanned["address"], fanned["data"]) == receipt_logs[1]
    (deposited,) = logged["calls"][0]["logs"]
    assert deposited["position"] == "0x0"
    assert (deposited["address"], deposited["data"]) == receipt_logs[0]
    assert deposited["topics"] == [receipt.logs[0].topics[0].to_0x_hex()]
    assert "logs" not in logged["calls"][5]  # failLoudly() logged, then reverted
    assert "logs" not in top  # only on request

    only_top = trace(w3, receipt.transactionHash,
                     {"tracer": "callTracer", "tracerConfig": {"onlyTopCall": True}})  # fmt: skip
    assert "calls" not in only_top and only_top["gasUsed"] == top["gasUsed"]


def test_a_reverted_transaction_traces_its_revert(w3, accounts, token):
    tx = call_tx(token.functions.transferFrom(accounts[1].address, accounts[2].address, 1),
                 accounts[3])  # fmt: skip
    receipt = transact(w3, accounts[3], {**tx, "gas": 100_000, "maxFeePerGas": 100 * GWEI})
    assert receipt.status == 0

    result = trace(w3, receipt.transactionHash)
    assert result["failed"] is True and result["gas"] == receipt.gasUsed
    assert result["structLogs"][-1]["op"] == "REVERT"
    assert "error" not in result["structLogs"][-1]  # a revert is not a fault
    reason = bytes.fromhex(result["returnValue"][2:])
    assert reason[:4] == bytes.fromhex("08c379a0") and b"allowance exceeded" in reason

    top = trace(w3, receipt.transactionHash, {"tracer": "callTracer"})
    assert top["error"] == "execution reverted"
    assert top["revertReason"] == "Token: allowance exceeded"


def test_a_plain_transfer_has_no_opcodes(w3, accounts):
    receipt = transact(w3, accounts[0], {"to": accounts[6].address, "value": 7})
    assert trace(w3, receipt.transactionHash) == {
        "gas": 21000, "failed": False, "returnValue": "0x", "structLogs": []
    }  # fmt: skip
    top = trace(w3, receipt.transactionHash, {"tracer": "callTracer"})
    assert top["value"] == "0x7" and top["gasUsed"] == hex(21000) and "calls" not in top


def test_bad_requests_get_geths_errors(w3, transfer):
    receipt, _ = transfer
    missing = raw(w3, "debug_traceTransaction", ["0x" + "ab" * 32])
    assert missing["error"] == {"code": -32000, "message": "transaction not found"}

    unknown = raw(w3, "debug_traceTransaction", [receipt.transactionHash.to_0x_hex(),
                                                 {"tracer": "4byteTracer"}])  # fmt: skip
    assert unknown["error"]["code"] == -32602
    assert "tracer '4byteTracer' is not available" in unknown["error"]["message"]

    for bad in (["0x12"], [receipt.transactionHash.to_0x_hex(), "callTracer"],
                [receipt.transactionHash.to_0x_hex(), {"disableStack": "yes"}]):  # fmt: skip
        assert raw(w3, "debug_traceTransaction", bad)["error"]["code"] == -32602


def test_code_that_runs_off_its_end_stops_where_geth_says(w3, accounts):
    runtime = bytes.fromhex("6001")  # PUSH1 1, and no STOP: the code ends
    init = bytes.fromhex("61" + runtime.hex() + "600052" + "6002" + "601e" + "f3")
    contract = transact(w3, accounts[0], {"data": "0x" + init.hex(), "gas": 100_000})
    receipt = transact(w3, accounts[0], {"to": contract.contractAddress, "gas": 50_000})
    logs = trace(w3, receipt.transactionHash)["structLogs"]
    assert [(entry["pc"], entry["op"], entry["stack"]) for entry in logs] == [
        (0, "PUSH1", []),
        (2, "STOP", ["0x1"]),
    ]


def test_a_block_traces_as_its_transactions_do_one_by_one(w3, accounts, token):
    """Two transfers sent in one batch share a block; the block's traces are theirs."""
    owner = accounts[0]
    nonce = w3.eth.get_transaction_count(owner.address, "pending")
    raws = [
        sign(w3, owner, {**call_tx(token.functions.transfer(accounts[7 + i].address, 10 + i),
                                   owner), "nonce": nonce + i, "gas": 100_000})
        for i in range(2)
    ]  # fmt: skip
    hashes = send_together(w3.provider.endpoint_uri, raws)  # one batch: one block
    receipts = [w3.eth.wait_for_transaction_receipt(h) for h in hashes]
    assert receipts[0].blockNumber == receipts[1].blockNumber
    number = receipts[0].blockNumber
    block = w3.eth.get_block(number)
    options = {"tracer": "callTracer"}

    by_number = w3.provider.make_request("debug_traceBlockByNumber", [hex(number), options])
    by_hash = w3.provider.make_request(
        "debug_traceBlockByHash", [block["hash"].to_0x_hex(), options]
    )
    assert by_number["result"] == by_hash["result"]
    assert [t["txHash"] for t in by_number["result"]] == [
        tx.to_0x_hex() for tx in block["transactions"]
    ]
    for entry in by_number["result"]:
        assert entry["result"] == trace(w3, HexBytes(entry["txHash"]), options)
    default = w3.provider.make_request("debug_traceBlockByNumber", [hex(number)])["result"]
    assert [t["result"]["gas"] for t in default] == [
        w3.eth.get_transaction_receipt(tx)["gasUsed"] for tx in block["transactions"]
    ]

    genesis = raw(w3, "debug_traceBlockByNumber", ["0x0"])
    assert genesis["error"] == {"code": -32000, "message": "genesis is not traceable"}
    missing = raw(w3, "debug_traceBlockByHash", ["0x" + "cd" * 32])
    assert missing["error"]["code"] == -32000


def deploy_code(w3, account, runtime: bytes) -> str:
    """A contract whose code is ``runtime`` (at most 32 bytes); returns its address."""
    size = len(runtime)
    init = bytes([0x60 + size - 1]) + runtime + bytes([0x60, 0, 0x52, 0x60, size, 0x60,
                                                        32 - size, 0xF3])  # fmt: skip
    return transact(w3, account, {"data": "0x" + init.hex(), "gas": 100_000}).contractAddress


def test_invalid_opcodes_are_logged_like_geth(w3, accounts):
    contract = deploy_code(w3, accounts[0], bytes.fromhex("6001fe"))  # PUSH1 1, INVALID
    receipt = transact(w3, accounts[0], {"to": contract, "gas": 50_000})
    assert receipt.status == 0
    result = trace(w3, receipt.transactionHash)
    assert result["failed"] is True
    assert [(e["pc"], e["op"]) for e in result["structLogs"]] == [(0, "PUSH1"), (2, "INVALID")]


def test_a_create_costs_what_geth_says_and_hands_on_the_rest(w3, accounts):
    relay, leaf = deploy(w3, accounts[0], "Relay"), deploy(w3, accounts[0], "Leaf")
    tx = call_tx(relay.functions.fanOut(leaf.address), accounts[0])
    receipt = transact(w3, accounts[0], {**tx, "value": 1, "gas": 500_000})
    logs = trace(w3, receipt.transactionHash)["structLogs"]
    calls = trace(w3, receipt.transactionHash, {"tracer": "callTracer"})["calls"]
    (created,) = [c for c in calls if c["type"] == "CREATE2"]
    at = next(i for i, e in enumerate(logs) if e["op"] == "CREATE2")
    after = next(e for e in logs[at + 1 :] if e["depth"] == 1)
    create2 = logs[at]
    assert create2["gasCost"] < 40_000  # 32000 + hashing and memory, not the init gas
    assert after["gas"] == create2["gas"] - create2["gasCost"] - int(created["gasUsed"], 16)


def test_selfdestruct_and_failed_creates_in_the_call_tree(w3, accounts):
    sender = accounts[0]
    doomed = deploy_code(w3, sender, bytes.fromhex("33ff"))  # CALLER SELFDESTRUCT
    receipt = transact(w3, sender, {"to": doomed, "value": 3, "gas": 60_000})
    top = trace(w3, receipt.transactionHash, {"tracer": "callTracer"})
    assert top["calls"] == [
        {"type": "SELFDESTRUCT", "from": doomed.lower(), "to": sender.address.lower(),
         "gas": "0x0", "gasUsed": "0x0", "input": "0x", "value": "0x3"}
    ]  # fmt: skip

    reverting = bytes.fromhex("60006000fd")  # init code: REVERT(0, 0)
    failed = transact(w3, sender, {"data": "0x" + reverting.hex(), "gas": 100_000})
    assert failed.status == 0
    top = trace(w3, failed.transactionHash, {"tracer": "callTracer"})
    assert top["type"] == "CREATE" and "to" not in top  # a failed create made no account
    assert top["error"] == "execution reverted" and top["input"] == "0x" + reverting.hex()


def test_limit_and_timeout_bound_a_trace(w3, transfer):
    receipt, _ = transfer
    tx_hash = receipt.transactionHash.to_0x_hex()
    assert len(trace(w3, receipt.transactionHash, {"limit": 3})["structLogs"]) == 3
    timed_out = raw(w3, "debug_traceTransaction", [tx_hash, {"timeout": "1ns"}])
    assert timed_out["error"] == {"code": -32000, "message": "execution timeout"}
    assert trace(w3, receipt.transactionHash, {"timeout": "1m30s"})["failed"] is False
    bad = raw(w3, "debug_traceTransaction", [tx_hash, {"timeout": "5 seconds"}])
    assert bad["error"]["code"] == -32602 and "invalid duration" in bad["error"]["message"]


def test_trace_call_traces_a_call_as_eth_call_runs_it(w3, accounts, token):
    relay, leaf = deploy(w3, accounts[0], "Relay"), deploy(w3, accounts[0], "Leaf")
    head = w3.eth.block_number
    fan_out = {**call_tx(relay.functions.fanOut(leaf.address), accounts[0]), "value": "0x5",
               "gas": hex(500_000)}  # fmt: skip
    top = w3.provider.make_request("debug_traceCall", [fan_out, "latest", {"tracer": "callTracer"}])
    top = top["result"]
    assert [c["type"] for c in top["calls"]] == [
        "CALL", "STATICCALL", "DELEGATECALL", "CREATE2", "STATICCALL", "CALL"
    ]  # fmt: skip
    assert top["output"] == w3.eth.call({**fan_out, "value": 5, "gas": 500_000}).to_0x_hex()
    assert relay.functions.stored().call() == 0 and w3.eth.block_number == head  # ran, left

    balance_of = call_tx(token.functions.balanceOf(accounts[0].address), accounts[0])
    steps = w3.provider.make_request("debug_traceCall", [balance_of, "latest"])["result"]
    assert steps["failed"] is False
    assert steps["returnValue"] == w3.eth.call(balance_of).to_0x_hex()
    (sload,) = [entry for entry in steps["structLogs"] if entry["op"] == "SLOAD"]
    assert (
        int(next(iter(sload["storage"].values())), 16)
        == token.functions.balanceOf(accounts[0].address).call()
    )

    # gas as a transaction would be charged it, calldata floor (EIP-7623) included
    heavy = {"from": accounts[0].address, "to": accounts[9].address, "data": "0x" + "ab" * 1000}
    charged = w3.provider.make_request("debug_traceCall", [heavy, "latest"])["result"]["gas"]
    assert charged == 21000 + 10 * 4 * 1000

    reverting = call_tx(token.functions.divide(0), accounts[0])
    failed = w3.provider.make_request("debug_traceCall", [reverting, "latest"])["result"]
    assert failed["failed"] is True and failed["structLogs"][-1]["op"] == "REVERT"
    assert raw(w3, "debug_traceCall", [{"to": "0x12"}, "latest"])["error"]["code"] == -32602
    poor = {"from": "0x" + "77" * 20, "to": accounts[0].address, "value": hex(10**30)}
    assert raw(w3, "debug_traceCall", [poor, "latest"])["error"]["code"] == -32000


def test_a_stopping_node_aborts_a_running_trace():
    genesis = load_genesis(REPO / "genesis" / "dev.json")
    block, write = genesis_block(genesis)
    simulator = Simulator(genesis.config, write.state.get, {block.hash: block.header}.get, None)
    args = CallArgs(sender=b"\x01" * 20, to=SCHEDULER_ADDRESS, data=b"\x00" * 4)
    assert trace_call(simulator, block.header, args, TraceOptions())["failed"] is True
    stopping = threading.Event()
    stopping.set()
    code = CallArgs(sender=b"\x01" * 20, data=bytes.fromhex("600160015500"))  # a create
    with pytest.raises(TraceTimeout, match="the node is stopping"):
        trace_call(simulator, block.header, code, TraceOptions(), stopping)


def test_a_long_trace_neither_blocks_requests_nor_the_nodes_stop(start_node, accounts):
    node = start_node("tracing")
    w3 = node.w3()
    endless = deploy_code(w3, accounts[0], bytes.fromhex("5b600056"))  # JUMPDEST, JUMP to 0
    burnt = transact(w3, accounts[0], {"to": endless, "gas": 20_000_000})
    answers: dict = {}
    request = [burnt.transactionHash.to_0x_hex(), {"timeout": "10m"}]
    tracing = threading.Thread(
        target=lambda: answers.update(rpc(node.url, "debug_traceTransaction", request, 300))
    )
    tracing.start()
    time.sleep(1)  # the replay is under way
    assert int(rpc(node.url, "eth_blockNumber", [])["result"], 16) == burnt.blockNumber
    assert node.stop(timeout=30) == 0  # well before the trace could end
    tracing.join(30)
    assert answers["error"] == {"code": -32000, "message": "trace aborted: the node is stopping"}
