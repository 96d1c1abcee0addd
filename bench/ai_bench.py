"""Execute once, verify many: the cost of building a block of AI calls versus importing it.

A block of 50 EMBED calls (each a transaction to the precompile, distinct texts) is built
by a producer whose embedding model runs on a real sidecar process, then imported by a
follower with no sidecar, which checks the attestations instead of running the model.
Prints JSON lines: the producer's build time, the follower's import time and their ratio
(target: import ≤ 5% of build), and attestation checks per second (digest, signature
recovery, registry lookup), beside a block of 50 plain transfers built and imported the
same way as the baseline of what execution alone costs.

Each figure is the median of ``--rounds`` blocks of each kind, each imported by
``--followers`` followers, after a warm-up block of each kind. Each follower is its own
process, as on a real deployment, so it never finds state decoded by the producer or by
another follower in its caches; followers import one after the other, never beside the
producer. The follower's import starts from the block's encoding, as it arrives from a
peer: decoding is timed and reported beside the import.

    python bench/ai_bench.py [--calls 50] [--rounds 3] [--followers 3]
"""

import argparse
import json
import logging
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path
from statistics import median
from typing import Any

import rlp
from eth_abi import encode
from eth_account import Account
from eth_utils import keccak

from chain.ai import registry
from chain.ai.attested import AttestedTransaction
from chain.cmd.run import dev_accounts
from chain.engine import Engine
from chain.genesis import genesis_block, load_genesis
from chain.headers import PayloadAttributes
from chain.startup import prepare_process
from chain.storage.codec import decode_any_block
from chain.storage.reader import ChainReader
from chain.storage.store import Store
from chain.txpool import PoolConfig, TxPool
from genesis import DEV_GENESIS
from sidecars.attestation import attestation_digest, recover_signer, sync_context
from sidecars.config import dev_sidecar_specs
from sidecars.manager import SidecarManager

CHAIN_ID = 19183
TEXTS = [
    "the price of ether rose sharply",
    "a quiet block with few transactions",
    "validators attest the model output",
    "execute once and verify many times",
    "an oracle refreshed by the scheduler",
]


class Side:
    """One node's chain: a store in a temporary dir and an engine over it."""

    def __init__(self, genesis, pool=None, replicas=None) -> None:  # noqa: ANN001
        self.dir = Path(tempfile.mkdtemp(prefix="sibyl-ai-bench-"))
        self.store = Store(self.dir)
        _, write = genesis_block(genesis)
        self.store.initialise(write, genesis.raw)
        self.reader = ChainReader(self.store, genesis.config)
        self.engine = Engine(genesis.config, self.store, self.reader, pool, None, replicas)
        self.txpool = TxPool(
            CHAIN_ID, PoolConfig(), lambda: self.reader.head, self.reader.account, genesis.config
        )

    def build(self, raws: list[bytes]) -> tuple[object, float]:
        for raw in raws:
            self.txpool.add(raw)
        head = self.reader.head
        attributes = PayloadAttributes(
            timestamp=head.timestamp + 1,
            prev_randao=keccak(head.hash),
            fee_recipient=b"\x00" * 20,
            parent_beacon_block_root=b"\x00" * 32,
        )
        pending, _ = self.txpool.split()
        started = time.perf_counter()  # the whole production, commit included, as an import
        _, payload_id = self.engine.forkchoice_updated(head.hash, None, None, attributes, pending)
        block = self.engine.get_payload(payload_id).executed.block
        self.engine.import_block(block)
        elapsed = time.perf_counter() - started
        self.txpool.on_new_head()
        return block, elapsed

    def import_(self, encoded: bytes) -> tuple[float, float]:
        """Import a block as a follower receives it, from its encoding, so no
        transaction carries the sender or hash the producer already worked out; returns
        the time to decode it and the time to import it (execute, verify, commit)."""
        started = time.perf_counter()
        received = decode_any_block(self.reader.config, encoded)
        decoded = time.perf_counter()
        self.engine.import_block(received)
        return decoded - started, time.perf_counter() - decoded


def follower(connection) -> None:  # noqa: ANN001
    """A follower process: imports each block encoding it is sent and answers with its
    decode and import times and its new head."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    side = Side(load_genesis(DEV_GENESIS))
    while (message := connection.recv()) is not None:
        decode, imported = side.import_(message)
        connection.send((decode, imported, side.reader.head.hash))


def signed_by_dev_accounts(calls: list[dict], nonces: dict, first: int = 0) -> list[bytes]:
    """Each of ``calls`` (its ``to``, ``data``, ``gas`` and ``value``) as an EIP-1559
    transaction signed by dev account ``(first + i) % 10`` with the next nonce ``nonces``
    counts for that account: a block's worth from many senders, signed ahead of the
    timing."""
    keys = dev_accounts(10)
    raws = []
    for i, call in enumerate(calls, start=first):
        account = Account.from_key(keys[i % len(keys)].to_bytes())
        nonce = nonces.get(account.address, 0)
        tx = call | {
            "maxFeePerGas": 10**11,
            "maxPriorityFeePerGas": 10**9,
            "nonce": nonce,
            "chainId": CHAIN_ID,
        }
        nonces[account.address] = nonce + 1
        raws.append(bytes(account.sign_transaction(tx).raw_transaction))
    return raws


def embed_transactions(model_id: bytes, count: int, nonces: dict) -> list[bytes]:
    calls = [
        {
            "to": "0x0000000000000000000000000000000000000801",
            "data": encode(
                ["bytes32", "string", "uint8"], [model_id, f"{TEXTS[i % len(TEXTS)]} #{i}", 6]
            ),
            "gas": 300_000,
            "value": 0,
        }
        for i in range(count)
    ]
    return signed_by_dev_accounts(calls, nonces)


def transfer_transactions(count: int, nonces: dict) -> list[bytes]:
    transfer = {"to": "0x90F79bf6EB2c4f870365E785982E1f101E93b906", "value": 1, "gas": 21000}
    return signed_by_dev_accounts([transfer] * count, nonces)


def attestation_checks_per_second(block, state, rounds: int = 20) -> float:  # noqa: ANN001
    """Verify every attestation of ``block`` as a follower does, ``rounds`` times."""
    calls = []
    for tx in block.transactions:
        if isinstance(tx, AttestedTransaction):
            for index, result in enumerate(tx.results):
                model_id = tx.inner.data[:32]
                calls.append((tx.hash, index, model_id, result))
    started = time.perf_counter()
    for _ in range(rounds):
        for tx_hash, index, model_id, result in calls:
            digest = attestation_digest(
                CHAIN_ID,
                result.precompile,
                model_id,
                result.input_hash,
                keccak(result.output),
                sync_context(tx_hash, index),
            )
            for signature in result.signatures:
                signer = recover_signer(digest, signature)
                assert registry.get_executor(state, signer).can("embed")
    return len(calls) * rounds / (time.perf_counter() - started)


def ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def line(**fields) -> None:  # noqa: ANN003
    print(json.dumps({"bench": "ai_verify", **fields}), flush=True)


def main() -> int:
    prepare_process()  # as the node does at start-up
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3, help="blocks of each kind")
    parser.add_argument("--followers", type=int, default=3, help="followers importing each")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    genesis = load_genesis(DEV_GENESIS)
    specs = [s for s in dev_sidecar_specs() if s.runtime == "embed"]
    if not specs:
        print("the embed extra is not installed: pip install '.[embed]'", file=sys.stderr)
        return 1
    manager = SidecarManager(specs, "process", owner="sibyl-ai-bench")
    manager.start()
    try:
        model_id = specs[0].model_id
        producer = Side(genesis, manager.pool)
        spawn = multiprocessing.get_context("spawn")  # a fresh interpreter: nothing shared
        followers, processes = [], []
        for _ in range(args.followers):
            ours, theirs = spawn.Pipe()
            processes.append(spawn.Process(target=follower, args=(theirs,), daemon=True))
            processes[-1].start()
            followers.append(ours)
        nonces: dict = {}

        def round_of(raws: list[bytes]) -> tuple[Any, float, list[float], list[float]]:
            block, build = producer.build(raws)
            timings = []
            for connection in followers:
                connection.send(rlp.encode(block))
                timings.append(connection.recv())
            assert all(head == producer.reader.head.hash for _, _, head in timings)
            return block, build, [t[0] for t in timings], [t[1] for t in timings]

        # warm up: followers import AI blocks all day; the first call pays one-off costs
        round_of(transfer_transactions(args.calls, nonces))
        round_of(embed_transactions(model_id, 2, nonces))
        plain = {"build": [], "decode": [], "import": []}
        ai = {"build": [], "decode": [], "import": []}
        for _ in range(args.rounds):
            for kind, raws in (
                (plain, transfer_transactions(args.calls, nonces)),
                (ai, embed_transactions(model_id, args.calls, nonces)),
            ):
                block, build, decode, imported = round_of(raws)
                kind["build"].append(build)
                kind["decode"] += decode
                kind["import"] += imported
        attested = sum(isinstance(tx, AttestedTransaction) for tx in block.transactions)
        assert attested == args.calls, f"only {attested} of {args.calls} calls were attested"
        for connection in followers:
            connection.send(None)
        for process in processes:  # exiting followers would take CPU from what follows
            process.join()

        state = producer.reader.accounts(producer.reader.head)
        checks = attestation_checks_per_second(block, state)
        build, imported = median(ai["build"]), median(ai["import"])
        common = {"calls": args.calls, "rounds": args.rounds, "followers": args.followers}
        line(
            metric="producer_build_ms",
            value=ms(build),
            baseline="transfers_build_ms",
            baseline_value=ms(median(plain["build"])),
            **common,
        )
        line(
            metric="follower_import_ms",
            value=ms(imported),
            baseline="transfers_import_ms",
            baseline_value=ms(median(plain["import"])),
            decode_ms=ms(median(ai["decode"])),
            **common,
        )
        line(
            metric="import_to_build_ratio",
            value=round(imported / build, 4),
            target=0.05,
            meets_target=imported / build <= 0.05,
            **common,
        )
        line(metric="attestation_checks_per_s", value=round(checks, 1), calls=args.calls)
    finally:
        manager.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
