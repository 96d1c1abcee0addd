"""Proofs through Sibyl beside raw ezkl on the same circuit, in the same run.

The dev ZK MLP (``genesis/models/zk-mlp``, registered in ``prove`` mode) is proved and
verified three ways, each the median of ``--rounds`` calls on distinct inputs:

* **raw ezkl**: ``gen_witness`` + ``prove``, then ``verify`` of those proof files, as
  ezkl's own users call it: the baseline (verify is timed in the follower's process,
  between its imports, so both sides of that ratio share a process and a moment);
* **prove through the sidecar**: one INFER call on a real ``sibyl sidecar serve
  --runtime zk`` process over gRPC; target ≤ 1.1× raw prove;
* **a ZK_PROVE job through the sidecar**: ``Submit`` of the job's input, then ``Result``
  polled every millisecond until the output ``abi.encode(values, shape, proof)`` is back,
  as the builder's job dispatcher does (it polls every 0.2 s); target ≤ 1.1× raw prove;
* **verify through the follower's import**: a block of ``--calls`` prove-mode INFER
  calls is built by a producer on that sidecar and imported by a follower process with
  no sidecar, which checks every proof. What checking a proof costs the follower is
  its import time less that of the same block of attested calls (the ONNX export of the
  same MLP, one signature each), per call, beside raw verify (target ≤ 1.2×); the whole
  import per call is printed too, and the whole import beside the builder's build time.

Prints JSON lines (bench ``zk``); logs go to stderr.

    python bench/zk_bench.py [--calls 10] [--rounds 5]
"""

import argparse
import json
import logging
import multiprocessing
import shutil
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

import ezkl
import rlp
from ai_bench import Side, ms, signed_by_dev_accounts
from eth_abi import encode

from chain.ai.attested import AttestedTransaction
from chain.ai.replicas import LocalModels
from chain.genesis import load_genesis
from chain.startup import prepare_process
from genesis import DEV_GENESIS, DEV_MODELS
from sidecars import zk
from sidecars.abi import INFER_ADDRESS, ZK_PROVE_ADDRESS, decode_prove_output
from sidecars.config import dev_sidecar_specs
from sidecars.manager import SidecarManager

CHAIN_ID = 19183
ZK_MODEL = DEV_MODELS / "zk-mlp"


def line(**fields) -> None:  # noqa: ANN003
    print(json.dumps({"bench": "zk", **fields}), flush=True)


def inputs(i: int) -> list[int]:
    """Distinct fixed-point inputs (6 decimals) inside the circuit's range."""
    return [(i * 37_000 + k * 211_000) % 2_000_000 - 1_000_000 for k in range(4)]


def infer_input(model_id: bytes, values: list[int]) -> bytes:
    return encode(["bytes32", "int256[]", "uint32[]", "uint8"], [model_id, values, [1, 4], 6])


def prove_input(model_id: bytes, values: list[int]) -> bytes:
    return encode(
        ["bytes32", "int256[]", "uint32[]", "uint8", "bytes4", "uint64", "uint32"],
        [model_id, values, [1, 4], 6, b"\0" * 4, 100_000, 10],
    )


def raw_ezkl(circuit: zk.Circuit, values: list[int], work: Path, proof: Path) -> float:
    """The time of ezkl's own prove (witness, then the proof into ``proof``) on files."""
    quantized = [zk.to_field(q) for q in zk.quantize(values, 6, circuit.input_scale)]
    data, witness = work / "input.json", work / "witness.json"
    data.write_text(
        json.dumps({"input_data": [[q.to_bytes(32, "little").hex() for q in quantized]]})
    )
    files = {name: str(ZK_MODEL / name) for name in zk.PROVER_FILES}
    started = time.perf_counter()
    ezkl.gen_witness(
        str(data), files[zk.CIRCUIT], str(witness), files[zk.VERIFYING_KEY], files[zk.SRS]
    )
    ezkl.prove(str(witness), files[zk.CIRCUIT], files[zk.PROVING_KEY], str(proof), files[zk.SRS])
    return time.perf_counter() - started


def follower(connection) -> None:  # noqa: ANN001
    """A follower process with no sidecar: imports each block it is sent, and times raw
    ezkl verify on the proof files it is sent, so both are measured in one process."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    prepare_process()
    side = Side(load_genesis(DEV_GENESIS), None, LocalModels([DEV_MODELS]))
    files = [str(ZK_MODEL / name) for name in (zk.SETTINGS, zk.VERIFYING_KEY, zk.SRS)]
    while (message := connection.recv()) is not None:
        if isinstance(message, list):  # proof files ezkl wrote
            times = []
            for path in message:
                started = time.perf_counter()
                assert ezkl.verify(path, *files)
                times.append(time.perf_counter() - started)
            connection.send(times)
            continue
        decode, imported = side.import_(message)
        connection.send((decode, imported, side.reader.head.hash))


def infer_transactions(model_id: bytes, first: int, count: int, nonces: dict) -> list[bytes]:
    calls = [
        {
            "to": "0x" + INFER_ADDRESS.hex(),
            "data": infer_input(model_id, inputs(i)),
            "gas": 300_000,
            "value": 0,
        }
        for i in range(first, first + count)
    ]
    return signed_by_dev_accounts(calls, nonces, first)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=10, help="prove-mode calls per block")
    parser.add_argument("--rounds", type=int, default=10, help="calls timed each way")
    parser.add_argument("--blocks", type=int, default=5, help="blocks timed of each kind")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    prepare_process()  # as the node does at start-up

    specs = {s.runtime: s for s in dev_sidecar_specs() if s.runtime in ("zk", "onnx")}
    spec = specs["zk"]
    circuit = zk.load_circuit(ZK_MODEL, zk.PROVER_FILES)
    manager = SidecarManager(list(specs.values()), "process", owner="sibyl-zk-bench")
    manager.start()
    try:
        pool, model_id = manager.pool, spec.model_id
        raw_prove, sidecar_prove, job_prove = [], [], []
        work = Path(tempfile.mkdtemp(prefix="sibyl-zk-bench-"))
        proofs = [work / f"proof-{i}.json" for i in range(args.rounds + 1)]
        raw_ezkl(circuit, inputs(0), work, proofs[0])  # warm up both paths
        pool.execute(
            INFER_ADDRESS, model_id, infer_input(model_id, inputs(0)), b"\0" * 32, CHAIN_ID
        )

        def through_sidecar(values: list[int]) -> float:
            started = time.perf_counter()
            data = infer_input(model_id, values)
            result = pool.execute(INFER_ADDRESS, model_id, data, b"\0" * 32, CHAIN_ID)
            assert result.status == "ok", result.error
            return time.perf_counter() - started

        def as_job(values: list[int], job_id: bytes) -> float:
            data = prove_input(model_id, values)
            args_ = (job_id, ZK_PROVE_ADDRESS, model_id, data, CHAIN_ID)
            started = time.perf_counter()
            assert pool.submit(*args_).status == "ok"
            while (result := pool.result(*args_)).status == "pending":
                time.sleep(0.001)
            elapsed = time.perf_counter() - started
            assert result.status == "ok", result.error
            assert decode_prove_output(result.output)[2]  # the proof is in the output
            return elapsed

        as_job(inputs(0), b"\1" * 32)  # warm up the job path too
        for i in range(1, args.rounds + 1):  # the three take turns going first
            job_id = i.to_bytes(32, "big")
            if i % 2:
                sidecar_prove.append(through_sidecar(inputs(i)))
                job_prove.append(as_job(inputs(i), job_id))
            raw_prove.append(raw_ezkl(circuit, inputs(i), work, proofs[i]))
            if not i % 2:
                job_prove.append(as_job(inputs(i), job_id))
                sidecar_prove.append(through_sidecar(inputs(i)))
        prove_ratio = median(sidecar_prove) / median(raw_prove)
        common = {"rounds": args.rounds}
        line(
            metric="prove_through_sidecar_ms", value=ms(median(sidecar_prove)),
            baseline="raw_ezkl_prove_ms", baseline_value=ms(median(raw_prove)),
            ratio=round(prove_ratio, 3), target_ratio=1.1, meets_target=prove_ratio <= 1.1,
            **common,
        )  # fmt: skip
        job_ratio = median(job_prove) / median(raw_prove)
        line(
            metric="zk_prove_job_through_sidecar_ms", value=ms(median(job_prove)),
            baseline="raw_ezkl_prove_ms", baseline_value=ms(median(raw_prove)),
            ratio=round(job_ratio, 3), target_ratio=1.1, meets_target=job_ratio <= 1.1,
            **common,
        )  # fmt: skip

        genesis = load_genesis(DEV_GENESIS)
        producer = Side(genesis, pool, LocalModels([DEV_MODELS]))
        ours, theirs = multiprocessing.get_context("spawn").Pipe()
        process = multiprocessing.get_context("spawn").Process(
            target=follower, args=(theirs,), daemon=True
        )
        process.start()
        nonces: dict = {}
        timed: dict[bytes, tuple[list[float], list[float]]] = {}
        raw_verify_in_follower: list[float] = []
        # a warm-up block of each, then timed ones, the two kinds taking turns
        for first in range(100, 100 + 100 * (1 + args.blocks), 100):
            for kind in (model_id, specs["onnx"].model_id):
                raws = infer_transactions(kind, first, args.calls, nonces)
                block, build = producer.build(raws)
                recorded = [tx for tx in block.transactions if isinstance(tx, AttestedTransaction)]
                assert len(recorded) == args.calls
                assert all(bool(tx.results[0].proof) == (kind == model_id) for tx in recorded)
                ours.send(rlp.encode(block))
                _, imported, head = ours.recv()
                assert head == producer.reader.head.hash
                if first > 100:
                    timed.setdefault(kind, ([], []))[0].append(build)
                    timed[kind][1].append(imported)
            ours.send([str(path) for path in proofs[1:]])  # raw verify, in the same process
            follower_raw_verify = ours.recv()
            if first > 100:
                raw_verify_in_follower += follower_raw_verify
        ours.send(None)
        process.join()
        shutil.rmtree(work)
        build, imported = (median(times) for times in timed[model_id])
        attested = median(timed[specs["onnx"].model_id][1])
        per_call = imported / args.calls
        marginal = (imported - attested) / args.calls
        raw = median(raw_verify_in_follower)
        verify_ratio = marginal / raw
        common |= {"calls": args.calls, "blocks": args.blocks}
        line(
            metric="verify_through_follower_import_ms_per_call", value=round(marginal * 1000, 2),
            baseline="raw_ezkl_verify_ms", baseline_value=round(raw * 1000, 2),
            ratio=round(verify_ratio, 3), target_ratio=1.2, meets_target=verify_ratio <= 1.2,
            import_ms_per_call=round(per_call * 1000, 2),
            attested_import_ms_per_call=round(attested / args.calls * 1000, 2),
            **common,
        )  # fmt: skip
        line(
            metric="follower_import_ms", value=ms(imported),
            baseline="producer_build_ms", baseline_value=ms(build),
            ratio=round(imported / build, 4), **common,
        )  # fmt: skip
    finally:
        manager.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
