"""Log queries and polling filters (eth_getLogs, eth_newFilter and friends).

Logs are found block by block: the header's bloom rules out most blocks without reading
them, and only blocks that may match have their receipts decoded. Polling filters
remember the last block they reported and expire after five minutes without a poll, as
in geth.
"""

import os
import time
from collections import OrderedDict, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from eth.abc import BlockHeaderAPI
from eth_bloom import BloomFilter

from rpc.encoding import TxContext, base_fee, d, log_json
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
        ctx = TxContext(header.hash, header.block_number, index, base_fee(header), header.timestamp)
        for log in receipt.logs:
            if criteria is None or log_matches(log, criteria):
                yield log_json(log, ctx, tx.hash, log_index, removed)
            log_index += 1


PENDING_KEPT = 4096  # transaction hashes a pending filter holds between polls


@dataclass
class Filter:
    kind: str  # "logs", "blocks" or "pending"
    criteria: LogFilter | None
    next_block: int
    owner: str | None = None  # the client address that installed it
    polled: float = field(default_factory=time.monotonic)
    pending: deque[str] = field(default_factory=lambda: deque(maxlen=PENDING_KEPT))


class FilterLimitError(Exception):
    """A client already holds as many filters as it may."""


class FilterManager:
    """Polling filters; pending transaction hashes are pushed in by the pool.

    Filters are kept in the order they were last polled, so expiring the stale ones
    looks only at the oldest, and installing one costs the same however many exist (a
    flood of 30,000 installs once took minutes when each scanned them all). A client
    address holds at most ``max_per_owner`` filters; a pending filter keeps the last
    :data:`PENDING_KEPT` hashes between polls."""

    def __init__(self, max_per_owner: int = 1000) -> None:
        self.max_per_owner = max_per_owner
        self.filters: OrderedDict[str, Filter] = OrderedDict()
        self.pending_filters: dict[str, Filter] = {}
        self.owned: dict[str | None, int] = {}

    def install(
        self, kind: str, criteria: LogFilter | None, next_block: int, owner: str | None = None
    ) -> str:
        self.expire()
        if self.owned.get(owner, 0) >= self.max_per_owner:
            raise FilterLimitError(f"too many filters: limit {self.max_per_owner} per client")
        filter_id = "0x" + os.urandom(16).hex()
        found = Filter(kind, criteria, next_block, owner)
        self.filters[filter_id] = found
        self.owned[owner] = self.owned.get(owner, 0) + 1
        if kind == "pending":
            self.pending_filters[filter_id] = found
        return filter_id

    def get(self, filter_id: str) -> Filter | None:
        found = self.filters.get(filter_id)
        if found is not None:
            found.polled = time.monotonic()
            self.filters.move_to_end(filter_id)
        return found

    def uninstall(self, filter_id: str) -> bool:
        found = self.filters.pop(filter_id, None)
        if found is None:
            return False
        self.pending_filters.pop(filter_id, None)
        self.owned[found.owner] -= 1
        if not self.owned[found.owner]:
            del self.owned[found.owner]
        return True

    def expire(self) -> None:
        cutoff = time.monotonic() - FILTER_TIMEOUT
        while self.filters:
            filter_id, oldest = next(iter(self.filters.items()))
            if oldest.polled >= cutoff:
                return
            self.uninstall(filter_id)

    def on_pending(self, tx_hash: bytes) -> None:
        if self.pending_filters:
            entry = d(tx_hash)
            for found in self.pending_filters.values():
                found.pending.append(entry)
