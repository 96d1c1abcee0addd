"""A JSON-RPC peer for followers under attack: it forwards everything to a real node,
but can claim its chain ends at a given height and serve a forged block there. With it,
what the attack tests share: forging a block's transactions, reading why a follower
rejected a block."""

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import rlp
from nodes import NodeProcess, free_port, rpc

from chain.trie.root import ordered_trie_root

REJECTED = re.compile(r"block rejected number=(\d+) hash=0x([0-9a-f]{64}) reason=(.*)")


def with_transactions(block, transactions: list):
    """The block holding ``transactions`` instead, its transaction root recomputed."""
    root = ordered_trie_root([tx.encode() for tx in transactions])
    return block.copy(header=block.header.copy(transaction_root=root), transactions=transactions)


def rejection(follower: NodeProcess, number: int, block_hash: bytes) -> str | None:
    for line in follower.log().splitlines():
        match = REJECTED.search(line)
        if match and int(match[1]) == number and match[2] == block_hash.hex():
            return match[3]
    return None


def hexstr(value: bytes) -> str:
    return "0x" + value.hex()


class FakePeer:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.serving: tuple[int | None, Any] = (None, None)  # (height, forged block)
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if isinstance(request, list):
                    reply: Any = [peer.answer(item) for item in request]
                else:
                    reply = peer.answer(request)
                body = json.dumps(reply).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def serve(self, height: int | None, forged: Any = None) -> None:
        """Claim the chain ends at ``height`` (None: wherever the real node's ends), with
        ``forged`` (a block) there if given."""
        self.serving = (height, forged)

    def answer(self, request: dict) -> dict:
        height, forged = self.serving
        method, params = request.get("method"), request.get("params") or []
        reply = {"jsonrpc": "2.0", "id": request.get("id")}
        if height is not None and method == "eth_blockNumber":
            return reply | {"result": hex(height)}
        numbered = params and isinstance(params[0], str) and params[0].startswith("0x")
        if (
            height is not None
            and numbered
            and method in ("debug_getRawBlock", "eth_getBlockByNumber")
        ):
            number = int(params[0], 16)
            if number > height:
                return reply | {"error": {"code": -32000, "message": "header not found"}}
            if number == height and forged is not None:
                if method == "debug_getRawBlock":
                    return reply | {"result": hexstr(rlp.encode(forged))}
                block = rpc(self.upstream, method, params)["result"]
                return reply | {"result": block | {"hash": hexstr(forged.header.hash)}}
        return rpc(self.upstream, method, params) | {"id": request.get("id")}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
