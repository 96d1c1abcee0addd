"""Ceilings for the read benchmarks: JSON-RPC servers that do no work.

* default: an aiohttp server on uvloop set up as the node's public server is
  (``web.Application`` + ``AppRunner`` + ``TCPSite``, no access log, orjson). Each POST
  body is parsed, the method looked up in a dict, and a constant result returned with
  the request's id. Requests/s against it, with the same load client and concurrency, is
  what the node could reach if its handlers (and its own dispatch) cost nothing.
* ``--raw``: a bare ``asyncio.Protocol`` on uvloop that answers every request with fixed
  bytes, no HTTP framework at all: the ceiling of the load client and the loopback
  network, which shows the benchmark is not bounded by its client.

Usage: ``python bench/echo_server.py PORT [--raw]`` (prints ``ready``, runs until killed).
"""

import asyncio
import sys

import orjson
import uvloop
from aiohttp import web

RESULTS = {"eth_getBalance": "0x0", "eth_call": "0x" + "00" * 32, "eth_chainId": "0x4aef"}
RAW_BODY = b'{"jsonrpc":"2.0","id":1,"result":"0x0"}'
RAW_RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
    % len(RAW_BODY)
) + RAW_BODY


async def handle(request: web.Request) -> web.Response:
    body = orjson.loads(await request.read())
    result = RESULTS.get(body.get("method"))
    response = {"jsonrpc": "2.0", "id": body.get("id"), "result": result}
    return web.Response(body=orjson.dumps(response), content_type="application/json")


class RawEcho(asyncio.Protocol):
    """Reads requests by Content-Length and answers each with the same bytes."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            head = self.buffer[:end].lower()
            start = head.find(b"content-length:") + 15
            stop = head.find(b"\r\n", start)
            total = end + 4 + int(head[start : stop if stop >= 0 else None])
            if len(self.buffer) < total:
                return
            self.buffer = self.buffer[total:]
            self.transport.write(RAW_RESPONSE)  # type: ignore[attr-defined]


async def serve(port: int, raw: bool) -> None:
    if raw:
        await asyncio.get_running_loop().create_server(RawEcho, "127.0.0.1", port, backlog=1024)
    else:
        app = web.Application()
        app.router.add_route("POST", "/", handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
    print("ready", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    uvloop.run(serve(int(sys.argv[1]), "--raw" in sys.argv[2:]))
