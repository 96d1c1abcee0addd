"""Dispatch overhead of an AI call: node → sidecar → node, beside a raw gRPC round trip.

Measures, in one run on this machine:

* ``execute``: ``SidecarPool.execute`` on the dev MLP served by a real sidecar process
  (decode, inference, quantize, encode, sign on the sidecar; verify on the node);
* ``inference``: the same call run in-process (``Model.run``: decode, inference,
  quantize, encode), what a node would do without a sidecar;
* ``echo``: a unary gRPC echo of a same-sized payload to a server process built like
  the sidecar's (same server thread pool, same client channel options).

The dispatch overhead is ``execute pXX - inference p50``; its baseline is the echo p50
(target: overhead p50 ≤ 1.5 × echo p50). Batches of the three are interleaved so that
drift of the machine's speed touches all of them alike. Prints JSON lines.

Usage: ``python bench/sidecar_dispatch.py [--calls 3000] [--runtime torch|onnx]``.
"""

import argparse
import atexit
import json
import socket
import statistics
import subprocess
import sys
import time
from concurrent import futures
from pathlib import Path

import eth_abi
import grpc

from sidecars.abi import INFER_ADDRESS
from sidecars.attestation import sync_context
from sidecars.client import SidecarPool
from sidecars.config import dev_sidecar_specs
from sidecars.manager import SidecarManager
from sidecars.runtimes import load_model
from sidecars.server import SERVER_WORKERS

ECHO_METHOD = "/bench.Echo/Echo"
CHAIN_ID = 19183
BATCH = 100


def echo_server(port: int) -> None:
    """Serve a unary echo until killed: the raw gRPC baseline."""
    handler = grpc.method_handlers_generic_handler(
        "bench.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(lambda request, _: request)}
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=SERVER_WORKERS))
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    print("ready", flush=True)
    server.wait_for_termination()


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--runtime", choices=["torch", "onnx"], default="torch")
    parser.add_argument("--echo-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.echo_server:
        echo_server(args.echo_server)
        return

    spec = next(s for s in dev_sidecar_specs() if s.runtime == args.runtime)
    model = load_model(spec.runtime, spec.model, spec.model_id)
    data = encode_input(spec.model_id)
    context = sync_context(bytes(32), 0)

    pool = SidecarPool()
    manager = SidecarManager([spec], mode="process", owner="bench", pool=pool)
    manager.start()
    echo = start_echo(pool)
    try:
        payload = data + bytes(64)  # about the size of an Execute request
        samples: dict[str, list[float]] = {"execute": [], "inference": [], "echo": []}
        calls = {
            "execute": lambda: pool.execute(INFER_ADDRESS, spec.model_id, data, context, CHAIN_ID),
            "inference": lambda: model.run(INFER_ADDRESS, spec.model_id, data),
            "echo": lambda: echo(payload, timeout=10),
        }
        assert calls["execute"]().status == "ok"
        for _ in range(3):  # warm up every path
            for call in calls.values():
                measure(call, BATCH, [])
        for _ in range(max(1, args.calls // BATCH)):
            for name, call in calls.items():
                measure(call, BATCH, samples[name])
    finally:
        manager.stop()

    inference_p50 = statistics.median(samples["inference"])
    echo_p50 = statistics.median(samples["echo"])
    lines = [
        ("execute_p50_us", percentile(samples["execute"], 0.50)),
        ("execute_p99_us", percentile(samples["execute"], 0.99)),
        ("inference_p50_us", inference_p50),
        ("execute_overhead_p50_us", percentile(samples["execute"], 0.50) - inference_p50),
        ("execute_overhead_p99_us", percentile(samples["execute"], 0.99) - inference_p50),
    ]
    for metric, value in lines:
        print(
            json.dumps(
                {
                    "bench": "sidecar_dispatch",
                    "runtime": args.runtime,
                    "metric": metric,
                    "value": round(value * 1e6, 1),
                    "baseline": "grpc_echo_p50_us",
                    "baseline_value": round(echo_p50 * 1e6, 1),
                    "ratio": round(value / echo_p50, 3),
                    "calls": len(samples["execute"]),
                }
            )
        )


def encode_input(model_id: bytes) -> bytes:
    values = [10**6, 2 * 10**6, -(10**6), 5 * 10**5]
    return eth_abi.encode(
        ["bytes32", "int256[]", "uint32[]", "uint8"], [model_id, values, [1, 4], 6]
    )


def start_echo(pool: SidecarPool):
    """Start the echo server process and return its unary callable on a channel with
    the pool's options."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--echo-server", str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout.readline().strip() == "ready"
    channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=pool.channel_options())
    grpc.channel_ready_future(channel).result(timeout=10)
    atexit.register(process.kill)
    return channel.unary_unary(ECHO_METHOD)


def measure(call, count: int, into: list[float]) -> None:
    clock = time.perf_counter
    for _ in range(count):
        started = clock()
        call()
        into.append(clock() - started)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


if __name__ == "__main__":
    main()
