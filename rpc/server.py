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
import logging
from collections import deque
from collections.abc import Callable
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
        if asyncio.iscoroutine(result):
            result = await result
    except ParamError as exc:  # a handler that decodes a nested value itself
        return None if is_notification else _error(request_id, RpcError(INVALID_PARAMS, str(exc)))
    except Exception as exc:
        error = from_exception(exc)
        if error is None:
            log.exception("rpc handler failed method=%s", name)
            error = RpcError(INTERNAL_ERROR, f"internal error: {type(exc).__name__}")
        return None if is_notification else _error(request_id, error)
    return None if is_notification else {"jsonrpc": "2.0", "id": request_id, "result": result}


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
        # their block on an automining dev chain shares one block.
        answers = await asyncio.gather(*(call(methods, item) for item in request))
        responses = [r for r in answers if r is not None]
        return orjson.dumps(responses) if responses else None
    response = await call(methods, request)
    return None if response is None else orjson.dumps(response)


class RpcServer:
    """The public JSON-RPC endpoint (HTTP and WebSocket on one port)."""

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
        if self.runner is not None:
            await self.runner.cleanup()


class _Guard(asyncio.Protocol):
    """One TCP connection, counted against its address's limit before aiohttp's request
    handler (the protocol it hands everything to) sees it: a connection over the limit
    is dropped at once, so one address cannot take every file descriptor."""

    def __init__(self, server: RpcServer) -> None:
        self.server = server
        self.handler: Any = None  # made only for an admitted connection: refusing is cheap
        self.admitted = False
        self.address: str | None = None

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
        assert self.server.runner is not None and self.server.runner.server is not None
        self.handler = self.server.runner.server()
        self.handler.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.admitted:
            return
        counts = self.server.per_address
        counts[self.address] -= 1
        if not counts[self.address]:
            del counts[self.address]
        self.handler.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.admitted:
            self.handler.data_received(data)

    def eof_received(self) -> bool | None:
        return self.handler.eof_received() if self.admitted else None

    def pause_writing(self) -> None:
        if self.admitted:
            self.handler.pause_writing()

    def resume_writing(self) -> None:
        if self.admitted:
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
