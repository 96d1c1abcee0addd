"""Decoded, read-only access to the canonical chain: what the RPC and the pool read.

The store speaks bytes; this module turns them into py-evm headers, blocks, receipts and
account state, and resolves the block tags of JSON-RPC (``latest``, ``safe``, numbers,
hashes). Reads of the head state go through one long-lived account view, so repeated
``eth_getBalance`` calls hit py-evm's account cache rather than the trie.

Decoded headers are kept by hash (a hash names one header, and the store never deletes
one): each block looks up its parent and the new head, and each decode takes about
0.1 ms.
"""

from dataclasses import dataclass
from typing import Any

from eth.abc import BlockAPI, BlockHeaderAPI, ReceiptAPI, SignedTransactionAPI
from eth.db.account import AccountDB
from eth.rlp.accounts import Account
from eth_hash.auto import keccak
from lru import LRU

from chain.state_db import CopyingAccount, SibylAccountDB, decode_account
from chain.storage import codec
from chain.storage.store import OverlayDB, Store, state_view
from chain.trie.reads import WalkingTrie
from chain.vm import ChainConfig, vm_class_of

HEADERS_KEPT = 1024  # decoded headers, about 1 MB


@dataclass(frozen=True)
class TxLocation:
    """Where a transaction sits in the canonical chain."""

    block_hash: bytes
    block_number: int
    index: int


@dataclass(frozen=True)
class BlockReceipts:
    receipts: list[ReceiptAPI]
    senders: list[bytes]
    signers: codec.Signers  # per transaction, per AI call: the attesting executors


class ChainReader:
    def __init__(self, store: Store, config: ChainConfig) -> None:
        self.store = store
        self.config = config
        self._head: BlockHeaderAPI | None = None
        self._head_accounts: AccountDB | None = None
        # the accounts account() read last, and the block whose state they are
        self._known: tuple[bytes, dict[bytes, Account]] = (b"", {})
        self._state = OverlayDB(store.state_get)  # read-only: nothing writes through it
        self._headers: LRU = LRU(HEADERS_KEPT)
        self.refresh_head()

    # headers and blocks

    def refresh_head(self) -> BlockHeaderAPI:
        """Re-read the head pointer; called after every commit."""
        head_hash = self.store.head_hash()
        if head_hash is None:
            raise LookupError("data dir has no head block")
        if self._head is not None and head_hash == self._head.hash:
            return self._head  # a hash names its header: nothing to decode again
        header = self.header(head_hash)
        assert header is not None, "head pointer without a header"
        if self._head is None or header.hash != self._head.hash:
            self._head = header
            self._head_accounts = None
        return header

    @property
    def head(self) -> BlockHeaderAPI:
        assert self._head is not None
        return self._head

    def header(self, block_hash: bytes) -> BlockHeaderAPI | None:
        header = self._headers.get(block_hash)
        if header is None:
            raw = self.store.get("headers", block_hash)
            if raw is None:
                return None
            header = self._headers[block_hash] = codec.decode_header(raw)
        return header

    def keep_header(self, header: BlockHeaderAPI) -> None:
        """Keep ``header``, just committed, as if read back: the head's refresh and the
        next block's parent lookup then decode nothing."""
        self._headers[header.hash] = header

    def canonical_header(self, number: int) -> BlockHeaderAPI | None:
        if number > self.head.block_number:
            return None
        block_hash = self.store.canonical_hash(number)
        return None if block_hash is None else self.header(block_hash)

    def is_canonical(self, header: BlockHeaderAPI) -> bool:
        return self.store.canonical_hash(header.block_number) == header.hash

    def block(self, block_hash: bytes) -> BlockAPI | None:
        raw = self.store.get("blocks", block_hash)
        if raw is None:
            return None
        header = self.header(block_hash)
        assert header is not None
        return codec.decode_block(raw, self.vm_class(header).get_block_class())

    def raw_block(self, block_hash: bytes) -> bytes | None:
        return self.store.get("blocks", block_hash)

    def raw_header(self, block_hash: bytes) -> bytes | None:
        return self.store.get("headers", block_hash)

    def receipts(self, header: BlockHeaderAPI) -> BlockReceipts:
        """Receipts, senders and AI-call signers of a block (see :mod:`chain.storage.codec`)."""
        raw = self.store.get("receipts", header.hash)
        if raw is None:
            return BlockReceipts([], [], [])
        builder = self.vm_class(header).get_block_class().receipt_builder
        return BlockReceipts(*codec.decode_receipts(raw, builder))

    def vm_class(self, header: BlockHeaderAPI) -> Any:
        return vm_class_of(self.config, header)

    # transactions

    def tx_location(self, tx_hash: bytes) -> TxLocation | None:
        found = self.store.tx_location(tx_hash)
        if found is None:
            return None
        block_hash, index = found
        header = self.header(block_hash)
        if header is None or not self.is_canonical(header):
            return None
        return TxLocation(block_hash, header.block_number, index)

    def transaction(self, tx_hash: bytes) -> tuple[SignedTransactionAPI, TxLocation] | None:
        location = self.tx_location(tx_hash)
        if location is None:
            return None
        block = self.block(location.block_hash)
        assert block is not None
        return block.transactions[location.index], location

    # state

    def accounts(self, header: BlockHeaderAPI) -> AccountDB:
        """A read-only view of the accounts as they were after ``header``'s block."""
        if header.hash == self.head.hash:
            if self._head_accounts is None:
                self._head_accounts = self._open_accounts(header.state_root)
            return self._head_accounts
        return self._open_accounts(header.state_root)

    def account(self, header: BlockHeaderAPI, address: bytes) -> Account:
        """One account as it was after ``header``'s block, read straight from the state
        trie: what the pool checks each sender against. Opening an account database
        for each new head, then reading through its layers, costs several times the
        walk itself. The accounts of the last block asked about are kept, by its hash
        (a block's state never changes, and the chain thread may move the head)."""
        block_hash, known = self._known
        if block_hash != header.hash:
            known = {}
            self._known = (header.hash, known)
        account = known.get(address)
        if account is None:
            encoded = WalkingTrie(self._state, header.state_root).get(keccak(address))
            account = known[address] = decode_account(encoded) if encoded else CopyingAccount()
        return account

    def _open_accounts(self, state_root: bytes) -> AccountDB:
        # the node's own account database: its trie walks decoded nodes (chain.trie.reads),
        # and a new head's accounts are read through the nodes its block just wrote, which
        # py-trie's walk would decode again at each level (about 0.15 ms an account, once
        # per sender and head for the pool's checks and each eth_getTransactionCount)
        db, _ = state_view(self.store.state_get)
        return SibylAccountDB(db, state_root)

    def has_state(self, header: BlockHeaderAPI) -> bool:
        return self.store.state_get(header.state_root) is not None
