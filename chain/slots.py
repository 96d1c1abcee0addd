"""Solidity's storage layout, for native system contracts whose records live in state.

The registries and the scheduler keep their records in their own accounts' storage,
laid out as Solidity would lay out mappings, dynamic arrays and ``bytes``, so a reader
(or an ``eth_getStorageAt`` caller) finds a record without this code, and every node
reads the same values while verifying a block.
"""

from typing import Protocol

from eth_hash.auto import keccak


class Storage(Protocol):
    """What a native contract needs of a state: py-evm's state and AccountDB both fit."""

    def get_storage(self, address: bytes, slot: int) -> int: ...

    def set_storage(self, address: bytes, slot: int, value: int) -> None: ...


def mapping_slot(key: bytes, slot: int) -> int:
    """Solidity's slot of ``key`` in the ``mapping`` at ``slot``."""
    return int.from_bytes(keccak(key.rjust(32, b"\x00") + slot.to_bytes(32, "big")), "big")


def array_slot(slot: int, index: int) -> int:
    """Solidity's slot of element ``index`` of the dynamic array at ``slot``."""
    return (int.from_bytes(keccak(slot.to_bytes(32, "big")), "big") + index) % 2**256


def read_blob(state: Storage, address: bytes, slot: int) -> bytes:
    """A byte string stored as its length at ``slot`` and 32-byte chunks after it."""
    length = state.get_storage(address, slot)
    words = [state.get_storage(address, slot + 1 + i) for i in range(-(-length // 32))]
    return b"".join(w.to_bytes(32, "big") for w in words)[:length]


def write_blob(state: Storage, address: bytes, slot: int, blob: bytes) -> None:
    old_words = -(-state.get_storage(address, slot) // 32)
    state.set_storage(address, slot, len(blob))
    padded = blob.ljust(-(-len(blob) // 32) * 32, b"\x00")
    words = [padded[i : i + 32] for i in range(0, len(padded), 32)]
    for i in range(max(len(words), old_words)):
        value = int.from_bytes(words[i], "big") if i < len(words) else 0
        state.set_storage(address, slot + 1 + i, value)


def clear_slot(state: Storage, address: bytes, slot: int) -> None:
    """Zero ``slot`` unless it is zero already: writing zero to an empty slot changes no
    state, but it still makes the account's storage root and the account be computed and
    written again (the scheduler's and JOBS' per-block lists are empty in most blocks)."""
    if state.get_storage(address, slot):
        state.set_storage(address, slot, 0)


class DictStorage:
    """Storage in plain dicts: how a genesis writes system contracts' initial records."""

    def __init__(self) -> None:
        self.slots: dict[bytes, dict[int, int]] = {}

    def get_storage(self, address: bytes, slot: int) -> int:
        return self.slots.get(address, {}).get(slot, 0)

    def set_storage(self, address: bytes, slot: int, value: int) -> None:
        account = self.slots.setdefault(address, {})
        if value:
            account[slot] = value
        else:
            account.pop(slot, None)
