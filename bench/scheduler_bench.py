"""The native scheduler's per-block overhead: 10 calls due while N calls are registered.

For N = 10, 1,000 and 100,000 registered calls (each a full record in the scheduler's
storage, so the state really is that large), of which 10 run every block, consecutive
blocks are built and committed on that state: finding the due calls in the due index,
running their scheduled transactions, writing their progress and committing the state.
The same blocks without due calls are the baseline measured in the same run; the
overhead is the difference of the means. Each run spans several merges of the store's
journal into its node table (every ``MERGE_EVERY`` blocks, on the store's merger thread),
so the means carry whatever the merges cost the blocks beside them. The work per block
must follow the calls due, never the calls registered: target ratio of the largest
overhead to the smallest ≤ 1.2.

    python bench/scheduler_bench.py [--sizes 10,1000,100000] [--rounds 192]
"""

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import rlp
from eth.db.account import AccountDB
from eth_utils import keccak, to_wei

from chain.execution import BlockExecution, PayloadAttributes, next_header
from chain.genesis import genesis_block, load_genesis
from chain.slots import DictStorage
from chain.storage import MERGE_EVERY, CanonicalChange, Store, state_view
from chain.trie_root import trie_nodes
from genesis import DEV_GENESIS
from scheduler import state as calls

DUE = 10
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


def block_times(store: Store, config, parent, rounds: int) -> tuple[float, float]:  # noqa: ANN001
    """Mean seconds to build, seal and commit each of ``rounds`` consecutive blocks on
    ``parent``, scheduled calls included, and the mean of the commit alone (the store's
    write transaction of the block): each block runs on the state the one
    before it wrote, as on a node, so no block finds its trie paths decoded by an
    earlier build of itself."""
    samples, commits = [], []
    headers = {parent.hash: parent}
    for _ in range(rounds):
        attributes = PayloadAttributes(
            timestamp=parent.timestamp + 12,
            prev_randao=keccak(parent.hash),
            fee_recipient=b"\x00" * 20,
            parent_beacon_block_root=b"\x00" * 32,
        )
        started = time.perf_counter()
        header = next_header(config, parent, attributes)
        execution = BlockExecution(config, parent, header, store.state_get, headers.get)
        for tx in execution.scheduled:
            execution.apply(tx)
        executed = execution.finish()
        committing = time.perf_counter()
        write = executed.write()
        store.commit(CanonicalChange(added=[write], head=write.hash))
        done = time.perf_counter()
        samples.append(done - started)
        commits.append(done - committing)
        parent = headers.setdefault(executed.hash, executed.header)
    return statistics.fmean(samples), statistics.fmean(commits)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10,1000,100000")
    parser.add_argument("--rounds", type=int, default=3 * MERGE_EVERY)
    args = parser.parse_args()
    genesis = load_genesis(DEV_GENESIS)
    config = genesis.config
    overheads = {}
    for size in (int(s) for s in args.sizes.split(",")):
        store = Store(Path(tempfile.mkdtemp(prefix="sibyl-sched-bench-")))
        block, write = genesis_block(genesis)
        store.initialise(write, genesis.raw)
        setup = time.perf_counter()
        root, writes = registered_state(store, block.header.state_root, size, due_at=1)
        store.put_state(writes)
        setup = time.perf_counter() - setup
        with_due, due_commit = block_times(
            store, config, block.header.copy(state_root=root), args.rounds
        )
        # the same registrations, none due in the blocks measured
        quiet_root, writes = registered_state(store, block.header.state_root, size, due_at=10**6)
        store.put_state(writes)
        empty, empty_commit = block_times(
            store, config, block.header.copy(state_root=quiet_root), args.rounds
        )
        overheads[size] = with_due - empty
        print(
            json.dumps(
                {
                    "bench": "scheduler",
                    "metric": "per_block_overhead_ms",
                    "registered": size,
                    "due": DUE,
                    "value": round(overheads[size] * 1000, 3),
                    "block_with_due_ms": round(with_due * 1000, 3),
                    "baseline": "block_without_due_ms",
                    "baseline_value": round(empty * 1000, 3),
                    "commit_ms": round(due_commit * 1000, 3),
                    "baseline_commit_ms": round(empty_commit * 1000, 3),
                    "setup_s": round(setup, 1),
                }
            ),
            flush=True,
        )
        store.close()
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
