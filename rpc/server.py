"""The JSON-RPC server: HTTP POST and WebSocket on one port, batches, limits, CORS.

Requests are decoded with orjson, dispatched to the handler that declares the method
(see :mod:`rpc.params`), and every failure becomes a JSON-RPC error object: a bug in a
handler is logged with its traceback here and reaches the client only as ``-32603``.
Limits protect the node from a single client: request body size, batch length and
subscriptions per WebSocket connection.
"""

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from chain.config import RpcConfig
from rpc.errors import (
    INTERNAL_ERROR,
    INVALID_REQUEST,
    LIMIT_EXCEEDED,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
    RpcError,
    from_exception,
)
from rpc.params import decode_params

log = logging.getLogger("sibyl.rpc")

Methods = dict[str, Callable[..., Any]]


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
        self.app = web.Application(client_max_size=limits.max_body_bytes, middlewares=[self._cors])
        self.app.router.add_route("*", "/", self.handle)
        self.runner: web.AppRunner | None = None

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
        if request.method == "GET" and request.headers.get("Upgrade", "").lower() == "websocket":
            return await self.handle_ws(request)
        if request.method == "GET":
            return web.Response(text="sibyl JSON-RPC: POST requests or WebSocket\n")
        if request.method != "POST":
            return web.Response(status=405, text="method not allowed\n")
        if (request.content_length or 0) > self.limits.max_body_bytes:
            return self._too_large()
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return self._too_large()
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
        connection = Connection(ws, self.limits)
        methods = dict(self.methods)
        if self.ws_methods is not None:
            methods.update(self.ws_methods(connection))
        self.connections.add(connection)
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT or message.type == WSMsgType.BINARY:
                    connection.serve(methods, message.data)
                elif message.type == WSMsgType.ERROR:
                    break
        finally:
            self.connections.discard(connection)
            connection.close()
        return ws

    async def start(self, host: str, port: int) -> None:
        self.runner = web.AppRunner(self.app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, host, port, backlog=1024).start()

    async def stop(self) -> None:
        for connection in list(self.connections):
            await connection.ws.close()
        if self.runner is not None:
            await self.runner.cleanup()


class Connection:
    """One WebSocket client: its outgoing queue and its subscriptions."""

    MAX_QUEUED = 10_000

    def __init__(self, ws: web.WebSocketResponse, limits: RpcConfig) -> None:
        self.ws = ws
        self.limits = limits
        self.subscriptions: dict[str, Any] = {}
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()
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
        if self.queue.qsize() >= self.MAX_QUEUED:
            log.warning("websocket client too slow, closing connection")
            self.writer.cancel()
            asyncio.get_running_loop().create_task(self.ws.close())
            return
        self.queue.put_nowait(payload)

    async def _write(self) -> None:
        while True:
            payload = await self.queue.get()
            try:
                await self.ws.send_str(payload.decode())
            except (ConnectionResetError, RuntimeError):
                return

    def close(self) -> None:
        self.writer.cancel()
        for task in list(self.requests):
            task.cancel()
        self.subscriptions.clear()
