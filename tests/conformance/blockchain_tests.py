"""Run Ethereum's BlockchainTest fixtures through ``sibyl init`` and ``sibyl import``.

Each case becomes what an operator would give the node: a geth genesis file (the
fixture's genesis header fields, its ``pre`` accounts as ``alloc``, the fork schedule its
network names, no ``sibyl`` section) and its blocks' RLP, which are imported one by one
through :func:`chain.cmd.blockfile.import_raw_block`, the function behind ``sibyl import``,
in-process for speed. A case passes when block 0's hash is the fixture's, every block
the fixture marks invalid is refused, every other one is accepted, and the head ends on
``lastblockhash``.

    python -m tests.conformance.blockchain_tests DIR_OR_FILE... [--jobs N] [--failures]

prints one JSON line per fork and per folder ({"fork", "passed", "failed", "skipped"}),
then every failure with its reason when asked. Every network from Frontier to Prague
runs, the transitions between them included; later ones (Osaka) are skipped, counted as
such. A case whose ``sealEngine`` is ``Ethash`` gets ``config.ethash``, so its seals are
checked (:mod:`chain.ethash`, pure Python: some seconds to build the first epoch's cache
in each worker); ``NoProof`` cases' are not.
"""

import argparse
import json
import logging
import multiprocessing
import os
import shutil
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chain.cmd.blockfile import BlockFileError, import_raw_block
from chain.engine import Engine
from chain.execution import InvalidBlock
from chain.genesis import parse_genesis
from chain.genesis_values import GenesisError
from chain.node import initialise
from chain.storage.reader import ChainReader
from chain.storage.store import Store

BLOCK_FORKS = (  # geth's keys, in fork order, and the network named after each
    ("homesteadBlock", "Homestead"), ("eip150Block", "EIP150"), ("eip155Block", ""),
    ("eip158Block", "EIP158"), ("byzantiumBlock", "Byzantium"),
    ("constantinopleBlock", "Constantinople"), ("petersburgBlock", "ConstantinopleFix"),
    ("istanbulBlock", "Istanbul"), ("muirGlacierBlock", "MuirGlacier"),
    ("berlinBlock", "Berlin"), ("londonBlock", "London"),
    ("arrowGlacierBlock", "ArrowGlacier"), ("grayGlacierBlock", "GrayGlacier"),
)  # fmt: skip


def _until(network: str, at: int = 0) -> dict[str, int]:
    """Every block fork up to the one of ``network``, from block ``at``."""
    keys = [key for key, _ in BLOCK_FORKS]
    last = next(i for i, (_, name) in enumerate(BLOCK_FORKS) if name == network)
    return {key: at for key in keys[: last + 1]}


PARIS = {**_until("GrayGlacier"), "terminalTotalDifficulty": 0}
MERGED = {**PARIS, "shanghaiTime": 0}
NETWORKS: dict[str, dict[str, Any]] = {
    "Frontier": {},
    **{name: _until(name) for _, name in BLOCK_FORKS if name},
    "Paris": PARIS,
    "Shanghai": MERGED,
    "Cancun": {**MERGED, "cancunTime": 0},
    "Prague": {**MERGED, "cancunTime": 0, "pragueTime": 0},
    "FrontierToHomesteadAt5": {"homesteadBlock": 5},
    "HomesteadToDaoAt5": {"homesteadBlock": 0, "daoForkBlock": 5, "daoForkSupport": True},
    "HomesteadToEIP150At5": {"homesteadBlock": 0, "eip150Block": 5},
    "EIP158ToByzantiumAt5": {**_until("EIP158"), "byzantiumBlock": 5},
    "ByzantiumToConstantinopleFixAt5": {
        **_until("Byzantium"),
        "constantinopleBlock": 5,
        "petersburgBlock": 5,
    },  # fmt: skip
    "BerlinToLondonAt5": {**_until("Berlin"), "londonBlock": 5},
    "ArrowGlacierToParisAtDiffC0000": {
        **_until("ArrowGlacier"),
        "terminalTotalDifficulty": 0xC0000,
    },  # fmt: skip
    "ParisToShanghaiAtTime15k": {**PARIS, "shanghaiTime": 15_000},
    "ShanghaiToCancunAtTime15k": {**MERGED, "cancunTime": 15_000},
    "CancunToPragueAtTime15k": {**MERGED, "cancunTime": 0, "pragueTime": 15_000},
}
MAINNET_DEPOSIT_CONTRACT = "0x00000000219ab540356cbb839cbe05303d7705fa"  # the fixtures' one
HEADER_FIELDS = (
    "nonce", "timestamp", "extraData", "gasLimit", "difficulty", "mixHash", "coinbase",
    "baseFeePerGas", "excessBlobGas", "blobGasUsed",
)  # fmt: skip


@dataclass(frozen=True)
class Outcome:
    name: str
    folder: str
    fork: str
    status: str  # passed, failed, skipped
    reason: str = ""


def genesis_file(case: dict[str, Any]) -> bytes:
    """The geth genesis file an operator would write for this case."""
    header = case["genesisBlockHeader"]
    chain_id = int(case.get("config", {}).get("chainid", "0x1"), 16)
    genesis = {
        "config": {
            "chainId": chain_id,
            "depositContractAddress": MAINNET_DEPOSIT_CONTRACT,
            **NETWORKS[case["network"]],
            # geth checks proof-of-work seals with its ethash engine, fakes them for NoProof
            **({"ethash": {}} if case.get("sealEngine") == "Ethash" else {}),
        },
        "alloc": case["pre"],
        **{field: header[field] for field in HEADER_FIELDS if field in header},
    }
    return json.dumps(genesis).encode()


def run_case(name: str, case: dict[str, Any], folder: str, workdir: Path) -> Outcome:
    network = case.get("network", "?")
    if network not in NETWORKS:
        return Outcome(name, folder, network, "skipped", f"network {network}")
    outcome = lambda status, reason="": Outcome(name, folder, network, status, reason)  # noqa: E731
    datadir = Path(tempfile.mkdtemp(dir=workdir))
    try:
        genesis = parse_genesis(genesis_file(case), name)
        genesis_hash = initialise(datadir, genesis)
        if "0x" + genesis_hash.hex() != case["genesisBlockHeader"]["hash"]:
            return outcome("failed", f"genesis hash 0x{genesis_hash.hex()}")
        store = Store(datadir)
        try:
            reader = ChainReader(store, genesis.config)
            engine = Engine(genesis.config, store, reader)
            for index, block in enumerate(case["blocks"]):
                problem = _import(engine, reader, genesis.config, block)
                if problem:
                    return outcome("failed", f"block {index}: {problem}")
            head = "0x" + reader.head.hash.hex()
        finally:
            store.close()
    except GenesisError as exc:
        return outcome("failed", f"genesis refused: {exc}")
    finally:
        shutil.rmtree(datadir, ignore_errors=True)
    if head != case["lastblockhash"]:
        return outcome("failed", f"head {head}, expected {case['lastblockhash']}")
    return outcome("passed")


def _import(engine: Engine, reader: ChainReader, config: Any, block: dict[str, Any]) -> str:
    """Import one fixture block; what went wrong, or an empty string."""
    # an invalid block says why (``expectException``, or in older fixtures
    # ``expectExceptionALL`` or ``expectException<network>``) or, in the oldest, has no
    # ``blockHeader``: every valid block has one
    reasons = [v for k, v in block.items() if k.startswith("expectException")]
    expected = reasons[0] if reasons else ("" if "blockHeader" in block else "no blockHeader")
    try:
        raw = bytes.fromhex(block["rlp"][2:])
        import_raw_block(engine, reader, config, raw)
    except (BlockFileError, InvalidBlock) as exc:
        return "" if expected else f"refused a valid block: {exc}"
    except Exception as exc:  # a crash is a bug whatever the block: report it as one
        return f"crashed ({type(exc).__name__}: {exc})"
    return f"accepted an invalid block (expected {expected})" if expected else ""


def fixture_files(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        files.extend(sorted(path.rglob("*.json")) if path.is_dir() else [path])
    return files


def _run_file(args: tuple[Path, Path, Path]) -> list[Outcome]:
    path, root, workdir = args
    folder = str(path.resolve().parent.relative_to(root))
    try:
        cases = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        return [Outcome(path.name, folder, "?", "failed", f"unreadable fixture: {exc}")]
    return [run_case(name, case, folder, workdir) for name, case in cases.items()]


def run_paths(paths: list[Path], jobs: int = 1) -> Iterator[Outcome]:
    """Every case of every fixture file under ``paths``, run in ``jobs`` processes."""
    root = Path(os.path.commonpath([p.resolve() for p in paths])).parent
    workdir = Path(tempfile.mkdtemp(prefix="sibyl-conformance-"))
    try:
        work = [(path, root, workdir) for path in fixture_files(paths)]
        if jobs == 1:
            for item in work:
                yield from _run_file(item)
            return
        with multiprocessing.Pool(jobs) as pool:
            for outcomes in pool.imap_unordered(_run_file, work):
                yield from outcomes
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def summary(outcomes: list[Outcome]) -> list[dict[str, Any]]:
    """Pass counts by fork, then by folder."""
    lines = []
    for key in ("fork", "folder"):
        counts: dict[str, Counter] = {}
        for outcome in outcomes:
            counts.setdefault(getattr(outcome, key), Counter())[outcome.status] += 1
        for name, count in sorted(counts.items()):
            lines.append({key: name, **{s: count[s] for s in ("passed", "failed", "skipped")}})
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+", type=Path, help="fixture files or folders")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--failures", action="store_true", help="list every failure")
    args = parser.parse_args(argv)
    logging.getLogger("sibyl").setLevel(logging.ERROR)  # refused blocks are the point here
    outcomes = []
    for outcome in run_paths(args.paths, args.jobs):
        outcomes.append(outcome)
        if args.failures and outcome.status == "failed":
            print(json.dumps({"failed": outcome.name, "folder": outcome.folder,
                              "reason": outcome.reason[:300]}), flush=True)  # fmt: skip
    for line in summary(outcomes):
        print(json.dumps(line))
    failed = [o for o in outcomes if o.status == "failed"]
    total = Counter(o.status for o in outcomes)
    print(json.dumps({"total": dict(total)}))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
