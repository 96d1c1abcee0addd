"""Async jobs: what settling deliveries costs a follower against the builder, what
pending jobs cost every block, and how many blocks a job takes on the dev chain.

1. ``deliveries``: for N = 1, 10, 100 pending jobs, one block delivers all of them (each
   with its executor's attestation, signed beforehand as the sidecar signs it). The
   builder's block time (execute and finish, the model excluded) is the baseline of a
   follower's import of the same block (replay, checking every attestation). The model's
   own time, measured separately by running the dev LLM on one job, is reported beside
   it: the builder pays it, the follower never does (target: import ≤ 5% of the builder's
   time with its model time).
2. ``pending``: consecutive blocks, built and committed, that each deliver 10 jobs on
   states holding 10 and 10,000 pending jobs (full records in the JOBS storage, so its
   trie really is that deep), against empty blocks on the same states (the baseline);
   each chain on its own data dir, all built in interleaved turns in a seeded order as
   bench/scheduler_bench.py builds its chains; target ratio of the overheads ≤ 1.2: a
   block's work follows the jobs it settles, never the jobs pending.
3. ``latency``: a real dev node with the bundled LLM sidecar; AIChat asks, and the
   blocks (and seconds) until its callback are counted.

    python bench/jobs_bench.py [--skip-deliveries] [--skip-pending] [--skip-latency]
"""

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from itertools import islice
from pathlib import Path
from typing import Any

import rlp
from eth.db.account import AccountDB
from eth_abi import encode as abi_encode
from eth_keys import keys
from eth_utils import keccak
from scheduler_bench import BATCH, WARMUP, Chain

from chain.ai import jobs
from chain.ai.delivery import DeliveryTransaction
from chain.ai.results import VerifyOracle
from chain.execution import BlockExecution, execute_block
from chain.genesis import genesis_block, load_genesis
from chain.headers import PayloadAttributes, next_header
from chain.slots import DictStorage
from chain.startup import prepare_process
from chain.storage.store import MERGE_EVERY, Store, state_view
from chain.trie.root import trie_nodes
from genesis import DEV_GENESIS, DEV_MODELS, DIR
from sidecars.abi import LLM_ADDRESS, LLM_INPUT_TYPES, encode_llm_output
from sidecars.attestation import attestation_digest, sign_digest

MODELS = {m["kind"]: m for m in json.loads((DEV_MODELS / "models.json").read_text())}
LLM_ID = bytes.fromhex(MODELS["llm"]["id"][2:])
REQUESTER = bytes.fromhex("00000000000000000000000000000000000000ee")  # no code
KEY = keys.PrivateKey(bytes.fromhex((DIR / "dev-executor.key").read_text().strip()[-64:]))
QUESTION = json.dumps([{"role": "user", "content": "what is the capital of france ?"}])
INPUT = abi_encode(LLM_INPUT_TYPES, [LLM_ID, QUESTION, 16, 0, 0, b"\x12\x34\x56\x78", 50_000, 200])
OUTPUT = encode_llm_output("paris is the capital of france .", 9, 8)
GAS_PRICE = 10**9


def pending_state(store: Store, root: bytes, count: int, deadline: int) -> tuple[bytes, list]:
    """State with ``count`` pending LLM jobs of REQUESTER; returns the root and the ids."""
    storage = DictStorage()
    jobs.genesis_storage(jobs.DEFAULT_MAX_TTL, jobs.DEFAULT_EXPIRY_GAS, storage)
    ids = [keccak(b"bench job %d" % i) for i in range(count)]
    reserved = 0
    for job_id in ids:
        job = jobs.Job(
            id=job_id, requester=REQUESTER, precompile=LLM_ADDRESS, model_id=LLM_ID,
            input_hash=keccak(INPUT), callback_selector=b"\x12\x34\x56\x78",
            callback_gas_limit=50_000, gas_price=GAS_PRICE, fee=10**12, reserved_gas=200_000,
            created_block=0, deadline=deadline,
        )  # fmt: skip
        jobs.record_job(storage, job, job.callback_gas_limit + 30_000)
        reserved += job.reserved
    storage_root, nodes = trie_nodes(
        {
            keccak(slot.to_bytes(32, "big")): rlp.encode(value)
            for slot, value in storage.slots[jobs.JOBS].items()
        }
    )
    db, overlay = state_view(store.state_get)
    overlay.writes.update(nodes)
    accounts = AccountDB(db, root)
    accounts._set_storage_root(jobs.JOBS, storage_root)  # py-evm has no public setter
    accounts.set_balance(jobs.JOBS, reserved)
    accounts.persist()
    store.put_state(overlay.writes)
    with store.state_env.begin(buffers=True) as txn:  # a running node's pages are mapped:
        for _ in txn.cursor():  # touch them once, so no block pays for first page faults
            pass
    return accounts.state_root, ids


def delivery(job_id: bytes, chain_id: int) -> DeliveryTransaction:
    digest = attestation_digest(
        chain_id, LLM_ADDRESS, LLM_ID, keccak(INPUT), keccak(OUTPUT), job_id
    )
    return DeliveryTransaction(job_id, jobs.OK, OUTPUT, (sign_digest(KEY, digest),))


def fresh_chain(genesis: Any, count: int) -> tuple[Store, Any, list[bytes]]:
    store = Store(Path(tempfile.mkdtemp(prefix="sibyl-jobs-bench-")))
    block, write = genesis_block(genesis)
    store.initialise(write, genesis.raw)
    root, ids = pending_state(store, block.header.state_root, count, 10**6)
    return store, block.header.copy(state_root=root), ids


def build(config: Any, store: Store, parent: Any, deliveries: list) -> tuple[Any, float]:
    attributes = PayloadAttributes(
        timestamp=parent.timestamp + 12, prev_randao=keccak(parent.hash),
        fee_recipient=b"\x00" * 20, parent_beacon_block_root=b"\x00" * 32,
    )  # fmt: skip
    started = time.perf_counter()
    header = next_header(config, parent, attributes)
    execution = BlockExecution(config, parent, header, store.state_get, {parent.hash: parent}.get)
    for tx in deliveries:
        execution.apply(tx)
    executed = execution.finish()
    return executed, time.perf_counter() - started


def model_seconds_per_job() -> float:
    from sidecars.runtimes import load_model

    model = load_model("llm", DEV_MODELS / "dev-llm", LLM_ID)
    model.run(LLM_ADDRESS, LLM_ID, INPUT)  # warm
    started = time.perf_counter()
    for _ in range(5):
        model.run(LLM_ADDRESS, LLM_ID, INPUT)
    return (time.perf_counter() - started) / 5


def bench_deliveries(genesis: Any, sizes: list[int], rounds: int) -> None:
    config = genesis.config
    per_job_model = model_seconds_per_job()
    for count in sizes:
        store, parent, ids = fresh_chain(genesis, count)
        block_txs = [delivery(job_id, config.chain_id) for job_id in ids]
        builds, imports = [], []
        for _ in range(rounds):
            executed, seconds = build(config, store, parent, block_txs)
            builds.append(seconds)
            started = time.perf_counter()
            execute_block(
                config, parent, executed.block, store.state_get, {parent.hash: parent}.get,
                VerifyOracle(config.chain_id),
            )  # fmt: skip
            imports.append(time.perf_counter() - started)
        store.close()
        builder_ms = statistics.median(builds) * 1000
        import_ms = statistics.median(imports) * 1000
        model_ms = per_job_model * count * 1000
        print(json.dumps({
            "bench": "jobs", "metric": "follower_import_ms", "deliveries": count,
            "value": round(import_ms, 3), "baseline": "builder_block_ms_without_model",
            "baseline_value": round(builder_ms, 3), "model_ms": round(model_ms, 1),
            "import_over_builder_without_model": round(import_ms / builder_ms, 3),
            "import_over_builder_with_model": round(import_ms / (builder_ms + model_ms), 4),
            "target": 0.05,
            "meets_target": import_ms / (builder_ms + model_ms) <= 0.05,
        }), flush=True)  # fmt: skip


def bench_pending(genesis: Any, sizes: list[int], rounds: int, delivered: int) -> None:
    """As bench/scheduler_bench.py measures the scheduler: per size, a chain whose blocks
    each deliver ``delivered`` jobs and one whose blocks are empty, on the same state, each on its
    own data dir; consecutive blocks built and committed (Store.commit, its merges
    included), ``WARMUP`` blocks per chain first, then turns of ``BATCH`` blocks per chain
    in a seeded order; the overhead is the difference of the means, of wall-clock time
    and of the process's CPU time (which a loaded machine's other processes leave out)."""
    config = genesis.config
    chains, setups = {}, {}
    for count in sizes:
        started = time.perf_counter()
        for delivering in (True, False):  # `count` jobs stay pending while the rest go
            store, parent, ids = fresh_chain(genesis, count + delivered * (WARMUP + rounds))
            chain = Chain(store, parent)
            if delivering:
                txs = iter([delivery(job_id, config.chain_id) for job_id in ids])
                chain.transactions = lambda execution, txs=txs: list(islice(txs, delivered))
            else:
                chain.transactions = lambda execution: []
            chains[count, delivering] = chain
        setups[count] = time.perf_counter() - started
    for chain in chains.values():  # a node that just started: nothing decoded yet
        chain.build(config, WARMUP, counted=False)
    order, shuffle = list(chains.values()), random.Random(0).shuffle
    for _ in range(max(1, rounds // BATCH)):
        shuffle(order)
        for chain in order:
            chain.build(config, BATCH)
    overheads, cpu_overheads = {}, {}
    for count in sizes:
        with_jobs, commit = chains[count, True].means_ms()
        empty, empty_commit = chains[count, False].means_ms()
        overheads[count] = with_jobs - empty
        cpu_overheads[count] = chains[count, True].cpu_ms() - chains[count, False].cpu_ms()
        print(json.dumps({
            "bench": "jobs", "metric": "per_block_overhead_ms", "pending": count,
            "delivered": delivered, "value": round(overheads[count], 3),
            "block_with_deliveries_ms": round(with_jobs, 3),
            "baseline": "empty_block_ms", "baseline_value": round(empty, 3),
            "commit_ms": round(commit, 3), "baseline_commit_ms": round(empty_commit, 3),
            "cpu_overhead_ms": round(cpu_overheads[count], 3),
            "block_with_deliveries_cpu_ms": round(chains[count, True].cpu_ms(), 3),
            "empty_block_cpu_ms": round(chains[count, False].cpu_ms(), 3),
            "blocks": len(chains[count, True].samples), "setup_s": round(setups[count], 1),
        }), flush=True)  # fmt: skip
    for chain in chains.values():
        chain.store.close()
    smallest, largest = min(sizes), max(sizes)
    for metric, figures in (("overhead_ratio_pending", overheads),
                            ("cpu_overhead_ratio_pending", cpu_overheads)):  # fmt: skip
        ratio = figures[largest] / figures[smallest]
        print(json.dumps({
            "bench": "jobs", "metric": metric, "value": round(ratio, 3), "largest": largest,
            "smallest": smallest, "target": 1.2, "meets_target": ratio <= 1.2,
        }), flush=True)  # fmt: skip


def bench_latency() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from ai_chain import Wallet, calldata, shut_down, start_producer
    from jobs_chain import asked_job, deploy_chat, messages, settled
    from nodes import DEV_KEYS

    with tempfile.TemporaryDirectory() as tmp:
        node = start_producer(Path(tmp) / "producer")
        try:
            wallet = Wallet(node.w3(), DEV_KEYS[0])
            chat = deploy_chat(wallet)
            latencies, seconds = [], []
            for question in ("say hello .", "what do bees make ?", "who wrote hamlet ?"):
                data = calldata(chat, "ask", messages(question), 16, 30)
                started = time.monotonic()
                receipt = wallet.send(chat.address, data)
                job_id = asked_job(chat, receipt)
                while (job := settled(node.url, job_id)) is None:
                    time.sleep(0.05)
                seconds.append(time.monotonic() - started)
                latencies.append(int(job["settledBlock"], 16) - receipt.blockNumber)
        finally:
            shut_down(node)
    print(json.dumps({
        "bench": "jobs", "metric": "job_latency_blocks", "value": statistics.median(latencies),
        "samples": latencies, "seconds_median": round(statistics.median(seconds), 2),
        "baseline": "ttl_blocks", "baseline_value": 30,
    }), flush=True)  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--deliveries", default="1,10,100")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--pending", default="10,10000")
    parser.add_argument("--rounds-pending", type=int, default=3 * MERGE_EVERY)
    parser.add_argument("--delivered", type=int, default=10)
    parser.add_argument("--skip-deliveries", action="store_true")
    parser.add_argument("--skip-pending", action="store_true")
    parser.add_argument("--skip-latency", action="store_true")
    args = parser.parse_args()
    prepare_process()  # as the node does at start-up (pysha3's keccak, the rlp cache)
    genesis = load_genesis(DEV_GENESIS)
    if not args.skip_deliveries:
        bench_deliveries(genesis, [int(n) for n in args.deliveries.split(",")], args.rounds)
    if not args.skip_pending:
        bench_pending(
            genesis, [int(n) for n in args.pending.split(",")], args.rounds_pending, args.delivered
        )
    if not args.skip_latency:
        bench_latency()
    return 0


if __name__ == "__main__":
    sys.exit(main())
