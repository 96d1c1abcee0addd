"""The JSON-RPC server: HTTP POST and WebSocket on one port, batches, limits, CORS.

Requests are decoded with orjson, dispatched to the handler that declares the method
(see :mod:`rpc.params`), and every failure becomes a JSON-RPC error object: a bug in a
handler is logged with its traceback here and reaches the client only as ``-32603``.
Limits protect the node from a single client: request body size, batch length,
connections per address, the time a request's headers and body may take (slowloris),
the bytes queued for a WebSocket client that does not read (it is disconnected and its
queue dropped), and subscriptions per WebSocket connection.
"""

import asyncio
import contextvars
import inspect
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from chain.config import RpcConfig
from rpc.errors import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    LIMIT_EXCEEDED,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
    RpcError,
    from_exception,
)
from rpc.params import ParamError, decode_params

log = logging.getLogger("sibyl.rpc")

Methods = dict[str, Callable[..., Any]]

# The address of the client whose request is being served: per-client limits read it.
client_address: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "client_address", default=None
)


def collect_methods(*apis: object) -> Methods:
    """Every method an API object declares with :func:`rpc.params.method`."""
    methods: Methods = {}
    for api in apis:
        for name in dir(api):
            handler = getattr(api, name)
            if callable(handler) and hasattr(handler, "rpc_params"):
                methods[name] = handler
    return methods


def _error(request_id: Any, error: RpcError) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": error.to_json()}


async def call(methods: Methods, request: Any) -> dict[str, Any] | None:
    """Serve one request object; None for a notification (no ``id``)."""
    answer = start_call(methods, request)
    return await answer.finish() if isinstance(answer, Pending) else answer


@dataclass
class Pending:
    """A request whose handler is a coroutine: its answer once awaited."""

    request_id: Any
    name: str
    is_notification: bool
    result: Any

    async def finish(self) -> dict[str, Any] | None:
        try:
            result = await self.result
        except Exception as exc:
            return _failed(exc, self.request_id, self.name, self.is_notification)
        return None if self.is_notification else _result(self.request_id, result)


def start_call(methods: Methods, request: Any) -> dict[str, Any] | None | Pending:
    """Serve one request object as far as it goes without waiting: its answer (None for a
    notification), or the :class:`Pending` rest of a coroutine handler."""
    if not isinstance(request, dict):
        return _error(None, RpcError(INVALID_REQUEST, "invalid request"))
    request_id = request.get("id")
    is_notification = "id" not in request
    if isinstance(request_id, dict | list) or request_id is True or request_id is False:
        return _error(None, RpcError(INVALID_REQUEST, "invalid request"))
    name = request.get("method")
    if request.get("jsonrpc") != "2.0" or not isinstance(name, str):
        return _error(request_id, RpcError(INVALID_REQUEST, "invalid request"))
    handler = methods.get(name)
    try:
        if handler is None:
            raise RpcError(METHOD_NOT_FOUND, f"the method {name} does not exist/is not available")
        result = handler(*decode_params(handler, request.get("params")))
    except Exception as exc:
        return _failed(exc, request_id, name, is_notification)
    if asyncio.iscoroutine(result):
        return Pending(request_id, name, is_notification, result)
    return None if is_notification else _result(request_id, result)


def _result(request_id: Any, result: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "result": result}


def _failed(
    exc: Exception, request_id: Any, name: str, is_notification: bool
) -> dict[str, Any] | None:
    if isinstance(exc, ParamError):  # a handler that decodes a nested value itself
        return None if is_notification else _error(request_id, RpcError(INVALID_PARAMS, str(exc)))
    error = from_exception(exc)
    if error is None:
        log.exception("rpc handler failed method=%s", name, exc_info=exc)
        error = RpcError(INTERNAL_ERROR, f"internal error: {type(exc).__name__}")
    return None if is_notification else _error(request_id, error)


def _waits(methods: Methods, request: Any) -> bool:
    """Whether ``request`` names a coroutine handler: one that may wait (a send, a call)."""
    name = request.get("method") if isinstance(request, dict) else None
    handler = methods.get(name) if isinstance(name, str) else None
    if handler is None:
        return False
    code = getattr(handler, "__code__", None)  # a bound method's is its function's
    return code is None or bool(code.co_flags & inspect.CO_COROUTINE)


async def serve_payload(methods: Methods, body: bytes, limits: RpcConfig) -> bytes | None:
    """Decode a request body (single or batch), serve it, and encode the response."""
    try:
        request = orjson.loads(body)
    except orjson.JSONDecodeError:
        return orjson.dumps(_error(None, RpcError(PARSE_ERROR, "parse error")))
    if isinstance(request, list):
        if not request:
            return orjson.dumps(_error(None, RpcError(INVALID_REQUEST, "empty batch")))
        if len(request) > limits.max_batch:
            return orjson.dumps(
                _error(None, RpcError(LIMIT_EXCEEDED, f"batch too large: limit {limits.max_batch}"))
            )
        # Served concurrently (each begins in order), so a batch of sends that wait for
        # their block on an automining dev chain shares one block. A batch of requests
        # that all answer at once (a poller's nonces, a page's balances) is answered in
        # turn, without a task each (about 6 us a request).
        if any(_waits(methods, item) for item in request):
            answers = await asyncio.gather(*(call(methods, item) for item in request))
        else:
            started = [start_call(methods, item) for item in request]
            answers = [await a.finish() if isinstance(a, Pending) else a for a in started]
        responses = [r for r in answers if r is not None]
        return orjson.dumps(responses) if responses else None
    response = await call(methods, request)
    return None if response is None else orjson.dumps(response)


class RpcServer:
    """The public JSON-RPC endpoint (HTTP and WebSocket on one port)."""

    serves_directly = True  # plain POSTs answered without aiohttp's request path (_Guard)

    def __init__(
        self,
        methods: Methods,
        limits: RpcConfig,
        ws_methods: Callable[["Connection"], Methods] | None = None,
    ) -> None:
        self.methods = methods
        self.limits = limits
        self.ws_methods = ws_methods
        self.connections: set[Connection] = set()
        self.ws_queued = 0  # bytes queued for every WebSocket client together
        self.per_address: dict[str | None, int] = {}  # open TCP connections by address
        self.direct: set[_Guard] = set()  # connections aiohttp does not know of (yet)
        self.app = web.Application(client_max_size=limits.max_body_bytes, middlewares=[self._cors])
        self.app.router.add_route("*", "/", self.handle)
        self.runner: web.AppRunner | None = None
        self.listener: asyncio.Server | None = None

    @web.middleware
    async def _cors(self, request: web.Request, handler: Callable) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if request.method == "OPTIONS":
            response: web.StreamResponse = web.Response(status=204)
        else:
            response = await handler(request)
        if origin and ("*" in self.limits.cors_origins or origin in self.limits.cors_origins):
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Allow-Methods"] = "POST, GET, OPTIONS"
            response.headers["Access-Control-Allow-Headers"] = request.headers.get(
                "Access-Control-Request-Headers", "Content-Type"
            )
            response.headers["Access-Control-Max-Age"] = "600"
            response.headers["Vary"] = "Origin"
        return response

    async def handle(self, request: web.Request) -> web.StreamResponse:
        client_address.set(request.remote)
        if request.method == "GET" and request.headers.get("Upgrade", "").lower() == "websocket":
            return await self.handle_ws(request)
        if request.method == "GET":
            return web.Response(text="sibyl JSON-RPC: POST requests or WebSocket\n")
        if request.method != "POST":
            return web.Response(status=405, text="method not allowed\n")
        if (request.content_length or 0) > self.limits.max_body_bytes:
            return self._too_large()
        try:
            body = await asyncio.wait_for(request.read(), self.limits.body_timeout)
        except web.HTTPRequestEntityTooLarge:
            return self._too_large()
        except TimeoutError:
            return web.Response(status=408, text="request body too slow\n")
        payload = await serve_payload(self.methods, body, self.limits)
        return web.Response(body=payload or b"", content_type="application/json")

    def _too_large(self) -> web.Response:
        error = RpcError(
            LIMIT_EXCEEDED, f"request body too large: limit {self.limits.max_body_bytes} bytes"
        )
        return web.Response(
            status=413, body=orjson.dumps(_error(None, error)), content_type="application/json"
        )

    async def handle_ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=self.limits.max_body_bytes, heartbeat=30)
        await ws.prepare(request)
        connection = Connection(ws, self, request.transport)
        methods = dict(self.methods)
        if self.ws_methods is not None:
            methods.update(self.ws_methods(connection))
        self.connections.add(connection)
        try:
            async for message in ws:
                if not connection.open or request.transport is None:
                    break  # dropped, or gone: what it still had queued is not served
                if message.type == WSMsgType.TEXT or message.type == WSMsgType.BINARY:
                    connection.serve(methods, message.data)
                elif message.type == WSMsgType.ERROR:
                    break
        finally:
            self.connections.discard(connection)
            connection.close()
        return ws

    async def start(self, host: str, port: int) -> None:
        # aiohttp's keep-alive timer also runs while a request's headers are arriving:
        # a connection gets header_timeout from connecting (or from its last response)
        # to send complete headers, whether it is idle or sending them a byte at a time.
        self.runner = web.AppRunner(
            self.app, access_log=None, keepalive_timeout=self.limits.header_timeout
        )
        await self.runner.setup()
        loop = asyncio.get_running_loop()
        self.listener = await loop.create_server(
            lambda: _Guard(self), host, port, backlog=1024, reuse_address=True
        )

    async def stop(self) -> None:
        if self.listener is not None:
            self.listener.close()
        for connection in list(self.connections):
            await connection.ws.close()
        for guard in list(self.direct):
            guard.close()
        if self.runner is not None:
            await self.runner.cleanup()


# What sends a request on to aiohttp rather than being answered directly by _Guard.
_FOR_AIOHTTP = frozenset(
    (b"transfer-encoding", b"upgrade", b"origin", b"expect", b"content-encoding")
)


class _Guard(asyncio.Protocol):
    """One TCP connection, counted against its address's limit before anything else sees
    it: a connection over the limit is dropped at once, so one address cannot take every
    file descriptor.

    A plain JSON-RPC POST (one request in one read: ``POST /``, HTTP/1.1, a
    ``Content-Length`` within the limit, no CORS origin, upgrade or transfer encoding) is
    answered here, without aiohttp's request objects, middleware and response writer:
    they cost more than serving an ``eth_getBalance``. Anything else (a WebSocket, a
    browser's request, a request split across reads, pipelined requests, another path)
    hands the connection to aiohttp's request handler, which serves it from then on with
    its own checks and timeouts; until then this keeps aiohttp's idle timeout. The
    Engine API port, behind its JWT check, always goes to aiohttp."""

    def __init__(self, server: "RpcServer") -> None:
        self.server = server
        self.handler: Any = None  # aiohttp's, once it serves the connection
        self.admitted = False
        self.address: str | None = None
        self.transport: Any = None
        self._idle_until = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._answering: asyncio.Task | None = None  # a direct answer being awaited
        self._backlog: list[bytes] = []  # what arrived meanwhile

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        self.address = peer[0] if isinstance(peer, tuple) else None
        counts = self.server.per_address
        if counts.get(self.address, 0) >= self.server.limits.max_connections_per_ip:
            log.debug("connection refused address=%s reason=too many connections", self.address)
            transport.abort()
            return
        counts[self.address] = counts.get(self.address, 0) + 1
        self.admitted = True
        self.transport = transport
        if self.server.serves_directly:
            self.server.direct.add(self)
            self._idle_until = asyncio.get_running_loop().time() + self.server.limits.header_timeout
            self._watch_idle()
        else:
            self._hand_over()

    def _hand_over(self) -> None:
        """From now on aiohttp serves this connection."""
        self.server.direct.discard(self)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        assert self.server.runner is not None and self.server.runner.server is not None
        self.handler = self.server.runner.server()
        self.handler.connection_made(self.transport)

    def _watch_idle(self) -> None:
        """Close the connection once it has been idle for the header timeout (aiohttp's
        keep-alive rule: an idle client holds no descriptor for long)."""
        loop = asyncio.get_running_loop()
        if self._answering is not None:
            self._idle_until = loop.time() + self.server.limits.header_timeout
        if loop.time() >= self._idle_until:
            self._timer = None
            self.transport.close()
            return
        self._timer = loop.call_at(self._idle_until, self._watch_idle)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.admitted:
            return
        counts = self.server.per_address
        counts[self.address] -= 1
        if not counts[self.address]:
            del counts[self.address]
        self.server.direct.discard(self)
        if self._timer is not None:
            self._timer.cancel()
        if self.handler is not None:
            self.handler.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if not self.admitted:
            return
        if self.handler is not None:
            self.handler.data_received(data)
        elif self._answering is not None:
            self._backlog.append(data)  # HTTP/1.1 answers in order: after this one
        elif not self._serve(data):
            self._hand_over()
            self.handler.data_received(data)

    def _serve(self, data: bytes) -> bool:
        """Answer ``data`` if it is one plain request; False to leave it to aiohttp."""
        head, found, body = data.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        if not found or lines[0] != b"POST / HTTP/1.1":
            return False
        length = -1
        for line in lines[1:]:
            name, colon, value = line.partition(b":")
            name = name.strip().lower()
            if not colon or name in _FOR_AIOHTTP:
                return False
            if name == b"connection" and value.strip().lower() != b"keep-alive":
                return False  # "close", "upgrade": aiohttp's to honour
            if name == b"content-length":
                value = value.strip()
                if not value.isdigit() or length != -1:
                    return False
                length = int(value)
        if length != len(body) or length > self.server.limits.max_body_bytes:
            return False
        methods, limits = self.server.methods, self.server.limits
        token = client_address.set(self.address)
        try:
            try:
                request = orjson.loads(body)
            except orjson.JSONDecodeError:
                request = None
            if isinstance(request, dict):
                answer = start_call(methods, request)
                if not isinstance(answer, Pending):
                    self._respond(None if answer is None else orjson.dumps(answer))
                    return True
                rest = answer.finish()
                waiting = self._encoded(rest)
            else:  # a batch, or not JSON: the general path
                waiting = serve_payload(methods, body, limits)
            self._answering = asyncio.get_running_loop().create_task(self._answer(waiting))
        finally:
            client_address.reset(token)
        return True

    @staticmethod
    async def _encoded(answer: Any) -> bytes | None:
        response = await answer
        return None if response is None else orjson.dumps(response)

    async def _answer(self, waiting: Any) -> None:
        try:
            payload = await waiting
        finally:
            self._answering = None
        if self.transport.is_closing():
            return
        self._respond(payload)
        if self._backlog:
            data, self._backlog = b"".join(self._backlog), []
            self.data_received(data)

    def _respond(self, payload: bytes | None) -> None:
        body = payload or b""
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
        self.transport.write(head % len(body) + body)
        self._idle_until = asyncio.get_running_loop().time() + self.server.limits.header_timeout

    def close(self) -> None:
        self.transport.close()

    def eof_received(self) -> bool | None:
        return self.handler.eof_received() if self.handler is not None else None

    def pause_writing(self) -> None:
        if self.handler is not None:
            self.handler.pause_writing()

    def resume_writing(self) -> None:
        if self.handler is not None:
            self.handler.resume_writing()


class Connection:
    """One WebSocket client: its outgoing queue and its subscriptions.

    Queues are bounded in bytes, each and all together: a client that does not read what
    it is sent (its TCP window full, its queue growing) is disconnected, its socket
    aborted and its queue dropped, rather than holding the node's memory. Past the bound
    on all queues, the client with the longest queue goes first."""

    def __init__(self, ws: web.WebSocketResponse, server: RpcServer, transport: Any) -> None:
        self.ws = ws
        self.server = server
        self.limits = server.limits
        self.transport = transport
        self.subscriptions: dict[str, Any] = {}
        self.queue: deque[bytes] = deque()
        self.queued_bytes = 0
        self.open = True
        self._ready = asyncio.Event()
        self.writer = asyncio.get_running_loop().create_task(self._write())
        self.requests: set[asyncio.Task] = set()

    def serve(self, methods: Methods, data: str | bytes) -> None:
        """Serve one message in its own task: requests begin in the order they came and
        answer as they finish, so a send waiting for its block holds up no other."""
        task = asyncio.get_running_loop().create_task(self._answer(methods, data))
        self.requests.add(task)
        task.add_done_callback(self.requests.discard)

    async def _answer(self, methods: Methods, data: str | bytes) -> None:
        payload = await serve_payload(methods, data, self.limits)
        if payload is not None:
            self.send(payload)

    def send(self, payload: bytes) -> None:
        if not self.open:
            return
        if self.queued_bytes + len(payload) > self.limits.max_ws_queue_bytes:
            self.drop()
            return
        self.queue.append(payload)
        self.queued_bytes += len(payload)
        self.server.ws_queued += len(payload)
        self._ready.set()
        while self.server.ws_queued > self.limits.max_ws_queue_total:
            max(self.server.connections, key=lambda c: c.queued_bytes).drop()

    def drop(self) -> None:
        """Disconnect a client that does not read, and forget what it was to be sent."""
        log.warning("websocket client too slow, disconnected queued_bytes=%d", self.queued_bytes)
        self.close()
        self.server.connections.discard(self)
        self.transport.abort()  # what the transport holds, too

    async def _write(self) -> None:
        while True:
            if not self.queue:
                self._ready.clear()
                await self._ready.wait()
                continue
            payload = self.queue.popleft()
            self.queued_bytes -= len(payload)
            self.server.ws_queued -= len(payload)
            try:
                await self.ws.send_str(payload.decode())
            except (ConnectionResetError, RuntimeError):
                self.close()
                return

    def close(self) -> None:
        self.open = False
        self.writer.cancel()
        for task in list(self.requests):
            task.cancel()
        self.subscriptions.clear()
        self.queue.clear()
        self.server.ws_queued -= self.queued_bytes
        self.queued_bytes = 0
