"""Engine API semantics: how blocks are built, validated and made canonical.

A consensus client drives the node with three calls (and the dev producer makes the
very same calls in-process, as geth's ``--dev`` simulated beacon does):

* ``forkchoice_updated(head, safe, finalized, attributes)`` makes ``head`` canonical
  and, with attributes, starts a payload on it;
* ``get_payload(id)`` returns the payload built;
* ``new_payload(block)`` validates a block by executing it.

Validated blocks wait in memory (as in reth's engine tree) until a forkchoice update
makes them canonical; then each is committed to the store in its own write transaction,
so the data dir always ends on a complete block. A payload this node built is known when
it comes back through ``new_payload`` and is not executed again.

All methods run on one thread (the node's chain thread); nothing here is shared with
the RPC thread except through the store and the commits handed out by ``take_commits``.
"""

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass

from eth.abc import BlockAPI, BlockHeaderAPI

from chain.ai.attested import inner_transaction
from chain.ai.delivery import DeliveryTransaction
from chain.ai.replicas import LocalModels
from chain.ai.results import BuildOracle, SidecarPool, SpotChecker, VerifyOracle
from chain.builder import BuiltPayload, build_payload
from chain.execution import ExecutedBlock, InvalidBlock, check_body, execute_block
from chain.headers import PayloadAttributes
from chain.storage import codec
from chain.storage.reader import ChainReader
from chain.storage.store import BlockWrite, CanonicalChange, Store
from chain.txpool import PooledTx
from chain.vm import ChainConfig
from scheduler.transactions import ScheduledTransaction

log = logging.getLogger("sibyl.engine")

VALID, INVALID, SYNCING, ACCEPTED = "VALID", "INVALID", "SYNCING", "ACCEPTED"

# Validated side blocks older than this many blocks below the head are forgotten.
KEEP_DEPTH = 64


class EngineError(Exception):
    """An Engine API call that cannot be served; ``code`` is its JSON-RPC error code."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class PayloadStatus:
    status: str
    latest_valid_hash: bytes | None = None
    validation_error: str | None = None


class Engine:
    def __init__(
        self,
        config: ChainConfig,
        store: Store,
        reader: ChainReader,
        sidecars: SidecarPool | None = None,
        spot_checker: SpotChecker | None = None,
        replicas: LocalModels | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.reader = reader
        self.sidecars = sidecars
        self.spot_checker = spot_checker
        self.replicas = replicas
        self.blocks: dict[bytes, ExecutedBlock] = {}
        self.payloads: dict[bytes, BuiltPayload] = {}
        self.invalid: dict[bytes, str] = {}
        self.safe_hash: bytes | None = None
        self.finalized_hash: bytes | None = None
        # the deliveries of job results this node holds (chain.ai.dispatch), for its blocks
        self.deliveries: Callable[[], list[DeliveryTransaction]] = list
        self._commits: list[ExecutedBlock] = []
        self._dropped: list[bytes] = []  # user transactions of blocks a reorg removed
        self._moved: list[bytes] = []  # blocks a reorg removed, or put back from the store
        self.keep_preimages = False  # a dev chain's state dumps need them (chain/dev.py)
        self._total_difficulty: dict[bytes, int] = {}  # proof-of-work era, by block hash

    # lookups across the in-memory blocks and the store

    def header(self, block_hash: bytes) -> BlockHeaderAPI | None:
        executed = self.blocks.get(block_hash)
        return executed.header if executed is not None else self.reader.header(block_hash)

    def block(self, block_hash: bytes) -> BlockAPI | None:
        executed = self.blocks.get(block_hash)
        return executed.block if executed is not None else self.reader.block(block_hash)

    def total_difficulty(self, header: BlockHeaderAPI) -> int:
        """The sum of the difficulties from genesis to ``header``: what the merge and,
        before it, the choice between branches go by. Worked out once per block, from
        the nearest ancestor already known (the walk to genesis happens once a run)."""
        if self.config.terminal_total_difficulty == 0:
            return 0  # merged at genesis: every block after it is a proof-of-stake one
        path: list[BlockHeaderAPI] = []
        current: BlockHeaderAPI | None = header
        while current is not None and current.hash not in self._total_difficulty:
            path.append(current)
            current = None if current.block_number == 0 else self.header(current.parent_hash)
        total = 0 if current is None else self._total_difficulty[current.hash]
        for item in reversed(path):
            total += item.difficulty
            self._total_difficulty[item.hash] = total
        return total

    def _state_lookup(self, parent_hash: bytes):
        """Reads of the state after ``parent_hash``: its in-memory ancestors, then the store."""
        layers = []
        block_hash = parent_hash
        while block_hash in self.blocks:
            executed = self.blocks[block_hash]
            layers.append(executed.state)
            block_hash = executed.header.parent_hash
        store_get = self.store.state_get
        if not layers:
            return store_get

        def lookup(key: bytes) -> bytes | None:
            for layer in layers:
                value = layer.get(key)
                if value is not None:
                    return value
            return store_get(key)

        return lookup

    # the three calls

    def new_payload(self, block: BlockAPI) -> PayloadStatus:
        block_hash = block.header.hash
        known = self.blocks.get(block_hash)
        if known is not None and known.block is block:  # the payload this node just built:
            return PayloadStatus(VALID, block_hash)  # its body is the one it executed
        try:
            check_body(block)
        except InvalidBlock as exc:  # not remembered: the header may belong to a valid block
            return PayloadStatus(INVALID, None, str(exc))
        if block_hash in self.invalid:
            return PayloadStatus(INVALID, None, self.invalid[block_hash])
        if block_hash in self.blocks or self.reader.header(block_hash) is not None:
            return PayloadStatus(VALID, block_hash)
        parent = self.header(block.header.parent_hash)
        if parent is None:
            return PayloadStatus(SYNCING)
        if parent.hash in self.invalid:
            return self._reject(block_hash, parent.hash, "parent block is invalid")
        try:
            executed = execute_block(
                self.config,
                parent,
                block,
                self._state_lookup(parent.hash),
                self.header,
                VerifyOracle(self.config.chain_id, self.spot_checker, self.replicas),
                self.total_difficulty(parent),
                self.block,
            )
        except InvalidBlock as exc:
            return self._reject(block_hash, parent.hash, str(exc))
        self.blocks[block_hash] = executed
        return PayloadStatus(VALID, block_hash)

    def _reject(self, block_hash: bytes, parent_hash: bytes, reason: str) -> PayloadStatus:
        log.warning("invalid block hash=0x%s reason=%s", block_hash.hex(), reason)
        self.invalid[block_hash] = reason
        return PayloadStatus(INVALID, parent_hash, reason)

    def forkchoice_updated(
        self,
        head_hash: bytes,
        safe_hash: bytes | None = None,
        finalized_hash: bytes | None = None,
        attributes: PayloadAttributes | None = None,
        pending: dict[bytes, list[PooledTx]] | None = None,
    ) -> tuple[PayloadStatus, bytes | None]:
        if head_hash in self.invalid:
            return PayloadStatus(INVALID, None, self.invalid[head_hash]), None
        head = self.header(head_hash)
        if head is None:
            return PayloadStatus(SYNCING), None
        if head_hash != self.reader.head.hash:
            self._make_canonical(head_hash)
        self.safe_hash, self.finalized_hash = safe_hash, finalized_hash
        status = PayloadStatus(VALID, head_hash)
        if attributes is None:
            return status, None
        if attributes.timestamp <= head.timestamp:
            raise EngineError(-38003, "Invalid payload attributes: timestamp not after parent")
        built = build_payload(
            self.config,
            head,
            attributes,
            pending or {},
            self._state_lookup(head_hash),
            self.header,
            BuildOracle(self.config.chain_id, self.sidecars, self.replicas),
            self.deliveries(),
        )
        payload_id = os.urandom(8)
        self.payloads[payload_id] = built
        self.blocks[built.executed.hash] = built.executed
        return status, payload_id

    def get_payload(self, payload_id: bytes) -> BuiltPayload:
        built = self.payloads.pop(payload_id, None)
        if built is None:
            raise EngineError(-38001, "Unknown payload")
        return built

    def import_block(self, block: BlockAPI) -> None:
        """Validate ``block`` and make it the head: how followers and ``sibyl import`` add
        a block. Raises :class:`InvalidBlock` with the reason when it is not valid."""
        status = self.new_payload(block)
        if status.status == SYNCING:
            raise InvalidBlock(
                f"block {block.header.block_number}: parent 0x{block.header.parent_hash.hex()} "
                "is unknown"
            )
        if status.status == INVALID:
            raise InvalidBlock(status.validation_error or "invalid block")
        if block.header.difficulty == 0 or self._heavier(block.header):
            self.forkchoice_updated(block.header.hash)

    def _heavier(self, header: BlockHeaderAPI) -> bool:
        """geth's proof-of-work fork choice: a block becomes the head when its total
        difficulty is above the head's, or equal with a lower number (a shorter chain of
        the same work). A tie at the same height keeps the head (geth tosses a coin)."""
        head = self.reader.head
        ours, theirs = self.total_difficulty(head), self.total_difficulty(header)
        return theirs > ours or (theirs == ours and header.block_number < head.block_number)

    # canonical chain

    def _make_canonical(self, head_hash: bytes) -> None:
        """Commit the blocks from the canonical chain to ``head_hash``, one per transaction."""
        new_branch: list[BlockWrite | ExecutedBlock] = []
        block_hash = head_hash
        while True:
            header = self.header(block_hash)
            assert header is not None, "forkchoice head with a missing ancestor"
            if block_hash not in self.blocks and (
                block_hash == self.reader.head.hash or self.reader.is_canonical(header)
            ):  # the head is canonical: no store read for the usual parent
                fork_point = header
                break
            new_branch.append(self.blocks.get(block_hash) or self.stored_write(block_hash))
            block_hash = header.parent_hash
        new_branch.reverse()

        removed: list[tuple[int, list[bytes]]] = []
        for number in range(fork_point.block_number + 1, self.reader.head.block_number + 1):
            old_hash = self.store.canonical_hash(number)
            assert old_hash is not None
            old = self.reader.block(old_hash)
            assert old is not None
            removed.append((number, [tx.hash for tx in old.transactions]))
            self._moved.append(old_hash)
            users = (inner_transaction(tx) for tx in old.transactions)
            self._dropped.extend(
                tx.encode()
                for tx in users
                if not isinstance(tx, ScheduledTransaction | DeliveryTransaction)
            )

        if not new_branch:  # the head moved back to one of its ancestors
            self.store.commit(CanonicalChange(removed=removed, head=fork_point.hash))
            self.reader.refresh_head()
            return
        for index, item in enumerate(new_branch):
            write = item.write(self.keep_preimages) if isinstance(item, ExecutedBlock) else item
            self.store.commit(
                CanonicalChange(
                    removed=removed if index == 0 else [], added=[write], head=write.hash
                )
            )
            if isinstance(item, ExecutedBlock):
                self.reader.keep_header(item.header)
                self.blocks.pop(item.hash, None)
                self._commits.append(item)
            else:
                self._moved.append(write.hash)
            log.info(
                "block committed number=%d hash=0x%s txs=%d",
                write.number,
                write.hash.hex(),
                len(write.tx_hashes),
            )
        head = self.reader.refresh_head()
        self._forget_below(head.block_number - KEEP_DEPTH)

    def stored_write(self, block_hash: bytes) -> BlockWrite:
        """A stored block that left the canonical chain, rejoining it (state already stored)."""
        header = self.reader.header(block_hash)
        block = self.reader.block(block_hash)
        assert header is not None and block is not None
        return BlockWrite(
            hash=block_hash,
            number=header.block_number,
            header=codec.encode_header(header),
            block=codec.encode_block(block),
            receipts=self.store.get("receipts", block_hash) or b"",
            state={},
            tx_hashes=[tx.hash for tx in block.transactions],
        )

    def _forget_below(self, number: int) -> None:
        for block_hash, executed in list(self.blocks.items()):
            if executed.header.block_number <= number:
                del self.blocks[block_hash]

    def take_commits(self) -> tuple[list[ExecutedBlock], list[bytes], list[bytes]]:
        """Blocks made canonical since the last call (for the pool, filters and
        subscribers), the raw transactions of blocks that left the chain (for the pool to
        take back, as geth does after a reorg), and the hashes of the stored blocks a
        reorg moved: those that left the chain and those that rejoined it (for what keeps
        track of the chain's contents, as the job dispatcher does)."""
        commits, self._commits = self._commits, []
        dropped, self._dropped = self._dropped, []
        moved, self._moved = self._moved, []
        return commits, dropped, moved
