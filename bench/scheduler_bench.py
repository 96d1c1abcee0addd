"""The native scheduler's per-block overhead: 10 calls due while N calls are registered.

For N = 10, 1,000 and 100,000 registered calls (each a full record in the scheduler's
storage, so the state really is that large), of which 10 run every block, consecutive
blocks are built and committed on that state: finding the due calls in the due index,
running their scheduled transactions, writing their progress and committing the state.
The same blocks without due calls are the baseline measured in the same run; the
overhead is the difference of the means. The six chains (three sizes, with and without
due calls), each on its own store, are built in turns of ``BATCH`` blocks, in a new
order each turn, so drift of the machine's speed touches all of them alike. Each store
merges its journal into its node table several times (every ``MERGE_EVERY`` blocks, on
its merger thread), so the means carry whatever the merges cost the blocks beside them.
The work per block must follow the calls due, never the calls registered: target ratio
of the largest overhead to the smallest ≤ 1.2.

    python bench/scheduler_bench.py [--sizes 10,1000,100000] [--rounds 192]
"""

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import rlp
from eth.db.account import AccountDB
from eth_utils import keccak, to_wei

from chain.execution import BlockExecution
from chain.genesis import genesis_block, load_genesis
from chain.headers import PayloadAttributes, next_header
from chain.slots import DictStorage
from chain.startup import prepare_process
from chain.storage.store import MERGE_EVERY, CanonicalChange, Store, state_view
from chain.trie.root import trie_nodes
from genesis import DEV_GENESIS
from scheduler import state as calls

DUE = 10
WARMUP = 2  # blocks per chain built before measuring, on state nothing has read yet
BATCH = 16  # blocks per chain per turn
OWNER = bytes.fromhex("00000000000000000000000000000000000000ee")  # no code: calls are cheap
GAS, FEE = 50_000, 10**10


def registered_state(store: Store, root: bytes, size: int, due_at: int) -> tuple[bytes, dict]:
    """State with ``size`` scheduled calls, of which ``DUE`` are due at ``due_at``.

    The scheduler's storage is laid out with its own functions, then its trie is built in
    one pass (a py-evm insertion per slot would take minutes for 100,000 calls) and set as
    the SCHEDULER account's storage root."""
    storage = DictStorage()
    for call_id in range(1, size + 1):
        due = call_id <= DUE
        call = calls.ScheduledCall(
            id=call_id,
            owner=OWNER,
            start_block=due_at if due else 10**9 + call_id,
            frequency=1,
            num_calls=1_000,
            executed=0,
            gas_limit=GAS,
            max_fee_per_gas=FEE,
            predicate=b"\x00" * 20,
            deposit=1_000 * GAS * FEE,
            next_block=due_at if due else 10**9 + call_id,
            status=calls.ACTIVE,
        )
        calls.make_due(storage, call, call.next_block)
        calls.put_call(storage, call, new=True)
    storage.set_storage(calls.SCHEDULER, calls.LAST_ID_SLOT, size)
    storage.set_storage(calls.SCHEDULER, calls.ACTIVE_COUNT_SLOT, size)
    storage.set_storage(calls.SCHEDULER, calls.GAS_CAP_SLOT, 5_000_000)
    storage_root, nodes = trie_nodes(
        {
            keccak(slot.to_bytes(32, "big")): rlp.encode(value)
            for slot, value in storage.slots[calls.SCHEDULER].items()
        }
    )
    db, overlay = state_view(store.state_get)
    overlay.writes.update(nodes)
    accounts = AccountDB(db, root)
    accounts._set_storage_root(calls.SCHEDULER, storage_root)  # py-evm has no public setter
    accounts.set_balance(calls.SCHEDULER, size * 1_000 * GAS * FEE + to_wei(1, "ether"))
    accounts.persist()
    return accounts.state_root, overlay.writes


def scheduled(execution: BlockExecution) -> list:
    """What a block of the scheduler's chains holds: the scheduled calls due in it."""
    return execution.scheduled


@dataclass
class Chain:
    """Consecutive blocks from one parent on one store, as a node builds them: each block
    runs on the state the one before it wrote, so no block finds its trie paths decoded
    by an earlier build of itself. ``transactions`` gives what each block applies (timed
    with the block, so it must be cheap: anything signed is signed beforehand)."""

    store: Store
    parent: Any
    transactions: Callable[[BlockExecution], list] = scheduled
    samples: list[float] = field(default_factory=list)  # seconds per block, all in
    commits: list[float] = field(default_factory=list)  # seconds of its commit alone
    # CPU seconds of this process per block (the merger thread's included): what the block
    # cost, without the time the process waited for a core other processes held
    cpu: list[float] = field(default_factory=list)

    def build(self, config: Any, count: int, *, counted: bool = True) -> None:
        headers = {self.parent.hash: self.parent}
        for _ in range(count):
            parent = self.parent
            attributes = PayloadAttributes(
                timestamp=parent.timestamp + 12,
                prev_randao=keccak(parent.hash),
                fee_recipient=b"\x00" * 20,
                parent_beacon_block_root=b"\x00" * 32,
            )
            started, cpu = time.perf_counter(), time.process_time()
            header = next_header(config, parent, attributes)
            execution = BlockExecution(config, parent, header, self.store.state_get, headers.get)
            for tx in self.transactions(execution):
                execution.apply(tx)
            executed = execution.finish()
            committing = time.perf_counter()
            write = executed.write()
            self.store.commit(CanonicalChange(added=[write], head=write.hash))
            done = time.perf_counter()
            if counted:
                self.samples.append(done - started)
                self.commits.append(done - committing)
                self.cpu.append(time.process_time() - cpu)
            self.parent = headers.setdefault(executed.hash, executed.header)

    def means_ms(self) -> tuple[float, float]:
        return statistics.fmean(self.samples) * 1000, statistics.fmean(self.commits) * 1000

    def cpu_ms(self) -> float:
        return statistics.fmean(self.cpu) * 1000


def main() -> int:
    prepare_process()  # as the node does at start-up
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10,1000,100000")
    parser.add_argument("--rounds", type=int, default=3 * MERGE_EVERY)
    args = parser.parse_args()
    genesis = load_genesis(DEV_GENESIS)
    config = genesis.config
    chains, setups = {}, {}
    for size in (int(s) for s in args.sizes.split(",")):
        started = time.perf_counter()
        # the registrations twice: 10 of them due in the blocks measured, and none due;
        # each chain on its own store, so it pays for its own merges
        for due in (True, False):
            store = Store(Path(tempfile.mkdtemp(prefix="sibyl-sched-bench-")))
            block, write = genesis_block(genesis)
            store.initialise(write, genesis.raw)
            root, writes = registered_state(
                store, block.header.state_root, size, 1 if due else 10**6
            )
            store.put_state(writes)
            chains[size, due] = Chain(store, block.header.copy(state_root=root))
        setups[size] = time.perf_counter() - started
    for chain in chains.values():  # a node that just started: nothing cached yet
        chain.build(config, WARMUP, counted=False)
    order, shuffle = list(chains.values()), random.Random(0).shuffle
    for _ in range(max(1, args.rounds // BATCH)):  # interleaved, in a new order each turn:
        shuffle(order)  # drift, and a merge spilling into the next chain, touch all alike
        for chain in order:
            chain.build(config, BATCH)

    overheads = {}
    for size in setups:
        with_due, due_commit = chains[size, True].means_ms()
        empty, empty_commit = chains[size, False].means_ms()
        overheads[size] = with_due - empty
        print(
            json.dumps(
                {
                    "bench": "scheduler",
                    "metric": "per_block_overhead_ms",
                    "registered": size,
                    "due": DUE,
                    "value": round(overheads[size], 3),
                    "block_with_due_ms": round(with_due, 3),
                    "baseline": "block_without_due_ms",
                    "baseline_value": round(empty, 3),
                    "commit_ms": round(due_commit, 3),
                    "baseline_commit_ms": round(empty_commit, 3),
                    "blocks": len(chains[size, True].samples),
                    "setup_s": round(setups[size], 1),
                }
            ),
            flush=True,
        )
        chains[size, True].store.close()
        chains[size, False].store.close()
    smallest, largest = min(overheads), max(overheads)
    ratio = overheads[largest] / overheads[smallest]
    print(
        json.dumps(
            {
                "bench": "scheduler",
                "metric": "overhead_ratio_largest_to_smallest",
                "value": round(ratio, 3),
                "largest": largest,
                "smallest": smallest,
                "target": 1.2,
                "meets_target": ratio <= 1.2,
            }
        ),
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
