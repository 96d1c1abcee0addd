"""The ``txpool_`` namespace: what the pool holds, pending and queued, per sender."""

from typing import Any

from eth_utils import to_checksum_address

from chain.node import Node
from rpc import params as p
from rpc.encoding import PENDING, q, tx_json
from rpc.params import Param, method


class TxPoolApi:
    def __init__(self, node: Node) -> None:
        self.node = node

    @method()
    def txpool_content(self) -> dict[str, Any]:
        pending, queued = self.node.pool.split()
        return {
            "pending": _by_sender(pending, lambda e: tx_json(e.tx, e.sender, PENDING)),
            "queued": _by_sender(queued, lambda e: tx_json(e.tx, e.sender, PENDING)),
        }

    @method(Param(p.address))
    def txpool_contentFrom(self, sender: bytes) -> dict[str, Any]:
        """One sender's part of ``txpool_content``: ``{pending: {nonce: tx}, queued: …}``."""
        pending, queued = self.node.pool.split()
        render = lambda e: tx_json(e.tx, e.sender, PENDING)  # noqa: E731
        return {
            "pending": {str(e.nonce): render(e) for e in pending.get(sender, [])},
            "queued": {str(e.nonce): render(e) for e in queued.get(sender, [])},
        }

    @method()
    def txpool_status(self) -> dict[str, str]:
        pending, queued = self.node.pool.split()
        return {
            "pending": q(sum(len(v) for v in pending.values())),
            "queued": q(sum(len(v) for v in queued.values())),
        }

    @method()
    def txpool_inspect(self) -> dict[str, Any]:
        pending, queued = self.node.pool.split()

        def summary(entry: Any) -> str:
            to = "0x" + entry.tx.to.hex() if entry.tx.to else "contract creation"
            return f"{to}: {entry.tx.value} wei + {entry.tx.gas} gas × {entry.fee_cap} wei"

        return {"pending": _by_sender(pending, summary), "queued": _by_sender(queued, summary)}


def _by_sender(groups: dict[bytes, list[Any]], render: Any) -> dict[str, dict[str, Any]]:
    return {
        to_checksum_address(sender): {str(entry.nonce): render(entry) for entry in entries}
        for sender, entries in groups.items()
    }
