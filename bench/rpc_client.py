"""A lean JSON-RPC load client: HTTP/1.1 keep-alive over one asyncio connection each.

The benchmark must measure the node, not the load generator. A general HTTP client
(aiohttp, httpx) spends tens of microseconds of Python per request on headers, cookies
and response objects; on a 2-core machine that would put the ceiling in the client. This
client sends pre-encoded request bytes and reads responses by their ``Content-Length``,
nothing more, so one client process drives well over 10k requests/s. It speaks only what
a JSON-RPC server answers to a POST: a status line, headers and a body framed by
``Content-Length`` (aiohttp, anvil) or chunked (hardhat's node).

Each :class:`Connection` carries one request at a time, as a JSON-RPC client with one
keep-alive connection does (no pipelining).
"""

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import orjson


class RpcFailure(Exception):
    """A JSON-RPC error object or an HTTP-level failure during the benchmark."""


def encode_request(host: str, port: int, body: bytes) -> bytes:
    """The full bytes of one HTTP POST carrying ``body``."""
    head = (
        f"POST / HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def rpc_body(method: str, params: list[Any], request_id: int = 1) -> bytes:
    return orjson.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})


class _Protocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[bytes] | None = None
        self.closed_exc: Exception | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed_exc = exc or ConnectionResetError("server closed the connection")
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(self.closed_exc)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        buffer = self.buffer
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(buffer[:end]).lower()
        start = head.find(b"content-length:")
        if start >= 0:
            stop = head.find(b"\r\n", start)
            total = end + 4 + int(head[start + 15 : stop if stop >= 0 else None])
            if len(buffer) < total:
                return
            body = bytes(buffer[end + 4 : total])
        elif b"transfer-encoding: chunked" in head:
            chunked = _dechunk(buffer, end + 4)
            if chunked is None:
                return
            body, total = chunked
        else:
            waiter.set_exception(RpcFailure(f"response without Content-Length: {head[:200]!r}"))
            return
        if not head.startswith(b"http/1.1 200"):
            waiter.set_exception(RpcFailure(f"HTTP {head[:40]!r}: {body!r}"))
        else:
            waiter.set_result(body)
        del buffer[:total]


def _dechunk(buffer: bytearray, offset: int) -> tuple[bytes, int] | None:
    """A chunked body starting at ``offset`` (hardhat's node streams its responses):
    the body and where the response ends, or None while it is incomplete. Chunk
    extensions and trailers are not used by JSON-RPC servers and not parsed."""
    parts = []
    while True:
        line_end = buffer.find(b"\r\n", offset)
        if line_end < 0:
            return None
        size = int(bytes(buffer[offset:line_end]).split(b";")[0], 16)
        if size == 0:
            if len(buffer) < line_end + 4:
                return None
            return b"".join(parts), line_end + 4
        data_end = line_end + 2 + size
        if len(buffer) < data_end + 2:
            return None
        parts.append(bytes(buffer[line_end + 2 : data_end]))
        offset = data_end + 2


class Connection:
    """One keep-alive HTTP connection to a JSON-RPC server."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._protocol: _Protocol | None = None

    async def open(self) -> "Connection":
        loop = asyncio.get_running_loop()
        _, self._protocol = await loop.create_connection(_Protocol, self.host, self.port)
        return self

    def close(self) -> None:
        if self._protocol is not None and self._protocol.transport is not None:
            self._protocol.transport.close()

    async def send(self, request: bytes) -> bytes:
        """Send pre-encoded request bytes; returns the response body."""
        protocol = self._protocol
        assert protocol is not None, "connection not open"
        if protocol.closed_exc is not None:
            raise protocol.closed_exc
        protocol.waiter = asyncio.get_running_loop().create_future()
        protocol.transport.write(request)  # type: ignore[union-attr]
        return await protocol.waiter

    async def call(self, method: str, params: list[Any] | None = None) -> Any:
        """One JSON-RPC call, decoded; raises :class:`RpcFailure` on an error object."""
        body = await self.send(encode_request(self.host, self.port, rpc_body(method, params or [])))
        response = orjson.loads(body)
        if "error" in response:
            raise RpcFailure(f"{method}: {response['error']}")
        return response["result"]

    async def batch(self, calls: Sequence[tuple[str, list[Any]]]) -> list[Any]:
        body = orjson.dumps(
            [
                {"jsonrpc": "2.0", "id": i, "method": method, "params": params}
                for i, (method, params) in enumerate(calls)
            ]
        )
        responses = orjson.loads(await self.send(encode_request(self.host, self.port, body)))
        responses.sort(key=lambda r: r["id"])
        for response in responses:
            if "error" in response:
                raise RpcFailure(f"batch: {response['error']}")
        return [r["result"] for r in responses]


async def open_connections(host: str, port: int, count: int) -> list[Connection]:
    return list(await asyncio.gather(*(Connection(host, port).open() for _ in range(count))))


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, int(fraction * len(sorted_values)))
    return sorted_values[index]


async def hammer(
    host: str, port: int, requests: Sequence[bytes], clients: int, duration: float,
    warmup: float = 0.5,
) -> dict[str, Any]:  # fmt: skip
    """``clients`` connections send ``requests`` round robin for ``duration`` seconds.

    Each connection sends its next request as soon as the previous response arrived.
    Returns requests/s and latency percentiles of the timed window (after ``warmup``).
    Any JSON-RPC error fails the run: a benchmark of error replies measures nothing.
    """
    connections = await open_connections(host, port, clients)
    loop_time = time.perf_counter
    start_at = loop_time() + warmup
    stop_at = start_at + duration
    latencies: list[list[float]] = [[] for _ in range(clients)]

    async def worker(index: int, connection: Connection) -> None:
        own = latencies[index]
        position = index
        count = len(requests)
        while True:
            request = requests[position % count]
            position += clients
            begin = loop_time()
            if begin >= stop_at:
                return
            body = await connection.send(request)
            end = loop_time()
            if b'"error"' in body:
                raise RpcFailure(body[:300].decode(errors="replace"))
            if begin >= start_at:
                own.append(end - begin)

    try:
        await asyncio.gather(*(worker(i, c) for i, c in enumerate(connections)))
    finally:
        for connection in connections:
            connection.close()
    merged = sorted(latency for own in latencies for latency in own)
    return {
        "n": len(merged),
        "req_per_s": len(merged) / duration,
        "p50_ms": percentile(merged, 0.50) * 1000,
        "p99_ms": percentile(merged, 0.99) * 1000,
    }
