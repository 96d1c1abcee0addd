"""WebSocket subscriptions: ``eth_subscribe`` to newHeads, logs, newPendingTransactions.

The node tells this module about every block that becomes canonical and every
transaction the pool admits; each subscribed connection gets a notification queued on
its own writer, so one slow client never holds up the others.
"""

import os
from typing import Any

import orjson

from chain.execution import ExecutedBlock
from chain.txpool import PooledTx
from rpc import params as p
from rpc.encoding import PENDING, d, header_json, tx_json
from rpc.errors import LIMIT_EXCEEDED, METHOD_NOT_FOUND, RpcError, invalid_params
from rpc.filters import block_logs
from rpc.params import Param, method
from rpc.server import Connection, Methods, collect_methods

KINDS = ("newHeads", "logs", "newPendingTransactions")


class Subscriptions:
    def __init__(self) -> None:
        self.connections: set[Connection] = set()

    def methods_for(self, connection: Connection) -> Methods:
        """``eth_subscribe`` and ``eth_unsubscribe`` bound to one connection."""
        self.connections.add(connection)
        return collect_methods(_ConnectionApi(self, connection))

    def _notify(self, connection: Connection, subscription: str, result: Any) -> None:
        connection.send(
            orjson.dumps(
                {
                    "jsonrpc": "2.0",
                    "method": "eth_subscription",
                    "params": {"subscription": subscription, "result": result},
                }
            )
        )

    def _live(self) -> list[Connection]:
        self.connections = {c for c in self.connections if c.open and not c.ws.closed}
        return list(self.connections)

    def on_commit(self, executed: ExecutedBlock) -> None:
        header = executed.header
        head = None
        logs = None
        for connection in self._live():
            for subscription, (kind, criteria) in list(connection.subscriptions.items()):
                if kind == "newHeads":
                    if head is None:
                        head = header_json(header)
                    self._notify(connection, subscription, head)
                elif kind == "logs":
                    if logs is None:
                        logs = list(block_logs(header, executed.block, executed.receipts, None))
                    for entry in _matching(logs, criteria):
                        self._notify(connection, subscription, entry)

    def on_pending(self, entry: PooledTx) -> None:
        for connection in self._live():
            for subscription, (kind, full) in list(connection.subscriptions.items()):
                if kind == "newPendingTransactions":
                    result = tx_json(entry.tx, entry.sender, PENDING) if full else d(entry.hash)
                    self._notify(connection, subscription, result)


def _matching(logs: list[dict[str, Any]], criteria: p.LogFilter | None) -> list[dict[str, Any]]:
    if criteria is None:
        return logs
    out = []
    for entry in logs:
        if criteria.addresses and bytes.fromhex(entry["address"][2:]) not in criteria.addresses:
            continue
        topics = [bytes.fromhex(t[2:]) for t in entry["topics"]]
        if len(criteria.topics) > len(topics):
            continue
        if all(c is None or t in c for c, t in zip(criteria.topics, topics, strict=False)):
            out.append(entry)
    return out


def _subscription_kind(value: Any) -> str:
    if value not in KINDS:
        raise RpcError(METHOD_NOT_FOUND, f'no "{value}" subscription in eth namespace')
    return value


def _options(value: Any) -> Any:
    return value


class _ConnectionApi:
    def __init__(self, subscriptions: Subscriptions, connection: Connection) -> None:
        self.subscriptions = subscriptions
        self.connection = connection

    @method(Param(_subscription_kind), Param(_options, None))
    def eth_subscribe(self, kind: str, options: Any) -> str:
        connection = self.connection
        if len(connection.subscriptions) >= connection.limits.max_subscriptions:
            raise RpcError(
                LIMIT_EXCEEDED,
                f"too many subscriptions: limit {connection.limits.max_subscriptions}",
            )
        if kind == "logs":
            detail: Any = None if options is None else _log_criteria(options)
        elif kind == "newPendingTransactions":
            detail = bool(options) if options is not None else False
        else:
            if options is not None:
                raise invalid_params("newHeads takes no options")
            detail = None
        subscription = "0x" + os.urandom(16).hex()
        connection.subscriptions[subscription] = (kind, detail)
        return subscription

    @method(Param(p.string))
    def eth_unsubscribe(self, subscription: str) -> bool:
        return self.connection.subscriptions.pop(subscription, None) is not None


def _log_criteria(options: Any) -> p.LogFilter:
    try:
        return p.log_filter(options)
    except p.ParamError as exc:
        raise invalid_params(f"invalid argument 1: {exc}") from None
