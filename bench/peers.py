"""Sibyl beside the dev nodes its users would pick instead: anvil and hardhat node.

Every node starts fresh (its own process, a fresh chain) and is driven through JSON-RPC
alone, in interleaved rounds (A B C, B C A, C A B, ...) so that drift of the machine's
speed touches all three alike:

* Sibyl: ``python -m chain.cmd.cli run --dev --sidecars none`` (its own temporary data
  dir), and once with its dev sidecars for the start-up and memory figures;
* anvil: the binary of npm ``@foundry-rs/anvil``, run directly (not through its node
  wrapper), ``--chain-id 19183``;
* hardhat: ``hardhat node`` of npm ``hardhat`` 2, run with ``node`` directly, with the
  minimal ``bench/js/hardhat.config.js`` (chain id 19183, nothing to compile).

All three run Sibyl's dev chain id and the accounts of the test mnemonic, so one set of
transactions, signed before any node starts, is valid on each. Each round does, per
node: start-up to the first ``eth_chainId`` answer; idle RSS; the ERC-20 of
``tests/fixtures/Token.json`` deployed and then transferred ``--awaited`` times, each
transfer sent only once the previous one's receipt is there (what a test suite does),
with the node's CPU over it; as many ERC-20 approvals sent the same way with
``eth_sendTransaction`` from a dev account the node signs for (hardhat's ``localhost``
network); ``--pipelined`` transfers sent back to back, timed until
all are mined; 16 clients sending ``--mined`` transfers at once (mined tx/s); requests/s
of ``eth_call balanceOf`` (the same 272 holders round robin, as a dapp polls, and again
with a holder never asked before in each request, so that Sibyl's call memo answers
none and every call runs the EVM) and ``eth_getBalance``. Then, once per node, a fresh node takes
``--memory-txs`` transactions for the RSS after them; Sibyl's run of that one starts its
dev sidecars and adds how long they take to be healthy (``sibyl_sidecars``) and the RSS
of the node with them, and beside it their PSS, which counts a page the node and its
sidecar share once (:func:`pss_mb`).

Prints one JSON line per figure, the medians of the rounds for each node and Sibyl's
ratio to each peer, beside the issue's target; logs go to stderr. Needs the npm packages
of ``bench/js`` (``make bench-peers`` installs them with ``npm ci``).

Usage: ``python bench/peers.py [--quick] [--rounds N] [--memory-txs N]``.
"""

import argparse
import asyncio
import contextlib
import json
import logging
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import rlp
import uvloop
from eth_abi import encode as abi_encode
from eth_account import Account
from eth_utils import keccak, to_canonical_address

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path[:0] = [str(BENCH), str(REPO / "tests")]

from node_bench import (  # noqa: E402
    ERC20_GAS,
    ETH_GAS,
    SENDER_FUNDS,
    SENDER_TOKENS,
    TOKEN,
    TRANSFER,
    NodeClient,
    Round,
    Workload,
    balance_of_calls,
    check,
    get_balance_calls,
    sign,
    wait_for_nonces,
    word,
)
from nodes import DEV_KEYS, free_port  # noqa: E402
from rpc_client import Connection  # noqa: E402

log = logging.getLogger("peers")

JS = BENCH / "js"
PEERS = ("sibyl", "anvil", "hardhat")
RECIPIENTS = 256
DEPLOY_GAS = 3_000_000
APPROVE = keccak(b"approve(address,uint256)")[:4]
NODE_SIGNER = DEV_KEYS[1]  # a test-mnemonic account each node holds the key of
RECEIPT_POLL_S = 0.002  # between receipt polls of an awaited transfer (the first is at once)
STARTUP_POLL_S = 0.01
START_TIMEOUT_S = 180.0
MEMORY_ROUND = 64  # transactions per sender in one round of the memory run
UNASKED_HOLDERS = 100_000  # more balanceOf calls than the fastest peer answers in a read test
IDLE_SETTLE_S = 2.0  # after the first answer, before idle RSS is read
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Settings:
    rounds: int = 3
    awaited: int = 1000
    pipelined: int = 1000
    mined: int = 1000
    clients: int = 16
    duration: float = 3.0  # seconds per req/s measurement
    # 10,000 is the figure, but anvil's automine spends more per block the longer
    # its chain (one block per transaction): 10,000 take it over 7 minutes on 2 cores.
    memory_txs: int = 3000


FULL = Settings()
QUICK = Settings(rounds=1, awaited=100, pipelined=100, mined=320, duration=1.0, memory_txs=1000)


# the transactions, signed once before any node starts


@dataclass
class Transactions:
    token: bytes
    funder: bytes
    awaited: list[bytes]  # the deploy, then the awaited transfers
    pipelined: list[bytes]
    setup: list[bytes]  # funds and tokens for the mined round's senders
    mined: Round
    senders: list[bytes]
    reads: Workload  # holders and token for the read requests
    unasked: Workload  # as many holders as no node answers in a read test: each asked once
    memory: list[bytes]  # funding of the senders (on a fresh node)
    memory_rounds: list[Round]


def spread(total: int, clients: int) -> list[int]:
    """``total`` transactions over ``clients`` senders, as evenly as they go."""
    return [total // clients + (c < total % clients) for c in range(clients)]


def sign_transactions(settings: Settings) -> Transactions:
    funder_key = DEV_KEYS[0]
    funder = to_canonical_address(Account.from_key(funder_key).address)
    keys = ["0x" + keccak(b"sibyl-bench-sender-%d" % i).hex() for i in range(settings.clients)]
    senders = [to_canonical_address(Account.from_key(k).address) for k in keys]
    recipients = [keccak(b"sibyl-bench-recipient-%d" % i)[12:] for i in range(RECIPIENTS)]
    token = keccak(rlp.encode([funder, 0]))[12:]
    bytecode = bytes.fromhex(json.loads(TOKEN.read_text())["bytecode"].removeprefix("0x"))
    constructor = abi_encode(["string", "string", "uint256"], ["Bench", "BEN", 10**30])

    def transfer(key: str, nonce: int, recipient: bytes) -> bytes:
        return sign(key, nonce, token, 0, ERC20_GAS, TRANSFER + word(recipient) + word(1))

    awaited = [sign(funder_key, 0, None, 0, DEPLOY_GAS, bytecode + constructor)]
    for n in range(1, 1 + settings.awaited):
        awaited.append(transfer(funder_key, n, recipients[n % RECIPIENTS]))
    nonce = len(awaited)
    pipelined = [
        transfer(funder_key, nonce + i, recipients[i % RECIPIENTS])
        for i in range(settings.pipelined)
    ]
    nonce += len(pipelined)
    setup = [sign(funder_key, nonce + i, s, SENDER_FUNDS, ETH_GAS) for i, s in enumerate(senders)]
    nonce += len(setup)
    setup += [
        sign(funder_key, nonce + i, token, 0, ERC20_GAS, TRANSFER + word(s) + word(SENDER_TOKENS))
        for i, s in enumerate(senders)
    ]
    counts = spread(settings.mined, settings.clients)
    mined = Round(
        "erc20",
        [[transfer(k, n, recipients[(c * 31 + n) % RECIPIENTS]) for n in range(count)]
         for c, (k, count) in enumerate(zip(keys, counts, strict=True))],
        counts,
    )  # fmt: skip

    # The memory run, on a fresh node: fund the senders, then ETH transfers, each to an
    # address of its own (the state grows as a test suite's does), in rounds of at most
    # MEMORY_ROUND per sender: anvil's automine can leave ready transactions unmined when
    # thousands arrive at once (foundry-rs/foundry#10122), which a bench must not wait on.
    memory = [sign(funder_key, i, s, SENDER_FUNDS, ETH_GAS) for i, s in enumerate(senders)]
    counts = spread(settings.memory_txs - len(memory), settings.clients)
    memory_rounds = []
    for first in range(0, max(counts), MEMORY_ROUND):
        ends = [min(count, first + MEMORY_ROUND) for count in counts]
        memory_rounds.append(Round(
            "eth",
            [[sign(k, n, keccak(b"sibyl-bench-memory-%d-%d" % (c, n))[12:], 1, ETH_GAS)
              for n in range(first, end)]
             for c, (k, end) in enumerate(zip(keys, ends, strict=True))],
            ends,
        ))  # fmt: skip
    reads = Workload(senders, senders + recipients, token, funder, [])
    unasked = [keccak(b"sibyl-bench-unasked-%d" % i)[12:] for i in range(UNASKED_HOLDERS)]
    return Transactions(token, funder, awaited, pipelined, setup, mined, senders, reads,
                        replace(reads, holders=unasked), memory, memory_rounds)  # fmt: skip


# the nodes


def anvil_binary() -> Path:
    """anvil's own binary in its npm platform package (its ``bin.mjs`` is a node process
    that spawns it: leaving the wrapper out keeps the process tree to the node itself)."""
    arch = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}[platform.machine()]
    return JS / "node_modules" / "@foundry-rs" / f"anvil-{sys.platform}-{arch}" / "bin" / "anvil"


def command(peer: str, port: int, sidecars: bool) -> tuple[list[str], Path, dict[str, str]]:
    """The command line, working directory and extra environment that start ``peer``."""
    if peer == "sibyl":
        line = [sys.executable, "-m", "chain.cmd.cli", "run", "--dev",
                "--http-port", str(port), "--engine-port", str(free_port())]  # fmt: skip
        return line + ([] if sidecars else ["--sidecars", "none"]), REPO, {}
    if peer == "anvil":
        return [str(anvil_binary()), "--port", str(port), "--chain-id", "19183"], JS, {}
    hardhat = JS / "node_modules" / "hardhat" / "internal" / "cli" / "cli.js"
    line = [shutil.which("node") or "node", str(hardhat), "node", "--hostname", "127.0.0.1",
            "--port", str(port)]  # fmt: skip
    return line, JS, {"HARDHAT_DISABLE_TELEMETRY_PROMPT": "true"}


@dataclass
class Node:
    """One running node; ``proc`` and ``http_port`` are what :class:`NodeClient` uses."""

    peer: str
    proc: subprocess.Popen
    http_port: int
    workdir: Path
    started_at: float
    first_answer_s: float = 0.0

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        return (self.workdir / "node.log").read_text(errors="replace")[-3000:]


async def start(peer: str, sidecars: bool = False) -> Node:
    """Start ``peer`` fresh and wait for its first answer to ``eth_chainId``.

    Sibyl's temporary data dir goes under the bench's own temporary directory (TMPDIR),
    so that nothing stays behind even when a node has to be killed.
    """
    workdir = Path(tempfile.mkdtemp(prefix=f"sibyl-peers-{peer}-"))
    port = free_port()
    line, cwd, env = command(peer, port, sidecars)
    env = {**os.environ, "TMPDIR": str(workdir), **env}
    with open(workdir / "node.log", "wb") as output:
        started_at = time.perf_counter()
        proc = subprocess.Popen(line, cwd=cwd, env=env, stdout=output, stderr=subprocess.STDOUT)
    node = Node(peer, proc, port, workdir, started_at)
    deadline = started_at + START_TIMEOUT_S
    while True:
        try:
            connection = await Connection("127.0.0.1", port).open()
            try:
                chain_id = await connection.call("eth_chainId")
            finally:
                connection.close()
            node.first_answer_s = time.perf_counter() - started_at
            check(int(chain_id, 16) == 19183, f"{peer} runs chain id {chain_id}")
            return node
        except OSError:
            pass
        if proc.poll() is not None or time.perf_counter() > deadline:
            stop(node)
            raise RuntimeError(f"{peer} did not answer (exit {proc.returncode}):\n{node.log()}")
        await asyncio.sleep(STARTUP_POLL_S)


def stop(node: Node) -> None:
    """SIGTERM (Sibyl stops its sidecars), then SIGKILL whatever of the tree is left."""
    tree = {pid: started(pid) for pid in process_tree(node.pid)}
    node.proc.send_signal(signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        node.proc.wait(20)
    for pid, since in tree.items():
        if since is not None and started(pid) == since:  # still that process, not a reuse
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    node.proc.wait()
    shutil.rmtree(node.workdir, ignore_errors=True)


# what /proc says about a node's processes


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (a Sibyl node's sidecars are its child processes)."""
    children: dict[int, list[int]] = defaultdict(list)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children[ppid].append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        tree.append(todo.pop())
        todo.extend(children[tree[-1]])
    return tree


def started(pid: int) -> int | None:
    """When ``pid`` started (clock ticks since boot), or None once it is gone."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def rss_mb(pids: list[int]) -> float:
    """Resident memory of ``pids`` together, in MB (VmRSS, 2**20 bytes)."""
    total_kb = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
        except OSError:
            pass
    return total_kb / 1024


def pss_mb(pids: list[int]) -> float:
    """Proportional set size of ``pids`` together, in MB (``Pss`` of smaps_rollup).

    Summed RSS counts a page twice when two of the processes map it (the node and its
    sidecar share libpython, numpy's and grpc's libraries); PSS charges each process its
    share instead, so the sum is what the tree costs the machine. A page shared with a
    process outside the tree (another Python on the same venv) is charged only in part:
    on a quiet machine the two figures differ by the double counting alone."""
    total_kb = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total_kb += int(line.split()[1])
        except OSError:
            pass
    return total_kb / 1024


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` and its descendants, all their threads, so far."""
    total = 0
    for member in process_tree(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # fields 14 and 15 of proc(5)
    return total / CLK_TCK


# the measurements on one node


async def receipt(connection: Connection, tx_hash: str) -> dict[str, Any]:
    while (found := await connection.call("eth_getTransactionReceipt", [tx_hash])) is None:
        await asyncio.sleep(RECEIPT_POLL_S)
    return found


async def awaited(node: Node, txs: list[bytes]) -> dict[str, float]:
    """Each transaction sent once the previous one's receipt is there; returns the time
    and the node's CPU seconds over it."""
    connection = await Connection("127.0.0.1", node.http_port).open()
    cpu = cpu_seconds(node.pid)
    begin = time.perf_counter()
    for raw in txs:
        tx_hash = await connection.call("eth_sendRawTransaction", ["0x" + raw.hex()])
        found = await receipt(connection, tx_hash)
        check(found["status"] == "0x1", f"{node.peer}: transaction {tx_hash} failed")
    seconds = time.perf_counter() - begin
    connection.close()
    return {"seconds": seconds, "cpu_seconds": cpu_seconds(node.pid) - cpu}


async def node_signed(node: Node, token: bytes, count: int) -> float:
    """Seconds for ``count`` ERC-20 approvals sent with ``eth_sendTransaction`` from an
    account the node holds the key of, each once the previous one's receipt is there:
    what a test suite on hardhat's ``localhost`` network (ethers' ``getSigner()``) does.
    The node fills the fees and signs; the gas is given, as hardhat-ethers gives it."""
    connection = await Connection("127.0.0.1", node.http_port).open()
    sender = Account.from_key(NODE_SIGNER).address
    begin = time.perf_counter()
    for n in range(count):
        data = APPROVE + word(keccak(b"sibyl-bench-spender-%d" % n)[12:]) + word(n + 1)
        request = {"from": sender, "to": "0x" + token.hex(), "gas": hex(ERC20_GAS),
                   "data": "0x" + data.hex()}  # fmt: skip
        tx_hash = await connection.call("eth_sendTransaction", [request])
        found = await receipt(connection, tx_hash)
        check(found["status"] == "0x1", f"{node.peer}: approval {tx_hash} failed")
    seconds = time.perf_counter() - begin
    connection.close()
    return seconds


async def pipelined(node: Node, sender: bytes, txs: list[bytes], target: int) -> float:
    """The transactions sent back to back on one connection (each send waits only for its
    answer); timed from the first send until the sender's nonce shows all mined."""
    connection = await Connection("127.0.0.1", node.http_port).open()
    poller = await Connection("127.0.0.1", node.http_port).open()
    start_block = int(await poller.call("eth_blockNumber"), 16)
    begin = time.perf_counter()
    waiting = asyncio.ensure_future(wait_for_nonces(poller, [sender], [target], start_block))
    for raw in txs:
        await connection.call("eth_sendRawTransaction", ["0x" + raw.hex()])
    done_at, _ = await waiting
    connection.close()
    poller.close()
    return done_at - begin


async def setup(node: Node, sender: bytes, txs: list[bytes], target: int) -> None:
    """Untimed: send ``txs`` and wait until they are mined."""
    await pipelined(node, sender, txs, target)


async def exercise(node: Node, txs: Transactions, settings: Settings) -> dict[str, Any]:
    """One round's figures on a freshly started node."""
    figures: dict[str, Any] = {"startup_first_rpc_s": node.first_answer_s}
    await asyncio.sleep(IDLE_SETTLE_S)
    figures["rss_idle_mb"] = rss_mb(process_tree(node.pid))

    ran = await awaited(node, txs.awaited)
    figures["deploy_awaited_transfers_s"] = ran["seconds"]
    figures["node_cpu_awaited_s"] = ran["cpu_seconds"]
    connection = await Connection("127.0.0.1", node.http_port).open()
    code = await connection.call("eth_getCode", ["0x" + txs.token.hex(), "latest"])
    connection.close()
    check(len(code) > 2, f"{node.peer}: the token was not deployed")
    figures["node_signed_approvals_s"] = await node_signed(node, txs.token, settings.awaited)

    nonce = len(txs.awaited) + len(txs.pipelined)
    figures["pipelined_transfers_s"] = await pipelined(node, txs.funder, txs.pipelined, nonce)
    await setup(node, txs.funder, txs.setup, nonce + len(txs.setup))

    client = NodeClient(node)  # type: ignore[arg-type]
    mined = await client.mined_round(txs.mined, txs.senders)
    figures["mined_tx_per_s"] = sum(txs.mined.targets) / mined["seconds"]

    calls, balances = balance_of_calls(txs.reads), get_balance_calls(txs.reads)
    # token balances must agree across nodes (ETH balances differ with the base fees)
    figures["answers"] = await client.answers(calls)
    # each asked once: Sibyl's call memo (chain.simulate.CallMemo) answers none of them
    unasked = balance_of_calls(txs.unasked)
    for figure, bodies in (
        ("eth_call_balanceOf", calls),
        ("eth_call_balanceOf_unasked", unasked),
        ("eth_getBalance", balances),
    ):
        figures[f"{figure}_req_per_s"] = (await client.throughput(bodies, settings))["req_per_s"]
    return figures


async def memory(node: Node, txs: Transactions) -> dict[str, Any]:
    """RSS after ``--memory-txs`` transactions on a fresh node (and the processes)."""
    tree = process_tree(node.pid)
    figures = {"rss_idle_mb": rss_mb(tree), "pss_idle_mb": pss_mb(tree)}
    await setup(node, txs.funder, txs.memory, len(txs.memory))
    for round_ in txs.memory_rounds:
        await NodeClient(node).mined_round(round_, txs.senders)  # type: ignore[arg-type]
    await asyncio.sleep(IDLE_SETTLE_S)
    tree = process_tree(node.pid)
    figures["rss_after_txs_mb"] = rss_mb(tree)
    figures["pss_after_txs_mb"] = pss_mb(tree)
    figures["processes"] = len(tree)
    return figures


async def sidecars_healthy(node: Node) -> float:
    """Seconds from the node's start until ``sibyl_sidecars`` lists sidecars, all healthy."""
    connection = await Connection("127.0.0.1", node.http_port).open()
    deadline = time.perf_counter() + START_TIMEOUT_S
    while True:
        listed = await connection.call("sibyl_sidecars")
        if listed and all(entry["healthy"] for entry in listed):
            connection.close()
            return time.perf_counter() - node.started_at
        check(time.perf_counter() < deadline, f"sidecars not healthy: {listed}\n{node.log()}")
        await asyncio.sleep(STARTUP_POLL_S * 5)


# the run


@dataclass
class Results:
    values: dict[str, dict[str, list[float]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(list))
    )

    def add(self, peer: str, figures: dict[str, float]) -> None:
        for figure, value in figures.items():
            self.values[figure][peer].append(value)


async def run(settings: Settings, txs: Transactions) -> Results:
    results = Results()
    answers: dict[str, list[str]] = {}
    for index in range(settings.rounds):
        order = PEERS[index % 3 :] + PEERS[: index % 3]
        for peer in order:
            node = await start(peer)
            log.info("round %d: %s pid %d answered after %.2fs", index, peer, node.pid,
                     node.first_answer_s)  # fmt: skip
            try:
                figures = await exercise(node, txs, settings)
            finally:
                stop(node)
            given = figures.pop("answers")
            check(answers.setdefault("first", given) == given, f"{peer} answers other balances")
            log.info("round %d: %s %s", index, peer,
                     {k: round(v, 3) for k, v in figures.items()})  # fmt: skip
            results.add(peer, figures)

    # Memory after many transactions, one fresh node each; Sibyl also with its sidecars.
    for peer, with_sidecars in [*((peer, False) for peer in PEERS), ("sibyl", True)]:
        node = await start(peer, sidecars=with_sidecars)
        try:
            figures: dict[str, float] = {}
            if with_sidecars:
                figures["startup_sidecars_first_rpc_s"] = node.first_answer_s
                figures["startup_sidecars_healthy_s"] = await sidecars_healthy(node)
            await asyncio.sleep(IDLE_SETTLE_S)
            measured = await memory(node, txs)
        finally:
            stop(node)
        if with_sidecars:
            figures["rss_idle_with_sidecars_mb"] = measured["rss_idle_mb"]
            figures["rss_after_txs_with_sidecars_mb"] = measured["rss_after_txs_mb"]
            figures["pss_idle_with_sidecars_mb"] = measured["pss_idle_mb"]
            figures["pss_after_txs_with_sidecars_mb"] = measured["pss_after_txs_mb"]
            figures["processes_with_sidecars"] = measured["processes"]
        else:
            figures["rss_after_txs_mb"] = measured["rss_after_txs_mb"]
        log.info("memory: %s%s %s", peer, " with sidecars" if with_sidecars else "",
                 {k: round(v, 3) for k, v in {**figures, **measured}.items()})  # fmt: skip
        results.add(peer, figures)
    return results


# the report: (figure, unit, higher is better, target: (what, threshold) or None)
FIGURES = [
    ("deploy_awaited_transfers_s", "s", False, ("ratio_to_hardhat", 1.0)),
    ("node_cpu_awaited_s", "cpu s", False, None),
    # no target of its own: the awaited round's work, signed by the node
    ("node_signed_approvals_s", "s", False, None),
    ("pipelined_transfers_s", "s", False, None),
    ("mined_tx_per_s", "tx/s", True, ("ratio_to_hardhat", 1.0)),
    ("eth_call_balanceOf_req_per_s", "req/s", True, ("ratio_to_hardhat", 1.0)),
    # no target of its own: the same calls, each asked once, so that every one runs the EVM
    ("eth_call_balanceOf_unasked_req_per_s", "req/s", True, None),
    ("eth_getBalance_req_per_s", "req/s", True, ("ratio_to_anvil", 0.5)),
    ("startup_first_rpc_s", "s", False, ("sibyl", 2.0)),
    ("startup_sidecars_first_rpc_s", "s", False, ("sibyl", 2.0)),
    ("startup_sidecars_healthy_s", "s", False, ("sibyl", 20.0)),
    ("rss_idle_mb", "MB", False, None),
    ("rss_after_txs_mb", "MB", False, None),
    ("rss_idle_with_sidecars_mb", "MB", False, ("sibyl", 600.0)),
    ("rss_after_txs_with_sidecars_mb", "MB", False, ("sibyl", 600.0)),
    # no target: beside other processes of the same libraries (other agents' torch) a
    # tree's PSS is less than what it alone would cost; read it from a quiet machine
    ("pss_idle_with_sidecars_mb", "MB", False, None),
    ("pss_after_txs_with_sidecars_mb", "MB", False, None),
]
MOONSHOT = {"eth_call_balanceOf_req_per_s": ("ratio_to_anvil", 0.5)}


def sizes(figure: str, settings: Settings) -> dict[str, int]:
    """What a figure was measured on, for the line."""
    if figure in ("deploy_awaited_transfers_s", "node_cpu_awaited_s"):
        return {"txs": 1 + settings.awaited}
    if figure == "node_signed_approvals_s":
        return {"txs": settings.awaited}
    if figure == "pipelined_transfers_s":
        return {"txs": settings.pipelined}
    if figure == "mined_tx_per_s":
        return {"txs": settings.mined, "clients": settings.clients}
    if figure.endswith("req_per_s"):
        return {"clients": settings.clients, "duration_s": settings.duration}
    if "after_txs" in figure:
        return {"txs": settings.memory_txs}
    return {}


def verdict(line: dict[str, Any], target: tuple[str, float], higher: bool) -> tuple[str, Any]:
    what, threshold = target
    value = line[what]
    text = f"{what} {'>=' if higher else '<='} {threshold}"
    if value is None:
        return text, None
    return text, value >= threshold if higher else value <= threshold


def report(settings: Settings, results: Results) -> list[dict[str, Any]]:
    lines = []
    for figure, unit, higher, target in FIGURES:
        measured = results.values.get(figure, {})
        medians = {
            peer: round(statistics.median(measured[peer]), 3) if measured.get(peer) else None
            for peer in PEERS
        }
        line: dict[str, Any] = {"bench": "peers", "figure": figure, **medians}
        for peer in PEERS[1:]:
            both = medians["sibyl"] is not None and medians[peer]
            line[f"ratio_to_{peer}"] = round(medians["sibyl"] / medians[peer], 3) if both else None
        line["target"], line["meets_target"] = (
            verdict(line, target, higher) if target else (None, None)
        )
        if figure in MOONSHOT:
            line["moonshot"], line["meets_moonshot"] = verdict(line, MOONSHOT[figure], higher)
        line["unit"] = unit
        line["rounds"] = len(measured.get("sibyl", []))
        line.update(sizes(figure, settings))
        if figure.endswith("_after_txs_with_sidecars_mb") and measured:
            line["processes"] = int(results.values["processes_with_sidecars"]["sibyl"][0])
        line["loadavg_1m"] = round(os.getloadavg()[0], 2)
        lines.append(line)
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 round, few txs")
    parser.add_argument("--rounds", type=int, help="interleaved rounds of the three nodes")
    parser.add_argument("--memory-txs", type=int, help="transactions before the RSS figures")
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s"
    )
    settings = QUICK if args.quick else FULL
    overrides = {"rounds": args.rounds, "memory_txs": args.memory_txs}
    settings = replace(settings, **{k: v for k, v in overrides.items() if v})
    for needed in (anvil_binary(), JS / "node_modules" / "hardhat"):
        if not needed.exists():
            parser.error(f"{needed} is missing: run `make bench-peers` (npm ci in bench/js)")

    begin = time.perf_counter()
    txs = sign_transactions(settings)
    log.info("transactions signed in %.1fs", time.perf_counter() - begin)
    results = uvloop.run(run(settings, txs))
    for line in report(settings, results):
        print(json.dumps(line), flush=True)
    log.info("done in %.1fs", time.perf_counter() - begin)
    return 0


if __name__ == "__main__":
    sys.exit(main())
