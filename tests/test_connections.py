"""Clients that hold connections open cannot exhaust the node: headers and bodies that
arrive too slowly are cut off, one address holds a bounded number of connections and
filters, and a WebSocket client that never reads is disconnected and forgotten."""

import base64
import http.client
import json
import os
import socket
import time

import pytest
from nodes import dev_node, rpc

LIMITS = {
    "header_timeout": 1.0,
    "body_timeout": 1.0,
    "max_connections_per_ip": 40,
    "max_ws_queue_bytes": 4_000_000,
    "max_filters_per_ip": 100,
}
LOOP = "0x5b600056"  # init code that loops: traced with 200k gas, a 4 MB response


@pytest.fixture(scope="module")
def limited(tmp_path_factory):
    root = tmp_path_factory.mktemp("limited")
    config = root / "node.toml"
    config.write_text("[rpc]\n" + "".join(f"{k} = {v}\n" for k, v in LIMITS.items()))
    process = dev_node(root / "data", "--config", str(config))
    yield process
    process.kill()


def closed_by_peer(sock: socket.socket, within: float) -> bool:
    """Whether the node closes ``sock`` before ``within`` seconds pass (reading it)."""
    sock.settimeout(0.2)
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            if sock.recv(1 << 16) == b"":
                return True
        except TimeoutError:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return True
    return False


def test_headers_sent_a_byte_at_a_time_are_cut_off(limited):
    sock = socket.create_connection(("127.0.0.1", limited.http_port))
    sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\n")
    closed = False
    for _ in range(40):
        try:
            sock.sendall(b"X")
        except (BrokenPipeError, ConnectionResetError):
            closed = True
            break
        if closed_by_peer(sock, 0.25):
            closed = True
            break
    sock.close()
    assert closed
    assert "result" in rpc(limited.url, "eth_blockNumber")


def test_a_body_sent_too_slowly_is_refused(limited):
    sock = socket.create_connection(("127.0.0.1", limited.http_port))
    sock.sendall(
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000\r\n\r\n{"
    )
    sock.settimeout(10)
    answer = sock.recv(1 << 16)
    sock.close()
    assert answer.startswith(b"HTTP/1.1 408")


def test_connections_beyond_the_per_address_limit_are_dropped_and_others_served(limited):
    kept = http.client.HTTPConnection("127.0.0.1", limited.http_port, timeout=10)
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []})

    def ask() -> dict:
        kept.request("POST", "/", body=body, headers={"Content-Type": "application/json"})
        return json.loads(kept.getresponse().read())

    assert "result" in ask()
    idle = [socket.create_connection(("127.0.0.1", limited.http_port)) for _ in range(60)]
    try:
        dropped = sum(closed_by_peer(sock, 0.3) for sock in idle[-20:])
        assert dropped == 20
        assert "result" in ask()  # the connection held before still works
    finally:
        for sock in idle:
            sock.close()
    time.sleep(0.5)
    assert "result" in rpc(limited.url, "eth_chainId")  # and new ones once the others left


def raw_websocket(port: int) -> socket.socket:
    """A WebSocket connection that will never read what it is sent."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    reply = b""
    while b"\r\n\r\n" not in reply:
        reply += sock.recv(1)
    assert reply.startswith(b"HTTP/1.1 101")
    return sock


def frame(text: str) -> bytes:
    payload, mask = text.encode(), os.urandom(4)
    size = len(payload)
    header = bytes([0x81, 0x80 | size]) if size < 126 else bytes([0x81, 0xFE]) + size.to_bytes(2)
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def test_a_websocket_client_that_never_reads_is_disconnected(limited):
    sock = raw_websocket(limited.http_port)
    call = {"data": LOOP, "gas": hex(200_000)}
    params = [call, "latest", {"disableStack": True}]
    request = {"jsonrpc": "2.0", "id": 1, "method": "debug_traceCall", "params": params}
    disconnected = False
    for _ in range(20):
        try:
            sock.sendall(frame(json.dumps(request)))
        except (BrokenPipeError, ConnectionResetError):
            disconnected = True
            break
        time.sleep(0.2)
    disconnected = disconnected or closed_by_peer(sock, 30)
    sock.close()
    assert disconnected
    assert "websocket client too slow, disconnected" in limited.log()
    assert "result" in rpc(limited.url, "eth_blockNumber")


def test_a_client_address_holds_a_bounded_number_of_filters(limited):
    url = limited.url
    installed = [rpc(url, "eth_newPendingTransactionFilter")["result"] for _ in range(100)]
    refused = rpc(url, "eth_newBlockFilter")
    assert refused["error"] == {"code": -32005, "message": "too many filters: limit 100 per client"}
    assert rpc(url, "eth_uninstallFilter", [installed.pop()])["result"] is True
    installed.append(rpc(url, "eth_newBlockFilter")["result"])
    assert rpc(url, "eth_getFilterChanges", [installed[0]])["result"] == []
    for filter_id in installed:
        assert rpc(url, "eth_uninstallFilter", [filter_id])["result"] is True


def _answers(sock: socket.socket, count: int) -> list[bytes]:
    """``count`` HTTP responses read from ``sock``: their bodies, in order."""
    sock.settimeout(10)
    data, bodies = b"", []
    while len(bodies) < count:
        head, found, rest = data.partition(b"\r\n\r\n")
        if found:
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            if len(rest) >= length:
                bodies.append(rest[:length])
                data = rest[length:]
                continue
        chunk = sock.recv(1 << 16)
        assert chunk, "connection closed before the answers came"
        data += chunk
    return bodies


def _post(body: bytes, extra: bytes = b"") -> bytes:
    return (
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + extra
        + b"Content-Length: %d\r\n\r\n" % len(body) + body
    )  # fmt: skip


def test_requests_on_one_connection_are_answered_in_order_however_they_arrive(limited):
    """Whole, split across reads, pipelined, batched, waiting for the chain: each gets
    its answer, in the order sent, on one keep-alive connection."""
    chain_id = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}).encode()
    number = json.dumps({"jsonrpc": "2.0", "id": 2, "method": "eth_blockNumber"}).encode()
    batch = json.dumps([{"jsonrpc": "2.0", "id": 3, "method": "eth_chainId"}]).encode()
    call = {"to": "0x" + "00" * 20, "data": "0x"}
    awaited = json.dumps(
        {"jsonrpc": "2.0", "id": 4, "method": "eth_call", "params": [call, "latest"]}
    ).encode()
    sock = socket.create_connection(("127.0.0.1", limited.http_port))
    sock.sendall(_post(chain_id, b"Connection: keep-alive\r\n"))
    assert json.loads(_answers(sock, 1)[0])["id"] == 1
    request = _post(awaited)
    sock.sendall(request[:30])
    time.sleep(0.1)
    sock.sendall(request[30:])
    assert json.loads(_answers(sock, 1)[0]) == {"jsonrpc": "2.0", "id": 4, "result": "0x"}
    sock.sendall(_post(awaited) + _post(number) + _post(batch) + _post(b"{nope"))
    answers = [json.loads(body) for body in _answers(sock, 4)]
    sock.close()
    assert [a["id"] if isinstance(a, dict) else a[0]["id"] for a in answers] == [4, 2, 3, None]
    assert answers[3]["error"]["code"] == -32700


def test_a_browser_request_gets_its_cors_headers(limited):
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}).encode()
    connection = http.client.HTTPConnection("127.0.0.1", limited.http_port, timeout=10)
    connection.request("POST", "/", body, {"Origin": "http://localhost:3000"})
    response = connection.getresponse()
    assert json.loads(response.read())["id"] == 1
    assert response.getheader("Access-Control-Allow-Origin") == "http://localhost:3000"
    connection.close()


def test_an_idle_keep_alive_connection_is_closed_after_the_header_timeout(limited):
    sock = socket.create_connection(("127.0.0.1", limited.http_port))
    sock.sendall(_post(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}).encode()))
    assert json.loads(_answers(sock, 1)[0])["id"] == 1
    assert closed_by_peer(sock, LIMITS["header_timeout"] + 4)
    sock.close()
