"""Running the calls due at a block, at its top, before any user transaction.

:func:`due_calls` reads the due index of the block (and the calls in it), moves what
does not fit the per-block gas cap to the next block, in call-id order, and returns the
calls whose scheduled transactions the block must start with. The builder applies them; an
importing node derives the same list and requires the block to begin with exactly it.

:func:`run_scheduled` executes one of them: a call whose ``maxFeePerGas`` is below the
block's base fee is skipped, as is one whose predicate (a 100k-gas staticcall to
``shouldExecute(callId, index)``) returns false or reverts, and one an earlier transaction
of the block cancelled; otherwise the scheduler
calls its owner with its data. Either way the schedule advances, the gas used is paid
from the deposit at the base fee, and the receipt carries the scheduler's event. A
callee that reverts fails its own scheduled transaction only; one that cancels its own
schedule ends it there, and gets back what the execution did not use.
"""

from dataclasses import dataclass
from typing import Any

from eth.vm.message import Message
from eth_abi import encode as abi_encode
from eth_utils import function_signature_to_4byte_selector

from chain.gas import floor_gas
from chain.precompiles.native import event_topic
from scheduler import state as calls
from scheduler.contract import refund
from scheduler.transactions import ScheduledReceipt, ScheduledTransaction

EXECUTED = event_topic("CallExecuted(uint256,uint64,bool,uint256)")
SKIPPED = event_topic("CallSkipped(uint256,uint64,uint8)")
COMPLETED = event_topic("CallCompleted(uint256,uint256)")
SKIP_FEE, SKIP_PREDICATE, SKIP_CANCELLED = 1, 2, 3
SHOULD_EXECUTE = function_signature_to_4byte_selector("shouldExecute(uint256,uint64)")
SUCCESS, FAILURE = b"\x01", b""


def due_calls(state: Any, number: int) -> list[calls.ScheduledCall]:
    """The calls block ``number`` runs at its top, in call-id order; defers the overflow."""
    listed = calls.due_calls_at(state, number)
    calls.clear_due(state, number)
    if not listed:  # most blocks: nothing to weigh against the gas cap
        return []
    cap, used = calls.gas_cap(state), 0
    due: list[calls.ScheduledCall] = []
    deferring = False  # once one call overflows, those after it wait too: order is kept
    for call in listed:
        if deferring or used + call.reserved_gas > cap:
            deferring = True
            calls.make_due(state, call, number + 1)
            calls.put_call(state, call)
            continue
        used += call.reserved_gas
        due.append(call)
    return due


def scheduled_transactions(
    state: Any, due: list[calls.ScheduledCall], chain_id: int
) -> list[ScheduledTransaction]:
    """The transactions of the due calls: each uses the scheduler's next nonce."""
    if not due:
        return []
    nonce = state.get_nonce(calls.SCHEDULER)
    return [
        ScheduledTransaction(
            chain_id,
            nonce + i,
            call.id,
            call.executed,
            call.owner,
            call.gas_limit,
            call.max_fee_per_gas,
            call.data,
        )
        for i, call in enumerate(due)
    ]


def run_scheduled(
    vm: Any, tx: ScheduledTransaction, due: calls.ScheduledCall, cumulative_gas: int
) -> ScheduledReceipt:
    """Execute ``tx``, the transaction of ``due`` (as read at the top of the block)."""
    state = vm.state
    base_fee = state.execution_context.base_fee_per_gas
    call = calls.refresh(state, due)
    logs: list[tuple[bytes, list[int], bytes]] = []
    if call.status != calls.ACTIVE or call.executed != tx.index:
        # cancelled by a transaction earlier in this block: nothing runs, nothing advances
        state.increment_nonce(calls.SCHEDULER)
        logs.append(_log(SKIPPED, tx.call_id, ["uint64", "uint8"], [tx.index, SKIP_CANCELLED]))
        return tx.make_receipt(SUCCESS, cumulative_gas, logs)
    gas_used, status = 0, SUCCESS
    if base_fee > call.max_fee_per_gas:
        skip = SKIP_FEE
    else:
        skip = 0
        if any(call.predicate):
            gas_used, allowed = _predicate(state, call, tx, base_fee)
            state.delta_balance(calls.SCHEDULER, -gas_used * base_fee)
            call.deposit -= gas_used * base_fee
            skip = 0 if allowed else SKIP_PREDICATE
    if skip:
        state.increment_nonce(calls.SCHEDULER)  # every scheduled transaction uses one
        logs.append(_log(SKIPPED, call.id, ["uint64", "uint8"], [call.executed, skip]))
    else:
        # The callee's gas is set aside first: a callee that cancels its own schedule is
        # refunded only what this execution cannot take, and what it did not take after.
        # What the predicate used comes out of gasLimit.
        callee_tx = tx.with_gas(tx.gas - gas_used)
        reserved = callee_tx.gas * base_fee
        call.deposit -= reserved
        calls.put_call(state, call)
        computation = state.apply_transaction(callee_tx)
        own = vm.make_receipt(_NoGasYet(), callee_tx, computation, state)
        call = calls.refresh(state, call)  # as the callee left it
        call.deposit += reserved - own.gas_used * base_fee
        gas_used += own.gas_used
        status = own.state_root
        logs.extend(computation.get_log_entries())
        logs.append(
            _log(
                EXECUTED,
                call.id,
                ["uint64", "bool", "uint256"],
                [call.executed, status == SUCCESS, gas_used],
            )
        )
    call.executed += 1
    if call.status == calls.CANCELLED:
        refund(state, call)  # its callee cancelled it, and got the rest of the deposit then
    elif call.executed >= call.num_calls:
        call.status = calls.DONE
        calls.count_active(state, -1)
        logs.append(_log(COMPLETED, call.id, ["uint256"], [refund(state, call)]))
    else:
        calls.make_due(state, call, state.block_number + call.frequency)
    calls.put_call(state, call)
    return tx.make_receipt(status, cumulative_gas + gas_used, logs)


@dataclass
class _NoGasYet:
    """The header py-evm reads a receipt's cumulative gas from, at zero: we add it up."""

    gas_used: int = 0


def _predicate(
    state: Any, call: calls.ScheduledCall, tx: ScheduledTransaction, base_fee: int
) -> tuple[int, bool]:
    """Gas used by ``shouldExecute(callId, index)`` and whether it returned true. It may
    use up to 100k gas of ``gasLimit``, leaving the call at least its intrinsic gas and
    its calldata floor (so that what the call is charged stays within ``gasLimit``)."""
    data = SHOULD_EXECUTE + abi_encode(["uint256", "uint64"], [call.id, call.executed])
    least = max(tx.intrinsic_gas, floor_gas(type(state), tx.data))
    allowance = max(0, min(calls.PREDICATE_GAS, tx.gas - least))
    message = Message(
        gas=allowance,
        to=call.predicate,
        sender=calls.SCHEDULER,
        value=0,
        data=data,
        code=state.get_code(call.predicate),
        is_static=True,
    )
    context = state.get_transaction_context_class()(gas_price=base_fee, origin=calls.SCHEDULER)
    snapshot = state.snapshot()
    computation = state.computation_class.apply_message(state, message, context)
    state.revert(snapshot)
    output = computation.output
    allowed = (
        computation.is_success and len(output) >= 32 and int.from_bytes(output[:32], "big") == 1
    )
    return allowance - computation.get_gas_remaining(), allowed


def _log(topic: int, call_id: int, types: list[str], values: list) -> tuple:
    return (calls.SCHEDULER, [topic, call_id], abi_encode(types, values))
