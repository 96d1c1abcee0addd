"""The dev block producer: a consensus client in-process, as geth's ``--dev`` beacon.

It makes the same Engine API calls a consensus client makes (forkchoiceUpdated with
attributes, getPayload, newPayload, forkchoiceUpdated to the new head), so the dev chain
exercises the production path. It mines in one of three modes, as anvil and hardhat do:

* automine (``block_time == 0``): a block as soon as the pool holds pending transactions
  (those that arrived while the previous block was being built share the next one; after
  a block of several, the round waits up to GATHER for as many to arrive, so senders
  that send again once answered share a block rather than alternate between two), and,
  while scheduled calls are active or jobs pending, at least once a second so that the
  block numbers they wait for come and job results are delivered. A sender waits in
  :meth:`included` until the round that takes its transaction has committed its block,
  so ``eth_sendRawTransaction`` answers after inclusion, as anvil's automine does, and a
  client's ``tx.wait()`` never races a block;
* interval (``block_time > 0``, or ``evm_setIntervalMining``): a block every period, empty
  or not;
* manual (``evm_setAutomine(false)`` with no interval): blocks only on ``evm_mine``.

Block timestamps follow the wall clock plus an offset that ``evm_increaseTime`` and
``evm_setNextBlockTimestamp`` move (see :mod:`chain.dev`).
"""

import asyncio
import contextlib
import logging
import time

from eth.abc import BlockAPI, BlockHeaderAPI
from eth.constants import ZERO_HASH32
from eth_utils import keccak

from chain.ai import jobs
from chain.engine import PayloadStatus
from chain.headers import PayloadAttributes
from chain.node import Node
from chain.txpool import PooledTx
from chain.vm import fork_since
from scheduler import state as calls

log = logging.getLogger("sibyl.producer")

SCHEDULE_TICK = 1.0  # seconds between blocks while scheduled calls wait for their block
# how long an automine round waits for the senders the last block answered to send again
GATHER = 0.005


class DevProducer:
    def __init__(self, node: Node, block_time: float) -> None:
        self.node = node
        self.automine = block_time == 0
        self.interval = block_time
        self.time_offset = 0  # seconds added to the wall clock for the next timestamps
        self.next_timestamp: int | None = None  # the next block's, when one is set
        self.wake = asyncio.Event()
        self._next_slot = time.monotonic() + block_time
        self._mining = asyncio.Lock()  # one block at a time, whoever asks for it
        self._rounds = asyncio.Condition()
        self._started = 0  # automine rounds begun, and ended
        self._finished = 0
        self._active: tuple[bytes, bool] = (b"", False)  # a head's hash, and what it says
        self._last_txs = 0  # in the block _produce made last
        self._arrivals = 0  # transactions added to the pool since the last round ended
        self._answered = 0  # transactions the last automine round included
        self._ended_at = 0.0
        node.pool.listeners.append(self._arrived)

    def _arrived(self, entry: PooledTx) -> None:
        self._arrivals += 1
        self.wake.set()

    # modes

    def set_automine(self, enabled: bool) -> None:
        self.automine = enabled
        if enabled:
            self.interval = 0
        self.wake.set()

    def set_interval(self, seconds: float) -> None:
        """Mine every ``seconds`` (0: stop interval mining, as hardhat and anvil do)."""
        self.interval = seconds
        if seconds > 0:
            self.automine = False
            self._next_slot = time.monotonic() + seconds
        self.wake.set()

    # the loop

    async def run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), self._timeout())
            self.wake.clear()
            try:
                if self.interval > 0:
                    if time.monotonic() >= self._next_slot:
                        self._next_slot = max(self._next_slot + self.interval, time.monotonic())
                        await self.mine(force=True)
                elif self.automine:
                    await self._automine_round()
            except Exception:
                log.exception("block production failed")

    def _timeout(self) -> float | None:
        if self.interval > 0:
            return max(0.0, self._next_slot - time.monotonic())
        if self.automine:  # a round with nothing pending mines only if calls or jobs wait
            return SCHEDULE_TICK
        return None

    async def _automine_round(self) -> None:
        await self._gather()
        self._started += 1
        self._last_txs = 0
        try:
            if self.automine:
                await self.mine(force=None)
        finally:
            self._answered, self._arrivals = self._last_txs, 0
            self._ended_at = time.monotonic()
            async with self._rounds:
                self._finished = self._started
                self._rounds.notify_all()

    async def _gather(self) -> None:
        """Wait, at most GATHER seconds from the end of the last round, until as many
        transactions have arrived as that round answered for. Senders that wait for
        inclusion send again once answered; without this, the first of them to come back
        starts a block alone and the rest wait for the one after, so blocks alternate
        between two halves of the senders and each costs a block's overhead."""
        deadline = self._ended_at + GATHER
        while self.automine and self._arrivals < self._answered:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), left)

    async def included(self) -> None:
        """Return once a transaction just added to the pool is in a committed block (or
        the automine round that looked at it left it out: a nonce gap, a full block).
        Returns at once when the chain is not automining."""
        if not self.automine:
            return
        target = self._started + 1  # a round that begins from now on sees the pool as is
        self.wake.set()
        async with self._rounds:
            await self._rounds.wait_for(lambda: self._finished >= target or not self.automine)

    def _schedules_active(self) -> bool:
        """Scheduled calls wait for their blocks, or jobs for their delivery or expiry.
        Asked only by a round with nothing pending (reading the two counters of a new
        head's state costs about half a millisecond, as much as the rest of the event
        loop's share of a block); a head's state never changes, so its answer is kept."""
        reader = self.node.reader
        head_hash, active = self._active
        if head_hash != reader.head.hash:
            state = reader.accounts(reader.head)
            active = calls.active_count(state) > 0 or jobs.pending_count(state) > 0
            self._active = (reader.head.hash, active)
        return active

    # making a block

    def exclusive(self) -> asyncio.Lock:
        """Held while a block is made; dev edits take it too, so none lands mid-block."""
        return self._mining

    async def mine(self, force: bool | None = True) -> bytes | None:
        """Make one block on the current head, with what the pool holds; unless
        ``force``, None when there is nothing to include (``force=None``: unless
        scheduled calls or jobs wait for blocks)."""
        async with self._mining:
            return await self._produce(force)

    def timestamp_after(self, parent_timestamp: int) -> int:
        if self.next_timestamp is not None:
            return max(self.next_timestamp, parent_timestamp + 1)
        return max(int(time.time()) + self.time_offset, parent_timestamp + 1)

    async def _produce(self, force: bool | None) -> bytes | None:
        node = self.node
        pending, _ = node.pool.split()
        if not pending and not (force or (force is None and self._schedules_active())):
            return None
        head = node.reader.head
        timestamp = self.timestamp_after(head.timestamp)
        cancun = fork_since(node.chain_config.fork_at(timestamp), "cancun")
        attributes = PayloadAttributes(
            timestamp=timestamp,
            prev_randao=keccak(head.hash),
            fee_recipient=node.config.fee_recipient,
            withdrawals=(),
            parent_beacon_block_root=ZERO_HASH32 if cancun else None,
        )
        block, status = await node.chain_call(self._make_block, head, attributes, pending)
        if status.status != "VALID":
            log.error(
                "own payload rejected status=%s error=%s", status.status, status.validation_error
            )
            return None
        self._last_txs = len(block.transactions)
        if self.next_timestamp is not None:  # later blocks go on from the time set
            self.time_offset = timestamp - int(time.time())
            self.next_timestamp = None
        return block.hash

    def _make_block(
        self,
        head: BlockHeaderAPI,
        attributes: PayloadAttributes,
        pending: dict[bytes, list[PooledTx]],
    ) -> tuple[BlockAPI, PayloadStatus]:
        """On the chain thread: the four Engine API calls of one block, in the order a
        consensus client makes them, in one hand-off from the event loop rather than four
        (each hand-off waits for the other thread to let go of the GIL)."""
        engine = self.node.engine
        _, payload_id = engine.forkchoice_updated(
            head.hash, head.hash, head.hash, attributes, pending
        )
        block = engine.get_payload(payload_id).executed.block
        status = engine.new_payload(block)
        if status.status == "VALID":
            engine.forkchoice_updated(block.hash, block.hash, block.hash)
        return block, status
