"""The scheduler's records in state: scheduled calls and the index of calls due by block.

Everything lives in the storage of the SCHEDULER account (0x…0a01), so the state root
commits to every schedule and every node derives the same due set. Keys follow
Solidity's conventions (see :mod:`chain.slots`):

  slot 0            the last call id handed out (ids start at 1)
  slot 1            per-block gas cap for scheduled calls (from the genesis)
  slot 5            number of active calls (a dev producer keeps blocks coming while
                    there are any)
  keccak(id ‖ 2)    what a call is, fixed when scheduled: RLP ``[owner, startBlock,
                    frequency, numCalls, gasLimit, maxFeePerGas, predicate, data]``
                    stored as a byte string
  keccak(id ‖ 3)    where it is, packed in one word as Solidity packs a struct (low bits
                    first): status (8 bits), nextBlock (48), executed (48), nextDue (48),
                    deposit left in wei (96)
  keccak(block ‖ 4) the first call due at ``block``; each call's ``nextDue`` names the
                    next one due at the same block, 0 ends the list

A block reads its list head and, per due call, its two records; it writes one word per
call, its own list head (cleared, so a block that ran leaves nothing behind) and the
heads of the blocks its calls are due at next. Its work follows the calls due in it,
never the calls registered, and the words it writes are as few as a call's progress
allows, because each one rewrites a path through the scheduler's storage trie, which is
deeper the more calls are registered.
"""

from dataclasses import dataclass, replace

import rlp

from chain.slots import Storage, clear_slot, mapping_slot, read_blob, write_blob

SCHEDULER = bytes.fromhex("0000000000000000000000000000000000000a01")
LAST_ID_SLOT = 0
GAS_CAP_SLOT = 1
CONFIG_MAP, PROGRESS_MAP, DUE_MAP = 2, 3, 4
ACTIVE_COUNT_SLOT = 5

ACTIVE, DONE, CANCELLED = 1, 2, 3
STATUS_NAMES = {ACTIVE: "active", DONE: "done", CANCELLED: "cancelled"}
PREDICATE_GAS = 100_000
# the packed progress word, low bits first; its widths bound what a schedule may ask for
_PROGRESS = (("status", 8), ("next_block", 48), ("executed", 48), ("next_due", 48), ("deposit", 96))
MAX_BLOCK = 2**48 - 1
MAX_DEPOSIT = 2**96 - 1

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
    next_due: int = 0  # the call after this one in its due block's list

    @property
    def reserved_gas(self) -> int:
        """The block gas one execution may take: ``gasLimit`` covers the predicate's
        staticcall and the call together, so the deposit covers both."""
        return self.gas_limit


def _key(call_id: int) -> bytes:
    return call_id.to_bytes(32, "big")


def _progress_slot(call_id: int) -> int:
    return mapping_slot(_key(call_id), PROGRESS_MAP)


def _unpack(word: int) -> dict[str, int]:
    fields = {}
    for name, bits in _PROGRESS:
        fields[name] = word & (2**bits - 1)
        word >>= bits
    return fields


def _pack(call: ScheduledCall) -> int:
    word = 0
    for name, bits in reversed(_PROGRESS):
        word = word << bits | getattr(call, name)
    return word


def refresh(state: Storage, call: ScheduledCall) -> ScheduledCall:
    """``call`` with its progress and deposit as they are now (what it is never changes,
    so a block reads that once per due call)."""
    return replace(call, **_unpack(state.get_storage(SCHEDULER, _progress_slot(call.id))))


def get_call(state: Storage, call_id: int) -> ScheduledCall | None:
    progress = state.get_storage(SCHEDULER, _progress_slot(call_id))
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
        gas_limit=gas_limit,
        max_fee_per_gas=max_fee,
        predicate=predicate,
        data=data,
        **_unpack(progress),
    )


def put_call(state: Storage, call: ScheduledCall, *, new: bool = False) -> None:
    """Write a call's progress; with ``new``, what it is as well."""
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
    state.set_storage(SCHEDULER, _progress_slot(call.id), _pack(call))


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


def due_calls_at(state: Storage, block: int) -> list[ScheduledCall]:
    """The active calls in ``block``'s due list, in call-id order. A call cancelled while
    due stays in the list (which is only ever walked, never spliced) but is left out."""
    due = []
    call_id = state.get_storage(SCHEDULER, _due_slot(block))
    while call_id:
        call = get_call(state, call_id)
        if call.status == ACTIVE:
            due.append(call)
        call_id = call.next_due
    return sorted(due, key=lambda call: call.id)


def make_due(state: Storage, call: ScheduledCall, block: int) -> None:
    """Put ``call`` at the head of ``block``'s due list; the caller then writes the call,
    whose ``nextDue`` now links the rest of the list."""
    slot = _due_slot(block)
    call.next_block, call.next_due = block, state.get_storage(SCHEDULER, slot)
    state.set_storage(SCHEDULER, slot, call.id)


def clear_due(state: Storage, block: int) -> None:
    """Empty a block's due list once it ran: its head slot goes, and the links in the
    calls are rewritten when each is made due again."""
    clear_slot(state, SCHEDULER, _due_slot(block))
