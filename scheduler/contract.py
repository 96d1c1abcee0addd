"""SCHEDULER (0x…0a01): contracts schedule recurring, optionally conditional calls to
themselves, prepaid, and the chain runs them at the top of the blocks where they are due.

``schedule(data, startBlock, frequency, numCalls, gasLimit, maxFeePerGas, predicate)``
takes ``msg.value ≥ numCalls × gasLimit × maxFeePerGas`` as the deposit and returns the
call id; the callee is ``msg.sender``, called with ``data`` at blocks ``startBlock``,
``startBlock + frequency``, … ``numCalls`` times. ``cancel(callId)`` (owner only) ends a
schedule and refunds what its executions did not use; a schedule that runs out refunds
the rest the same way. ``getCall(callId)`` reads a record. Interface:
``contracts/interfaces/IScheduler.sol``.
"""

from eth.abc import ComputationAPI
from eth_abi import encode as abi_encode

from chain.gas import floor_gas, intrinsic_gas
from chain.precompiles.native import (
    READ_GAS,
    WRITE_GAS,
    Function,
    NativeContract,
    NativeRevert,
    event_topic,
)
from scheduler import state as calls

SCHEDULED = event_topic("CallScheduled(uint256,address,uint64,uint64,uint64)")
CANCELLED = event_topic("CallCancelled(uint256,uint256)")
MAX_DATA = 16 * 1024
CALL_RECORD = (
    "address", "bytes", "uint64", "uint64", "uint64", "uint64", "uint64", "uint256",
    "address", "uint256", "uint64", "uint8",
)  # fmt: skip


def refund(state: object, call: calls.ScheduledCall) -> int:
    """Pay the unused deposit back to the owner; returns the amount."""
    amount = call.deposit
    if amount:
        state.delta_balance(calls.SCHEDULER, -amount)
        state.delta_balance(call.owner, amount)
        call.deposit = 0
    return amount


class Scheduler(NativeContract):
    address = calls.SCHEDULER
    name = "Scheduler"

    def functions(self) -> list[Function]:
        return [
            Function(
                "schedule(bytes,uint64,uint64,uint64,uint64,uint256,address)",
                ("uint256",),
                self.schedule,
                writes=True,
                gas=16 * WRITE_GAS,
            ),
            Function("cancel(uint256)", (), self.cancel, writes=True, gas=4 * WRITE_GAS),
            Function(
                "getCall(uint256)", CALL_RECORD, self.get_call, writes=False, gas=14 * READ_GAS
            ),
            Function("gasCapPerBlock()", ("uint256",), self.gas_cap, writes=False, gas=READ_GAS),
        ]

    def schedule(
        self, computation: ComputationAPI, data: bytes, start_block: int, frequency: int,
        num_calls: int, gas_limit: int, max_fee: int, predicate: str,
    ) -> int:  # fmt: skip
        state = computation.state
        number = state.block_number
        if len(data) > MAX_DATA:
            raise NativeRevert(f"data longer than {MAX_DATA} bytes")
        if start_block <= number:
            raise NativeRevert(f"startBlock must be after the current block {number}")
        if frequency == 0 or num_calls == 0:
            raise NativeRevert("frequency and numCalls must be at least 1")
        if start_block + frequency * (num_calls - 1) > calls.MAX_BLOCK:
            raise NativeRevert("the last call would be beyond block 2**48")
        if gas_limit < intrinsic_gas(data):
            raise NativeRevert(f"gasLimit below the call's intrinsic gas {intrinsic_gas(data)}")
        floor = floor_gas(type(state), data)
        if gas_limit < floor:  # what the call is charged at least, however little it runs
            raise NativeRevert(f"gasLimit below the call's calldata floor gas {floor}")
        call = calls.ScheduledCall(
            id=calls.next_id(state),
            owner=computation.msg.sender,
            start_block=start_block,
            frequency=frequency,
            num_calls=num_calls,
            executed=0,
            gas_limit=gas_limit,
            max_fee_per_gas=max_fee,
            predicate=bytes.fromhex(predicate[2:]),
            deposit=computation.msg.value,
            next_block=start_block,
            status=calls.ACTIVE,
            data=data,
        )
        cap = calls.gas_cap(state)
        if call.reserved_gas > cap:
            raise NativeRevert(f"gasLimit does not fit the per-block cap of {cap} gas")
        required = num_calls * gas_limit * max_fee
        if computation.msg.value < required:
            raise NativeRevert(
                f"deposit {computation.msg.value} is below numCalls × gasLimit × maxFeePerGas "
                f"= {required}"
            )
        if computation.msg.value > calls.MAX_DEPOSIT:
            raise NativeRevert("deposit above 2**96 - 1 wei")
        calls.make_due(state, call, start_block)
        calls.put_call(state, call, new=True)
        calls.count_active(state, +1)
        computation.consume_gas(WRITE_GAS * (len(data) // 32), reason="scheduled call data")
        computation.add_log_entry(
            calls.SCHEDULER,
            [SCHEDULED, call.id, int.from_bytes(call.owner, "big")],
            abi_encode(["uint64", "uint64", "uint64"], [start_block, frequency, num_calls]),
        )
        return call.id

    def cancel(self, computation: ComputationAPI, call_id: int) -> None:
        state = computation.state
        call = calls.get_call(state, call_id)
        if call is None:
            raise NativeRevert(f"no scheduled call {call_id}")
        if call.owner != computation.msg.sender:
            raise NativeRevert("only the call's owner may cancel it")
        if call.status != calls.ACTIVE:
            raise NativeRevert(f"call {call_id} is already {calls.STATUS_NAMES[call.status]}")
        call.status = calls.CANCELLED
        calls.count_active(state, -1)
        amount = refund(state, call)
        calls.put_call(state, call)
        computation.add_log_entry(
            calls.SCHEDULER, [CANCELLED, call_id], abi_encode(["uint256"], [amount])
        )

    def get_call(self, computation: ComputationAPI, call_id: int) -> tuple:
        call = calls.get_call(computation.state, call_id)
        if call is None:
            raise NativeRevert(f"no scheduled call {call_id}")
        return (
            "0x" + call.owner.hex(), call.data, call.start_block, call.frequency,
            call.num_calls, call.executed, call.gas_limit, call.max_fee_per_gas,
            "0x" + call.predicate.hex(), call.deposit, call.next_block, call.status,
        )  # fmt: skip

    def gas_cap(self, computation: ComputationAPI) -> int:
        return calls.gas_cap(computation.state)
