"""Node throughput over JSON-RPC, beside raw py-evm measured in the same run.

One dev node (``sibyl run --dev --block-time 0 --sidecars none``: its own process, a real
LMDB data dir) is loaded through JSON-RPC by this process, 16 concurrent clients with one
keep-alive connection each:

* ``eth_transfers`` / ``erc20_transfers``: every client sends its pre-signed
  transactions (its own sender, so nonces never collide) with ``eth_sendRawTransaction``
  as fast as the node answers; the clock runs from the first send until the node has
  mined them all (a poller watches ``eth_blockNumber``, then the senders' nonces).
  Baseline: py-evm's ``MiningChain.mine_all`` on the same signed transactions, in the very
  blocks the node made (same order, same sizes), on a chain from the same genesis that
  replayed the same setup (funding, token deploy) untimed. Node rounds and baseline
  replays alternate, so a machine whose speed drifts touches both alike.
* ``eth_call_balanceOf`` / ``eth_getBalance``: requests/s over a fixed time, with p50/p99
  latency. Baselines: an aiohttp server that does no work, loaded the same way (the
  ceiling of the framework and this client), and py-evm answering the same question
  in-process on the same state.

Prints one JSON object per line on stdout; logs go to stderr.

Usage: ``python bench/node_bench.py [--quick] [--profile DIR]``.
"""

import argparse
import asyncio
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import rlp
import uvloop
from eth_abi import encode as abi_encode
from eth_account import Account
from eth_utils import keccak, to_canonical_address, to_checksum_address

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path[:0] = [str(BENCH), str(REPO / "tests")]

import pyevm_baseline  # noqa: E402
from nodes import DEV_KEYS, NodeProcess, free_port  # noqa: E402
from rpc_client import Connection, encode_request, hammer, rpc_body  # noqa: E402

log = logging.getLogger("bench")

CHAIN_ID = 19183
GENESIS = REPO / "genesis" / "dev.json"
TOKEN = REPO / "tests" / "fixtures" / "Token.json"
FEE_CAP = 100 * 10**9  # far above any base fee the run reaches
TIP = 10**9
ETH_GAS = 21_000
ERC20_GAS = 100_000
SENDER_FUNDS = 100 * 10**18
SENDER_TOKENS = 10**9
RECIPIENTS = 256
TRANSFER = keccak(b"transfer(address,uint256)")[:4]
BALANCE_OF = keccak(b"balanceOf(address)")[:4]
MINED_TARGET_RATIO = 1.0
CALL_TARGET = 2000
GET_BALANCE_TARGET = 5000


@dataclass(frozen=True)
class Settings:
    clients: int = 16
    txs: int = 2048  # per mined workload, over all rounds
    rounds: int = 2  # node run + baseline replay, alternating, per workload
    duration: float = 8.0  # seconds per req/s measurement
    baseline_seconds: float = 3.0  # per in-process baseline


FULL = Settings()
QUICK = Settings(txs=320, rounds=1, duration=2.0, baseline_seconds=1.0)


# the workload: keys, addresses and signed transactions, all made before the node starts


def word(value: int | bytes) -> bytes:
    return value.rjust(32, b"\x00") if isinstance(value, bytes) else value.to_bytes(32, "big")


def sign(key: str, nonce: int, to: bytes | None, value: int, gas: int, data: bytes = b"") -> bytes:
    fields: dict[str, Any] = dict(
        type=2, chainId=CHAIN_ID, nonce=nonce, value=value, gas=gas, data=data,
        maxFeePerGas=FEE_CAP, maxPriorityFeePerGas=TIP,
    )  # fmt: skip
    if to is not None:
        fields["to"] = to_checksum_address(to)
    return bytes(Account.sign_transaction(fields, key).raw_transaction)


@dataclass
class Round:
    """One timed batch: every client's transactions of one kind."""

    kind: str  # "eth" or "erc20"
    per_client: list[list[bytes]]
    targets: list[int]  # each sender's nonce once the round is mined


@dataclass
class Workload:
    senders: list[bytes]
    holders: list[bytes]  # senders and recipients: the addresses the read benchmarks ask about
    token: bytes
    funder: bytes
    setup: list[bytes]  # dev account 0: fund senders, deploy the token, hand out tokens
    rounds: list[Round] = field(default_factory=list)


def make_workload(settings: Settings) -> Workload:
    clients = settings.clients
    per_round = settings.txs // (clients * settings.rounds)
    keys = ["0x" + keccak(b"sibyl-bench-sender-%d" % i).hex() for i in range(clients)]
    senders = [to_canonical_address(Account.from_key(k).address) for k in keys]
    recipients = [keccak(b"sibyl-bench-recipient-%d" % i)[12:] for i in range(RECIPIENTS)]
    funder_key = DEV_KEYS[0]
    funder = to_canonical_address(Account.from_key(funder_key).address)

    setup = [sign(funder_key, i, s, SENDER_FUNDS, ETH_GAS) for i, s in enumerate(senders)]
    nonce = len(setup)
    bytecode = bytes.fromhex(json.loads(TOKEN.read_text())["bytecode"].removeprefix("0x"))
    constructor = abi_encode(["string", "string", "uint256"], ["Bench", "BEN", 10**30])
    setup.append(sign(funder_key, nonce, None, 0, 3_000_000, bytecode + constructor))
    token = keccak(rlp.encode([funder, nonce]))[12:]
    for sender in senders:
        nonce += 1
        setup.append(sign(funder_key, nonce, token, 0, ERC20_GAS,
                          TRANSFER + word(sender) + word(SENDER_TOKENS)))  # fmt: skip

    workload = Workload(senders, senders + recipients, token, funder, setup)
    next_nonce = [0] * clients
    for _ in range(settings.rounds):
        for kind in ("eth", "erc20"):
            per_client = []
            for c, key in enumerate(keys):
                own = []
                for _ in range(per_round):
                    n = next_nonce[c]
                    recipient = recipients[(c * 31 + n) % RECIPIENTS]
                    if kind == "eth":
                        own.append(sign(key, n, recipient, 10**9, ETH_GAS))
                    else:
                        own.append(sign(key, n, token, 0, ERC20_GAS,
                                        TRANSFER + word(recipient) + word(1)))  # fmt: skip
                    next_nonce[c] += 1
                per_client.append(own)
            workload.rounds.append(Round(kind, per_client, list(next_nonce)))
    return workload


# the node side


async def wait_for_nonces(
    poller: Connection, senders: list[bytes], targets: list[int], since_block: int,
    interval: float = 0.005, stall_timeout: float = 120.0,
) -> tuple[float, int]:  # fmt: skip
    """Poll until every sender's mined nonce reaches its target; returns (time, block).

    ``eth_blockNumber`` is polled every ``interval`` seconds; only when it moves are the
    nonces read (one batch request), so the poller adds almost no load.
    """
    last_block, last_progress = since_block, time.perf_counter()
    while True:
        number = int(await poller.call("eth_blockNumber"), 16)
        now = time.perf_counter()
        if number != last_block:
            last_block, last_progress = number, now
            nonces = await poller.batch(
                [("eth_getTransactionCount", ["0x" + s.hex(), "latest"]) for s in senders]
            )
            if all(int(n, 16) >= t for n, t in zip(nonces, targets, strict=True)):
                return now, number
        elif now - last_progress > stall_timeout:
            raise RuntimeError(f"no new block for {stall_timeout}s at block {number}")
        await asyncio.sleep(interval)


async def node_blocks(
    connection: Connection, first: int, last: int, txs: list[bytes]
) -> tuple[list[list[bytes]], list[int]]:
    """Blocks ``first..last`` as lists of the raw transactions in ``txs`` (which must be
    exactly the transactions they hold), and each block's gas used."""
    by_hash = {keccak(raw): raw for raw in txs}
    blocks, gas_used = [], []
    for number in range(first, last + 1):
        block = await connection.call("eth_getBlockByNumber", [hex(number), False])
        blocks.append([by_hash.pop(bytes.fromhex(h[2:])) for h in block["transactions"]])
        gas_used.append(int(block["gasUsed"], 16))
    if by_hash:
        raise RuntimeError(f"{len(by_hash)} transactions were not mined in blocks {first}..{last}")
    return blocks, gas_used


class NodeClient:
    """The load generator's side of one node process."""

    def __init__(self, node: NodeProcess) -> None:
        self.node = node
        self.pid = node.proc.pid if node.proc is not None else 0
        self.host, self.port = "127.0.0.1", node.http_port

    def request(self, body: bytes) -> bytes:
        return encode_request(self.host, self.port, body)

    async def connect(self) -> Connection:
        return await Connection(self.host, self.port).open()

    async def setup(self, workload: Workload) -> list[list[bytes]]:
        """Fund the senders and deploy the token; returns the blocks, for the baseline."""
        connection = await self.connect()
        start = int(await connection.call("eth_blockNumber"), 16)
        for raw in workload.setup:
            await connection.call("eth_sendRawTransaction", ["0x" + raw.hex()])
        _, end = await wait_for_nonces(connection, [workload.funder], [len(workload.setup)], start)
        code = await connection.call("eth_getCode", ["0x" + workload.token.hex(), "latest"])
        if len(code) <= 2:
            raise RuntimeError("token deployment failed on the node")
        blocks, _ = await node_blocks(connection, start + 1, end, workload.setup)
        connection.close()
        return blocks

    async def mined_round(self, round_: Round, senders: list[bytes]) -> dict[str, Any]:
        """All clients send at once; timed from the first send until all are mined."""
        requests = [
            [self.request(rpc_body("eth_sendRawTransaction", ["0x" + raw.hex()])) for raw in own]
            for own in round_.per_client
        ]
        connections = [await self.connect() for _ in requests]
        poller = await self.connect()
        start_block = int(await poller.call("eth_blockNumber"), 16)
        sent_at: list[float] = []

        async def client(connection: Connection, own: list[bytes]) -> None:
            for request in own:
                body = await connection.send(request)
                if b'"error"' in body:
                    raise RuntimeError(f"eth_sendRawTransaction: {body[:300].decode()}")
            sent_at.append(time.perf_counter())

        cpu = ThreadCpu(self.pid)
        begin = time.perf_counter()
        waiting = asyncio.ensure_future(
            wait_for_nonces(poller, senders, round_.targets, start_block)
        )
        await asyncio.gather(
            *(client(c, own) for c, own in zip(connections, requests, strict=True))
        )
        done_at, end_block = await waiting
        node_cpu = cpu.used()
        for connection in [*connections, poller]:
            connection.close()
        return {
            "seconds": done_at - begin,
            "send_seconds": max(sent_at) - begin,
            "first_block": start_block + 1,
            "last_block": end_block,
            "node_cpu": ThreadCpu.ratios(*node_cpu),
            "node_cpu_seconds": node_cpu[0]["main"] + node_cpu[0]["other"],
        }

    async def blocks(self, ran: dict[str, Any], round_: Round) -> None:
        """Add the blocks a mined round made (raw transactions, gas used) to ``ran``."""
        connection = await self.connect()
        txs = [raw for own in round_.per_client for raw in own]
        ran["blocks"], ran["gas_used"] = await node_blocks(
            connection, ran["first_block"], ran["last_block"], txs
        )
        connection.close()

    async def answers(self, bodies: list[bytes]) -> list[str]:
        """The results of ``bodies``, one by one (to check the baseline against)."""
        connection = await self.connect()
        results = []
        for body in bodies:
            response = json.loads(await connection.send(self.request(body)))
            results.append(response["result"])
        connection.close()
        return results

    async def throughput(self, bodies: list[bytes], settings: Settings) -> dict[str, Any]:
        requests = [self.request(body) for body in bodies]
        cpu = ThreadCpu(self.pid)
        result = await hammer(self.host, self.port, requests, settings.clients, settings.duration)
        result["node_cpu"] = cpu.utilisation()
        return result


class ThreadCpu:
    """CPU time of a process's threads over an interval, from /proc (Linux).

    The node has two busy threads: ``main`` (the event loop: RPC, pool) and the chain
    thread (block building and commits), counted under ``other`` with any further
    threads. CPU seconds per wall second show whether the node was busy (near 1.0 in sum:
    one core's worth, the GIL's limit) or not; ``runq_wait`` is the time its threads were
    ready to run but waited for a CPU that other processes (the load client among them)
    held, so a low CPU figure with a high wait means a crowded machine, not an idle node.
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.begin = time.perf_counter()
        self.start = self.sample()

    def sample(self) -> dict[str, float]:
        """Seconds so far: CPU per thread kind, and run-queue wait of all threads."""
        result = {"main": 0.0, "other": 0.0, "runq_wait": 0.0}
        try:
            for task in Path(f"/proc/{self.pid}/task").iterdir():
                cpu_ns, wait_ns, _ = (task / "schedstat").read_text().split()
                name = "main" if task.name == str(self.pid) else "other"
                result[name] += int(cpu_ns) / 1e9
                result["runq_wait"] += int(wait_ns) / 1e9
        except (OSError, ValueError):
            pass
        return result

    def used(self) -> tuple[dict[str, float], float]:
        """Seconds of each kind since this object was made; and wall seconds."""
        wall = time.perf_counter() - self.begin
        end = self.sample()
        return {name: end[name] - self.start[name] for name in end}, wall

    def utilisation(self) -> dict[str, float]:
        """Seconds of each kind per wall second since this object was made."""
        return self.ratios(*self.used())

    @staticmethod
    def ratios(used: dict[str, float], wall: float) -> dict[str, float]:
        return {name: round(seconds / wall, 2) for name, seconds in used.items()}


def py_spy() -> str | None:
    found = shutil.which("py-spy") or Path(sys.executable).parent / "py-spy"
    return str(found) if Path(found).exists() else None


class Profiler:
    """py-spy recording the node during one phase (``--profile DIR``): collapsed stacks,
    one line per thread and stack, in ``DIR/<phase>.txt``."""

    def __init__(self, directory: Path | None, pid: int) -> None:
        self.directory = directory
        self.pid = pid
        self.proc: subprocess.Popen | None = None

    def start(self, phase: str) -> None:
        if self.directory is None:
            return
        self.proc = subprocess.Popen(
            [py_spy(), "record", "--pid", str(self.pid), "--rate", "200", "--threads",
             "--format", "raw", "--output", str(self.directory / f"{phase}.txt")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(1.0)  # until py-spy has attached

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.proc = None


async def echo_throughput(settings: Settings, *flags: str) -> dict[str, Any]:
    """Requests/s of ``bench/echo_server.py`` (aiohttp doing no work), same client."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(BENCH / "echo_server.py"), str(port), *flags],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
        body = rpc_body("eth_getBalance", ["0x" + "11" * 20, "latest"])
        request = encode_request("127.0.0.1", port, body)
        return await hammer("127.0.0.1", port, [request], settings.clients, settings.duration)
    finally:
        proc.kill()
        proc.wait()


# the run


def balance_of_calls(workload: Workload) -> list[bytes]:
    token = "0x" + workload.token.hex()
    return [
        rpc_body("eth_call", [{"to": token, "data": "0x" + (BALANCE_OF + word(h)).hex()}, "latest"])
        for h in workload.holders
    ]


def get_balance_calls(workload: Workload) -> list[bytes]:
    return [rpc_body("eth_getBalance", ["0x" + h.hex(), "latest"]) for h in workload.holders]


def check(condition: bool, message: str) -> None:
    if not condition:
        raise RuntimeError(message)


async def measure(settings: Settings, workload: Workload, profile: Path | None) -> dict[str, Any]:
    results: dict[str, Any] = {kind: {"node": [], "pyevm": []} for kind in ("eth", "erc20")}
    chain = pyevm_baseline.build_chain(GENESIS)
    workdir = Path(tempfile.mkdtemp(prefix="sibyl-bench-"))
    node = NodeProcess(workdir / "data", ["--dev", "--block-time", "0", "--sidecars", "none"])
    try:
        node.start()
        assert node.proc is not None
        log.info("node started pid=%d url=%s", node.proc.pid, node.url)
        client = NodeClient(node)
        profiler = Profiler(profile, node.proc.pid)

        setup_blocks = await client.setup(workload)
        setup = pyevm_baseline.mine_blocks(chain, setup_blocks)
        check(not setup["failures"], f"{setup['failures']} setup transactions failed on py-evm")
        results["setup_blocks"] = setup_blocks

        for index, round_ in enumerate(workload.rounds):
            profiler.start(f"{round_.kind}_transfers_{index // 2}")
            ran = await client.mined_round(round_, workload.senders)
            profiler.stop()
            await client.blocks(ran, round_)
            replayed = pyevm_baseline.mine_blocks(chain, ran["blocks"])
            check(not replayed["failures"], f"{replayed['failures']} transactions failed on py-evm")
            check(replayed["gas_used"] == ran["gas_used"], "py-evm used other gas than the node")
            results[round_.kind]["node"].append(ran)
            results[round_.kind]["pyevm"].append(replayed)
            results[round_.kind]["loadavg"] = round(os.getloadavg()[0], 2)
            n = sum(map(len, round_.per_client))
            log.info(
                "%s round %d: node %.0f tx/s (blocks of %s txs, sent in %.2fs, mined in %.2fs, "
                "node cpu %s), py-evm mine_all %.0f tx/s",
                round_.kind, index // 2, n / ran["seconds"], [len(b) for b in ran["blocks"]],
                ran["send_seconds"], ran["seconds"], ran["node_cpu"], n / replayed["seconds"],
            )  # fmt: skip

        calls, balances = balance_of_calls(workload), get_balance_calls(workload)
        call_answers = await client.answers(calls)
        balance_answers = await client.answers(balances)
        results["echo"] = await echo_throughput(settings)
        results["raw_echo"] = await echo_throughput(settings, "--raw")
        log.info("aiohttp echo: %.0f req/s; raw asyncio echo (the client's ceiling): %.0f req/s",
                 results["echo"]["req_per_s"], results["raw_echo"]["req_per_s"])  # fmt: skip
        for name, bodies in (
            ("eth_call", calls),
            ("eth_getBalance", balances),
            ("eth_chainId", [rpc_body("eth_chainId", [])]),
        ):
            profiler.start(name)
            results[name] = await client.throughput(bodies, settings)
            results[name]["loadavg"] = round(os.getloadavg()[0], 2)
            profiler.stop()
            log.info("node %s: %.0f req/s (node cpu %s)", name, results[name]["req_per_s"],
                     results[name]["node_cpu"])  # fmt: skip
    finally:
        node.kill()
        shutil.rmtree(workdir, ignore_errors=True)

    # In-process py-evm, on the state the node ended with (the replay reached it too).
    calldatas = [BALANCE_OF + word(h) for h in workload.holders]
    call = pyevm_baseline.call_throughput(
        chain, workload.token, calldatas, settings.baseline_seconds
    )
    check(
        ["0x" + out.hex() for out in call["outputs"]] == call_answers[: len(call["outputs"])],
        "py-evm balanceOf results differ from the node's",
    )
    balance = pyevm_baseline.balance_throughput(chain, workload.holders, settings.baseline_seconds)
    check(
        [hex(b) for b in balance["balances"]] == balance_answers[: len(balance["balances"])],
        "py-evm balances differ from the node's",
    )
    results["pyevm_call"], results["pyevm_balance"] = call, balance
    log.info("py-evm in-process: call %.0f/s, get_balance %.0f/s", call["per_s"], balance["per_s"])

    # The same transactions in full blocks (as few as the gas limit allows), on a second
    # chain: what mine_all reaches when block overhead is spread over the most transactions.
    full = pyevm_baseline.build_chain(GENESIS)
    pyevm_baseline.mine_blocks(full, results["setup_blocks"])
    gas_limit = full.get_canonical_head().gas_limit
    totals = {"eth": [0.0, 0], "erc20": [0.0, 0]}
    for round_ in workload.rounds:
        txs = [raw for own in zip(*round_.per_client, strict=True) for raw in own]
        gas = ETH_GAS if round_.kind == "eth" else ERC20_GAS
        blocks = pyevm_baseline.gas_limit_blocks(txs, [gas] * len(txs), gas_limit)
        mined = pyevm_baseline.mine_blocks(full, blocks)
        check(not mined["failures"], "full-block replay failed on py-evm")
        totals[round_.kind][0] += mined["seconds"]
        totals[round_.kind][1] += len(blocks)
    results["full_blocks"] = totals
    return results


# the report


def mined_line(
    bench: str, kind: str, settings: Settings, results: dict[str, Any]
) -> dict[str, Any]:
    node, pyevm = results[kind]["node"], results[kind]["pyevm"]
    n = sum(len(block) for ran in node for block in ran["blocks"])
    value = n / sum(ran["seconds"] for ran in node)
    baseline = n / sum(replay["seconds"] for replay in pyevm)
    full_seconds, full_blocks = results["full_blocks"][kind]
    node_cpu_seconds = sum(ran["node_cpu_seconds"] for ran in node)
    return {
        "bench": bench,
        "metric": "mined_tx_per_s",
        "value": round(value, 1),
        "baseline": "pyevm_mine_all_tx_per_s",
        "baseline_value": round(baseline, 1),
        "ratio": round(value / baseline, 3),
        "target_ratio": MINED_TARGET_RATIO,
        "meets_target": value / baseline >= MINED_TARGET_RATIO,
        "n": n,
        "clients": settings.clients,
        "rounds": len(node),
        "blocks": sum(len(ran["blocks"]) for ran in node),
        "send_s": round(sum(ran["send_seconds"] for ran in node), 3),
        "mined_s": round(sum(ran["seconds"] for ran in node), 3),
        "pyevm_full_blocks_tx_per_s": round(n / full_seconds, 1),
        "pyevm_full_blocks": full_blocks,
        "node_cpu": _weighted_cpu(node),
        # CPU efficiency: the same comparison counted in CPU seconds, which time the
        # machine gave to other processes does not distort (the node's is both threads').
        "node_tx_per_cpu_s": round(n / node_cpu_seconds, 1),
        "pyevm_tx_per_cpu_s": round(n / sum(replay["cpu_seconds"] for replay in pyevm), 1),
        "loadavg_1m": results[kind]["loadavg"],
    }


def _weighted_cpu(rounds: list[dict[str, Any]]) -> dict[str, float]:
    """Per kind (see :class:`ThreadCpu`): seconds per wall second, across all rounds."""
    wall = sum(ran["seconds"] for ran in rounds)
    names = sorted({name for ran in rounds for name in ran["node_cpu"]})
    return {
        name: round(sum(ran["node_cpu"].get(name, 0) * ran["seconds"] for ran in rounds) / wall, 2)
        for name in names
    }


def rpc_line(
    bench: str, settings: Settings, measured: dict[str, Any], echo: dict[str, Any],
    target: int, extra: dict[str, Any],
) -> dict[str, Any]:  # fmt: skip
    value = measured["req_per_s"]
    return {
        "bench": bench,
        "metric": "req_per_s",
        "value": round(value, 1),
        "baseline": "aiohttp_echo_req_per_s",
        "baseline_value": round(echo["req_per_s"], 1),
        "ratio": round(value / echo["req_per_s"], 3),
        "target": target,
        "meets_target": value >= target,
        "p50_ms": round(measured["p50_ms"], 3),
        "p99_ms": round(measured["p99_ms"], 3),
        "n": measured["n"],
        "clients": settings.clients,
        "duration_s": settings.duration,
        **extra,
        "node_cpu": measured["node_cpu"],
        "loadavg_1m": measured["loadavg"],
    }


def report(settings: Settings, results: dict[str, Any]) -> list[dict[str, Any]]:
    echo = results["echo"]
    chain_id = round(results["eth_chainId"]["req_per_s"], 1)
    raw_echo = round(results["raw_echo"]["req_per_s"], 1)
    return [
        mined_line("eth_transfers", "eth", settings, results),
        mined_line("erc20_transfers", "erc20", settings, results),
        rpc_line("eth_call_balanceOf", settings, results["eth_call"], echo, CALL_TARGET, {
            "pyevm_call_per_s": round(results["pyevm_call"]["per_s"], 1),
            "node_eth_chainId_req_per_s": chain_id,
            "raw_asyncio_echo_req_per_s": raw_echo,
        }),
        rpc_line("eth_getBalance", settings, results["eth_getBalance"], echo, GET_BALANCE_TARGET, {
            "pyevm_get_balance_per_s": round(results["pyevm_balance"]["per_s"], 1),
            "node_eth_chainId_req_per_s": chain_id,
            "raw_asyncio_echo_req_per_s": raw_echo,
        }),
    ]  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="CI smoke run (about 25 s)")
    parser.add_argument("--txs", type=int, help="transactions per mined workload")
    parser.add_argument("--rounds", type=int, help="alternating node/py-evm rounds per workload")
    parser.add_argument("--duration", type=float, help="seconds per req/s measurement")
    parser.add_argument(
        "--profile", type=Path, metavar="DIR",
        help="record the node with py-spy during each phase (collapsed stacks in DIR)",
    )  # fmt: skip
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s"
    )
    settings = QUICK if args.quick else FULL
    overrides = {"txs": args.txs, "rounds": args.rounds, "duration": args.duration}
    settings = replace(settings, **{k: v for k, v in overrides.items() if v})
    if args.profile:
        if py_spy() is None:
            parser.error("--profile needs py-spy: .venv/bin/pip install py-spy")
        args.profile.mkdir(parents=True, exist_ok=True)

    begin = time.perf_counter()
    workload = make_workload(settings)
    log.info("workload signed in %.1fs: %d rounds of %d transfers, %d clients",
             time.perf_counter() - begin, len(workload.rounds),
             sum(map(len, workload.rounds[0].per_client)), settings.clients)  # fmt: skip
    results = uvloop.run(measure(settings, workload, args.profile))
    for line in report(settings, results):
        print(json.dumps(line), flush=True)
    log.info("done in %.1fs", time.perf_counter() - begin)
    return 0


if __name__ == "__main__":
    sys.exit(main())
