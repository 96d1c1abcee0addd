"""The metrics endpoint (``--metrics-port``): Prometheus text format at ``/metrics``.

What an operator watches: the head, the pool, every sidecar's calls, failures, timeouts
and circuit-breaker state, invalid blocks seen, and disagreements found by re-running a
sample of attested AI calls (the hook for slashing).
"""

from collections.abc import Callable
from typing import Any

from aiohttp import web

from chain.node import Node

SIDECAR_COUNTERS = {
    "calls": "sidecar calls made",
    "failures": "sidecar calls that failed",
    "timeouts": "sidecar calls that ran out of time",
    "breaker_opens": "times a sidecar's circuit breaker opened",
    "rejected": "calls failed fast while a breaker was open",
    "latency_seconds_sum": "seconds spent in sidecar calls",
}


def _labels(**labels: str) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}" if labels else ""


def render(
    node: Node,
    sidecar_counters: Callable[[], dict[str, dict[str, Any]]],
    sidecar_status: Callable[[], list[dict[str, Any]]],
    disagreements: int,
) -> str:
    lines: list[str] = []

    def metric(name: str, kind: str, text: str, samples: list[tuple[dict, float]]) -> None:
        lines.append(f"# HELP {name} {text}")
        lines.append(f"# TYPE {name} {kind}")
        lines.extend(f"{name}{_labels(**labels)} {value}" for labels, value in samples)

    pending, queued = node.pool.split()
    metric("sibyl_head_block_number", "gauge", "number of the head block",
           [({}, node.reader.head.block_number)])  # fmt: skip
    metric(
        "sibyl_txpool_transactions",
        "gauge",
        "transactions in the pool",
        [
            ({"state": "pending"}, sum(map(len, pending.values()))),
            ({"state": "queued"}, sum(map(len, queued.values()))),
        ],
    )
    metric("sibyl_invalid_blocks_total", "counter", "blocks refused as invalid",
           [({}, len(node.engine.invalid))])  # fmt: skip
    metric("sibyl_ai_disagreements_total", "counter",
           "sampled re-executions that disagreed with an attested output",
           [({}, disagreements)])  # fmt: skip
    counters = sidecar_counters()
    for key, text in SIDECAR_COUNTERS.items():
        metric(f"sibyl_sidecar_{key}" + ("" if key.endswith("_sum") else "_total"), "counter",
               text, [({"sidecar": name}, c[key]) for name, c in counters.items()])  # fmt: skip
    metric("sibyl_sidecar_healthy", "gauge", "1 while the sidecar answers its health check",
           [({"sidecar": s["name"], "runtime": s["runtime"]}, int(s["healthy"]))
            for s in sidecar_status()])  # fmt: skip
    return "\n".join(lines) + "\n"


class MetricsServer:
    def __init__(self, render_text: Callable[[], str]) -> None:
        self.render_text = render_text
        self.app = web.Application()
        self.app.router.add_get("/metrics", self.handle)
        self.runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        return web.Response(text=self.render_text(), content_type="text/plain", charset="utf-8")

    async def start(self, host: str, port: int) -> None:
        self.runner = web.AppRunner(self.app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, host, port).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
