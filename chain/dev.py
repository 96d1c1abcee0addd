"""Dev-chain operations behind anvil's and hardhat's test methods (``rpc/dev.py``).

Everything here is a move of the canonical chain that the store already knows how to
make atomically, so the dev methods add no path of their own to the store's writes:

* **State edits** (``*_setBalance``, ``*_setCode``, ``*_setNonce``, ``*_setStorageAt``)
  *re-seal the head*: the head block is replaced, at the same height, by one with the
  same body and receipts whose state root includes the edit, committed as a one-block
  reorg. Reads of ``latest`` see the edit at once and no block number moves, as on anvil;
  unlike anvil the head's hash changes (its state root does), so every block's header
  keeps matching its state.
* **Snapshots** name a block hash with the pool and the clock of the producer at that
  moment; **revert** makes that block the head again (the store rewinds the canonical
  index, state is content-addressed and kept), and puts the pool and the clock back.
  Scheduled calls and async jobs live in state, so they follow. Snapshots are kept in
  the store's meta table, so they survive a restart with ``--datadir``.
* **Reset** reverts to the genesis block the chain started from.
* **State dumps** (``anvil_dumpState`` / ``anvil_loadState``) use anvil's format, the
  gzipped JSON of its ``SerializableState``: every account of the head's state with its
  nonce, balance, code and storage. The state tries hold hashed keys only, so a dev
  chain keeps the preimage of each key its blocks and edits write (``Store.preimage``,
  as geth keeps preimages) and names its genesis keys from the genesis file. A dump
  carries no blocks or transactions (the data dir holds those); loading one is an edit
  of the head that merges its accounts in, as anvil does (the larger nonce wins).

A dev chain whose state was edited no longer replays from its blocks alone (a re-sealed
block's state does not follow from its transactions): followers refuse it. That is the
price of a test chain, and the reason these methods exist only with ``--dev``.
"""

import contextlib
import gzip
import json
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import rlp
from eth.constants import BLANK_ROOT_HASH
from eth.db.account import AccountDB
from eth.rlp.accounts import Account
from eth_utils import keccak
from trie import HexaryTrie
from trie.iter import NodeIterator

from chain.genesis import genesis_block
from chain.limits import load_json
from chain.node import Node
from chain.producer import DevProducer
from chain.state_db import SibylAccountDB
from chain.storage import codec
from chain.storage.store import BlockWrite, CanonicalChange, state_view
from chain.txpool import TxPoolError

META_KEY = b"dev"
MAX_DUMP = 1 << 28  # bytes of JSON a state dump may inflate to (a gzip bomb is refused)

Edit = Callable[[AccountDB], None]


@dataclass
class Snapshot:
    head: str  # hex hash of the block to return to
    number: int
    pool: list[str]  # hex raw transactions waiting then
    time_offset: int
    next_timestamp: int | None


@dataclass
class DumpedAccount:
    nonce: int = 0
    balance: int = 0
    code: bytes = b""
    storage: dict[int, int] = field(default_factory=dict)


class UnknownPreimage(Exception):
    """A state key whose preimage this data dir never recorded."""


def encode_dump(accounts: dict[bytes, DumpedAccount]) -> bytes:
    """anvil's dump of ``accounts`` (gzipped JSON, its field names and number forms)."""
    state = {
        "block": None,  # anvil's block env: a Sibyl chain keeps its blocks in its data dir
        "accounts": {
            "0x" + address.hex(): {
                "nonce": account.nonce,
                "balance": hex(account.balance),
                "code": "0x" + account.code.hex(),
                "storage": {
                    "0x" + slot.to_bytes(32, "big").hex(): "0x" + value.to_bytes(32, "big").hex()
                    for slot, value in sorted(account.storage.items())
                },
            }
            for address, account in sorted(accounts.items())
        },
        "best_block_number": None,
        "blocks": [],
        "transactions": [],
        "historical_states": None,
    }
    return gzip.compress(json.dumps(state).encode())


def decode_dump(raw: bytes) -> dict[bytes, DumpedAccount]:
    """The accounts of an anvil state dump, gzipped or plain JSON; ``ValueError`` says
    what is wrong with it."""
    if raw[:2] == b"\x1f\x8b":
        inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            raw = inflate.decompress(raw, MAX_DUMP)
        except zlib.error as exc:
            raise ValueError(f"not gzip: {exc}") from None
        if inflate.unconsumed_tail:
            raise ValueError(f"it inflates to more than {MAX_DUMP} bytes")
    state = load_json(raw)
    if not isinstance(state, dict) or not isinstance(state.get("accounts"), dict):
        raise ValueError("no accounts object")
    return {
        _bytes(address, 20): DumpedAccount(
            nonce=_number(entry.get("nonce", 0)),
            balance=_number(entry.get("balance", 0)),
            code=_bytes(entry.get("code", "0x")),
            storage={
                _word(slot): _word(value)
                for slot, value in _object(entry.get("storage", {})).items()
            },
        )
        for address, entry in state["accounts"].items()
        for entry in [_object(entry)]
    }


def _object(value: Any) -> dict:
    if not isinstance(value, dict):
        raise ValueError(f"{value!r} is not an object")
    return value


def _number(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and value.startswith("0x"):
        return int.from_bytes(_bytes(value), "big")
    raise ValueError(f"{value!r} is not a number")


def _word(value: Any) -> int:
    word = _bytes(value)
    if len(word) > 32:
        raise ValueError(f"{value!r} is longer than 32 bytes")
    return int.from_bytes(word, "big")


def _bytes(value: Any, length: int | None = None) -> bytes:
    """0x-hex as bytes (an odd digit count read as anvil does); exactly ``length`` long."""
    digits = value[2:] if isinstance(value, str) and value.startswith("0x") else None
    try:
        decoded = bytes.fromhex(digits if len(digits) % 2 == 0 else "0" + digits)
    except (TypeError, ValueError):
        decoded = None
    if decoded is None or (length is not None and len(decoded) != length):
        raise ValueError(f"{value!r} is not {f'{length}-byte ' if length else ''}hex")
    return decoded


class DevChain:
    def __init__(self, node: Node, producer: DevProducer) -> None:
        self.node = node
        self.producer = producer
        node.engine.keep_preimages = True  # for dump_state
        saved = node.store.get("meta", META_KEY)
        state = json.loads(saved) if saved else {}
        self.next_id: int = state.get("next_id", 0)  # anvil's first id is 0x0
        self.snapshots: dict[int, Snapshot] = {
            int(k): Snapshot(**v) for k, v in state.get("snapshots", {}).items()
        }
        producer.time_offset = state.get("time_offset", 0)

    def _save(self) -> None:
        state = {
            "next_id": self.next_id,
            "snapshots": {str(k): asdict(v) for k, v in self.snapshots.items()},
            "time_offset": self.producer.time_offset,
        }
        self.node.store.put_meta(META_KEY, json.dumps(state).encode())

    def keep_clock(self) -> None:
        """Persist the producer's time offset (after ``evm_increaseTime``)."""
        self._save()

    # state edits

    async def edit(self, edit: Edit) -> None:
        """Apply ``edit`` to the head's state by re-sealing the head block."""
        async with self.producer.exclusive():
            await self.node.chain_call(self._reseal, edit)
            self.node.pool.on_new_head()  # a balance or nonce moved under the pool

    def _reseal(self, edit: Edit) -> None:
        node = self.node
        store, reader = node.store, node.reader
        head = reader.head
        block = reader.block(head.hash)
        assert block is not None
        db, overlay = state_view(store.state_get)
        accounts = SibylAccountDB(db, head.state_root)
        edit(accounts)
        accounts.persist()
        resealed = block.copy(header=head.copy(state_root=accounts.state_root))
        tx_hashes = [tx.hash for tx in block.transactions]
        write = BlockWrite(
            hash=resealed.header.hash,
            number=head.block_number,
            header=codec.encode_header(resealed.header),
            block=codec.encode_block(resealed),
            receipts=store.get("receipts", head.hash) or b"",
            state=dict(overlay.writes),
            tx_hashes=tx_hashes,
            preimages=accounts.preimages,
        )
        store.commit(
            CanonicalChange(
                removed=[(head.block_number, tx_hashes)], added=[write], head=write.hash
            )
        )
        reader.refresh_head()

    # state dumps

    def dump_state(self) -> bytes:
        """Every account of the head's state, in anvil's dump format (module docstring).
        Raises :class:`UnknownPreimage` for a key written before the data dir kept them."""
        node = self.node
        head = node.reader.head
        db, _ = state_view(node.store.state_get)
        known = self._genesis_preimages()

        def key_of(hashed: bytes) -> bytes:
            key = known.get(hashed) or node.store.preimage(hashed)
            if key is None:
                raise UnknownPreimage(
                    f"state key 0x{hashed.hex()} has no recorded preimage: it was written "
                    "before this data dir kept them, so the state cannot be dumped"
                )
            return key

        code_of = node.reader.accounts(head).get_code
        accounts: dict[bytes, DumpedAccount] = {}
        for hashed, encoded in NodeIterator(HexaryTrie(db, head.state_root)).items():
            address = key_of(hashed)
            account = rlp.decode(encoded, sedes=Account)
            storage = {}
            if account.storage_root != BLANK_ROOT_HASH:
                slots = NodeIterator(HexaryTrie(db, account.storage_root)).items()
                storage = {
                    int.from_bytes(key_of(slot), "big"): int.from_bytes(rlp.decode(value), "big")
                    for slot, value in slots
                }
            accounts[address] = DumpedAccount(
                account.nonce, account.balance, code_of(address), storage
            )
        return encode_dump(accounts)

    def _genesis_preimages(self) -> dict[bytes, bytes]:
        """The keys of the genesis state, named by the genesis file (written before any
        block, by :func:`chain.genesis.genesis_block`)."""
        known = {}
        for address, account in self.node.genesis.alloc.items():
            known[keccak(address)] = address
            for slot in account.storage:
                known[keccak(slot.to_bytes(32, "big"))] = slot.to_bytes(32, "big")
        return known

    async def load_state(self, accounts: dict[bytes, DumpedAccount]) -> None:
        """Merge ``accounts`` into the head's state, as anvil loads a dump: each account
        takes the dump's balance, code and slots, and the larger of the two nonces."""

        def edit(state: AccountDB) -> None:
            for address, account in accounts.items():
                state.set_nonce(address, max(state.get_nonce(address), account.nonce))
                state.set_balance(address, account.balance)
                state.set_code(address, account.code)
                for slot, value in account.storage.items():
                    state.set_storage(address, slot, value)

        await self.edit(edit)

    def _move_head(self, head_hash: bytes) -> None:
        """Make the stored block ``head_hash`` the head in one store transaction: the
        engine's reorg, except that the branch may part from the canonical chain below
        block 1 (a re-sealed genesis block) and the pool is left to the caller."""
        store, reader = self.node.store, self.node.reader
        branch: list[bytes] = []
        header = reader.header(head_hash)
        while header is not None and not reader.is_canonical(header):
            branch.append(header.hash)
            parent = header.parent_hash
            header = reader.header(parent) if header.block_number else None
        first = header.block_number + 1 if header is not None else 0
        removed = []
        for number in range(first, reader.head.block_number + 1):
            block = reader.block(store.canonical_hash(number) or b"")
            assert block is not None
            removed.append((number, [tx.hash for tx in block.transactions]))
        added = [self.node.engine.stored_write(block_hash) for block_hash in reversed(branch)]
        store.commit(CanonicalChange(removed=removed, added=added, head=head_hash))
        reader.refresh_head()

    # snapshots

    def snapshot(self) -> int:
        snapshot_id, self.next_id = self.next_id, self.next_id + 1
        self.snapshots[snapshot_id] = Snapshot(
            head="0x" + self.node.reader.head.hash.hex(),
            number=self.node.reader.head.block_number,
            pool=["0x" + entry.raw.hex() for entry in self.node.pool.by_hash.values()],
            time_offset=self.producer.time_offset,
            next_timestamp=self.producer.next_timestamp,
        )
        self._save()
        return snapshot_id

    async def revert(self, snapshot_id: int) -> bool:
        """Return to snapshot ``snapshot_id``; it and every later one are used up (as on
        hardhat and anvil). False for an unknown id."""
        snapshot = self.snapshots.get(snapshot_id)
        if snapshot is None:
            return False
        await self._return_to(bytes.fromhex(snapshot.head[2:]), snapshot.pool)
        self.producer.time_offset = snapshot.time_offset
        self.producer.next_timestamp = snapshot.next_timestamp
        self.snapshots = {k: v for k, v in self.snapshots.items() if k < snapshot_id}
        self._save()
        return True

    async def reset(self) -> None:
        """Back to the genesis block, with an empty pool, no snapshots, the wall clock."""
        genesis_hash = genesis_block(self.node.genesis)[0].header.hash
        await self._return_to(genesis_hash, [])
        self.producer.time_offset = 0
        self.producer.next_timestamp = None
        self.snapshots = {}
        self.next_id = 0
        self._save()

    async def _return_to(self, head_hash: bytes, pool: list[str]) -> None:
        node = self.node
        async with self.producer.exclusive():
            if node.reader.head.hash != head_hash:
                await node.chain_call(self._move_head, head_hash)
            node.pool.clear()  # what the reorg handed back was not waiting at the snapshot
            for raw in pool:
                with contextlib.suppress(TxPoolError):  # as after any reorg
                    node.pool.add(bytes.fromhex(raw[2:]))
