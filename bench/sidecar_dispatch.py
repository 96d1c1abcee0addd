"""Dispatch overhead of an AI call: node → sidecar → node, beside gRPC echo round trips.

Measures, in one run on this machine:

* ``execute``: ``SidecarPool.execute`` on the dev MLP served by a real sidecar process
  (decode, inference, quantize, encode, sign on the sidecar; verify on the node);
* ``inference``: the same call run in-process (``Model.run``: decode, inference,
  quantize, encode), what a node would do without a sidecar;
* ``echo``: a unary gRPC echo of a same-sized payload to a server process built like
  the sidecar's (same server thread pool, same client channel options);
* ``signed_echo``: the same echo, but the server signs its reply with the sidecar's own
  executor key and the client recovers the signer and compares it, over a digest of the
  same shape (:func:`~sidecars.attestation.attestation_digest` of the request and the
  reply): the least a round trip costs under the protocol, which requires a signature
  and its recovery on every result.

The dispatch overhead is ``execute pXX - inference p50``. Its baseline is the signed
echo's p50 (targets: overhead p50 ≤ 1.2 ×, p99 ≤ 2 × that); the lines against the
unsigned echo's p50 are kept beside them. Batches of the four are interleaved so that
drift of the machine's speed touches all of them alike. Prints JSON lines.

``inference`` runs back to back, with the model's code and data in the caches, while the
sidecar runs each call after a round trip has run other code. So one more line,
``inference_after_round_trip_p50_us``, times the same in-process call each right after an
(untimed) echo round trip, in batches of its own: what the model costs in the state a
served call finds the CPU in. It is reported only; the overhead and its targets subtract
the back-to-back figure.

Wall-clock figures on a shared machine move with its load, so two more lines, reported
only, give the CPU time each call costs: ``execute_cpu_us_per_call`` (the calling
thread's CPU, from ``time.thread_time``, plus the sidecar process's, from /proc, which
also holds its few answers to the manager's health checks) and
``signed_echo_cpu_us_per_call`` (the same for the signed echo and its server process).

Usage: ``python bench/sidecar_dispatch.py [--calls 3000] [--runtime torch|onnx]``.
"""

import argparse
import atexit
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import eth_abi
import grpc

from sidecars.abi import INFER_ADDRESS
from sidecars.attestation import (
    attestation_digest,
    keccak,
    recover_signer,
    sign_digest,
    signing_key,
    sync_context,
)
from sidecars.client import SidecarPool
from sidecars.config import dev_sidecar_specs
from sidecars.keys import load_key
from sidecars.manager import SidecarManager
from sidecars.runtimes import load_model
from sidecars.server import server_thread_pool

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from nodes import free_port  # noqa: E402

ECHO_METHOD = "/bench.Echo/Echo"
CHAIN_ID = 19183
BATCH = 100
SIGNATURE_BYTES = 65
OVERHEAD_P50_TARGET = 1.2  # × signed echo p50
OVERHEAD_P99_TARGET = 2.0


# the context of every call, computed once as the node does before its call reaches a
# sidecar: the echo hashes what the protocol makes a sidecar and its client hash, no more
CONTEXT = sync_context(bytes(32), 0)


def echo_digest(request: bytes, output: bytes) -> bytes:
    """What the signed echo signs: an attestation digest over its request and reply."""
    return attestation_digest(
        CHAIN_ID, INFER_ADDRESS, bytes(32), keccak(request), keccak(output), CONTEXT
    )


def echo_server(port: int, key_file: Path | None) -> None:
    """Serve a unary echo until killed: the raw gRPC baseline, or with ``key_file`` the
    signed one (the reply is the request followed by the signature over both)."""
    if key_file is None:
        echo = lambda request, _: request  # noqa: E731
    else:
        key = signing_key(load_key(key_file))

        def echo(request: bytes, _) -> bytes:
            return request + sign_digest(key, echo_digest(request, request))

    handler = grpc.method_handlers_generic_handler(
        "bench.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(echo)}
    )
    server = grpc.server(server_thread_pool())
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
    parser.add_argument("--signed-by", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.echo_server:
        echo_server(args.echo_server, args.signed_by)
        return

    spec = next(s for s in dev_sidecar_specs() if s.runtime == args.runtime)
    model = load_model(spec.runtime, spec.model, spec.model_id)
    data = encode_input(spec.model_id)

    pool = SidecarPool()
    manager = SidecarManager([spec], mode="process", owner="bench", pool=pool)
    manager.start()
    echo, _ = start_echo(pool)
    signed_echo, signed_echo_pid = start_echo(pool, spec.executor_key)
    executor = load_key(spec.executor_key).public_key.to_canonical_address()

    def signed_call(payload: bytes) -> None:
        reply = signed_echo(payload, timeout=10)
        output, signature = reply[:-SIGNATURE_BYTES], reply[-SIGNATURE_BYTES:]
        if recover_signer(echo_digest(payload, output), signature) != executor:
            raise RuntimeError("the signed echo's reply is not signed by the executor key")

    try:
        payload = data + bytes(64)  # about the size of an Execute request
        samples: dict[str, list[float]] = {
            "execute": [], "inference": [], "echo": [], "signed_echo": [], "inference_after": []
        }  # fmt: skip
        calls = {
            "execute": lambda: pool.execute(INFER_ADDRESS, spec.model_id, data, CONTEXT, CHAIN_ID),
            "inference": lambda: model.run(INFER_ADDRESS, spec.model_id, data),
            "echo": lambda: echo(payload, timeout=10),
            "signed_echo": lambda: signed_call(payload),
        }
        assert calls["execute"]().status == "ok"
        for _ in range(3):  # warm up every path
            for call in calls.values():
                measure(call, BATCH, [])
        servers = {"execute": sidecar_pid(), "signed_echo": signed_echo_pid}
        server_cpu = {name: -process_cpu_seconds(pid) for name, pid in servers.items()}
        client_cpu = {name: 0.0 for name in servers}
        for _ in range(max(1, args.calls // BATCH)):
            for name, call in calls.items():
                started = time.thread_time()
                measure(call, BATCH, samples[name])
                if name in client_cpu:
                    client_cpu[name] += time.thread_time() - started
            measure(calls["inference"], BATCH, samples["inference_after"], calls["echo"])
        for name, pid in servers.items():
            server_cpu[name] += process_cpu_seconds(pid)
    finally:
        manager.stop()

    inference_p50 = statistics.median(samples["inference"])
    echo_p50 = statistics.median(samples["echo"])
    signed_p50 = statistics.median(samples["signed_echo"])
    overhead_p50 = percentile(samples["execute"], 0.50) - inference_p50
    overhead_p99 = percentile(samples["execute"], 0.99) - inference_p50
    lines = [
        ("execute_p50_us", percentile(samples["execute"], 0.50)),
        ("execute_p99_us", percentile(samples["execute"], 0.99)),
        ("inference_p50_us", inference_p50),
        ("inference_after_round_trip_p50_us", statistics.median(samples["inference_after"])),
        ("execute_overhead_p50_us", overhead_p50),
        ("execute_overhead_p99_us", overhead_p99),
        ("signed_echo_p50_us", signed_p50),
        ("signed_echo_p99_us", percentile(samples["signed_echo"], 0.99)),
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
    # reported only: CPU time per call, client thread and server process together
    calls_made = len(samples["execute"])
    cpu = {name: (client_cpu[name] + server_cpu[name]) / calls_made for name in servers}
    for name in servers:
        print(
            json.dumps(
                {
                    "bench": "sidecar_dispatch",
                    "runtime": args.runtime,
                    "metric": f"{name}_cpu_us_per_call",
                    "value": round(cpu[name] * 1e6, 1),
                    "client_us": round(client_cpu[name] / calls_made * 1e6, 1),
                    "server_us": round(server_cpu[name] / calls_made * 1e6, 1),
                    "baseline": "signed_echo_cpu_us_per_call",
                    "baseline_value": round(cpu["signed_echo"] * 1e6, 1),
                    "ratio": round(cpu[name] / cpu["signed_echo"], 3),
                    "calls": calls_made,
                }
            )
        )
    # the restated target: the overhead against the echo that signs and is verified
    for metric, value, target in (
        ("execute_overhead_p50_us", overhead_p50, OVERHEAD_P50_TARGET),
        ("execute_overhead_p99_us", overhead_p99, OVERHEAD_P99_TARGET),
    ):
        print(
            json.dumps(
                {
                    "bench": "sidecar_dispatch",
                    "runtime": args.runtime,
                    "metric": metric,
                    "value": round(value * 1e6, 1),
                    "baseline": "signed_grpc_echo_p50_us",
                    "baseline_value": round(signed_p50 * 1e6, 1),
                    "ratio": round(value / signed_p50, 3),
                    "target_ratio": target,
                    "meets_target": value / signed_p50 <= target,
                    "calls": len(samples["execute"]),
                }
            )
        )


def encode_input(model_id: bytes) -> bytes:
    values = [10**6, 2 * 10**6, -(10**6), 5 * 10**5]
    return eth_abi.encode(
        ["bytes32", "int256[]", "uint32[]", "uint8"], [model_id, values, [1, 4], 6]
    )


def start_echo(pool: SidecarPool, signed_by: Path | None = None):
    """Start an echo server process (signing with the key file ``signed_by``, if given)
    and return its unary callable on a channel with the pool's options, and its pid."""
    port = free_port()
    signing = ["--signed-by", str(signed_by)] if signed_by is not None else []
    process = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--echo-server", str(port), *signing],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout.readline().strip() == "ready"
    channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=pool.channel_options())
    grpc.channel_ready_future(channel).result(timeout=10)
    atexit.register(process.kill)
    return channel.unary_unary(ECHO_METHOD), process.pid


def sidecar_pid() -> int:
    """The pid of the sidecar process this process's manager started."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            command = (stat.parent / "cmdline").read_bytes()
        except (OSError, ValueError):
            continue  # gone meanwhile
        if parent == os.getpid() and b"sidecars.serve" in command:
            return int(stat.parent.name)
    raise RuntimeError("the sidecar process is not a child of this process")


def process_cpu_seconds(pid: int) -> float:
    """User plus system CPU time of process ``pid`` so far (Linux /proc; fields 14, 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(call, count: int, into: list[float], before=None) -> None:
    """Time ``count`` calls of ``call`` into ``into``, each after an untimed ``before()``
    if given."""
    clock = time.perf_counter
    for _ in range(count):
        if before is not None:
            before()
        started = clock()
        call()
        into.append(clock() - started)


if __name__ == "__main__":
    main()
