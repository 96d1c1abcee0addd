"""The native scheduler end to end (DESIGN section 6, issue 5), on real node processes
driven with web3.py.

A schedule fires at exactly its blocks as scheduled transactions (type 0x10, sender
SCHEDULER) at the top of the block, paid from its deposit at the base fee, the rest
refunded to its owner; predicates, fee limits and reverting callees skip or fail one
execution only; cancel refunds, and only the owner may; a per-block gas cap defers the
overflow in call-id order; ``sibyl_getScheduledCall`` / ``sibyl_scheduledCalls`` report
calls; scheduled INFER calls (in a callee or a predicate) are attested and verified by a
follower with no sidecar; blocks that omit, add or reorder scheduled transactions are
rejected by a follower and by ``sibyl import``. Some tests guard the scheduler's pool of
deposits: a gas-hungry predicate, a callee that cancels its own schedule, and
DELEGATECALL / CALLCODE must neither stall the chain nor pay out other schedules'
deposits.

Schedules are made by tests/fixtures/SchedulerProbe.sol (rebuild with
contracts/compile.js). A dev node with active schedules makes a block a second, so a
schedule over n blocks takes about n seconds; a node with none makes blocks only for
transactions, so tests never wait for a block that nothing will make.
"""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import rlp
from ai_chain import (
    DEV_EXECUTOR,
    DEV_GENESIS,
    GWEI,
    INFER,
    TORCH_ID,
    Wallet,
    assert_follower_agrees,
    calldata,
    head,
    hexstr,
    receipts_of,
    send_together,
    shut_down,
    start_follower,
    start_producer,
    wait_until,
)
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import keccak
from fake_peer import FakePeer, rejection, with_transactions
from hexbytes import HexBytes
from nodes import CHAIN_ID, DEV_KEYS, REPO, NodeProcess, import_blocks, rpc
from web3 import Web3

from chain.ai.attested import AttestedTransaction, SpcResult
from chain.genesis import complete_genesis, load_genesis
from chain.storage import codec
from scheduler.transactions import ScheduledTransaction

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SCHEDULER = "0x0000000000000000000000000000000000000a01"
NO_PREDICATE = "0x" + "00" * 20
PREDICATE_GAS = 100_000  # what a predicate's staticcall may take, out of gasLimit
GAS = 150_000  # gasLimit of a scheduled ping (the first ping of a probe takes ~90k)
FEE = 10 * GWEI  # maxFeePerGas: above the dev chain's base fee, which starts at 1 gwei
SKIP_FEE, SKIP_PREDICATE, SKIP_CANCELLED = 1, 2, 3
DONE, CANCELLED = 2, 3  # getCall's status
REVERTED = "execution reverted: Scheduler: "  # a native contract's revert, named


def topic(signature: str) -> bytes:
    return keccak(text=signature)


SCHEDULED = topic("CallScheduled(uint256,address,uint64,uint64,uint64)")
EXECUTED = topic("CallExecuted(uint256,uint64,bool,uint256)")
SKIPPED = topic("CallSkipped(uint256,uint64,uint8)")
CANCELLED_EVENT = topic("CallCancelled(uint256,uint256)")
COMPLETED = topic("CallCompleted(uint256,uint256)")
PINGED = topic("Pinged(uint256,uint256)")
CALL_RECORD = [
    "address", "bytes", "uint64", "uint64", "uint64", "uint64", "uint64", "uint256",
    "address", "uint256", "uint64", "uint8",
]  # fmt: skip


def selector(signature: str) -> bytes:
    return keccak(text=signature)[:4]


def artifact(name: str) -> dict:
    """A compiled fixture of tests/fixtures/SchedulerProbe.sol."""
    return json.loads((FIXTURES / f"{name}.json").read_text())


def logs_of(receipt: Any, event: bytes, address: str = SCHEDULER) -> list:
    return [
        log
        for log in receipt.logs
        if log.topics[0] == event and log.address.lower() == address.lower()
    ]


def event_args(log: Any, types: list[str]) -> tuple:
    """(the indexed call id, then the data's values) of a scheduler event."""
    return (int.from_bytes(log.topics[1], "big"), *abi_decode(types, bytes(log.data)))


@dataclass
class Execution:
    """One scheduled transaction of a call, as a client sees it."""

    block: int
    base_fee: int
    index: int  # the call's execution index
    position: int  # the transaction's index in its block
    tx: Any
    receipt: Any

    @property
    def cost(self) -> int:
        """What it paid from the deposit: its gas at its block's base fee."""
        return self.receipt.gasUsed * self.base_fee


class Chain:
    """A node seen through web3.py, with a funded wallet that deploys and schedules."""

    def __init__(self, node: NodeProcess, key: str = DEV_KEYS[0]) -> None:
        self.node = node
        self.url = node.url
        self.w3 = node.w3()
        self.wallet = Wallet(self.w3, key)

    def head(self) -> int:
        return self.w3.eth.block_number

    def balance(self, address: str) -> int:
        return self.w3.eth.get_balance(Web3.to_checksum_address(address))

    def deploy(self, name: str, *args: Any, compiled: dict | None = None):
        """Deploy a fixture (or the ``compiled`` artifact); returns the web3 contract."""
        compiled = compiled or artifact(name)
        factory = self.w3.eth.contract(abi=compiled["abi"], bytecode=compiled["bytecode"])
        data = bytes(HexBytes(factory.constructor(*args).data_in_transaction))
        receipt = self.wallet.send(None, data, gas=3_000_000)
        assert receipt.status == 1, f"deploying {name} failed"
        return self.w3.eth.contract(address=receipt.contractAddress, abi=compiled["abi"])

    def mine(self, blocks: int) -> None:
        """Make blocks with transfers (a node with no active schedule makes none)."""
        for _ in range(blocks):
            assert self.wallet.send(self.wallet.address, gas=21_000).status == 1

    def schedule_tx(
        self, probe, data: bytes, start: int, frequency: int, num_calls: int,
        gas_limit: int = GAS, max_fee: int = FEE, predicate: str = NO_PREDICATE,
        value: int | None = None,
    ) -> bytes:  # fmt: skip
        """A signed ``probe.schedule(...)``; the deposit is exactly numCalls × gasLimit ×
        maxFeePerGas unless given."""
        if value is None:
            value = num_calls * gas_limit * max_fee
        args = (data, start, frequency, num_calls, gas_limit, max_fee, predicate)
        return self.wallet.sign(probe.address, calldata(probe, "schedule", *args), value=value)

    def schedule(self, probe, data: bytes, start: int, *args: Any, **kwargs: Any) -> int:
        """Schedule a call to ``probe``, in a block before ``start``; returns its id."""
        (call_id,) = self.schedule_together([self.schedule_tx(probe, data, start, *args, **kwargs)])
        return call_id

    def schedule_together(self, raws: list[bytes]) -> list[int]:
        """Send signed schedule transactions in one batch; returns their call ids."""
        ids = []
        for receipt in receipts_of(self.w3, send_together(self.url, raws)):
            assert receipt.status == 1, "schedule() reverted"
            (log,) = logs_of(receipt, SCHEDULED)
            (start,) = abi_decode(["uint64", "uint64", "uint64"], bytes(log.data))[:1]
            assert receipt.blockNumber < start, "the test scheduled too late: choose a later start"
            ids.append(int.from_bytes(log.topics[1], "big"))
        return ids

    def next_call_id(self) -> int:
        """The id the next schedule() gets (an eth_call of a valid one)."""
        schedule = schedule_input(selector("ping()"), self.head() + 100, 1, GAS, FEE)
        call = {"from": self.wallet.address, "to": SCHEDULER, "data": schedule, "value": GAS * FEE}
        return abi_decode(["uint256"], self.w3.eth.call(call))[0]

    def scheduled_call(self, call_id: int) -> dict | None:
        """``sibyl_getScheduledCall``."""
        return rpc(self.url, "sibyl_getScheduledCall", [hex(call_id)])["result"]

    def scheduled_calls(self, number: int) -> list[dict]:
        """``sibyl_scheduledCalls``."""
        return rpc(self.url, "sibyl_scheduledCalls", [hex(number)])["result"]

    def get_call(self, call_id: int) -> tuple:
        """``SCHEDULER.getCall(callId)`` through eth_call."""
        data = selector("getCall(uint256)") + abi_encode(["uint256"], [call_id])
        return abi_decode(CALL_RECORD, self.w3.eth.call({"to": SCHEDULER, "data": data}))

    def wait_finished(self, call_id: int, timeout: float = 60) -> dict:
        """Wait until the call is done or cancelled; returns its record."""
        return wait_until(
            lambda: (call := self.scheduled_call(call_id))["status"] != "active" and call,
            f"scheduled call {call_id} to finish",
            timeout,
        )

    def executions(self, call_id: int, first: int, last: int) -> list[Execution]:
        """The scheduled transactions of ``call_id`` in blocks ``first`` to ``last``."""
        found = []
        for number in range(first, last + 1):
            block = self.w3.eth.get_block(number)
            for entry in self.scheduled_calls(number):
                if int(entry["callId"], 16) != call_id:
                    continue
                tx_hash = HexBytes(entry["transactionHash"])
                tx = self.w3.eth.get_transaction(tx_hash)
                found.append(
                    Execution(
                        number,
                        block.baseFeePerGas,
                        int(entry["index"], 16),
                        tx.transactionIndex,
                        tx,
                        self.w3.eth.get_transaction_receipt(tx_hash),
                    )
                )
        return found


def completion(execution: Execution, num_calls: int) -> list[bytes]:
    """The CallCompleted topic the last execution of ``num_calls`` ends with."""
    return [COMPLETED] if execution.index == num_calls - 1 else []


def revert_reason(url: str, to: str, data: bytes, sender: str, value: int = 0) -> str:
    """The error message of an eth_call that must revert."""
    call = {"from": sender, "to": to, "data": hexstr(data), "value": hex(value)}
    reply = rpc(url, "eth_call", [call, "latest"])
    assert "error" in reply, f"expected a revert, got {reply}"
    assert reply["error"]["code"] == 3, reply
    return reply["error"]["message"]


# one dev node shared by the tests that cannot disturb each other


@pytest.fixture(scope="module")
def chain(node) -> Chain:
    return Chain(node)


@dataclass
class Fired:
    """A schedule run to its end: ping every 2 blocks, 3 times."""

    probe: Any
    call_id: int
    start: int
    deposit: int
    scheduler_before: int
    scheduler_after: int
    record: dict
    executions: list[Execution]


@pytest.fixture(scope="module")
def fired(chain) -> Fired:
    probe = chain.deploy("SchedulerProbe")
    before = chain.balance(SCHEDULER)
    start = chain.head() + 3
    call_id = chain.schedule(probe, calldata(probe, "ping"), start, 2, 3)
    record = chain.wait_finished(call_id)
    return Fired(
        probe, call_id, start, 3 * GAS * FEE, before, chain.balance(SCHEDULER), record,
        chain.executions(call_id, start, start + 4),
    )  # fmt: skip


def test_schedule_fires_at_start_block_and_every_frequency_blocks_numcalls_times(chain, fired):
    start = fired.start
    assert fired.probe.functions.pingBlocks().call() == [start, start + 2, start + 4]
    assert [(e.block, e.index) for e in fired.executions] == [
        (start, 0),
        (start + 2, 1),
        (start + 4, 2),
    ]
    for number in (start + 1, start + 3):
        assert chain.scheduled_calls(number) == []


def test_finished_schedule_is_done_and_never_runs_again(chain, fired):
    record = fired.record
    assert record["status"] == "done"
    assert record["executed"] == "0x3" and record["numCalls"] == "0x3"
    assert record["deposit"] == "0x0" and record["nextBlock"] is None
    assert record["startBlock"] == hex(fired.start) and record["frequency"] == "0x2"
    assert record["owner"] == fired.probe.address.lower()
    assert record["data"] == hexstr(selector("ping()")) and record["predicate"] is None

    owner, *fields, _, status = chain.get_call(fired.call_id)
    assert owner.lower() == fired.probe.address.lower() and status == DONE
    # data, startBlock, frequency, numCalls, executed, gasLimit, maxFeePerGas, predicate,
    # deposit
    expected = [selector("ping()"), fired.start, 2, 3, 3, GAS, FEE, NO_PREDICATE, 0]
    assert [f.lower() if isinstance(f, str) else f for f in fields] == expected

    # the block a fourth execution would have had comes, and holds no scheduled call
    while chain.head() < fired.start + 6:
        chain.mine(1)
    for number in range(fired.start + 5, fired.start + 7):
        assert chain.scheduled_calls(number) == []
        assert all(tx["type"] != 0x10 for tx in chain.w3.eth.get_block(number, True).transactions)
    assert len(fired.probe.functions.pingBlocks().call()) == 3


def test_each_execution_is_a_scheduled_transaction_at_the_top_of_its_block(chain, fired):
    probe = fired.probe.address
    for execution in fired.executions:
        tx, receipt = execution.tx, execution.receipt
        assert execution.position == 0
        assert tx["type"] == 0x10 and tx["from"] == Web3.to_checksum_address(SCHEDULER)
        assert tx["to"] == probe and tx["input"] == selector("ping()") and tx["value"] == 0
        assert tx["gas"] == GAS and tx["maxFeePerGas"] == FEE
        assert tx["maxPriorityFeePerGas"] == 0

        raw = bytes.fromhex(
            rpc(chain.url, "debug_getRawTransaction", [tx["hash"].to_0x_hex()])["result"][2:]
        )
        assert raw[0] == 0x10 and keccak(raw) == tx["hash"]
        chain_id, nonce, call_id, index, to, gas, max_fee, data = rlp.decode(raw[1:])
        assert [int.from_bytes(v, "big") for v in (chain_id, call_id, index, gas, max_fee)] == [
            CHAIN_ID, fired.call_id, execution.index, GAS, FEE,
        ]  # fmt: skip
        assert int.from_bytes(nonce, "big") == tx["nonce"]
        assert "0x" + to.hex() == probe.lower() and data == selector("ping()")

        assert receipt.status == 1 and receipt.type == 0x10
        assert receipt["from"] == Web3.to_checksum_address(SCHEDULER)
        assert receipt.transactionIndex == 0 and receipt.blockNumber == execution.block
        # the callee's own log, then the scheduler's, then (last time) its completion
        topics = [PINGED, EXECUTED] + completion(execution, 3)
        assert [log.topics[0] for log in receipt.logs] == topics
        (executed,) = logs_of(receipt, EXECUTED)
        assert event_args(executed, ["uint64", "bool", "uint256"]) == (
            fired.call_id, execution.index, True, receipt.gasUsed,
        )  # fmt: skip
        # and debug_traceTransaction replays it as the call the scheduler made
        options = {"tracer": "callTracer"}
        top = rpc(chain.url, "debug_traceTransaction", [tx["hash"].to_0x_hex(), options])
        assert top["result"]["from"] == SCHEDULER and top["result"]["to"] == probe.lower()
        assert top["result"]["input"] == "0x" + selector("ping()").hex()
    # the callee saw the scheduler as msg.sender (ping() also requires it)
    assert fired.probe.functions.lastCaller().call() == Web3.to_checksum_address(SCHEDULER)
    # and a dApp finds the executions with eth_getLogs
    found = chain.w3.eth.get_logs(
        {
            "fromBlock": fired.start,
            "toBlock": fired.start + 4,
            "address": Web3.to_checksum_address(SCHEDULER),
            "topics": [EXECUTED, fired.call_id.to_bytes(32, "big")],
        }
    )
    assert [log.blockNumber for log in found] == [e.block for e in fired.executions]


def test_gas_is_paid_from_the_deposit_at_the_base_fee_and_the_rest_refunded(chain, fired):
    for execution in fired.executions:
        assert execution.receipt.effectiveGasPrice == execution.base_fee
    spent = sum(execution.cost for execution in fired.executions)
    (completed,) = logs_of(fired.executions[-1].receipt, COMPLETED)
    _, refund = event_args(completed, ["uint256"])
    assert refund == fired.deposit - spent > 0
    assert chain.balance(fired.probe.address) == refund  # the owner had nothing else
    assert fired.scheduler_after == fired.scheduler_before  # it keeps nothing


def test_schedule_rejects_a_deposit_below_numcalls_times_gas_limit_times_max_fee(chain):
    probe = chain.deploy("SchedulerProbe")
    start = chain.head() + 3
    ping = calldata(probe, "ping")
    required = 4 * GAS * FEE
    args = (ping, start, 1, 4, GAS, FEE, NO_PREDICATE)
    reason = revert_reason(
        chain.url, probe.address, calldata(probe, "schedule", *args), chain.wallet.address,
        value=required - 1,
    )  # fmt: skip
    assert reason == (
        f"{REVERTED}deposit {required - 1} is below numCalls × gasLimit × maxFeePerGas = {required}"
    )
    next_id = chain.next_call_id()
    receipt = chain.wallet.send(
        probe.address, calldata(probe, "schedule", *args), value=required - 1
    )
    assert receipt.status == 0 and receipt.logs == []
    assert chain.scheduled_call(next_id) is None
    assert chain.balance(probe.address) == 0  # the value came back with the revert


@pytest.mark.parametrize(
    "case, expected",
    [
        ("start in the past", "startBlock must be after the current block"),
        ("frequency 0", "frequency and numCalls must be at least 1"),
        ("numCalls 0", "frequency and numCalls must be at least 1"),
        ("gasLimit below intrinsic gas", "gasLimit below the call's intrinsic gas 21064"),
        ("gasLimit over the cap", "gasLimit does not fit the per-block cap of 5000000 gas"),
        ("last call beyond block 2**48", "the last call would be beyond block 2**48"),
    ],
)
def test_schedule_rejects_bad_arguments_with_a_reason(chain, case, expected):
    start = chain.head() + 3
    args = {
        "start in the past": (chain.head(), 1, 1, GAS),
        "frequency 0": (start, 0, 2, GAS),
        "numCalls 0": (start, 1, 0, GAS),
        "gasLimit below intrinsic gas": (start, 1, 1, 21_000),
        "gasLimit over the cap": (start, 1, 1, 5_000_001),
        "last call beyond block 2**48": (start, 2**47, 3, GAS),
    }[case]
    start_block, frequency, num_calls, gas_limit = args
    data = selector("schedule(bytes,uint64,uint64,uint64,uint64,uint256,address)") + abi_encode(
        ["bytes", "uint64", "uint64", "uint64", "uint64", "uint256", "address"],
        [selector("ping()"), start_block, frequency, num_calls, gas_limit, 1, NO_PREDICATE],
    )
    reason = revert_reason(chain.url, SCHEDULER, data, chain.wallet.address, value=10**18)
    assert reason.startswith(REVERTED) and expected in reason, reason


def test_schedule_rejects_a_gas_limit_below_the_calldata_floor(chain):
    """EIP-7623 charges a call with this much data at least its floor: a gasLimit that
    covers only the intrinsic gas would let executions cost more than was deposited."""
    call_data = b"\x01" * 1000
    intrinsic = 21_000 + 16 * len(call_data)
    floor = 21_000 + 10 * 4 * len(call_data)
    data = schedule_input(call_data, chain.head() + 3, 1, intrinsic, 1)
    reason = revert_reason(chain.url, SCHEDULER, data, chain.wallet.address, value=10**18)
    assert f"gasLimit below the call's calldata floor gas {floor}" in reason, reason


def schedule_input(data: bytes, start: int, num_calls: int, gas_limit: int, fee: int) -> bytes:
    """The call data of ``SCHEDULER.schedule(data, start, 1, numCalls, ...)``, no predicate."""
    return selector("schedule(bytes,uint64,uint64,uint64,uint64,uint256,address)") + abi_encode(
        ["bytes", "uint64", "uint64", "uint64", "uint64", "uint256", "address"],
        [data, start, 1, num_calls, gas_limit, fee, NO_PREDICATE],
    )


def test_schedule_and_cancel_refuse_delegatecall_and_callcode(chain):
    """Through DELEGATECALL or CALLCODE the scheduler would credit a deposit it never
    received (the value stays with the caller), to be refunded from other deposits."""
    indirect = chain.deploy("IndirectCaller")
    before = chain.balance(SCHEDULER)
    start = chain.head() + 100
    value = 10**17
    schedule = schedule_input(b"", start, 1, 30_000, GWEI)
    for function in ("delegate", "callcode"):
        ask = getattr(indirect.functions, function)(schedule)
        assert ask.call({"from": chain.wallet.address, "value": value}) is False
        next_id = chain.next_call_id()
        sent = chain.wallet.send(
            indirect.address, calldata(indirect, function, schedule), value=value
        )
        assert sent.status == 1 and sent.logs == []
        assert chain.scheduled_call(next_id) is None
    assert chain.balance(SCHEDULER) == before

    # nor may a contract cancel the schedules of whoever calls it
    call_id = chain.next_call_id()
    direct = chain.wallet.send(SCHEDULER, schedule, value=30_000 * GWEI, gas=500_000)
    assert direct.status == 1 and chain.scheduled_call(call_id)["status"] == "active"
    cancel = selector("cancel(uint256)") + abi_encode(["uint256"], [call_id])
    for function in ("delegate", "callcode"):
        chain.wallet.send(indirect.address, calldata(indirect, function, cancel))
        assert chain.scheduled_call(call_id)["status"] == "active"
    assert chain.wallet.send(SCHEDULER, cancel, gas=200_000).status == 1
    assert chain.scheduled_call(call_id)["status"] == "cancelled"
    assert chain.balance(SCHEDULER) == before


def test_cancel_stops_the_schedule_and_refunds_the_unused_deposit(chain):
    probe = chain.deploy("SchedulerProbe")
    before = chain.balance(SCHEDULER)
    start = chain.head() + 3
    call_id = chain.schedule(probe, calldata(probe, "ping"), start, 1, 50)
    deposit = 50 * GAS * FEE
    wait_until(lambda: int(chain.scheduled_call(call_id)["executed"], 16) >= 2, "2 executions")

    cancel = chain.wallet.send(probe.address, calldata(probe, "cancel", call_id))
    assert cancel.status == 1
    record = chain.scheduled_call(call_id)
    assert record["status"] == "cancelled" and record["nextBlock"] is None
    assert record["deposit"] == "0x0"
    assert chain.get_call(call_id)[-1] == CANCELLED
    executed = int(record["executed"], 16)
    runs = chain.executions(call_id, start, cancel.blockNumber)
    assert [(e.block, e.index) for e in runs] == [(start + i, i) for i in range(executed)]

    (log,) = logs_of(cancel, CANCELLED_EVENT)
    assert event_args(log, ["uint256"]) == (call_id, deposit - sum(e.cost for e in runs))
    assert chain.balance(probe.address) == deposit - sum(e.cost for e in runs)
    assert chain.balance(SCHEDULER) == before

    # the blocks it was due at come and go without it
    chain.mine(3)
    for number in range(cancel.blockNumber + 1, chain.head() + 1):
        assert chain.scheduled_calls(number) == []
    assert probe.functions.pingBlocks().call() == [e.block for e in runs]
    again = calldata(probe, "cancel", call_id)
    reason = revert_reason(chain.url, probe.address, again, chain.wallet.address)
    assert reason == f"{REVERTED}call {call_id} is already cancelled"


def test_only_the_owner_may_cancel(chain):
    probe = chain.deploy("SchedulerProbe")
    other_probe = chain.deploy("SchedulerProbe")
    start = chain.head() + 3
    call_id = chain.schedule(probe, calldata(probe, "ping"), start, 1, 3)
    cancel = selector("cancel(uint256)") + abi_encode(["uint256"], [call_id])

    stranger = Wallet(chain.w3, DEV_KEYS[1])
    reason = revert_reason(chain.url, SCHEDULER, cancel, stranger.address)
    assert reason == REVERTED + "only the call's owner may cancel it"
    refused = stranger.send(SCHEDULER, cancel, gas=200_000)
    assert refused.status == 0 and refused.logs == []
    refused = chain.wallet.send(other_probe.address, calldata(other_probe, "cancel", call_id))
    assert refused.status == 0 and refused.logs == []
    missing = selector("cancel(uint256)") + abi_encode(["uint256"], [10**9])
    reason = revert_reason(chain.url, SCHEDULER, missing, stranger.address)
    assert reason == f"{REVERTED}no scheduled call {10**9}"

    record = chain.wait_finished(call_id)
    assert record["status"] == "done" and record["executed"] == "0x3"
    assert probe.functions.pingBlocks().call() == [start, start + 1, start + 2]


def test_predicate_false_skips_the_execution_and_the_schedule_advances(chain):
    probe = chain.deploy("SchedulerProbe")
    even = chain.deploy("EvenIndexPredicate")
    start = chain.head() + 3
    call_id = chain.schedule(probe, calldata(probe, "ping"), start, 1, 4, predicate=even.address)
    deposit = 4 * GAS * FEE
    record = chain.wait_finished(call_id)
    assert record["status"] == "done" and record["executed"] == "0x4"
    assert record["predicate"] == even.address.lower()

    runs = chain.executions(call_id, start, start + 3)
    assert [(e.block, e.index) for e in runs] == [(start + i, i) for i in range(4)]
    for run in runs:
        assert run.position == 0 and run.receipt.status == 1
        if run.index % 2 == 0:
            (log,) = logs_of(run.receipt, EXECUTED)
            assert event_args(log, ["uint64", "bool", "uint256"])[:3] == (call_id, run.index, True)
        else:  # skipped: no call, but the predicate's gas is paid
            assert [log.topics[0] for log in run.receipt.logs] == [SKIPPED] + completion(run, 4)
            (log,) = logs_of(run.receipt, SKIPPED)
            assert event_args(log, ["uint64", "uint8"]) == (call_id, run.index, SKIP_PREDICATE)
            assert 0 < run.receipt.gasUsed < PREDICATE_GAS
    assert probe.functions.pingBlocks().call() == [start, start + 2]
    # a trace shows the call, never the predicate check that came before it
    for run in runs:
        tx_hash = run.tx["hash"].to_0x_hex()
        calls = rpc(chain.url, "debug_traceTransaction", [tx_hash, {"tracer": "callTracer"}])
        top = calls["result"]
        assert top["to"] == probe.address.lower() and top["input"] == run.tx["input"].to_0x_hex()
        steps = rpc(chain.url, "debug_traceTransaction", [tx_hash])["result"]
        assert steps["returnValue"] == "0x"  # ping()'s, not shouldExecute()'s true
        assert bool(steps["structLogs"]) == (run.index % 2 == 0)  # a skipped call never ran
    (completed,) = logs_of(runs[-1].receipt, COMPLETED)
    assert event_args(completed, ["uint256"])[1] == deposit - sum(e.cost for e in runs)
    assert chain.balance(probe.address) == deposit - sum(e.cost for e in runs)


def test_reverting_predicate_counts_as_false(chain):
    probe = chain.deploy("SchedulerProbe")
    predicate = chain.deploy("RevertingPredicate")
    start = chain.head() + 3
    call_id = chain.schedule(
        probe, calldata(probe, "ping"), start, 1, 2, predicate=predicate.address
    )
    deposit = 2 * GAS * FEE
    assert chain.wait_finished(call_id)["status"] == "done"
    runs = chain.executions(call_id, start, start + 1)
    assert [(e.block, e.index) for e in runs] == [(start, 0), (start + 1, 1)]
    for run in runs:
        (log,) = logs_of(run.receipt, SKIPPED)
        assert event_args(log, ["uint64", "uint8"]) == (call_id, run.index, SKIP_PREDICATE)
        assert not logs_of(run.receipt, EXECUTED)
    assert probe.functions.pingBlocks().call() == []
    assert chain.balance(probe.address) == deposit - sum(e.cost for e in runs)


def test_base_fee_above_max_fee_skips_the_execution(chain):
    probe = chain.deploy("SchedulerProbe")
    start = chain.head() + 3
    call_id = chain.schedule(probe, calldata(probe, "ping"), start, 1, 2, max_fee=1)
    assert chain.wait_finished(call_id)["status"] == "done"
    runs = chain.executions(call_id, start, start + 1)
    assert [(e.block, e.index) for e in runs] == [(start, 0), (start + 1, 1)]
    for run in runs:
        assert run.base_fee > 1
        assert run.receipt.status == 1 and run.receipt.gasUsed == 0
        (log,) = logs_of(run.receipt, SKIPPED)
        assert event_args(log, ["uint64", "uint8"]) == (call_id, run.index, SKIP_FEE)
    assert probe.functions.pingBlocks().call() == []
    (completed,) = logs_of(runs[-1].receipt, COMPLETED)
    assert event_args(completed, ["uint256"])[1] == 2 * GAS  # all of it: nothing ran
    assert chain.balance(probe.address) == 2 * GAS


def test_reverting_callee_fails_only_its_own_scheduled_transaction(chain):
    probe = chain.deploy("SchedulerProbe")
    start = chain.head() + 3
    boom_id, ping_id = chain.schedule_together(
        [
            chain.schedule_tx(probe, calldata(probe, "boom"), start, 1, 2),
            chain.schedule_tx(probe, calldata(probe, "ping"), start, 1, 2),
        ]
    )
    assert boom_id < ping_id
    for call_id in (boom_id, ping_id):
        record = chain.wait_finished(call_id)
        assert record["status"] == "done" and record["executed"] == "0x2"
    booms = chain.executions(boom_id, start, start + 1)
    pings = chain.executions(ping_id, start, start + 1)
    for boom, ping in zip(booms, pings, strict=True):
        assert boom.block == ping.block and (boom.position, ping.position) == (0, 1)
        assert boom.receipt.status == 0 and boom.receipt.gasUsed > 0
        # the callee's effects are gone; the scheduler's events stay
        assert [log.topics[0] for log in boom.receipt.logs] == [EXECUTED] + completion(boom, 2)
        log = boom.receipt.logs[0]
        assert event_args(log, ["uint64", "bool", "uint256"]) == (
            boom_id, boom.index, False, boom.receipt.gasUsed,
        )  # fmt: skip
        assert ping.receipt.status == 1
    assert probe.functions.pingBlocks().call() == [start, start + 1]
    (completed,) = logs_of(booms[-1].receipt, COMPLETED)
    assert event_args(completed, ["uint256"])[1] == 2 * GAS * FEE - sum(b.cost for b in booms)


def test_scheduled_calls_rpc_lists_what_ran_and_what_is_due(chain):
    probe = chain.deploy("SchedulerProbe")
    start = chain.head() + 5  # time to ask before it runs
    call_id = chain.schedule(probe, calldata(probe, "ping"), start, 3, 2)
    due = {"callId": hex(call_id), "index": "0x0", "transactionHash": None}
    assert chain.scheduled_calls(start) == [due]  # not there yet: what is due

    wait_until(lambda: chain.head() >= start, f"block {start}")
    first = chain.w3.eth.get_block(start).transactions[0].to_0x_hex()
    assert chain.scheduled_calls(start) == [due | {"transactionHash": first}]
    (second,) = chain.scheduled_calls(start + 3)  # due, or already run: the same call either way
    assert (second["callId"], second["index"]) == (hex(call_id), "0x1")

    chain.wait_finished(call_id)
    second_hash = chain.w3.eth.get_block(start + 3).transactions[0].to_0x_hex()
    assert chain.scheduled_calls(start + 3) == [
        {"callId": hex(call_id), "index": "0x1", "transactionHash": second_hash}
    ]
    assert chain.scheduled_calls(start + 1) == []  # in between
    assert chain.scheduled_calls(start + 6) == []  # the schedule has ended
    assert chain.scheduled_calls(0) == []
    assert chain.scheduled_call(10**9) is None


def test_a_block_that_ran_its_due_calls_leaves_no_due_index_behind(chain):
    """The due index is in state: were it kept after its block, every execution would
    grow the state (and the trie every later block walks) for good."""
    probe = chain.deploy("SchedulerProbe")
    start = chain.head() + 3
    call_id = chain.schedule(probe, calldata(probe, "ping"), start, 2, 2)

    def due_head(block: int) -> int:
        slot = keccak(block.to_bytes(32, "big") + (4).to_bytes(32, "big"))
        return int.from_bytes(chain.w3.eth.get_storage_at(SCHEDULER, slot), "big")

    assert due_head(start) == call_id  # eth_getStorageAt finds what is due, as documented
    chain.wait_finished(call_id)
    assert due_head(start) == 0 and due_head(start + 2) == 0


def test_callee_that_cancels_a_later_call_of_its_block_skips_it(chain):
    probe = chain.deploy("SchedulerProbe")
    start = chain.head() + 3
    first = chain.next_call_id()
    canceller, victim = chain.schedule_together(
        [
            chain.schedule_tx(probe, calldata(probe, "cancel", first + 1), start, 1, 1),
            chain.schedule_tx(probe, calldata(probe, "ping"), start, 1, 3),
        ]
    )
    assert (canceller, victim) == (first, first + 1)
    record = chain.wait_finished(victim)
    assert record["status"] == "cancelled" and record["executed"] == "0x0"
    (cancelling,) = chain.executions(canceller, start, start)
    (skipped,) = chain.executions(victim, start, start)
    assert (cancelling.position, skipped.position) == (0, 1)
    (log,) = logs_of(cancelling.receipt, CANCELLED_EVENT)
    assert event_args(log, ["uint256"]) == (victim, 3 * GAS * FEE)  # nothing of it ran
    (log,) = logs_of(skipped.receipt, SKIPPED)
    assert event_args(log, ["uint64", "uint8"]) == (victim, 0, SKIP_CANCELLED)
    assert skipped.receipt.gasUsed == 0
    assert probe.functions.pingBlocks().call() == []


def test_users_cannot_send_scheduled_transactions(chain):
    """Only the scheduler's state makes them: one in the pool would be built into a block
    no node accepts."""
    tx = ScheduledTransaction(CHAIN_ID, 1, 1, 0, b"\x11" * 20, 50_000, FEE, b"")
    wrapped = AttestedTransaction(
        tx, (SpcResult(bytes.fromhex(INFER[2:]), keccak(b""), 1, b"", ()),)
    )
    for raw in (tx.encode(), wrapped.encode()):
        reply = rpc(chain.url, "eth_sendRawTransaction", [hexstr(raw)])
        assert reply["error"]["message"] == "transaction type not supported", reply
    assert rpc(chain.url, "txpool_content")["result"] == {"pending": {}, "queued": {}}


def test_follower_replays_every_scheduler_block_of_this_module(chain, start_node):
    """Every schedule above (skips, reverts, cancels, refunds) ran on this node: a
    follower must reach the same blocks, roots and receipts."""
    chain.mine(1)
    follower = start_node("follower", "--follow", chain.url)
    assert_follower_agrees(chain.node, follower)


# a node of its own each: when these break, the chain may stop


def test_a_hungry_predicate_is_paid_out_of_gas_limit_and_cannot_stall_the_chain(start_node):
    """A predicate's staticcall takes its gas out of gasLimit (up to 100k, leaving the call
    its intrinsic gas), so numCalls × gasLimit × maxFeePerGas covers every execution: a
    predicate that burns all it may cannot drive the deposit (and the scheduler's balance)
    below zero and stop blocks."""
    chain = Chain(start_node("hungry"))
    probe = chain.deploy("SchedulerProbe")
    burner = chain.deploy("GasBurningPredicate")
    before = chain.balance(SCHEDULER)
    gas_limit, fee = 30_000, chain.w3.eth.get_block("latest").baseFeePerGas  # fee: not skipped
    start = chain.head() + 3
    ping = calldata(probe, "ping")
    args = (ping, start, 1, 2, gas_limit, fee, burner.address)
    call_id = chain.schedule(probe, *args)
    deposit = 2 * gas_limit * fee
    record = chain.wait_finished(call_id)
    assert record["status"] == "done" and record["executed"] == "0x2"
    runs = chain.executions(call_id, start, start + 1)
    assert len(runs) == 2 and all(run.receipt.gasUsed <= gas_limit for run in runs)
    refund = deposit - sum(run.cost for run in runs)
    assert refund >= 0 and chain.balance(probe.address) == refund
    assert chain.balance(SCHEDULER) == before
    chain.mine(1)  # blocks still come


def test_callee_that_cancels_its_own_schedule_is_refunded_once(start_node):
    """The refund must not count the gas of the execution that cancels, nor pay out the
    deposit a second time: the scheduler holds other schedules' deposits too."""
    chain = Chain(start_node("self-cancel"))
    bystander = chain.deploy("SchedulerProbe")
    held = 10**18  # another schedule's deposit, which must stay untouched
    chain.schedule(bystander, calldata(bystander, "ping"), chain.head() + 1000, 1, 1, value=held)
    probe = chain.deploy("SchedulerProbe")
    start = chain.head() + 3
    gas_limit = 400_000  # a ping, and a call to SCHEDULER.cancel
    call_id = chain.schedule(probe, calldata(probe, "cancelSelf"), start, 1, 3, gas_limit)
    deposit = 3 * gas_limit * FEE
    record = chain.wait_finished(call_id)
    assert record["status"] == "cancelled" and record["executed"] == "0x1"
    assert record["deposit"] == "0x0"
    (run,) = chain.executions(call_id, start, start)
    assert run.receipt.status == 1
    assert [log.topics[0] for log in run.receipt.logs] == [CANCELLED_EVENT, EXECUTED]
    # what its one execution did not use, no more and no less
    assert chain.balance(probe.address) == deposit - run.cost
    assert chain.balance(SCHEDULER) == held
    chain.mine(3)
    assert chain.executions(call_id, start + 1, chain.head()) == []
    assert probe.functions.pingBlocks().call() == [start]
    follower = start_node("follower", "--follow", chain.url)
    assert_follower_agrees(chain.node, follower)


def test_gas_cap_defers_the_overflow_to_the_next_block_in_call_id_order(tmp_path, start_node):
    genesis = json.loads(DEV_GENESIS.read_text())
    cap = 2 * GAS + 50_000  # two calls fit, a third does not
    genesis["sibyl"]["scheduler"] = {"maxGasPerBlock": hex(cap)}
    path = tmp_path / "capped.json"
    path.write_text(json.dumps(complete_genesis(json.dumps(genesis).encode())))
    chain = Chain(start_node("capped", "--genesis", str(path)))
    reply = chain.w3.eth.call({"to": SCHEDULER, "data": selector("gasCapPerBlock()")})
    assert abi_decode(["uint256"], reply) == (cap,)

    probe = chain.deploy("SchedulerProbe")
    ping = calldata(probe, "ping")
    reason = revert_reason(
        chain.url, probe.address,
        calldata(probe, "schedule", ping, chain.head() + 3, 1, 1, cap + 1, FEE, NO_PREDICATE),
        chain.wallet.address, value=(cap + 1) * FEE,
    )  # fmt: skip
    assert reason == f"{REVERTED}gasLimit does not fit the per-block cap of {cap} gas"

    start = chain.head() + 3
    ids = chain.schedule_together(
        [chain.schedule_tx(probe, ping, start, 1, 1) for _ in range(4)]
        + [chain.schedule_tx(probe, ping, start + 1, 1, 1)]
    )
    assert ids == sorted(ids)
    for call_id in ids:
        assert chain.wait_finished(call_id)["status"] == "done"
    ran = {
        n: [int(e["callId"], 16) for e in chain.scheduled_calls(n)] for n in range(start, start + 3)
    }
    # 2 fit at start; 3 and 4 wait a block, where they come before 5 (due there), which
    # waits in turn
    assert ran == {start: ids[:2], start + 1: ids[2:4], start + 2: ids[4:]}
    assert probe.functions.pingBlocks().call() == [start, start, start + 1, start + 1, start + 2]
    for number, expected in ran.items():
        transactions = chain.w3.eth.get_block(number).transactions
        assert len(transactions) == len(expected)
    assert [chain.get_call(i)[2] for i in ids] == [start] * 4 + [start + 1]  # startBlock kept


# scheduled AI calls, attested, verified by a follower without sidecars


@pytest.fixture(scope="module")
def ai_producer(tmp_path_factory):
    """A dev producer with the bundled model sidecars (local processes)."""
    producer = start_producer(tmp_path_factory.mktemp("ai") / "producer")
    yield producer
    shut_down(producer)


@pytest.fixture
def follower_of(tmp_path):
    """Start a follower with no sidecar on a producer; stopped when the test ends."""
    started: list[NodeProcess] = []

    def start(producer: NodeProcess) -> NodeProcess:
        started.append(start_follower(tmp_path / "follower", producer.url))
        return started[-1]

    yield start
    for node in started:
        shut_down(node)


def assert_attested(url: str, execution: Execution) -> None:
    """The scheduled transaction made one INFER call, attested by the dev executor."""
    tx_hash = execution.tx["hash"].to_0x_hex()
    raw = rpc(url, "debug_getRawTransaction", [tx_hash])["result"]
    assert raw.startswith("0x13")  # an attested transaction wrapping the scheduled one
    receipt = rpc(url, "eth_getTransactionReceipt", [tx_hash])["result"]
    assert receipt["transactionHash"] == tx_hash  # wallets see the inner hash
    assert receipt["from"] == SCHEDULER
    (spc,) = receipt["spcCalls"]
    assert spc["address"] == INFER and spc["status"] == "0x1"
    assert spc["signers"] == [DEV_EXECUTOR]


@dataclass
class OracleRun:
    """ScheduledOracle refreshed 3 times, every 2 blocks, by the scheduler."""

    oracle: Any
    call_id: int
    deposit: int
    first: int
    runs: list[Execution]


@pytest.fixture(scope="module")
def oracle_run(ai_producer) -> OracleRun:
    chain = Chain(ai_producer)
    compiled = json.loads((REPO / "contracts" / "build" / "ScheduledOracle.json").read_text())
    oracle = chain.deploy("ScheduledOracle", TORCH_ID, compiled=compiled)
    gas_limit, times = 1_000_000, 3
    deposit = times * gas_limit * FEE
    started = chain.wallet.send(
        oracle.address, calldata(oracle, "start", 2, times, gas_limit, FEE), value=deposit
    )
    assert started.status == 1
    call_id = oracle.functions.callId().call()
    record = chain.wait_finished(call_id, timeout=120)
    assert record["status"] == "done" and record["executed"] == hex(times)
    first = started.blockNumber + 1  # start() schedules from the next block
    return OracleRun(oracle, call_id, deposit, first, chain.executions(call_id, first, first + 4))


def test_scheduled_oracle_refresh_is_attested_and_verified_by_a_follower(
    ai_producer, oracle_run, follower_of
):
    oracle, runs, first = oracle_run.oracle, oracle_run.runs, oracle_run.first
    assert oracle.functions.refreshes().call() == 3
    assert oracle.functions.failures().call() == 0
    assert oracle.functions.predictionLength().call() == 2
    assert oracle.functions.lastRefreshBlock().call() == first + 4
    assert [e.block for e in runs] == [first, first + 2, first + 4]
    for run in runs:
        assert run.position == 0 and run.receipt.status == 1
        assert_attested(ai_producer.url, run)
    refund = oracle_run.deposit - sum(run.cost for run in runs)
    assert Chain(ai_producer).balance(oracle.address) == refund

    follower = follower_of(ai_producer)
    assert assert_follower_agrees(ai_producer, follower) >= runs[-1].block


def test_follower_rejects_a_scheduled_ai_call_stripped_of_its_attestation(
    ai_producer, oracle_run, start_node
):
    number = oracle_run.first
    block = genuine_block(ai_producer.url, number)
    attested = block.transactions[0]
    assert isinstance(attested, AttestedTransaction)
    assert isinstance(attested.inner, ScheduledTransaction)
    forged = with_transactions(block, [attested.inner, *block.transactions[1:]])
    peer = FakePeer(ai_producer.url)
    try:
        peer.serve(number - 1)
        follower = start_node("follower", "--follow", peer.url)
        wait_until(lambda: head(follower.url) == number - 1, f"the follower to reach {number - 1}")
        peer.serve(number, forged)
        reason = wait_until(
            lambda: rejection(follower, number, forged.header.hash),
            "the follower to reject the block",
        )
        assert f"AI call 0 of transaction 0x{attested.hash.hex()}: no recorded result" in reason
        assert head(follower.url) == number - 1
    finally:
        peer.close()


def test_predicate_that_asks_a_model_is_attested_and_verified_by_a_follower(
    ai_producer, follower_of
):
    chain = Chain(ai_producer)
    probe = chain.deploy("SchedulerProbe")
    predicate = chain.deploy("ModelPredicate", TORCH_ID)
    start = chain.head() + 3
    call_id = chain.schedule(
        probe, calldata(probe, "ping"), start, 1, 2, predicate=predicate.address
    )
    assert chain.wait_finished(call_id, timeout=120)["executed"] == "0x2"
    runs = chain.executions(call_id, start, start + 1)
    assert [e.block for e in runs] == [start, start + 1]
    for run in runs:
        assert logs_of(run.receipt, EXECUTED)  # the model answered: the call ran
        assert_attested(ai_producer.url, run)
    assert probe.functions.pingBlocks().call() == [start, start + 1]

    follower = follower_of(ai_producer)
    assert assert_follower_agrees(ai_producer, follower) >= start + 1


# blocks crafted to omit, add or reorder scheduled transactions


def genuine_block(url: str, number: int):
    raw = rpc(url, "debug_getRawBlock", [hex(number)])["result"]
    return codec.decode_any_block(load_genesis(DEV_GENESIS).config, bytes.fromhex(raw[2:]))


@dataclass
class Attacked:
    """A producer whose block ``number`` starts with the scheduled calls ``due``; the
    call ``later`` is due at the next block."""

    producer: NodeProcess
    number: int
    due: list[int]
    later: int
    probe: str


@pytest.fixture(scope="module")
def attacked(tmp_path_factory) -> Attacked:
    producer = dev_producer(tmp_path_factory.mktemp("attacked") / "producer")
    try:
        chain = Chain(producer)
        probe = chain.deploy("SchedulerProbe")
        start = chain.head() + 3
        ping = calldata(probe, "ping")
        ids = chain.schedule_together(
            [
                chain.schedule_tx(probe, ping, start, 2, 2),
                chain.schedule_tx(probe, ping, start, 2, 2),
                chain.schedule_tx(probe, ping, start + 1, 1, 1),
            ]
        )
        for call_id in ids:
            chain.wait_finished(call_id)
        yield Attacked(producer, start, ids[:2], ids[2], probe.address)
    finally:
        producer.kill()


def dev_producer(datadir: Path) -> NodeProcess:
    return NodeProcess(datadir, ["--dev", "--block-time", "0", "--sidecars", "none"]).start()


def test_follower_rejects_blocks_that_omit_add_or_reorder_scheduled_transactions(
    attacked, start_node
):
    number = attacked.number
    block = genuine_block(attacked.producer.url, number)
    first, second = block.transactions[:2]
    assert [tx.call_id for tx in (first, second)] == attacked.due
    assert len(block.transactions) == 2
    not_due = ScheduledTransaction(
        CHAIN_ID, second.nonce + 1, attacked.later, 0, bytes.fromhex(attacked.probe[2:]),
        GAS, FEE, selector("ping()"),
    )  # fmt: skip
    stale = ScheduledTransaction(
        first.chain_id, first.nonce, first.call_id, first.index + 1, first.to, first.gas,
        first.max_fee_per_gas, first.data,
    )  # fmt: skip
    deploy_tx = genuine_block(attacked.producer.url, 1).transactions[0]  # a user transaction
    must_start = f"block {number}: must start with the scheduled calls due {attacked.due}"
    not_due_here = f"block {number}: transaction 2 is a scheduled call that is not due here"
    variants = {
        "omits the second": ([first], must_start),
        "omits both": ([], must_start),
        "reorders them": ([second, first], must_start),
        "carries a stale index": ([stale, second], must_start),
        "puts a user transaction first": ([deploy_tx, first, second], must_start),
        "repeats one": ([first, second, second], not_due_here),
        "adds one that is not due": ([first, second, not_due], not_due_here),
        "wraps one that made no AI call in an attestation": (
            [
                AttestedTransaction(
                    first, (SpcResult(bytes.fromhex(INFER[2:]), keccak(b""), 1, b"", ()),)
                ),
                second,
            ],
            f"block {number} transaction 0 (0x{first.hash.hex()}): transaction "
            f"0x{first.hash.hex()} carries 1 AI results but made 0 AI calls",
        ),
    }

    peer = FakePeer(attacked.producer.url)
    try:
        peer.serve(number - 1)
        follower = start_node("follower", "--follow", peer.url)
        wait_until(lambda: head(follower.url) == number - 1, f"the follower to reach {number - 1}")
        for name, (transactions, expected) in variants.items():
            forged = with_transactions(block, transactions)
            peer.serve(number, forged)
            reason = wait_until(
                lambda forged=forged: rejection(follower, number, forged.header.hash),
                f"the follower to reject the block that {name}",
            )
            assert expected in reason, f"{name}: {reason}"
            assert head(follower.url) == number - 1, name

        peer.serve(None)  # the genuine chain is still welcome
        assert_follower_agrees(attacked.producer, follower)
    finally:
        peer.close()


def test_import_rejects_a_block_file_whose_scheduled_transactions_are_reordered(
    attacked, tmp_path, start_node
):
    top = head(attacked.producer.url)
    blocks = [genuine_block(attacked.producer.url, n) for n in range(1, top + 1)]
    index = attacked.number - 1
    first, second = blocks[index].transactions[:2]
    tampered = tmp_path / "tampered.rlp"
    blocks[index] = with_transactions(blocks[index], [second, first])
    tampered.write_bytes(b"".join(rlp.encode(block) for block in blocks))

    datadir = tmp_path / "imported"
    result = import_blocks(DEV_GENESIS, tampered, datadir)
    assert result.returncode != 0
    assert (
        f"invalid block: block {attacked.number}: must start with the scheduled calls due "
        f"{attacked.due}" in result.stderr
    ), result.stderr
    assert "Traceback" not in result.stderr

    copy = start_node("imported", dev=False)
    assert head(copy.url) == attacked.number - 1  # the blocks before it stay
