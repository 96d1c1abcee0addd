"""py-evm's state databases, with the caches and batched writes the node needs.

This is the one module that reaches into py-evm's (and py-trie's) private members, so an
upgrade of either is checked here alone. It relies on:

* ``AccountDB``: ``_account_cache``, ``_get_encoded_account``, ``_set_account``,
  ``_account_stores``, ``_get_storage_root``, ``_raw_store_db``, ``_batchtrie``,
  ``_trie``, ``_trie_logger``, ``_trie_cache``, ``_journaltrie`` (the layers over the
  account trie, rebuilt here on a :class:`~chain.trie.reads.WalkingTrie`, whose
  ``HashTrie`` keeps it as ``_db``), ``make_state_root`` (rewritten here with the
  members it uses: ``_dirty_account_stores``, ``_get_changed_roots``,
  ``_set_storage_root``, ``_journaldb``), and ``_get_access_list``;
* ``StorageLookup`` / ``AccountStorageDB``: ``_decode_key``, ``_write_trie``,
  ``_trie_nodes_batch``, ``_starting_root_hash``, ``_get_write_trie``, and the members
  ``AccountStorageDB.__init__`` sets (``_address``, ``_storage_lookup``,
  ``_storage_cache``, ``_locked_changes``, ``_journal_storage``, ``_accessed_slots``,
  ``_clear_count``), which :class:`BatchedStorageDB` sets itself;
* a computation's ``_stack.values``, ``_memory._bytes`` and ``_log_entries`` (read by the
  tracers through :func:`stack_values`, :func:`memory_bytes`, :func:`last_log`);
* ``eth._utils.state.code_is_delegation_designation`` (EIP-7702).
* ``eth.vm.opcode._FastOpcode`` (its ``logic_fn``, ``gas_cost``, ``mnemonic``), a
  computation's ``_gas_meter.gas_remaining``, ``_stack.values``, ``_memory._bytes`` and
  its code stream's ``_raw_code_bytes`` and ``program_counter``, ``eth.vm.computation.
  NO_RESULT`` and the steps of ``BaseComputation.apply_computation`` before its loop, all
  of which :mod:`chain.interpreter` (the interpreter loop of blocks and calls) uses.
"""

from functools import lru_cache
from typing import Any

import rlp
from eth._utils.state import code_is_delegation_designation
from eth.constants import BLANK_ROOT_HASH, EMPTY_SHA3
from eth.db.accesslog import KeyAccessLoggerDB
from eth.db.account import AccountDB
from eth.db.backends.memory import MemoryDB
from eth.db.batch import BatchDB
from eth.db.cache import CacheDB
from eth.db.hash_trie import HashTrie
from eth.db.journal import JournalDB
from eth.db.storage import CLEAR_COUNT_KEY_NAME, AccountStorageDB, StorageLookup
from eth.rlp.accounts import Account
from eth_hash.auto import keccak
from lru import LRU
from rlp.codec import encode_raw

from chain.trie.batch import apply_writes
from chain.trie.reads import WalkingTrie, walk
from chain.trie.rlp_cache import decoded


class CopyingAccount(Account):
    """py-evm's account whose ``copy`` builds the changed account directly. Every balance
    or nonce change copies an account, about five per transaction, and rlp's generic
    ``copy`` (a deep copy of each unchanged field) takes 13 µs where this takes 3."""

    def copy(self, **changes: Any) -> "CopyingAccount":
        fields = zip(("nonce", "balance", "storage_root", "code_hash"), self, strict=True)
        return CopyingAccount(**{**dict(fields), **changes})


class SibylAccountDB(AccountDB):
    """py-evm's account database with caches for what is named by its content.

    py-evm forgets every decoded account when a snapshot is reverted (each ``eth_call``
    ends with one) and reads code from the database on every call. An encoded account
    decodes to the same value wherever it is read, and code is stored under its own
    hash, so both are kept across calls, blocks and states without ever going stale.
    A code read served from the cache is not recorded in py-evm's witness of accessed
    bytecodes, which the node does not use.

    ``preimages`` collects the key behind each hashed trie key it writes (an address, a
    storage slot), as geth's preimage store does: a dev chain keeps them so that
    ``anvil_dumpState`` can name every account and slot of its state (``chain/dev.py``).
    """

    def __init__(self, db: Any, state_root: bytes = BLANK_ROOT_HASH) -> None:
        self.preimages: dict[bytes, bytes] = {}  # keccak(key) -> key, for written keys
        super().__init__(db, state_root)
        # py-evm's layers over the account trie, as it builds them, on the walking trie
        self._trie = HashTrie(WalkingTrie(self._batchtrie, state_root, prune=True))
        self._trie_logger = KeyAccessLoggerDB(self._trie, log_missing_keys=False)
        self._trie_cache = CacheDB(self._trie_logger)
        self._journaltrie = JournalDB(self._trie_cache)

    def _get_account(self, address: bytes, from_journal: bool = True) -> Account:
        if from_journal and address in self._account_cache:
            return self._account_cache[address]
        encoded = self._get_encoded_account(address, from_journal)
        account = decode_account(encoded) if encoded else CopyingAccount()
        if from_journal:
            self._account_cache[address] = account
        return account

    def _set_account(self, address: bytes, account: Account) -> None:
        """py-evm's, with the account encoded by :func:`encode_account`: about eight
        accounts are set per transaction, and rlp's sedes took 8 µs each."""
        self.preimages[keccak(address)] = address
        self._account_cache[address] = account
        self._journaltrie[address] = encode_account(account)

    def has_storage(self, address: bytes) -> bool:
        """Whether the account's committed storage is non-empty."""
        return self._get_storage_root(address) != BLANK_ROOT_HASH

    def get_code(self, address: bytes) -> bytes:
        code_hash = self.get_code_hash(address)
        if code_hash == EMPTY_SHA3:
            return b""
        code = CODE_BY_HASH.get(code_hash)
        if code is None:
            code = CODE_BY_HASH[code_hash] = super().get_code(address)
        return code

    def make_state_root(self) -> bytes:
        """py-evm's ``make_state_root``, with the block's changed accounts going into
        the account trie in one pass.

        py-evm sets them one at a time, and py-trie's ``set`` rewrites and rehashes the
        path from the root for each (and prunes the path it replaced): five accounts
        change in a block that delivers one job result (the beacon-roots and history
        contracts, JOBS, the signer, the fee recipient), and their sets were half of
        the time the block spent making its state root. Here they go down the trie
        together (:func:`chain.trie.batch.apply_writes`), as storage writes do
        (:class:`BatchedStorageLookup`); the trie is the same. py-evm wraps its sets in
        the trie's ``squash_changes``, a scratch database whose exit decodes the new
        root node and stores it again; the batch writes its nodes (content-addressed:
        an error halfway leaves only unreferenced ones) straight to the trie's own."""
        for _address, store in self._dirty_account_stores():
            store.make_storage_root()
        for address, storage_root in self._get_changed_roots():
            if self.account_exists(address) or storage_root != BLANK_ROOT_HASH:
                self._set_storage_root(address, storage_root)
        self._journaldb.persist()
        diff = self._journaltrie.diff()
        writes = {keccak(address): b"" for address in diff.deleted_keys()}
        writes.update((keccak(address), value) for address, value in diff.pending_items())
        if writes:
            hexary = self._trie._db  # the walking trie under the account trie's hashed keys
            hexary.root_hash = apply_writes(hexary.db, hexary.root_hash, writes)
        self._journaltrie.reset()
        self._trie_cache.reset_cache()
        return self.state_root

    def _get_address_store(self, address: bytes) -> AccountStorageDB:
        """py-evm's, with storage whose writes reach the trie together."""
        store = self._account_stores.get(address)
        if store is None:
            storage_root = self._get_storage_root(address)
            store = BatchedStorageDB(self._raw_store_db, storage_root, address, self.preimages)
            self._account_stores[address] = store
        return store


class BatchedStorageLookup(StorageLookup):
    """py-evm's storage lookup, with the writes of each storage root applied at once.

    py-evm sets each written slot in the storage trie as it arrives, rewriting and
    rehashing the path from the root every time. Here writes wait, by hashed slot (reads
    see them), until the root is needed, then go into the trie in one pass
    (:func:`chain.trie.batch.apply_writes`). The trie is the same; a block's storage
    root takes a fraction of the time, the more so the deeper the trie."""

    def __init__(
        self, db: Any, storage_root: bytes, address: bytes, preimages: dict[bytes, bytes]
    ) -> None:
        super().__init__(db, storage_root, address)
        self._waiting: dict[bytes, bytes] = {}  # hashed slot -> value, b"" deletes
        self._preimages = preimages

    def _get_write_trie(self) -> WalkingTrie:
        if self._trie_nodes_batch is None:
            self._trie_nodes_batch = BatchDB(self._db, read_through_deletes=True)
        if self._write_trie is None:
            self._write_trie = WalkingTrie(
                self._trie_nodes_batch, root_hash=self._starting_root_hash, prune=True
            )
        return self._write_trie

    def _get_read_trie(self) -> WalkingTrie:
        if self._write_trie is not None:
            return self._write_trie
        return WalkingTrie(self._db, root_hash=self._starting_root_hash)

    def __getitem__(self, key: bytes) -> bytes:
        if self._waiting:  # rarely: writes wait only while a root is being made
            value = self._waiting.get(self._decode_key(key))
            if value is not None:
                return value
        if self._write_trie is None:  # a read of the stored storage: no trie object for it
            value = walk(self._db, self._starting_root_hash, self._decode_key(key))
            if value is not None:
                return value
        return super().__getitem__(key)

    def __setitem__(self, key: bytes, value: bytes) -> None:
        hashed = self._decode_key(key)
        self._preimages[hashed] = key.rjust(32, b"\0")
        self._waiting[hashed] = value

    def __delitem__(self, key: bytes) -> None:
        self._waiting[self._decode_key(key)] = b""

    def _exists(self, key: bytes) -> bool:
        return self[key] != b""

    @property
    def has_changed_root(self) -> bool:
        return bool(self._waiting) or self._write_trie is not None

    def get_changed_root(self) -> bytes:
        self._apply_waiting()
        return super().get_changed_root()

    def commit_to(self, db: Any) -> None:
        self._apply_waiting()
        super().commit_to(db)

    def new_trie(self) -> int:
        self._apply_waiting()
        return super().new_trie()

    def rollback_trie(self, trie_index: int) -> None:
        self._waiting.clear()  # they were writes to the trie being rolled back
        super().rollback_trie(trie_index)

    def _apply_waiting(self) -> None:
        if self._waiting:
            trie = self._get_write_trie()
            trie.root_hash = apply_writes(self._trie_nodes_batch, trie.root_hash, self._waiting)
            self._waiting = {}


class BatchedStorageDB(AccountStorageDB):
    """py-evm's account storage over a :class:`BatchedStorageLookup`, its layers of
    cache and journals built as ``AccountStorageDB.__init__`` builds them (which would
    build them over its own lookup first: every block opens about five stores)."""

    def __init__(
        self, db: Any, storage_root: bytes, address: bytes, preimages: dict[bytes, bytes]
    ) -> None:
        self._address = address
        self._storage_lookup = BatchedStorageLookup(db, storage_root, address, preimages)
        self._storage_cache = CacheDB(self._storage_lookup)
        self._locked_changes = JournalDB(self._storage_cache)
        self._journal_storage = JournalDB(self._locked_changes)
        self._accessed_slots: set[int] = set()
        self._clear_count = JournalDB(MemoryDB({CLEAR_COUNT_KEY_NAME: b"\0"}))


def encode_account(account: Account) -> bytes:
    """``rlp.encode(account, sedes=Account)``, from the four fields directly (py-evm
    checks nonce and balance are uint64 and uint256 before it sets them)."""
    nonce, balance, storage_root, code_hash = account
    return encode_raw(
        [
            nonce.to_bytes((nonce.bit_length() + 7) // 8, "big"),
            balance.to_bytes((balance.bit_length() + 7) // 8, "big"),
            storage_root,
            code_hash,
        ]
    )


@lru_cache(maxsize=8192)
def decode_account(encoded: bytes) -> CopyingAccount:
    """An account's RLP decoded; accounts are immutable, so one value serves every read.

    The five accounts a transfer's block changes are read again by the next block, so
    each is decoded once a block: from its four items here (7 µs), where rlp's sedes
    takes 30. Anything but the canonical shape goes to the sedes, whose errors those are.
    """
    items = decoded(encoded)  # shared: only read
    if items.__class__ is list and len(items) == 4 and all(i.__class__ is bytes for i in items):
        nonce, balance, storage_root, code_hash = items
        if (
            nonce[:1] != b"\0"
            and balance[:1] != b"\0"
            and len(storage_root) == 32
            and len(code_hash) == 32
        ):
            return CopyingAccount(
                int.from_bytes(nonce, "big"),
                int.from_bytes(balance, "big"),
                storage_root,
                code_hash,
            )
    return rlp.decode(encoded, sedes=CopyingAccount)


CODE_BY_HASH: LRU = LRU(1024)


def access_list(state: Any) -> dict[bytes, Any]:
    """Every account the state read, with the slots read of each (py-evm's access log)."""
    return state._account_db._get_access_list()


def is_delegation(code: bytes) -> bool:
    """Whether ``code`` is an EIP-7702 delegation designation (``0xef0100 ‖ address``)."""
    return code_is_delegation_designation(code)


def stack_values(computation: Any) -> list:
    """The computation's stack, bottom first, as py-evm holds it (typed values)."""
    return computation._stack.values


def memory_bytes(computation: Any) -> bytearray:
    return computation._memory._bytes


def last_log(computation: Any) -> tuple:
    """The computation's latest log entry: ``(index, address, topics, data)``."""
    return computation._log_entries[-1]


def preimages(state: Any) -> dict[bytes, bytes]:
    """The keys behind the hashed trie keys a py-evm state wrote (SibylAccountDB)."""
    return state._account_db.preimages
