"""The zk runtime: a real ``sibyl sidecar serve --runtime zk`` process proves each output."""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import eth_abi
import pytest
from sidecar_helpers import CHAIN_ID, dev_spec, free_port, serve_command

from sidecars import zk
from sidecars.abi import INFER_ADDRESS, ZK_PROVE_ADDRESS, decode_prove_output
from sidecars.client import SidecarPool
from sidecars.config import DEV_EXECUTOR_KEY, DEV_MODELS

ZK_MODEL = DEV_MODELS / "zk-mlp"
LISTING = {e["kind"]: e for e in json.loads((DEV_MODELS / "models.json").read_text())}
INFER_TYPES = ["bytes32", "int256[]", "uint32[]", "uint8"]
VALUES = [500_000, -250_000, 1_000_000, 125_000]


def infer_input(model_id: bytes, values=VALUES, shape=(1, 4), decimals=6) -> bytes:
    return eth_abi.encode(INFER_TYPES, [model_id, list(values), list(shape), decimals])


def test_models_json_names_the_zk_directory_by_its_archive_and_verifier_hashes():
    entry = LISTING["zk"]
    assert entry["id"] == "0x" + zk.model_id_of(ZK_MODEL).hex()
    assert entry["verifyingKeyHash"] == "0x" + zk.verifying_key_hash(ZK_MODEL).hex()


def test_make_zk_model_check_confirms_the_committed_keys_follow_from_srs_and_circuit():
    script = DEV_MODELS / "make_zk_model.py"
    result = subprocess.run(
        [sys.executable, str(script), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(DEV_MODELS.parents[1])},  # this checkout's code
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def zk_pool(sidecar_factory):
    (sidecar,) = sidecar_factory(dev_spec("zk"))
    pool = SidecarPool()
    pool.add(sidecar.spec.name, sidecar.endpoint)
    pool.refresh(sidecar.spec.name)
    yield pool
    pool.close()


def test_zk_sidecar_returns_the_circuits_output_with_a_proof_that_verifies(zk_pool):
    model_id = bytes.fromhex(LISTING["zk"]["id"][2:])
    result = zk_pool.execute(INFER_ADDRESS, model_id, infer_input(model_id), b"\x01" * 32, CHAIN_ID)
    assert result.status == "ok", result.error
    values, shape = eth_abi.decode(["int256[]", "uint32[]"], result.output)
    assert list(shape) == [1, 2]
    # the circuit computes at 2**-12, close to the float model's [-1.6473256, -1.149761]
    assert values[0] == pytest.approx(-1_647_326, abs=2_000)
    assert values[1] == pytest.approx(-1_149_761, abs=2_000)
    circuit = zk.load_circuit(ZK_MODEL)
    assert circuit.check(zk.Proof.decode(result.proof), VALUES, list(values), 6) == ""
    assert circuit.check(zk.Proof.decode(result.proof), [1, 2, 3, 4], list(values), 6) == (
        "proof is for other inputs"
    )


def test_zk_sidecar_fails_an_input_outside_the_circuits_range(zk_pool):
    model_id = bytes.fromhex(LISTING["zk"]["id"][2:])
    huge = infer_input(model_id, values=[10**15, 0, 0, 0])
    result = zk_pool.execute(INFER_ADDRESS, model_id, huge, b"\x01" * 32, CHAIN_ID)
    assert result.status == "failed" and "ezkl" in result.error


def prove_input(model_id: bytes, values=VALUES, shape=(1, 4)) -> bytes:
    types = [*INFER_TYPES, "bytes4", "uint64", "uint32"]
    return eth_abi.encode(types, [model_id, list(values), list(shape), 6, b"abcd", 100_000, 10])


def job_result(pool: SidecarPool, job_id: bytes, data: bytes, model_id: bytes):
    args = (job_id, ZK_PROVE_ADDRESS, model_id, data, CHAIN_ID)
    assert pool.submit(*args).status == "ok"
    for _ in range(600):
        result = pool.result(*args)
        if result.status != "pending":
            return result
        time.sleep(0.05)
    raise AssertionError("the ZK_PROVE job never finished")


def test_zk_sidecar_serves_a_zk_prove_job_with_the_proof_in_its_output(zk_pool):
    model_id = bytes.fromhex(LISTING["zk"]["id"][2:])
    result = job_result(zk_pool, b"\x07" * 32, prove_input(model_id), model_id)
    assert result.status == "ok", result.error
    values, shape, proof = decode_prove_output(result.output)
    assert shape == [1, 2] and result.proof == b""  # the proof travels in the output
    assert zk.load_circuit(ZK_MODEL).check(zk.Proof.decode(proof), VALUES, values, 6) == ""
    assert zk_pool.info(zk_pool.names()[0]).capabilities == ("INFER", "ZK_PROVE")


def test_zk_sidecar_refuses_a_zk_prove_job_of_another_shape(zk_pool):
    model_id = bytes.fromhex(LISTING["zk"]["id"][2:])
    data = prove_input(model_id, values=VALUES[:2], shape=(1, 2))
    result = job_result(zk_pool, b"\x08" * 32, data, model_id)
    assert result.status == "failed" and "refused: bad ZK_PROVE input: shape [1, 2]" in result.error


def test_zk_sidecar_refuses_a_directory_that_differs_from_its_model_id(tmp_path: Path):
    model = tmp_path / "zk-mlp"
    shutil.copytree(ZK_MODEL, model)
    (model / "settings.json").write_text((model / "settings.json").read_text() + " ")
    expected = bytes.fromhex(LISTING["zk"]["id"][2:])
    command = serve_command("zk", model, free_port(), DEV_EXECUTOR_KEY, expected)
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "hashes to 0x" in result.stderr and "Traceback" not in result.stderr
