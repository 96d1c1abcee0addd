"""The scheduler's records in state: scheduled calls and the index of calls due by block.

Everything lives in the storage of the SCHEDULER account (0x…0a01), so the state root
commits to every schedule and every node derives the same due set. Keys follow
Solidity's conventions (see :mod:`chain.slots`):

  slot 0                    the last call id handed out (ids start at 1)
  slot 1                    per-block gas cap for scheduled calls (from the genesis)
  slot 5                    number of active calls (a dev producer keeps blocks coming
                            while there are any)
  keccak(id ‖ 2)            what a call is, fixed when scheduled: RLP ``[owner,
                            startBlock, frequency, numCalls, gasLimit, maxFeePerGas,
                            predicate, data]`` stored as a byte string
  keccak(id ‖ 3)            its progress: ``executed << 72 | nextBlock << 8 | status``
  keccak(id ‖ 3) + 1        its remaining deposit, in wei
  keccak(block ‖ 4)         the ids due at ``block``: a dynamic array

A block reads one due array and, per due call, a handful of slots; it writes two slots
per call. The work of a block follows the calls due in it, not the calls registered.
"""

from dataclasses import dataclass, replace

import rlp

from chain.slots import Storage, array_slot, mapping_slot, read_blob, write_blob

SCHEDULER = bytes.fromhex("0000000000000000000000000000000000000a01")
LAST_ID_SLOT = 0
GAS_CAP_SLOT = 1
CONFIG_MAP, PROGRESS_MAP, DUE_MAP = 2, 3, 4
ACTIVE_COUNT_SLOT = 5

ACTIVE, DONE, CANCELLED = 1, 2, 3
STATUS_NAMES = {ACTIVE: "active", DONE: "done", CANCELLED: "cancelled"}
PREDICATE_GAS = 100_000

_CONFIG = rlp.sedes.List(
    [rlp.sedes.Binary.fixed_length(20)]
    + [rlp.sedes.big_endian_int] * 5
    + [rlp.sedes.Binary.fixed_length(20), rlp.sedes.binary]
)


@dataclass
class ScheduledCall:
    id: int
    owner: bytes
    start_block: int
    frequency: int
    num_calls: int
    executed: int
    gas_limit: int
    max_fee_per_gas: int
    predicate: bytes
    deposit: int
    next_block: int
    status: int
    data: bytes = b""

    @property
    def reserved_gas(self) -> int:
        """The block gas one execution may take: ``gasLimit`` covers the predicate's
        staticcall and the call together, so the deposit covers both."""
        return self.gas_limit


def _key(call_id: int) -> bytes:
    return call_id.to_bytes(32, "big")


def refresh(state: Storage, call: ScheduledCall) -> ScheduledCall:
    """``call`` with its progress and deposit as they are now (what it is never changes,
    so a block reads that once per due call)."""
    progress_slot = mapping_slot(_key(call.id), PROGRESS_MAP)
    progress = state.get_storage(SCHEDULER, progress_slot)
    return replace(
        call,
        executed=progress >> 72,
        next_block=(progress >> 8) & (2**64 - 1),
        status=progress & 0xFF,
        deposit=state.get_storage(SCHEDULER, progress_slot + 1),
    )


def get_call(state: Storage, call_id: int) -> ScheduledCall | None:
    progress_slot = mapping_slot(_key(call_id), PROGRESS_MAP)
    progress = state.get_storage(SCHEDULER, progress_slot)
    if progress == 0:
        return None
    blob = read_blob(state, SCHEDULER, mapping_slot(_key(call_id), CONFIG_MAP))
    owner, start, frequency, num_calls, gas_limit, max_fee, predicate, data = rlp.decode(
        blob, sedes=_CONFIG
    )
    return ScheduledCall(
        id=call_id,
        owner=owner,
        start_block=start,
        frequency=frequency,
        num_calls=num_calls,
        executed=progress >> 72,
        gas_limit=gas_limit,
        max_fee_per_gas=max_fee,
        predicate=predicate,
        deposit=state.get_storage(SCHEDULER, progress_slot + 1),
        next_block=(progress >> 8) & (2**64 - 1),
        status=progress & 0xFF,
        data=data,
    )


def put_call(state: Storage, call: ScheduledCall, *, new: bool = False) -> None:
    """Write a call's progress and deposit; with ``new``, what it is as well."""
    if new:
        config = [
            call.owner, call.start_block, call.frequency, call.num_calls, call.gas_limit,
            call.max_fee_per_gas, call.predicate, call.data,
        ]  # fmt: skip
        write_blob(
            state,
            SCHEDULER,
            mapping_slot(_key(call.id), CONFIG_MAP),
            rlp.encode(config, sedes=_CONFIG),
        )
    progress_slot = mapping_slot(_key(call.id), PROGRESS_MAP)
    progress = call.executed << 72 | call.next_block << 8 | call.status
    state.set_storage(SCHEDULER, progress_slot, progress)
    state.set_storage(SCHEDULER, progress_slot + 1, call.deposit)


def next_id(state: Storage) -> int:
    call_id = state.get_storage(SCHEDULER, LAST_ID_SLOT) + 1
    state.set_storage(SCHEDULER, LAST_ID_SLOT, call_id)
    return call_id


def active_count(state: Storage) -> int:
    return state.get_storage(SCHEDULER, ACTIVE_COUNT_SLOT)


def count_active(state: Storage, delta: int) -> None:
    state.set_storage(SCHEDULER, ACTIVE_COUNT_SLOT, active_count(state) + delta)


def gas_cap(state: Storage) -> int:
    return state.get_storage(SCHEDULER, GAS_CAP_SLOT)


def _due_slot(block: int) -> int:
    return mapping_slot(block.to_bytes(32, "big"), DUE_MAP)


def due_ids(state: Storage, block: int) -> list[int]:
    slot = _due_slot(block)
    return [
        state.get_storage(SCHEDULER, array_slot(slot, i))
        for i in range(state.get_storage(SCHEDULER, slot))
    ]


def add_due(state: Storage, block: int, call_id: int) -> None:
    slot = _due_slot(block)
    count = state.get_storage(SCHEDULER, slot)
    state.set_storage(SCHEDULER, array_slot(slot, count), call_id)
    state.set_storage(SCHEDULER, slot, count + 1)


def clear_due(state: Storage, block: int) -> None:
    """Empty a block's due array once it ran. Only its length is reset: the ids behind it
    are never read again (one write a block instead of one per call)."""
    state.set_storage(SCHEDULER, _due_slot(block), 0)
