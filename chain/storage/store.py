"""The node's data dir: two LMDB environments, one synced write transaction per block.

``chain.lmdb`` holds the blocks and everything that points at them; ``state.lmdb`` holds
the state trie nodes and code. A block's commit writes its header, body, receipts,
indexes, head pointer and, as one journal record, the state it adds, all in a single
synced transaction of ``chain.lmdb``: after a kill or a power loss at any instant the
data dir holds the last complete block and nothing of the next one (as reth commits a
block to MDBX).

Why a journal: the state a block adds is a few dozen trie nodes keyed by their hashes,
which land on as many scattered pages of a large node table, and fsyncing those pages
costs more the larger the state grows (4.6 ms for 75 nodes among 800k, against 0.6 ms
among a few thousand). One journal record is a few sequential pages whatever the state
size. A merger thread moves journaled state into ``state.lmdb`` in batches of
``MERGE_EVERY`` blocks (one fsync for the batch, off the block's path, as geth and reth
persist state behind the head), then drops those records. Until then reads find the
state in memory. Merging is idempotent (state is content-addressed), so records a crash
left behind are simply merged again when the data dir is opened.

py-evm never writes here directly: it executes against a :class:`StateOverlay`, an
in-memory write set over the store, and the overlay's writes are committed together with
the block that produced them.

Tables (LMDB named databases of ``chain.lmdb``):

* ``headers``    block hash -> RLP header
* ``blocks``     block hash -> RLP block (header, transactions, uncles, withdrawals)
* ``receipts``   block hash -> RLP ``[[receipt, ...], [sender, ...]]``
* ``canonical``  block number (8 bytes, big endian) -> block hash
* ``txindex``    transaction hash -> block hash ‖ index (4 bytes)
* ``meta``       ``head`` -> hash, ``genesis`` -> JSON of the genesis file
* ``journal``    commit sequence (8 bytes, big endian) -> RLP ``[[key, value], ...]``,
                 state not yet merged

``state.lmdb`` has one table: trie node hash / code hash -> node / code (py-evm's
key-value schema).

One process at a time owns a data dir: it holds an exclusive lock on ``LOCK`` (which
names its pid) from open to close, as geth and reth lock theirs. Two writers would each
extend the chain from their own view of the head and number journal records alike, so a
second ``sibyl run`` or an ``import`` beside a running node is refused; an ``export``
opens the data dir read-only instead, and takes no lock. The kernel drops the lock when
its holder dies, so a crashed node never leaves a data dir locked.
"""

import fcntl
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import lmdb
import rlp
from eth.db.atomic import AtomicDB
from eth.db.backends.base import BaseDB
from lru import LRU
from rlp.codec import encode_raw

from chain.errors import SibylError

TABLES = ("headers", "blocks", "receipts", "canonical", "txindex", "meta", "journal")
PREIMAGE = b"preimage:"  # meta keys: PREIMAGE + keccak(key) -> key (BlockWrite.preimages)

# Virtual address space reserved for each memory map; LMDB only uses what is written.
MAP_SIZE = 1 << 40
# Recently read state, by hash: the upper levels of every trie are on every path read.
READ_CACHE = 1 << 15
# Blocks of journaled state merged in one batch: enough to share the node table's pages
# and fsync between many blocks, few enough that the state held in memory stays small.
MERGE_EVERY = 64
# Records a commit waits to see merged before it adds another: a merger that cannot keep
# up (or fails) stops the chain here rather than filling memory.
MERGE_BACKLOG = 4 * MERGE_EVERY

log = logging.getLogger("sibyl.storage")


class StoreError(SibylError):
    """The data dir is missing, not initialised, or from another chain."""


class DamagedDataDir(StoreError):
    """A data dir whose files contradict themselves; the message says what and what to do."""


def damaged(path: object, problem: str) -> DamagedDataDir:
    return DamagedDataDir(
        f"data dir {path} is damaged: {problem}; restore it from a backup, or move it away "
        f"to start a new chain (`sibyl db check --datadir {path}` lists what is wrong)"
    )


ENVIRONMENTS = ("chain.lmdb", "state.lmdb")
PAGE = 4096  # LMDB's page size here; a database file holds two meta pages at least


def _check_files(path: Path) -> bool:
    """Refuse a data dir whose database files show damage (one of the two missing, a file
    shorter than its meta pages); True when it has neither yet (a new data dir)."""
    files = {name: path / name / "data.mdb" for name in ENVIRONMENTS}
    present = [name for name, file in files.items() if file.exists()]
    if len(present) == 1:
        (there,) = present
        (gone,) = set(ENVIRONMENTS) - {there}
        if there == "state.lmdb":  # a data dir from before state.lmdb lacks only that
            raise damaged(path, f"{gone} is missing but {there} is there")
    for name in present:
        if files[name].stat().st_size < 2 * PAGE:
            raise damaged(path, f"{name}/data.mdb is truncated")
    return not present


def _check_size(path: Path, env: lmdb.Environment, name: str) -> None:
    """Refuse a database file shorter than the pages its meta page says it has: reading
    them would be a SIGBUS, not an error."""
    used = (env.info()["last_pgno"] + 1) * env.stat()["psize"]
    if (path / name / "data.mdb").stat().st_size < used:
        raise damaged(path, f"{name}/data.mdb is truncated")


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
    # keccak(key) -> key for the trie keys it wrote: kept on a dev chain only (its dumps)
    preimages: dict[bytes, bytes] = field(default_factory=dict)


@dataclass
class CanonicalChange:
    """A move of the canonical head: blocks that leave the chain, blocks that join it."""

    removed: list[tuple[int, list[bytes]]] = field(default_factory=list)
    added: list[BlockWrite] = field(default_factory=list)
    head: bytes = b""


def _open(path: Path, max_dbs: int, readonly: bool, sync: bool = True) -> lmdb.Environment:
    try:
        return lmdb.open(
            str(path),
            max_dbs=max_dbs,
            map_size=MAP_SIZE,
            max_readers=256,
            readonly=readonly,
            sync=sync,
        )
    except lmdb.Error as exc:
        raise StoreError(f"cannot open data dir {path.parent}: {exc}") from None


def _lock(path: Path) -> int:
    """Take the data dir at ``path`` for this process; returns the lock file's descriptor."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd = os.open(path / "LOCK", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StoreError(f"cannot open data dir {path}: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise StoreError(
            f"data dir {path} is in use by another process (pid {holder}): stop it first"
        ) from None
    except OSError as exc:  # e.g. a file system without locks
        os.close(fd)
        raise StoreError(f"cannot lock data dir {path}: {exc.strerror}") from None
    return fd


class Store:
    """Bytes-level access to the LMDB data dir; decoding lives in :mod:`chain.storage.reader`."""

    def __init__(self, path: Path, readonly: bool = False, durable: bool = True) -> None:
        """Open the data dir at ``path`` as its owner, or ``readonly`` beside its owner
        (``sibyl export`` while the node runs: LMDB readers never block its writer).

        ``durable=False`` (a temporary ``--dev`` data dir, deleted when the node stops)
        commits without fsync: a committed block is in the file system's cache, so it
        survives the node's own crash or ``kill -9`` and is seen by every reader, but
        not a power loss, after which nothing would open that data dir again anyway."""
        self.readonly = readonly
        self.path = path
        self._lock_fd = None if readonly else _lock(path)
        self.env = self.state_env = None
        try:
            new = _check_files(path)
            had_state = (path / "state.lmdb" / "data.mdb").exists()
            # + 1 table: the old layouts'
            self.env = _open(path / "chain.lmdb", len(TABLES) + 1, readonly, durable)
            _check_size(path, self.env, "chain.lmdb")
            if not new and not had_state and not self._has_old_state_table():
                raise damaged(path, "state.lmdb is missing but chain.lmdb is there")
            self.state_env = _open(path / "state.lmdb", 0, readonly, durable)
            _check_size(path, self.state_env, "state.lmdb")
            if readonly:
                self.tables = {n: self.env.open_db(n.encode(), create=False) for n in TABLES}
            else:
                with self.env.begin(write=True) as txn:
                    self.tables = {n: self.env.open_db(n.encode(), txn=txn) for n in TABLES}
        except BaseException as exc:
            self._release()
            if isinstance(exc, lmdb.NotFoundError):
                raise StoreError(f"data dir {path} is not initialised") from None
            if isinstance(exc, lmdb.Error):
                raise StoreError(f"cannot open data dir {path}: {exc}") from None
            raise
        if not readonly:
            self._move_old_state_table()
        # journaled state not yet merged, in commit order, and all of it by key for reads
        self._records: list[tuple[int, dict[bytes, bytes]]] = []
        self._unmerged: dict[bytes, bytes] = {}
        self._read_cache: LRU = LRU(READ_CACHE)  # content-addressed: never stale
        with self.env.begin(db=self.tables["journal"]) as txn:
            for key, record in txn.cursor():
                try:
                    state = {bytes(k): bytes(v) for k, v in rlp.decode(bytes(record))}
                except (rlp.DecodingError, ValueError, TypeError):
                    self._release()
                    number = int.from_bytes(key, "big")
                    raise damaged(path, f"journal record {number} does not decode") from None
                self._records.append((int.from_bytes(key, "big"), state))
                self._unmerged.update(state)
        self._next_record = self._records[-1][0] + 1 if self._records else 0
        self._lock = threading.Lock()  # guards _records and the swap of _unmerged
        self._merging = threading.Lock()  # one merge at a time: the merger's or a commit's
        self._due = threading.Event()
        if self._records:  # a crash left them: merge them now
            self._due.set()
        self._closing = False
        if not readonly:
            self._merger = threading.Thread(target=self._merge_loop, name="state-merger")
            self._merger.daemon = True
            self._merger.start()

    def close(self) -> None:
        """Merge what is journaled (a clean stop leaves no journal) and close."""
        if not self.readonly:
            self._closing = True
            self._due.set()
            self._merger.join()
            self._merge()
        self._release()

    def _release(self) -> None:
        """Close what is open, then let the next process have the data dir."""
        for env in (self.env, self.state_env):
            if env is not None:
                env.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _has_old_state_table(self) -> bool:
        try:
            with self.env.begin(write=not self.readonly) as txn:
                self.env.open_db(b"state", txn=txn, create=False)
        except lmdb.NotFoundError:
            return False
        return True

    def _move_old_state_table(self) -> None:
        """Data dirs written before the journal kept state in a ``state`` table of
        ``chain.lmdb``: copy it to ``state.lmdb`` (synced), then drop it. Copying again
        after a crash in between is harmless: state is content-addressed."""
        try:  # a handle opened in a read transaction would close with it
            with self.env.begin(write=True) as txn:
                old = self.env.open_db(b"state", txn=txn, create=False)
        except lmdb.NotFoundError:
            return
        with self.env.begin(db=old) as source, self.state_env.begin(write=True) as target:
            target.cursor().putmulti(source.cursor().iternext())
        with self.env.begin(write=True) as txn:
            txn.drop(old)
        log.info("moved the state table of chain.lmdb to state.lmdb")

    # reads: each is its own read transaction, which is cheap in LMDB and lets the
    # builder thread and the RPC thread read side by side.

    def get(self, table: str, key: bytes) -> bytes | None:
        with self.env.begin(db=self.tables[table], buffers=False) as txn:
            return txn.get(key)

    def state_get(self, key: bytes) -> bytes | None:
        value = self._unmerged.get(key)
        if value is None:
            value = self._read_cache.get(key)
        if value is not None:
            return value
        with self.state_env.begin(buffers=False) as txn:
            value = txn.get(key)
        if value is not None:
            self._read_cache[key] = value
        return value

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
        """Write the genesis block and its state; refuses a data dir already in use.

        The state goes straight to the node table first: until the genesis block is
        written the data dir counts as empty, so a crash in between leaves it usable."""
        if self.get("meta", b"genesis") is not None:
            raise StoreError("data dir is already initialised")
        self.put_state(genesis.state)
        with self.env.begin(write=True) as txn:
            txn.put(b"genesis", genesis_json, db=self.tables["meta"])
            self._put_block(txn, genesis)
            txn.put(b"head", genesis.hash, db=self.tables["meta"])

    def put_state(self, state: dict[bytes, bytes]) -> None:
        """Write state straight into the node table (genesis, bulk imports)."""
        with self.state_env.begin(write=True) as txn:
            txn.cursor().putmulti(state.items())

    def put_meta(self, key: bytes, value: bytes) -> None:
        """Write one entry of the meta table (what the dev chain keeps: ``chain/dev.py``)."""
        with self.env.begin(write=True) as txn:
            txn.put(key, value, db=self.tables["meta"])

    def commit(self, change: CanonicalChange) -> None:
        """Apply one canonical move (usually: one block on top of the head) atomically."""
        if len(self._records) >= MERGE_BACKLOG:  # the merger is behind, or failing: merge
            self._merge()  # here, and let a failure stop the block rather than eat memory
        state: dict[bytes, bytes] = {}
        for block in change.added:
            state.update(block.state)
        with self._lock:
            # Readers may find a block's state before its head, never the head first.
            self._unmerged.update(state)
            with self.env.begin(write=True) as txn:
                canonical, txindex = self.tables["canonical"], self.tables["txindex"]
                for number, tx_hashes in change.removed:
                    txn.delete(number_key(number), db=canonical)
                    for tx_hash in tx_hashes:
                        txn.delete(tx_hash, db=txindex)
                for block in change.added:
                    self._put_block(txn, block)
                if state:
                    record = encode_raw(list(state.items()))  # rlp.encode: 40x slower
                    txn.put(number_key(self._next_record), record, db=self.tables["journal"])
                txn.put(b"head", change.head, db=self.tables["meta"])
            if state:
                self._records.append((self._next_record, state))
                self._next_record += 1
            if len(self._records) >= MERGE_EVERY:
                self._due.set()

    def _put_block(self, txn: lmdb.Transaction, block: BlockWrite) -> None:
        t = self.tables
        txn.put(block.hash, block.header, db=t["headers"])
        txn.put(block.hash, block.block, db=t["blocks"])
        txn.put(block.hash, block.receipts, db=t["receipts"])
        txn.put(number_key(block.number), block.hash, db=t["canonical"])
        txindex = t["txindex"]
        for index, tx_hash in enumerate(block.tx_hashes):
            txn.put(tx_hash, block.hash + index.to_bytes(4, "big"), db=txindex)
        if block.preimages:
            entries = ((PREIMAGE + hashed, key) for hashed, key in block.preimages.items())
            txn.cursor(db=t["meta"]).putmulti(entries)

    def preimage(self, hashed: bytes) -> bytes | None:
        """The key (an address, a storage slot) whose keccak is ``hashed``, where a dev
        chain recorded it."""
        return self.get("meta", PREIMAGE + hashed)

    # merging the journal into the node table

    def _merge_loop(self) -> None:
        while True:
            self._due.wait()
            self._due.clear()
            if self._closing:
                return
            try:
                self._merge()
            except Exception as exc:  # e.g. a full disk: the journal keeps the state safe
                log.error("event=state_merge_failed records=%d error=%r", len(self._records), exc)

    def _merge(self) -> None:
        """Move every journaled record into the node table, then drop the records.

        The node table's transaction is synced before the records go, so the state is
        on disk in one place or the other at every instant."""
        with self._merging:
            self._merge_records()

    def _merge_records(self) -> None:
        with self._lock:
            records = list(self._records)
        if not records:
            return
        with self.state_env.begin(write=True) as txn:
            cursor = txn.cursor()
            for _, state in records:
                cursor.putmulti(state.items())
        last = number_key(records[-1][0])
        with self.env.begin(write=True, db=self.tables["journal"]) as txn:
            cursor = txn.cursor()
            while cursor.first() and cursor.key() <= last:
                cursor.delete()
        with self._lock:
            self._records = self._records[len(records) :]
            unmerged: dict[bytes, bytes] = {}
            for _, state in self._records:
                unmerged.update(state)
            self._unmerged = unmerged  # readers holding the old dict still find all of it


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
