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

A dev chain whose state was edited no longer replays from its blocks alone (a re-sealed
block's state does not follow from its transactions): followers refuse it. That is the
price of a test chain, and the reason these methods exist only with ``--dev``.
"""

import contextlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass

from eth.db.account import AccountDB

from chain.genesis import genesis_block
from chain.node import Node
from chain.producer import DevProducer
from chain.storage import codec
from chain.storage.store import BlockWrite, CanonicalChange, state_view
from chain.txpool import TxPoolError

META_KEY = b"dev"

Edit = Callable[[AccountDB], None]


@dataclass
class Snapshot:
    head: str  # hex hash of the block to return to
    number: int
    pool: list[str]  # hex raw transactions waiting then
    time_offset: int
    next_timestamp: int | None


class DevChain:
    def __init__(self, node: Node, producer: DevProducer) -> None:
        self.node = node
        self.producer = producer
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
        accounts = AccountDB(db, head.state_root)
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
        )
        store.commit(
            CanonicalChange(
                removed=[(head.block_number, tx_hashes)], added=[write], head=write.hash
            )
        )
        reader.refresh_head()

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
