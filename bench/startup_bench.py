"""Start-up: seconds from launching ``sibyl run --dev`` to its first JSON-RPC answer, and
to all of its sidecars ready, beside anvil's first answer measured in the same run.

Each round starts, in turn, ``sibyl run --dev`` with its bundled sidecars (local
processes here, or containers where Docker has the image), ``sibyl run --dev --sidecars
none``, and anvil (foundry's binary from npm, installed under tests/js by its
``npm ci``), each on a fresh data dir and free ports, polls ``eth_chainId`` every 20 ms
until it answers, and for the first polls ``sibyl_sidecars`` until every sidecar is
healthy. The medians over the rounds are printed as JSON lines; anvil's line is missing
(with the reason on stderr) where npm has not installed it. Nothing is asserted: the
issue's target is a first answer within 2 s on an idle machine, whatever the sidecars.

    python bench/startup_bench.py [--rounds 3]
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
from nodes import free_port  # noqa: E402

ANVIL = REPO / "tests" / "js" / "node_modules" / "@foundry-rs" / "anvil-linux-amd64" / "bin"
POLL = 0.02
LIMIT = 300.0  # seconds: give up on a start that takes longer


def call(url: str, method: str) -> object | None:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": []}).encode()
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return json.loads(response.read()).get("result")
    except OSError:
        return None


def wait(condition: Callable[[], bool], started: float) -> float:
    while time.monotonic() - started < LIMIT:
        if condition():
            return time.monotonic() - started
        time.sleep(POLL)
    raise RuntimeError(f"not ready within {LIMIT:.0f} s")


def sibyl(workdir: Path, sidecars: str) -> tuple[float, float | None]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        sys.executable, "-m", "chain.cmd.cli", "run", "--dev", "--sidecars", sidecars,
        "--datadir", str(workdir / f"data-{sidecars}-{port}"), "--http-port", str(port),
        "--engine-port", str(free_port()),
    ]  # fmt: skip
    started = time.monotonic()
    process = subprocess.Popen(
        command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        first = wait(lambda: call(url, "eth_chainId") is not None, started)
        ready = None
        if sidecars != "none":
            ready = wait(
                lambda: all(s["healthy"] for s in call(url, "sibyl_sidecars") or [{}]), started
            )
        return first, ready
    finally:
        process.terminate()
        process.wait(30)


def anvil() -> float:
    port = free_port()
    started = time.monotonic()
    process = subprocess.Popen(
        [str(ANVIL / "anvil"), "--port", str(port), "--silent"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        return wait(lambda: call(f"http://127.0.0.1:{port}", "eth_chainId") is not None, started)
    finally:
        process.terminate()
        process.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    have_anvil = (ANVIL / "anvil").is_file()
    if not have_anvil:
        print(f"anvil not installed at {ANVIL}: run npm ci in tests/js", file=sys.stderr)
    first, ready, bare, baseline = [], [], [], []
    with tempfile.TemporaryDirectory(prefix="sibyl-startup-") as tmp:
        workdir = Path(tmp)
        for _ in range(args.rounds):
            answer, all_ready = sibyl(workdir, "auto")
            first.append(answer)
            ready.append(all_ready)
            bare.append(sibyl(workdir, "none")[0])
            if have_anvil:
                baseline.append(anvil())
    anvil_s = round(statistics.median(baseline), 3) if baseline else None
    lines = [
        ("first_rpc_answer", "sibyl run --dev", first),
        ("all_sidecars_ready", "sibyl run --dev", ready),
        ("first_rpc_answer", "sibyl run --dev --sidecars none", bare),
    ]
    for bench, command, values in lines:
        print(
            json.dumps(
                {
                    "bench": "startup",
                    "metric": bench,
                    "command": command,
                    "value_s": round(statistics.median(values), 3),
                    "baseline": "anvil first_rpc_answer",
                    "baseline_value_s": anvil_s,
                    "target_s": 2.0 if bench == "first_rpc_answer" else None,
                    "rounds": args.rounds,
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
