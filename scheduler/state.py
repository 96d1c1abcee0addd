"""The scheduler's records in state: scheduled calls and the index of calls due by block.

Everything lives in the storage of the SCHEDULER account (0x…0a01), laid out as Solidity
would (see :mod:`chain.slots`), so the state root commits to every schedule and every
node derives the same due set:

  slot 0               the last call id handed out (ids start at 1)
  slot 1               per-block gas cap for scheduled calls (from the genesis)
  slot 5               number of active calls (a dev producer keeps blocks coming while
                       there are any)
  keccak(id ‖ 2) + k   the call record, one field per slot (``FIELDS`` order)
  keccak(id ‖ 3)       the call data, as a byte string
  keccak(block ‖ 4)    the ids due at ``block``: a dynamic array

Finding the calls due at a block reads one array: the work of a block is proportional to
the calls due in it, never to the calls registered.
"""

from dataclasses import dataclass, fields

from chain.slots import Storage, array_slot, mapping_slot, read_blob, write_blob

SCHEDULER = bytes.fromhex("0000000000000000000000000000000000000a01")
LAST_ID_SLOT = 0
GAS_CAP_SLOT = 1
RECORD_MAP, DATA_MAP, DUE_MAP = 2, 3, 4
ACTIVE_COUNT_SLOT = 5

ACTIVE, DONE, CANCELLED = 1, 2, 3
STATUS_NAMES = {ACTIVE: "active", DONE: "done", CANCELLED: "cancelled"}
PREDICATE_GAS = 100_000


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
        """The block gas one execution may take: the call, and the predicate's staticcall."""
        return self.gas_limit + (PREDICATE_GAS if any(self.predicate) else 0)


_ADDRESS_FIELDS = {"owner", "predicate"}
FIELDS = [f.name for f in fields(ScheduledCall) if f.name not in ("id", "data")]


def _key(call_id: int) -> bytes:
    return call_id.to_bytes(32, "big")


def get_call(state: Storage, call_id: int) -> ScheduledCall | None:
    base = mapping_slot(_key(call_id), RECORD_MAP)
    values = {name: state.get_storage(SCHEDULER, base + k) for k, name in enumerate(FIELDS)}
    if values["status"] == 0:
        return None
    for name in _ADDRESS_FIELDS:
        values[name] = values[name].to_bytes(20, "big")
    data = read_blob(state, SCHEDULER, mapping_slot(_key(call_id), DATA_MAP))
    return ScheduledCall(id=call_id, data=data, **values)


def put_call(state: Storage, call: ScheduledCall, *, with_data: bool = False) -> None:
    base = mapping_slot(_key(call.id), RECORD_MAP)
    for k, name in enumerate(FIELDS):
        value = getattr(call, name)
        state.set_storage(
            SCHEDULER, base + k, int.from_bytes(value, "big") if name in _ADDRESS_FIELDS else value
        )
    if with_data:
        write_blob(state, SCHEDULER, mapping_slot(_key(call.id), DATA_MAP), call.data)


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
    slot = _due_slot(block)
    for i in range(state.get_storage(SCHEDULER, slot)):
        state.set_storage(SCHEDULER, array_slot(slot, i), 0)
    state.set_storage(SCHEDULER, slot, 0)
