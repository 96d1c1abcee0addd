"""Real node processes for tests: start ``sibyl run`` on free ports, wait until its
JSON-RPC answers, stop or kill it, restart it on the same data dir."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from web3 import Web3

REPO = Path(__file__).resolve().parent.parent
DEV_KEYS = [
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
    "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba",
    "0x92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e",
    "0x4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356",
    "0xdbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97",
    "0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6",
]  # the ten accounts of the test mnemonic, funded on the dev chain
CHAIN_ID = 19183


def sibyl(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run the ``sibyl`` command line from the repository, its output captured."""
    return subprocess.run(
        [sys.executable, "-m", "chain.cmd.cli", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=timeout,
    )


def import_blocks(
    genesis: Path, blocks: Path, datadir: Path, timeout: float = 120
) -> subprocess.CompletedProcess:
    """``sibyl init`` a fresh ``datadir`` from ``genesis`` (which must succeed), then
    ``sibyl import`` the block file ``blocks`` into it: the import's result."""
    made = sibyl("init", "--genesis", str(genesis), "--datadir", str(datadir), timeout=timeout)
    assert made.returncode == 0, made.stderr
    return sibyl("import", str(blocks), "--datadir", str(datadir), timeout=timeout)


_GIVEN_PORTS: set[int] = set()


def free_port() -> int:
    """A port free now and not handed out before in this test run: the kernel may give
    a just-closed ephemeral port again at once, and a node given the same port for HTTP
    and the Engine API cannot start."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port not in _GIVEN_PORTS:
            _GIVEN_PORTS.add(port)
            return port


def rpc(url: str, method: str, params: list | None = None, timeout: float = 10) -> dict:
    """One raw JSON-RPC call; returns the whole response object."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []})
    request = urllib.request.Request(
        url, data=body.encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


class PortTaken(RuntimeError):
    """The node could not bind a port it was given."""


@dataclass
class NodeProcess:
    datadir: Path
    args: list[str] = field(default_factory=list)
    http_port: int = field(default_factory=free_port)
    engine_port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.http_port}"

    @property
    def log_path(self) -> Path:
        return self.datadir.parent / f"{self.datadir.name}.log"

    def start(self, timeout: float = 60, attempts: int = 3) -> "NodeProcess":
        """Start the node and wait for its RPC and sidecars. A port another process took
        between ``free_port`` and the node's bind is not the node's fault: the node is
        started again on fresh ports."""
        for _ in range(attempts - 1):
            try:
                return self._start_once(timeout)
            except PortTaken:
                self.http_port, self.engine_port = free_port(), free_port()
        return self._start_once(timeout)

    def _start_once(self, timeout: float) -> "NodeProcess":
        log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        command = [
            sys.executable, "-m", "chain.cmd.cli", "run",
            "--datadir", str(self.datadir),
            "--http-port", str(self.http_port),
            "--engine-port", str(self.engine_port),
            *self.args,
        ]  # fmt: skip
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                if b"address already in use" in self.log_path.read_bytes()[log_start:]:
                    raise PortTaken(self.log())
                raise RuntimeError(f"node exited with {self.proc.returncode}:\n{self.log()}")
            try:
                rpc(self.url, "eth_chainId", timeout=2)
                return self.wait_sidecars()
            except OSError:
                time.sleep(0.2)
        self.kill()
        raise RuntimeError(f"node did not answer within {timeout}s:\n{self.log()}")

    def wait_sidecars(self, timeout: float = 300) -> "NodeProcess":
        """Wait until every sidecar of the node is healthy: they start in the background,
        after the node's RPC answers."""
        deadline = time.monotonic() + timeout
        while True:
            sidecars = rpc(self.url, "sibyl_sidecars", timeout=10)["result"]
            if all(sidecar["healthy"] for sidecar in sidecars):
                return self
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(
                    f"sidecars not healthy within {timeout}s: {sidecars}\n{self.log()}"
                )
            time.sleep(0.2)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM and wait; returns the exit code."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        """SIGKILL: the crash a data dir must survive."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def w3(self) -> Web3:
        return Web3(Web3.HTTPProvider(self.url, request_kwargs={"timeout": 30}))


def dev_node(datadir: Path, *args: str) -> NodeProcess:
    """A dev chain node (a block as soon as transactions arrive) on free ports."""
    return NodeProcess(datadir, ["--dev", "--block-time", "0", "--sidecars", "none", *args]).start()
