"""eth_call on a fresh Sibyl dev node: asked again, asked once, and eth_getBalance beside.

``bench/peers.py`` asks ``balanceOf`` of the same 272 holders round robin, so after the
first round every answer comes from the call memo (``chain.simulate.CallMemo``). This
bench tells the two costs apart, in one run on one node: ``repeated`` is peers.py's
request mix; ``distinct`` asks each request of a holder never asked before, so every
call runs the EVM; ``eth_getBalance`` (no EVM) is the baseline of the request path.
For each: requests/s with 16 clients and the node's CPU per request (all its threads,
from /proc), which a busy machine disturbs less than the rate. One JSON line each.

Usage: ``python bench/call_bench.py [--seconds S] [--rounds N]``.
"""

import argparse
import asyncio
import json
import statistics
import sys
from typing import Any

from eth_utils import keccak
from node_bench import balance_of_calls, get_balance_calls
from peers import QUICK, awaited, cpu_seconds, sign_transactions, start, stop
from rpc_client import encode_request, hammer

CLIENTS = 16
DISTINCT_HOLDERS = 60_000  # more requests than a round sends: no holder is asked twice


async def measure(seconds: float, rounds: int) -> list[dict[str, Any]]:
    txs = sign_transactions(QUICK)
    node = await start("sibyl")
    try:
        await awaited(node, txs.awaited[:6])  # the token and a few transfers
        repeated = balance_of_calls(txs.reads)
        txs.reads.holders = [keccak(b"call-bench-%d" % i)[12:] for i in range(DISTINCT_HOLDERS)]
        distinct = balance_of_calls(txs.reads)
        balances = get_balance_calls(txs.reads)
        port = node.http_port
        encoded = {
            "eth_call_repeated": [encode_request("127.0.0.1", port, b) for b in repeated],
            "eth_call_distinct": [encode_request("127.0.0.1", port, b) for b in distinct],
            "eth_getBalance": [encode_request("127.0.0.1", port, b) for b in balances],
        }
        await hammer("127.0.0.1", port, encoded["eth_call_repeated"], CLIENTS, 1.0)  # warm
        results: dict[str, list[tuple[float, float]]] = {name: [] for name in encoded}
        asked = 0  # distinct requests already sent: each round starts past them
        for _ in range(rounds):
            for name, requests in encoded.items():
                if name == "eth_call_distinct":
                    requests = requests[asked:]
                before = cpu_seconds(node.pid)
                ran = await hammer("127.0.0.1", port, requests, CLIENTS, seconds, warmup=0.0)
                cpu = cpu_seconds(node.pid) - before
                if name == "eth_call_distinct":
                    asked += ran["n"] + CLIENTS
                results[name].append((ran["req_per_s"], 1e6 * cpu / max(ran["n"], 1)))
    finally:
        stop(node)
    return [
        {
            "bench": "call",
            "figure": name,
            "req_per_s": round(statistics.median(rate for rate, _ in runs)),
            "node_cpu_us_per_req": round(statistics.median(cpu for _, cpu in runs)),
            "rounds": rounds,
            "clients": CLIENTS,
            "duration_s": seconds,
        }
        for name, runs in results.items()
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="per measurement")
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    for line in asyncio.run(measure(options.seconds, options.rounds)):
        print(json.dumps(line))
    return 0


if __name__ == "__main__":
    sys.exit(main())
