"""The payload builder: the next block from the pool's pending transactions.

After the scheduled calls and the expiries due, the deliveries of jobs whose results
this node holds go in (one whose job was settled meanwhile is left out); then
transactions are taken best tip first, each sender's in nonce order, until the block's
gas runs out; one that cannot execute (its sender's balance went to an earlier
transaction, say) is left out together with the sender's later nonces. The result is an
:class:`~chain.execution.ExecutedBlock`, so importing a block this node built needs no
second execution.
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from eth.abc import BlockHeaderAPI

from chain.ai.delivery import DeliveryTransaction
from chain.ai.results import Oracle
from chain.blobs import BlobSidecar
from chain.execution import (
    BlockExecution,
    ExecutedBlock,
    HeaderLookup,
    InvalidTransaction,
    StateLookup,
)
from chain.gas import TX_GAS
from chain.headers import PayloadAttributes, next_header
from chain.txpool import PooledTx, PriceNonceQueue
from chain.vm import ChainConfig, decode_transaction

log = logging.getLogger("sibyl.builder")


@dataclass
class BuiltPayload:
    executed: ExecutedBlock
    value: int  # priority fees paid to the fee recipient, wei (getPayload's blockValue)
    # the blobs of its blob transactions by transaction hash, kept from the pool when the
    # block was built (getPayload's blobsBundle), since the block names them only by hash
    sidecars: dict[bytes, BlobSidecar] = field(default_factory=dict)


def build_payload(
    config: ChainConfig,
    parent: BlockHeaderAPI,
    attributes: PayloadAttributes,
    pending: dict[bytes, list[PooledTx]],
    state: StateLookup,
    headers: HeaderLookup,
    oracle: Oracle | None = None,
    deliveries: Sequence[DeliveryTransaction] = (),
) -> BuiltPayload:
    header = next_header(config, parent, attributes)
    execution = BlockExecution(config, parent, header, state, headers, oracle)
    base_fee = header.base_fee_per_gas
    for scheduled in execution.scheduled:
        execution.apply(scheduled)  # never refused: the scheduler checked them when scheduled
    for expiry in execution.expiries:
        execution.apply(expiry)  # never refused: JOBS booked their gas when it made the jobs
    for delivery in deliveries:
        try:
            execution.apply(delivery)
        except InvalidTransaction as exc:  # settled or expired meanwhile, or no room left
            log.info("delivery left out job=0x%s reason=%s", delivery.job_id.hex(), exc)
    queue = PriceNonceQueue(pending, base_fee)
    value = 0
    sidecars: dict[bytes, BlobSidecar] = {}
    while (entry := queue.peek()) is not None:
        gas_left = header.gas_limit - execution.gas.gas_used
        if gas_left < TX_GAS:
            break
        if entry.tx.gas > gas_left:
            queue.pop()
            continue
        gas_before = execution.gas.gas_used
        try:
            execution.apply(_in_fork(execution.vm_class, entry.tx))
        except InvalidTransaction as exc:
            log.debug("tx skipped hash=0x%s reason=%s", entry.hash.hex(), exc)
            queue.pop()
            continue
        value += (execution.gas.gas_used - gas_before) * entry.effective_tip(base_fee)
        if entry.sidecar is not None:
            sidecars[entry.hash] = entry.sidecar
        queue.shift()
    executed = execution.finish(attributes.withdrawals)
    return BuiltPayload(executed, value, sidecars)


def _in_fork(vm_class: Any, tx: Any) -> Any:
    """``tx`` as the block's fork decodes it. The pool decodes with the fork of the block
    after its head; a block built later (a fork's time passed meanwhile) has its own
    fork's transaction classes, or its body would not serialize."""
    transactions = vm_class.get_block_class().transaction_builder
    if isinstance(tx, transactions.legacy_signed | transactions.typed_transaction):
        return tx
    return decode_transaction(vm_class, tx.encode())
