"""The dev block producer: a consensus client in-process, as geth's ``--dev`` beacon.

It makes the same Engine API calls a consensus client makes (forkchoiceUpdated with
attributes, getPayload, newPayload, forkchoiceUpdated to the new head), so the dev chain
exercises the production path. With ``block_time == 0`` a block is made as soon as the
pool holds pending transactions (those that arrived while the previous block was being
built share the next one), and, while scheduled calls are active or jobs pending, at
least once a second, so that the block numbers they wait for come and job results are
delivered; with ``block_time > 0`` a block is made
every period, empty or not.
"""

import asyncio
import contextlib
import logging
import time

from eth.constants import ZERO_HASH32
from eth_utils import keccak

from chain.ai import jobs
from chain.execution import PayloadAttributes
from chain.node import Node
from scheduler import state as calls

log = logging.getLogger("sibyl.producer")

SCHEDULE_TICK = 1.0  # seconds between blocks while scheduled calls wait for their block


class DevProducer:
    def __init__(self, node: Node, block_time: float) -> None:
        self.node = node
        self.block_time = block_time
        self.wake = asyncio.Event()
        node.pool.listeners.append(lambda entry: self.wake.set())

    async def run(self) -> None:
        next_slot = time.monotonic()
        while True:
            if self.block_time > 0:
                next_slot += self.block_time
                await asyncio.sleep(max(0.0, next_slot - time.monotonic()))
            else:
                with contextlib.suppress(TimeoutError):
                    timeout = SCHEDULE_TICK if self._schedules_active() else None
                    await asyncio.wait_for(self.wake.wait(), timeout)
                self.wake.clear()
            try:
                await self.produce()
            except Exception:
                log.exception("block production failed")

    def _schedules_active(self) -> bool:
        """Scheduled calls wait for their blocks, or jobs for their delivery or expiry."""
        reader = self.node.reader
        state = reader.accounts(reader.head)
        return calls.active_count(state) > 0 or jobs.pending_count(state) > 0

    async def produce(self) -> bytes | None:
        """Make one block on the current head; None when there is nothing to include."""
        node, engine = self.node, self.node.engine
        pending, _ = node.pool.split()
        if self.block_time == 0 and not pending and not self._schedules_active():
            return None
        head = node.reader.head
        timestamp = max(int(time.time()), head.timestamp + 1)
        cancun = node.chain_config.fork_at(timestamp) != "shanghai"
        attributes = PayloadAttributes(
            timestamp=timestamp,
            prev_randao=keccak(head.hash),
            fee_recipient=node.config.fee_recipient,
            withdrawals=(),
            parent_beacon_block_root=ZERO_HASH32 if cancun else None,
        )
        _, payload_id = await node.chain_call(
            engine.forkchoice_updated, head.hash, head.hash, head.hash, attributes, pending
        )
        built = await node.chain_call(engine.get_payload, payload_id)
        block = built.executed.block
        status = await node.chain_call(engine.new_payload, block)
        if status.status != "VALID":
            log.error(
                "own payload rejected status=%s error=%s", status.status, status.validation_error
            )
            return None
        await node.chain_call(engine.forkchoice_updated, block.hash, block.hash, block.hash)
        return block.hash
