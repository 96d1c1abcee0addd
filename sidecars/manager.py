"""The sidecar manager: start the declared sidecars, keep them healthy, stop them.

A node runs its sidecars in one of three ways, chosen per node by ``--sidecars``:

* ``docker``: one container per sidecar through the docker SDK: ``init=True``, labelled
  ``sibyl.owner=<owner>`` and ``sibyl.sidecar=<name>``, gRPC port published on
  127.0.0.1 only, model and key mounted read-only, all GPUs requested when the spec asks
  for a GPU. Containers a crashed run of the same owner left behind are removed first.
* ``process``: one ``sibyl sidecar serve`` subprocess per sidecar, its output in its own
  log file.
* ``auto``: ``docker`` when an engine answers within a second and has the sidecar image,
  ``process`` otherwise. ``none`` starts nothing.

Sidecars with an ``address`` are remote in every mode: only connected and health-checked.

``start`` returns once every sidecar answers its health check (or raises with the reason
and the tail of its log); ``start(wait=False)``, what ``sibyl run`` uses, returns at once
and the sidecars come up in the background (``sibyl_sidecars`` says ``starting``; calls
to a model fail as with any sidecar failure until its sidecar is ready), each announced
through ``on_ready`` when it first answers. A watchdog thread then checks each sidecar
twice a second and restarts a local one that exited, or that stopped answering, with
exponential backoff (0.5 s doubling up to 30 s, reset once it has stayed healthy for
30 s). ``stop`` removes the containers and terminates the processes.
"""

import logging
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sidecars.client import SidecarPool
from sidecars.config import DEFAULT_IMAGE, MODES, SidecarSpec
from sidecars.errors import SidecarError
from sidecars.serve import PARENT_PID_ENV

log = logging.getLogger("sidecars.manager")

CONTAINER_PORT = 50051
CONTAINER_KEY = "/keys/executor.key"
CHECK_INTERVAL = 0.5
BACKOFF_BASE = 0.5
BACKOFF_CAP = 30.0
STABLE_SECONDS = 30.0
HUNG_CHECKS = 3
DOCKER_PING_TIMEOUT = 1


class SidecarStartError(SidecarError):
    """A sidecar did not become healthy; the message says which and why."""


@dataclass
class _Managed:
    spec: SidecarSpec
    kind: str
    endpoint: str
    port: int | None = None
    process: subprocess.Popen | None = None
    container: object | None = None
    log_path: Path | None = None
    healthy: bool = False
    healthy_since: float = 0.0
    starting: bool = True
    launched_at: float = 0.0
    failed_checks: int = 0
    restarts: int = 0
    restart_at: float | None = None


class SidecarManager:
    """Runs ``specs`` and exposes them through ``pool``; see the module docstring."""

    def __init__(
        self,
        specs: list[SidecarSpec],
        mode: str = "auto",
        owner: str = "sibyl",
        image: str = DEFAULT_IMAGE,
        *,
        log_dir: Path | None = None,
        pool: SidecarPool | None = None,
        start_timeout: float = 120.0,
        on_ready: Callable[[str, list[str]], None] | None = None,
    ):
        if mode not in MODES:
            raise ValueError(f"sidecar mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.specs = specs
        self.mode = mode
        self.owner = re.sub(r"[^A-Za-z0-9_.-]", "-", owner)
        self.image = image
        self.log_dir = log_dir
        self.pool = pool or SidecarPool()
        self.start_timeout = start_timeout
        self.on_ready = on_ready  # (sidecar name, hex model ids) when it first answers
        self.docker = None
        self._sidecars: list[_Managed] = []
        self._stopping = threading.Event()
        self._watchdog: threading.Thread | None = None
        self._starter: threading.Thread | None = None
        self._launch_now = threading.Event()  # start(wait=False) launches once it is set
        self._lock = threading.Lock()

    # -- lifecycle -------------------------------------------------------------------

    def start(self, wait: bool = True, launch: bool = True) -> None:
        """Start every sidecar; with ``wait``, return once each is healthy (raises
        SidecarStartError), else at once, launching them in the background: at once, or
        with ``launch=False`` once :meth:`launch` is called (the node opens its port
        first, so that the sidecars' model imports do not slow its own start)."""
        if self.mode == "none":
            log.info("event=sidecars_disabled")
            return
        local_kind = self._local_kind() if any(not s.remote for s in self.specs) else None
        if local_kind == "docker":  # those a crashed run of this node left behind
            self._remove_owned_containers()
        if local_kind == "process":
            if self.log_dir is None:
                self.log_dir = Path(tempfile.mkdtemp(prefix="sibyl-sidecars-"))
            self.log_dir.mkdir(parents=True, exist_ok=True)
        for spec in self.specs:
            if spec.remote:
                managed = _Managed(spec, "remote", spec.address)
            else:
                port = spec.port or _free_port()
                managed = _Managed(spec, local_kind, f"127.0.0.1:{port}", port=port)
            managed.launched_at = time.monotonic()  # the watchdog waits start_timeout
            self._sidecars.append(managed)
            self.pool.add(spec.name, managed.endpoint)
        if wait:
            try:
                for managed in self._sidecars:
                    self._launch(managed)
                for managed in self._sidecars:
                    self._wait_healthy(managed)
            except BaseException:
                self.stop()
                raise
        else:
            if launch:
                self._launch_now.set()
            self._starter = threading.Thread(
                target=self._launch_all, name="sidecar-start", daemon=True
            )
            self._starter.start()
        self._watchdog = threading.Thread(target=self._watch, name="sidecar-watchdog", daemon=True)
        self._watchdog.start()

    def launch(self) -> None:
        """Launch the sidecars that ``start(wait=False, launch=False)`` registered."""
        self._launch_now.set()

    def _launch_all(self) -> None:
        """Launch every sidecar (``start(wait=False)``); the watchdog takes it from there,
        restarting one that failed to launch once ``start_timeout`` has passed."""
        while not self._launch_now.wait(0.1):
            if self._stopping.is_set():
                return
        for managed in self._sidecars:
            with self._lock:
                if self._stopping.is_set():
                    return
                try:
                    self._launch(managed)
                except SidecarStartError as exc:
                    log.error(
                        "event=sidecar_start_failed sidecar=%s error=%s", managed.spec.name, exc
                    )

    def stop(self) -> None:
        """Stop the watchdog, remove containers, terminate processes, close the pool."""
        self._stopping.set()
        if self._starter is not None:
            self._starter.join()
        if self._watchdog is not None:
            self._watchdog.join()
        with self._lock:
            for managed in self._sidecars:
                self._terminate(managed)
                managed.healthy = False
            if self.docker is not None:  # also those created but never started
                self._remove_owned_containers()
        self.pool.close()
        log.info("event=sidecars_stopped count=%d", len(self._sidecars))

    def status(self) -> list[dict]:
        """What ``sibyl_sidecars`` returns: one entry per sidecar."""
        entries = []
        for managed in self._sidecars:
            info = self.pool.info(managed.spec.name)
            entries.append(
                {
                    "name": managed.spec.name,
                    "runtime": managed.kind,
                    "endpoint": managed.endpoint,
                    "healthy": managed.healthy,
                    "state": (
                        "healthy"
                        if managed.healthy
                        else "starting"
                        if managed.starting
                        else "unhealthy"
                    ),
                    "models": ["0x" + m.hex() for m in info.model_ids] if info else [],
                    "executor": "0x" + info.executor.hex() if info else None,
                }
            )
        return entries

    # -- choosing and launching ------------------------------------------------------

    def _local_kind(self) -> str:
        if self.mode == "process":
            return "process"
        reason = self._docker_unavailable()
        if reason is None:
            return "docker"
        if self.mode == "docker":
            raise SidecarStartError(f"--sidecars docker: {reason}")
        log.info("event=sidecars_as_processes reason=%r", reason)
        return "process"

    def _docker_unavailable(self) -> str | None:
        """None when the engine answers and has the image; else why not."""
        try:
            import docker

            client = docker.from_env(timeout=DOCKER_PING_TIMEOUT)
            client.ping()
        except Exception as exc:
            return f"no Docker engine answers ({type(exc).__name__}: {exc})"
        try:
            client.images.get(self.image)
        except docker.errors.ImageNotFound:
            return f"image {self.image} not found; build it with .ci/docker-up (docs/sidecars.md)"
        except Exception as exc:
            return f"Docker engine error: {exc}"
        self.docker = docker.from_env(timeout=60)
        return None

    def _remove_owned_containers(self) -> None:
        """Remove every container labelled with this node's owner."""
        stale = self.docker.containers.list(
            all=True, filters={"label": f"sibyl.owner={self.owner}"}
        )
        for container in stale:
            container.remove(force=True)
            log.info(
                "event=container_removed container=%s sidecar=%s",
                container.name,
                container.labels.get("sibyl.sidecar"),
            )

    def _launch(self, managed: _Managed) -> None:
        spec = managed.spec
        managed.starting = True
        managed.launched_at = time.monotonic()
        if managed.kind == "docker":
            try:
                managed.container = self._run_container(spec, managed.port)
            except Exception as exc:
                raise SidecarStartError(
                    f"sidecar {spec.name}: Docker could not run {self.image}: {exc}"
                ) from None
            log.info(
                "event=sidecar_started sidecar=%s kind=docker container=%s endpoint=%s",
                spec.name,
                managed.container.name,
                managed.endpoint,
            )
        elif managed.kind == "process":
            managed.log_path = self.log_dir / f"{spec.name}.log"
            managed.process = self._run_process(spec, managed.port, managed.log_path)
            log.info(
                "event=sidecar_started sidecar=%s kind=process pid=%d endpoint=%s log=%s",
                spec.name,
                managed.process.pid,
                managed.endpoint,
                managed.log_path,
            )

    def _run_container(self, spec: SidecarSpec, port: int):
        from docker.types import DeviceRequest

        # /models/NAME; a further model at /models/N/NAME, as two may share a file name
        mounts = [
            f"/models/{f'{i}/' if i else ''}{served.model.name}"
            for i, served in enumerate(spec.models)
        ]
        command = _serve_args(spec, mounts, CONTAINER_PORT, "0.0.0.0", CONTAINER_KEY)
        return self.docker.containers.run(
            self.image,
            command,
            name=f"sibyl-{self.owner}-{spec.name}",
            init=True,
            detach=True,
            labels={"sibyl.owner": self.owner, "sibyl.sidecar": spec.name},
            ports={f"{CONTAINER_PORT}/tcp": ("127.0.0.1", port)},
            volumes={
                **{
                    str(served.model): {"bind": mount, "mode": "ro"}
                    for served, mount in zip(spec.models, mounts, strict=True)
                },
                str(spec.executor_key): {"bind": CONTAINER_KEY, "mode": "ro"},
            },
            device_requests=[DeviceRequest(count=-1, capabilities=[["gpu"]])] if spec.gpu else None,
        )

    def _run_process(self, spec: SidecarSpec, port: int, log_path: Path) -> subprocess.Popen:
        if spec.gpu:
            log.info(
                "event=gpu_ignored sidecar=%s reason='process sidecars run on the CPU'", spec.name
            )
        command = [
            sys.executable,
            "-m",
            "sidecars.serve",
            *_serve_args(
                spec, [str(m.model) for m in spec.models], port, "127.0.0.1", str(spec.executor_key)
            ),
        ]
        env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "OMP_NUM_THREADS": "1",
            PARENT_PID_ENV: str(os.getpid()),
        }
        with open(log_path, "ab") as output:
            return subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                env=env,
            )

    def _wait_healthy(self, managed: _Managed) -> None:
        name = managed.spec.name
        deadline = time.monotonic() + self.start_timeout
        while True:
            exited = self._exit_reason(managed)
            if exited is not None:
                raise SidecarStartError(
                    f"sidecar {name} ({managed.kind}) {exited} before becoming healthy: "
                    f"{self._log_tail(managed)}"
                )
            if self.pool.health(name, timeout=0.5) and self.pool.refresh(name) is not None:
                self._mark_healthy(managed)
                return
            if time.monotonic() >= deadline:
                raise SidecarStartError(
                    f"sidecar {name} ({managed.kind}) at {managed.endpoint} was not healthy "
                    f"within {self.start_timeout:.0f} s; {self._log_tail(managed)}"
                )
            time.sleep(0.1)

    # -- watching --------------------------------------------------------------------

    def _watch(self) -> None:
        while not self._stopping.wait(CHECK_INTERVAL):
            for managed in self._sidecars:
                with self._lock:
                    if self._stopping.is_set():
                        return
                    try:
                        self._check(managed)
                    except Exception as exc:  # the watchdog must outlive any one failure
                        log.warning(
                            "event=watchdog_error sidecar=%s error=%r", managed.spec.name, exc
                        )

    def _check(self, managed: _Managed) -> None:
        name = managed.spec.name
        now = time.monotonic()
        exited = self._exit_reason(managed)
        if exited is None and managed.restart_at is None:
            if self.pool.health(name, timeout=0.5):
                managed.failed_checks = 0
                if not managed.healthy and self.pool.refresh(name) is not None:
                    self._mark_healthy(managed)
                elif managed.restarts and now - managed.healthy_since >= STABLE_SECONDS:
                    managed.restarts = 0
                return
            if managed.starting and now - managed.launched_at < self.start_timeout:
                return
            managed.failed_checks += 1
            if managed.healthy:
                managed.healthy = False
                log.warning("event=sidecar_unhealthy sidecar=%s", name)
            if managed.kind == "remote" or managed.failed_checks < HUNG_CHECKS:
                return
            exited = f"failed {managed.failed_checks} health checks"
        if managed.restart_at is None:
            managed.healthy = False
            delay = min(BACKOFF_BASE * 2**managed.restarts, BACKOFF_CAP)
            managed.restart_at = now + delay
            log.warning(
                "event=sidecar_down sidecar=%s reason=%r restart_in=%.1fs", name, exited, delay
            )
            return
        if now >= managed.restart_at:
            self._terminate(managed)
            managed.restarts += 1
            managed.restart_at = None
            managed.failed_checks = 0
            try:
                self._launch(managed)
            except Exception as exc:
                managed.restart_at = now + min(BACKOFF_BASE * 2**managed.restarts, BACKOFF_CAP)
                log.warning("event=restart_failed sidecar=%s error=%r", name, exc)
                return
            log.info("event=sidecar_restarted sidecar=%s restarts=%d", name, managed.restarts)

    def _mark_healthy(self, managed: _Managed) -> None:
        managed.healthy = True
        managed.starting = False
        managed.healthy_since = time.monotonic()
        info = self.pool.info(managed.spec.name)
        log.info(
            "event=sidecar_healthy sidecar=%s kind=%s endpoint=%s models=%s executor=0x%s",
            managed.spec.name,
            managed.kind,
            managed.endpoint,
            ",".join("0x" + m.hex() for m in info.model_ids),
            info.executor.hex(),
        )
        if self.on_ready is not None:
            self.on_ready(managed.spec.name, ["0x" + m.hex() for m in info.model_ids])

    def _exit_reason(self, managed: _Managed) -> str | None:
        """None while the sidecar's process or container runs (always None for remote)."""
        if managed.process is not None:
            code = managed.process.poll()
            return None if code is None else f"exited with code {code}"
        if managed.container is not None:
            try:
                managed.container.reload()
            except Exception as exc:
                return f"container is gone ({type(exc).__name__})"
            if managed.container.status != "running":
                code = managed.container.attrs.get("State", {}).get("ExitCode")
                return f"container {managed.container.status} (exit code {code})"
        return None

    def _terminate(self, managed: _Managed) -> None:
        if managed.process is not None:
            if managed.process.poll() is None:
                managed.process.terminate()
                try:
                    managed.process.wait(5)
                except subprocess.TimeoutExpired:
                    managed.process.kill()
                    managed.process.wait()
            managed.process = None
        if managed.container is not None:
            try:
                managed.container.remove(force=True)
            except Exception as exc:
                log.info(
                    "event=container_remove_failed sidecar=%s error=%r", managed.spec.name, exc
                )
            managed.container = None

    def _log_tail(self, managed: _Managed, lines: int = 5) -> str:
        if managed.log_path is not None and managed.log_path.exists():
            text = managed.log_path.read_text(errors="replace")
        elif managed.container is not None:
            try:
                text = managed.container.logs(tail=lines).decode(errors="replace")
            except Exception:
                text = ""
        else:
            text = ""
        tail = " | ".join(line for line in text.strip().splitlines()[-lines:])
        return f"last log lines: {tail}" if tail else "no log output"


def _serve_args(spec: SidecarSpec, paths: list[str], port: int, host: str, key: str) -> list[str]:
    """``sidecars.serve``'s flags for ``spec``: a ``--runtime``/``--model`` pair per model
    (at ``paths``), their ids when every one is known, then where to listen."""
    args = []
    for served, path in zip(spec.models, paths, strict=True):
        args += ["--runtime", served.runtime, "--model", path]
    args += ["--port", str(port), "--host", host, "--executor-key", key]
    if all(served.model_id is not None for served in spec.models):
        args += [arg for m in spec.models for arg in ("--model-id", "0x" + m.model_id.hex())]
    return args


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
