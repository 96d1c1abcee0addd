"""What an attacker on the public JSON-RPC port costs a well-behaved client.

One dev node (its own process, a real LMDB data dir). A good client on one keep-alive
HTTP connection asks ``eth_blockNumber`` over and over and records each latency; the
node's resident memory is sampled every 100 ms. First the good client runs alone (the
baseline, and the idle RSS); then beside each attacker in turn:

* ``max_gas_eth_call``: 4 connections looping ``eth_call`` of an endless loop with 50M
  gas (each stops at the node's time cap);
* ``never_reading_websockets``: 50 WebSocket clients subscribed to new heads that ask
  for a 128 KB answer four times a second and never read (each reconnects a second
  after the node drops it);
* ``filter_flood``: 4 connections installing pending-transaction filters back to back;
* ``slowloris``: 1,000 sockets sending request headers a byte a second.

Each line puts the good client's p50/p99 beside its baseline and the node's peak RSS
beside its idle RSS; targets: p99 at most 5x the baseline's, RSS at most 2x idle.
Nothing asserts: read the lines.
"""

import argparse
import asyncio
import base64
import json
import logging
import multiprocessing
import os
import resource
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import uvloop

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path[:0] = [str(BENCH), str(REPO / "tests")]

from nodes import DEV_KEYS, dev_node, rpc  # noqa: E402
from rpc_client import Connection, RpcFailure, encode_request, percentile, rpc_body  # noqa: E402

log = logging.getLogger("bench")

LOOP = "0x5b600056"  # JUMPDEST PUSH1 0 JUMP: loops until gas or time runs out
# init code deploying a contract whose every call returns 64 KiB of zeros
BIG_ANSWER_INIT = "0x600780600b6000396000f3" + "620100006000f3"
P99_TARGET_RATIO = 5.0
RSS_TARGET_RATIO = 2.0


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class Probe:
    """The good client and the RSS sampler, for one measured period."""

    def __init__(self, node: Any, connection: Connection) -> None:
        self.node = node
        self.connection = connection
        self.request = encode_request("127.0.0.1", node.http_port, rpc_body("eth_blockNumber", []))

    async def measure(self, seconds: float) -> dict[str, Any]:
        latencies: list[float] = []
        errors = 0
        peak = rss_bytes(self.node.proc.pid)
        end = time.monotonic() + seconds
        next_sample = 0.0
        while time.monotonic() < end:
            began = time.perf_counter()
            try:
                answer = json.loads(await asyncio.wait_for(self.connection.send(self.request), 30))
                if "result" not in answer:
                    errors += 1
            except (RpcFailure, OSError, TimeoutError):
                errors += 1
            latencies.append(time.perf_counter() - began)
            if time.monotonic() >= next_sample:
                peak = max(peak, rss_bytes(self.node.proc.pid))
                next_sample = time.monotonic() + 0.1
            await asyncio.sleep(0.005)
        latencies.sort()
        return {
            "n": len(latencies),
            "errors": errors,
            "p50_ms": round(percentile(latencies, 0.50) * 1000, 2),
            "p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
            "rss_peak_mb": round(peak / 2**20, 1),
        }


# the attackers: each runs until cancelled


async def max_gas_calls(port: int, _: dict[str, Any]) -> None:
    body = rpc_body("eth_call", [{"data": LOOP, "gas": hex(50_000_000)}, "latest"])
    request = encode_request("127.0.0.1", port, body)

    async def one() -> None:
        connection = await Connection("127.0.0.1", port).open()
        while True:
            await connection.send(request)

    await asyncio.gather(*(one() for _ in range(4)))


async def never_reading_websockets(port: int, setup: dict[str, Any]) -> None:
    call = {"jsonrpc": "2.0", "id": 1, "method": "eth_call",
            "params": [{"to": setup["big_answer"]}, "latest"]}  # fmt: skip
    frame = _frame(json.dumps(call))
    subscribe = _frame('{"jsonrpc":"2.0","id":2,"method":"eth_subscribe","params":["newHeads"]}')

    async def one() -> None:
        while True:
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.setblocking(False)
            await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
            reader, writer = await asyncio.open_connection(sock=sock, limit=4096)
            key = base64.b64encode(os.urandom(16)).decode()
            writer.write(
                f"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                f"Sec-WebSocket-Version: 13\r\n\r\n".encode()
            )
            try:
                await reader.readuntil(b"\r\n\r\n")  # then never read again
                writer.write(subscribe)
                while not writer.is_closing():
                    writer.write(frame)
                    await writer.drain()
                    await asyncio.sleep(0.25)
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                pass
            writer.transport.abort()
            await asyncio.sleep(1)

    await asyncio.gather(*(one() for _ in range(50)))


async def filter_flood(port: int, _: dict[str, Any]) -> None:
    request = encode_request("127.0.0.1", port, rpc_body("eth_newPendingTransactionFilter", []))

    async def one() -> None:
        connection = await Connection("127.0.0.1", port).open()
        while True:
            await connection.send(request)

    await asyncio.gather(*(one() for _ in range(4)))


async def slowloris(port: int, _: dict[str, Any]) -> None:
    async def one() -> None:
        while True:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                while not reader.at_eof():
                    await asyncio.sleep(1)
                    writer.write(b"X")
                    await writer.drain()
                writer.transport.abort()
            except (OSError, RuntimeError):  # refused, reset, or closed under it
                pass
            await asyncio.sleep(1)  # a dropped socket is opened again a second later

    await asyncio.gather(*(one() for _ in range(1000)))


def _frame(text: str) -> bytes:
    payload, mask = text.encode(), os.urandom(4)
    size = len(payload)
    header = bytes([0x81, 0x80 | size]) if size < 126 else bytes([0x81, 0xFE]) + size.to_bytes(2)
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


ATTACKS: dict[str, Callable[[int, dict[str, Any]], Awaitable[None]]] = {
    "max_gas_eth_call": max_gas_calls,
    "never_reading_websockets": never_reading_websockets,
    "filter_flood": filter_flood,
    "slowloris": slowloris,
}


def _attack(name: str, port: int, setup: dict[str, Any]) -> None:
    uvloop.run(ATTACKS[name](port, setup))


def deploy_big_answer(url: str) -> str:
    sender = rpc(url, "eth_accounts")["result"][0]
    tx_hash = rpc(url, "eth_sendTransaction", [{"from": sender, "data": BIG_ANSWER_INIT}])["result"]
    while (receipt := rpc(url, "eth_getTransactionReceipt", [tx_hash])["result"]) is None:
        time.sleep(0.1)
    answer = rpc(url, "eth_call", [{"to": receipt["contractAddress"]}, "latest"])["result"]
    assert len(answer) == 2 + 2 * 65536, answer[:100]
    return receipt["contractAddress"]


async def measure(node: Any, attacks: list[str], seconds: float, settle: float) -> list[dict]:
    setup = {"big_answer": deploy_big_answer(node.url)}
    good = await Connection("127.0.0.1", node.http_port).open()
    probe = Probe(node, good)
    await probe.measure(1.0)  # warm up
    idle_rss = rss_bytes(node.proc.pid)
    baseline = await probe.measure(seconds)
    log.info("baseline %s idle_rss_mb=%.1f", baseline, idle_rss / 2**20)
    lines = []
    for name in attacks:
        dropped_before = node.log().count("websocket client too slow")
        # its own process: an attacker on the good client's event loop would slow it
        attacker = multiprocessing.get_context("spawn").Process(
            target=_attack, args=(name, node.http_port, setup), daemon=True
        )
        attacker.start()
        await asyncio.sleep(1.5)  # let it start
        under = await probe.measure(seconds)
        attacker.kill()  # and everything it holds open with it
        attacker.join()
        log.info("%s %s", name, under)
        dropped = node.log().count("websocket client too slow") - dropped_before
        p99_ratio = under["p99_ms"] / baseline["p99_ms"]
        rss_ratio = under["rss_peak_mb"] / (idle_rss / 2**20)
        lines.append({
            "bench": "attack", "attack": name, "seconds": seconds,
            "good_p50_ms": under["p50_ms"], "good_p99_ms": under["p99_ms"],
            "good_requests": under["n"], "good_errors": under["errors"],
            "baseline_p50_ms": baseline["p50_ms"], "baseline_p99_ms": baseline["p99_ms"],
            "p99_ratio": round(p99_ratio, 2), "target_p99_ratio": P99_TARGET_RATIO,
            "rss_idle_mb": round(idle_rss / 2**20, 1), "rss_peak_mb": under["rss_peak_mb"],
            "rss_ratio": round(rss_ratio, 2), "target_rss_ratio": RSS_TARGET_RATIO,
            "slow_websockets_dropped": dropped,
            "meets_target": p99_ratio <= P99_TARGET_RATIO and rss_ratio <= RSS_TARGET_RATIO
            and under["errors"] == 0,
        })  # fmt: skip
        await asyncio.sleep(settle)  # let the node drop what the attacker left
    good.close()
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per period")
    parser.add_argument("--quick", action="store_true", help="3 s periods (CI smoke run)")
    parser.add_argument("--only", choices=sorted(ATTACKS), action="append", help="attacks to run")
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s"
    )
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4096)), hard))
    seconds = 3.0 if args.quick else args.duration
    root = Path(tempfile.mkdtemp(prefix="sibyl-attack-"))
    node = dev_node(root / "data")
    try:
        assert rpc(node.url, "eth_accounts")["result"], DEV_KEYS[0]
        attacks = args.only or list(ATTACKS)
        for line in uvloop.run(measure(node, attacks, seconds, settle=5.0)):
            print(json.dumps(line), flush=True)
    finally:
        node.kill()
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
