"""Memory and start-up of the dev default's sidecars, beside one process per model.

Starts the bundled dev models as ``sibyl run --dev`` does (one process, ``dev``:
:func:`sidecars.config.dev_default_specs`) and, as the baseline of the same run, as one
process per model (:func:`sidecars.config.dev_sidecar_specs`, the layout before), each
with the real :class:`~sidecars.manager.SidecarManager`. For each layout: seconds until
every sidecar is healthy, then RSS and PSS of the sidecar processes idle, after ``--calls``
calls of every model but the LLM (INFER on the torch, onnx and ZK MLPs, EMBED), and again
after as many LLM jobs, so that lazily touched pages (the embedding weights are mapped
from their file), what the calls allocate and the LLM's load on its first job (it brings
transformers) are each counted. The node is not started: add its own figure
(``bench/peers.py``'s ``rss_idle_mb``) for the total.

Prints one JSON line per figure; logs go to stderr.

Usage: ``python bench/sidecar_memory.py [--calls N] [--layout dev|per-model|both]``.
"""

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import eth_abi
from eth_hash.auto import keccak

from sidecars.abi import EMBED_ADDRESS, INFER_ADDRESS, LLM_ADDRESS, LLM_INPUT_TYPES
from sidecars.attestation import sync_context
from sidecars.config import SidecarSpec, dev_default_specs, dev_sidecar_specs
from sidecars.manager import SidecarManager

CHAIN_ID = 19183
log = logging.getLogger("bench.sidecar_memory")


def call_input(runtime: str, model_id: bytes, index: int) -> tuple[bytes, bytes]:
    """The precompile and an input for one call of a ``runtime`` model."""
    if runtime == "embed":
        text = f"sibyl memory bench sentence number {index}"
        return EMBED_ADDRESS, eth_abi.encode(["bytes32", "string", "uint8"], [model_id, text, 6])
    if runtime == "llm":
        messages = json.dumps([{"role": "user", "content": f"question {index} ?"}])
        values = [model_id, messages, 8, 0, 0, b"\x01\x02\x03\x04", 100_000, 10]
        return LLM_ADDRESS, eth_abi.encode(LLM_INPUT_TYPES, values)
    values = [index * 1000, -index * 500, 10**6, 7]
    return INFER_ADDRESS, eth_abi.encode(
        ["bytes32", "int256[]", "uint32[]", "uint8"], [model_id, values, [1, 4], 6]
    )


def call_models(manager: SidecarManager, specs: list[SidecarSpec], calls: int, llm: bool) -> None:
    """``calls`` calls of every LLM model (``llm``) or of every other one."""
    pool = manager.pool
    models = [served for spec in specs for served in spec.models]
    for index in range(calls):
        for served in (served for served in models if (served.runtime == "llm") == llm):
            precompile, data = call_input(served.runtime, served.model_id, index)
            if served.runtime == "llm":  # a job: submitted, then polled until done
                job = (keccak(b"memory bench job %d" % index), precompile, served.model_id, data)
                queued = pool.submit(*job, CHAIN_ID)
                assert queued.status == "ok", queued.error
                while (result := pool.result(*job, CHAIN_ID)).status == "pending":
                    time.sleep(0.05)
            else:
                context = sync_context(keccak(b"memory bench %d" % index), 0)
                result = pool.execute(precompile, served.model_id, data, context, CHAIN_ID)
            assert result.status == "ok", f"{served.runtime}: {result.error}"


def memory_mb(pids: list[int], field: str) -> float:
    """``field`` (``Rss`` or ``Pss``) of smaps_rollup summed over ``pids``, in MB."""
    total_kb = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith(field + ":"):
                total_kb += int(line.split()[1])
    return round(total_kb / 1024, 1)


def measure(layout: str, specs: list[SidecarSpec], calls: int) -> list[dict]:
    with tempfile.TemporaryDirectory(prefix="sibyl-sidecar-memory-") as log_dir:
        manager = SidecarManager(specs, "process", owner="bench", log_dir=Path(log_dir))
        started = time.perf_counter()
        manager.start(wait=True)
        try:
            healthy_s = time.perf_counter() - started
            pids = [managed.process.pid for managed in manager._sidecars]
            time.sleep(2.0)
            idle = {field: memory_mb(pids, field) for field in ("Rss", "Pss")}
            call_models(manager, specs, calls, llm=False)
            time.sleep(2.0)
            but_llm = {field: memory_mb(pids, field) for field in ("Rss", "Pss")}
            call_models(manager, specs, calls, llm=True)
            time.sleep(2.0)
            after = {field: memory_mb(pids, field) for field in ("Rss", "Pss")}
        finally:
            manager.stop()
    common = {
        "bench": "sidecar_memory",
        "layout": layout,
        "processes": len(specs),
        "models": sum(len(spec.models) for spec in specs),
        "loadavg_1m": round(os.getloadavg()[0], 2),
    }
    return [
        {**common, "metric": "sidecars_healthy_s", "value": round(healthy_s, 2)},
        {**common, "metric": "sidecars_rss_idle_mb", "value": idle["Rss"]},
        {**common, "metric": "sidecars_pss_idle_mb", "value": idle["Pss"]},
        {
            **common,
            "metric": "sidecars_rss_after_calls_but_llm_mb",
            "value": but_llm["Rss"],
            "calls": calls,
        },
        {
            **common,
            "metric": "sidecars_pss_after_calls_but_llm_mb",
            "value": but_llm["Pss"],
            "calls": calls,
        },
        {**common, "metric": "sidecars_rss_after_calls_mb", "value": after["Rss"], "calls": calls},
        {**common, "metric": "sidecars_pss_after_calls_mb", "value": after["Pss"], "calls": calls},
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=5, help="calls of every model")
    parser.add_argument("--layout", choices=["dev", "per-model", "both"], default="both")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    layouts = {"dev": dev_default_specs(), "per-model": dev_sidecar_specs()}
    chosen = list(layouts) if args.layout == "both" else [args.layout]
    for layout in chosen:
        for line in measure(layout, layouts[layout], args.calls):
            print(json.dumps(line), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
