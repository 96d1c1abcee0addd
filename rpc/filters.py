"""Log queries and polling filters (eth_getLogs, eth_newFilter and friends).

Logs are found block by block: the header's bloom rules out most blocks without reading
them, and only blocks that may match have their receipts decoded. Polling filters
remember the last block they reported and expire after five minutes without a poll, as
in geth.
"""

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from eth.abc import BlockHeaderAPI
from eth_bloom import BloomFilter

from rpc.encoding import TxContext, d, log_json
from rpc.params import LogFilter

FILTER_TIMEOUT = 300.0


def may_contain(header: BlockHeaderAPI, criteria: LogFilter) -> bool:
    """False when the header's bloom proves no log of the block matches."""
    bloom = BloomFilter(header.bloom)
    if criteria.addresses and not any(a in bloom for a in criteria.addresses):
        return False
    return all(choices is None or any(t in bloom for t in choices) for choices in criteria.topics)


def log_matches(log: Any, criteria: LogFilter) -> bool:
    if criteria.addresses and log.address not in criteria.addresses:
        return False
    if len(criteria.topics) > len(log.topics):
        return False
    for choices, value in zip(criteria.topics, log.topics, strict=False):
        if choices is not None and value.to_bytes(32, "big") not in choices:
            return False
    return True


def block_logs(
    header: BlockHeaderAPI,
    block: Any,
    receipts: list[Any],
    criteria: LogFilter | None,
    removed: bool = False,
) -> Iterator[dict[str, Any]]:
    """The JSON logs of one block that match ``criteria`` (all of them when None)."""
    log_index = 0
    for index, (tx, receipt) in enumerate(zip(block.transactions, receipts, strict=True)):
        ctx = TxContext(
            header.hash, header.block_number, index, header.base_fee_per_gas, header.timestamp
        )
        for log in receipt.logs:
            if criteria is None or log_matches(log, criteria):
                yield log_json(log, ctx, tx.hash, log_index, removed)
            log_index += 1


@dataclass
class Filter:
    kind: str  # "logs", "blocks" or "pending"
    criteria: LogFilter | None
    next_block: int
    polled: float = field(default_factory=time.monotonic)
    pending: list[str] = field(default_factory=list)


class FilterManager:
    """Polling filters; pending transaction hashes are pushed in by the pool."""

    def __init__(self) -> None:
        self.filters: dict[str, Filter] = {}

    def install(self, kind: str, criteria: LogFilter | None, next_block: int) -> str:
        self.expire()
        filter_id = "0x" + os.urandom(16).hex()
        self.filters[filter_id] = Filter(kind, criteria, next_block)
        return filter_id

    def get(self, filter_id: str) -> Filter | None:
        found = self.filters.get(filter_id)
        if found is not None:
            found.polled = time.monotonic()
        return found

    def uninstall(self, filter_id: str) -> bool:
        return self.filters.pop(filter_id, None) is not None

    def expire(self) -> None:
        cutoff = time.monotonic() - FILTER_TIMEOUT
        for filter_id, found in list(self.filters.items()):
            if found.polled < cutoff:
                del self.filters[filter_id]

    def on_pending(self, tx_hash: bytes) -> None:
        for found in self.filters.values():
            if found.kind == "pending":
                found.pending.append(d(tx_hash))
