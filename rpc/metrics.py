"""The metrics endpoint (``--metrics-port``): Prometheus text format at ``/metrics``.

What an operator watches: the head, the pool, every sidecar's calls, failures, timeouts
and circuit-breaker state, invalid blocks seen, disagreements found by re-running a
sample of attested AI calls (the hook for slashing), and async jobs: pending, settled by
status, and their latency in blocks from request to settlement.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from chain.ai import jobs
from chain.ai.dispatch import settled_jobs
from chain.node import Node

SIDECAR_COUNTERS = {
    "calls": "sidecar calls made",
    "failures": "sidecar calls that failed",
    "timeouts": "sidecar calls that ran out of time",
    "breaker_opens": "times a sidecar's circuit breaker opened",
    "rejected": "calls failed fast while a breaker was open",
    "latency_seconds_sum": "seconds spent in sidecar calls",
}


@dataclass
class JobCounters:
    """Jobs settled in the blocks made canonical since the node started (a head listener)."""

    node: Node
    settled: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SETTLED_NAMES, 0))
    latency_blocks_sum: int = 0

    def on_commit(self, executed: Any) -> None:
        settled = settled_jobs(executed.receipts)
        if not settled:
            return
        state = self.node.reader.accounts(self.node.reader.head)
        for job_id in settled:
            job = jobs.get_job(state, job_id)
            if job is not None and job.status in SETTLED_NAMES.values():
                self.settled[jobs.STATUS_NAMES[job.status]] += 1
                self.latency_blocks_sum += job.settled_block - job.created_block


SETTLED_NAMES = {"delivered": jobs.OK, "failed": jobs.FAILED, "expired": jobs.EXPIRED}


def _labels(**labels: str) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}" if labels else ""


def render(
    node: Node,
    sidecar_counters: Callable[[], dict[str, dict[str, Any]]],
    sidecar_status: Callable[[], list[dict[str, Any]]],
    disagreements: int,
    job_counters: JobCounters | None = None,
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
    head_state = node.reader.accounts(node.reader.head)
    metric("sibyl_jobs_pending", "gauge", "async jobs waiting for a delivery or their expiry",
           [({}, jobs.pending_count(head_state))])  # fmt: skip
    if job_counters is not None:
        metric("sibyl_jobs_settled_total", "counter", "async jobs settled, by how they ended",
               [({"status": name}, n) for name, n in job_counters.settled.items()])  # fmt: skip
        metric("sibyl_job_latency_blocks_sum", "counter",
               "blocks from each settled job's request to its settlement",
               [({}, job_counters.latency_blocks_sum)])  # fmt: skip
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
