"""The node's data dir: one LMDB environment, one write transaction per block.

Everything a block changes (its state trie nodes and code, header, body, receipts, the
canonical number index, the transaction index and the head pointer) is written in a
single LMDB write transaction, so after a kill at any instant the data dir holds the last
complete block and nothing of the next one (as reth commits a block to MDBX).

py-evm never writes here directly: it executes against a :class:`StateOverlay`, an
in-memory write set over the store, and the overlay's writes are committed together with
the block that produced them.

Tables (LMDB named databases):

* ``state``      trie node hash / code hash -> node / code (py-evm's key-value schema)
* ``headers``    block hash -> RLP header
* ``blocks``     block hash -> RLP block (header, transactions, uncles, withdrawals)
* ``receipts``   block hash -> RLP ``[[receipt, ...], [sender, ...]]``
* ``canonical``  block number (8 bytes, big endian) -> block hash
* ``txindex``    transaction hash -> block hash ‖ index (4 bytes)
* ``meta``       ``head`` -> hash, ``genesis`` -> JSON of the genesis file
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import lmdb
from eth.db.atomic import AtomicDB
from eth.db.backends.base import BaseDB

from chain.errors import SibylError

TABLES = ("state", "headers", "blocks", "receipts", "canonical", "txindex", "meta")

# Virtual address space reserved for the memory map; LMDB only uses what is written.
MAP_SIZE = 1 << 40


class StoreError(SibylError):
    """The data dir is missing, not initialised, or from another chain."""


def number_key(number: int) -> bytes:
    return number.to_bytes(8, "big")


@dataclass
class BlockWrite:
    """Everything one block adds to the store, committed in one transaction."""

    hash: bytes
    number: int
    header: bytes
    block: bytes
    receipts: bytes
    state: dict[bytes, bytes]
    tx_hashes: list[bytes]


@dataclass
class CanonicalChange:
    """A move of the canonical head: blocks that leave the chain, blocks that join it."""

    removed: list[tuple[int, list[bytes]]] = field(default_factory=list)
    added: list[BlockWrite] = field(default_factory=list)
    head: bytes = b""


class Store:
    """Bytes-level access to the LMDB data dir; decoding lives in :mod:`chain.reader`."""

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        path.mkdir(parents=True, exist_ok=True)
        try:
            self.env = lmdb.open(
                str(path / "chain.lmdb"),
                max_dbs=len(TABLES),
                map_size=MAP_SIZE,
                readonly=readonly,
                max_readers=256,
            )
        except lmdb.Error as exc:
            raise StoreError(f"cannot open data dir {path}: {exc}") from None
        if readonly:  # handles opened in a read transaction die with it: let lmdb commit
            self.tables = {name: self.env.open_db(name.encode(), create=False) for name in TABLES}
        else:
            with self.env.begin(write=True) as txn:
                self.tables = {name: self.env.open_db(name.encode(), txn=txn) for name in TABLES}

    def close(self) -> None:
        self.env.close()

    # reads: each is its own read transaction, which is cheap in LMDB and lets the
    # builder thread and the RPC thread read side by side.

    def get(self, table: str, key: bytes) -> bytes | None:
        with self.env.begin(db=self.tables[table], buffers=False) as txn:
            return txn.get(key)

    def state_get(self, key: bytes) -> bytes | None:
        with self.env.begin(db=self.tables["state"], buffers=False) as txn:
            return txn.get(key)

    def head_hash(self) -> bytes | None:
        return self.get("meta", b"head")

    def canonical_hash(self, number: int) -> bytes | None:
        return self.get("canonical", number_key(number))

    def tx_location(self, tx_hash: bytes) -> tuple[bytes, int] | None:
        value = self.get("txindex", tx_hash)
        if value is None:
            return None
        return value[:32], int.from_bytes(value[32:], "big")

    # writes

    def initialise(self, genesis: BlockWrite, genesis_json: bytes) -> None:
        """Write the genesis block and its state; refuses a data dir already in use."""
        with self.env.begin(write=True) as txn:
            existing = txn.get(b"genesis", db=self.tables["meta"])
            if existing is not None:
                raise StoreError("data dir is already initialised")
            txn.put(b"genesis", genesis_json, db=self.tables["meta"])
            self._put_block(txn, genesis)
            txn.put(b"head", genesis.hash, db=self.tables["meta"])

    def commit(self, change: CanonicalChange) -> None:
        """Apply one canonical move (usually: one block on top of the head) atomically."""
        with self.env.begin(write=True) as txn:
            canonical, txindex = self.tables["canonical"], self.tables["txindex"]
            for number, tx_hashes in change.removed:
                txn.delete(number_key(number), db=canonical)
                for tx_hash in tx_hashes:
                    txn.delete(tx_hash, db=txindex)
            for block in change.added:
                self._put_block(txn, block)
            txn.put(b"head", change.head, db=self.tables["meta"])

    def _put_block(self, txn: lmdb.Transaction, block: BlockWrite) -> None:
        t = self.tables
        state = t["state"]
        for key, value in block.state.items():
            txn.put(key, value, db=state)
        txn.put(block.hash, block.header, db=t["headers"])
        txn.put(block.hash, block.block, db=t["blocks"])
        txn.put(block.hash, block.receipts, db=t["receipts"])
        txn.put(number_key(block.number), block.hash, db=t["canonical"])
        txindex = t["txindex"]
        for index, tx_hash in enumerate(block.tx_hashes):
            txn.put(tx_hash, block.hash + index.to_bytes(4, "big"), db=txindex)


class OverlayDB(BaseDB):
    """An in-memory write set over a read function: py-evm's view of the state.

    Reads fall through to ``base`` (the store, or the overlay of a parent block that is
    not yet committed); writes stay here until the block is committed or dropped.
    """

    def __init__(self, base: Callable[[bytes], bytes | None]) -> None:
        self.base = base
        self.writes: dict[bytes, bytes] = {}

    def __getitem__(self, key: bytes) -> bytes:
        value = self.writes.get(key)
        if value is None:
            value = self.base(key)
            if value is None:
                raise KeyError(key)
        return value

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self.writes[key] = value

    def __delitem__(self, key: bytes) -> None:
        # State is content-addressed and shared between blocks, so nothing is ever
        # deleted from the store; forgetting a pending write is all a delete can mean.
        self.writes.pop(key, None)

    def _exists(self, key: bytes) -> bool:
        return key in self.writes or self.base(key) is not None


def state_view(base: Callable[[bytes], bytes | None]) -> tuple[AtomicDB, OverlayDB]:
    """An atomic py-evm database over ``base`` and the overlay that collects its writes."""
    overlay = OverlayDB(base)
    return AtomicDB(overlay), overlay
