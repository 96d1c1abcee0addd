"""The node's pool against real sidecar processes: routed, attested, deterministic."""

import dataclasses
import time

import eth_abi
import pytest
from eth_hash.auto import keccak
from sidecar_helpers import CHAIN_ID, dev_spec

from sidecars.abi import EMBED_ADDRESS, INFER_ADDRESS
from sidecars.attestation import attestation_digest, recover_signer, sync_context
from sidecars.client import SidecarPool
from sidecars.config import DEV_EXECUTOR_KEY
from sidecars.keys import load_key
from sidecars.runtimes import load_model

EXECUTOR = load_key(DEV_EXECUTOR_KEY).public_key.to_canonical_address()
CONTEXT = sync_context(keccak(b"a transaction"), 0)


def infer_input(model_id: bytes, values=(1_500_000, -250_000, 3_000_000, 42), shape=(1, 4)):
    return eth_abi.encode(
        ["bytes32", "int256[]", "uint32[]", "uint8"], [model_id, list(values), list(shape), 6]
    )


@pytest.fixture(scope="module")
def running(sidecar_factory):
    """Two torch sidecars (same model, two processes) and one onnx sidecar."""
    torch_spec, onnx_spec = dev_spec("torch"), dev_spec("onnx")
    second = dataclasses.replace(torch_spec, name="dev-mlp-torch-2")
    started = sidecar_factory(torch_spec, second, onnx_spec)
    return {sidecar.spec.name: sidecar for sidecar in started}


def pool_of(*sidecars, **options) -> SidecarPool:
    pool = SidecarPool(**options)
    for sidecar in sidecars:
        pool.add(sidecar.spec.name, sidecar.endpoint)
        assert pool.refresh(sidecar.spec.name) is not None
    return pool


def assert_attested(result, precompile, model_id, data, context=CONTEXT):
    assert result.status == "ok", result.error
    assert result.executor == EXECUTOR
    digest = attestation_digest(
        CHAIN_ID, precompile, model_id, keccak(data), keccak(result.output), context
    )
    assert recover_signer(digest, result.signature) == EXECUTOR


@pytest.mark.parametrize("name", ["dev-mlp-torch", "dev-mlp-onnx"])
def test_execute_equals_in_process_inference_and_is_signed_by_the_executor(running, name):
    sidecar = running[name]
    pool = pool_of(sidecar)
    model_id = sidecar.spec.model_id
    local = load_model(sidecar.spec.runtime, sidecar.spec.model, model_id)
    for values in [(1_500_000, -250_000, 3_000_000, 42), (0, 0, 0, 0), (-(10**7), 1, 2, 3)]:
        data = infer_input(model_id, values)
        result = pool.execute(INFER_ADDRESS, model_id, data, CONTEXT, CHAIN_ID)
        assert_attested(result, INFER_ADDRESS, model_id, data)
        assert result.output == local.run(INFER_ADDRESS, model_id, data)
    batch = infer_input(model_id, list(range(-4, 4)), (2, 4))
    result = pool.execute(INFER_ADDRESS, model_id, batch, CONTEXT, CHAIN_ID)
    assert eth_abi.decode(["int256[]", "uint32[]"], result.output)[1] == (2, 2)
    pool.close()


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated")
def test_a_sidecar_serves_a_torch_state_dict_as_the_torchscript_model(
    running, sidecar_factory, tmp_path
):
    import torch

    script = running["dev-mlp-torch"].spec
    path = tmp_path / "mlp-state.pt"
    torch.save(torch.jit.load(str(script.model)).state_dict(), path)
    spec = dataclasses.replace(
        script, name="dev-mlp-state", model=path, model_id=keccak(path.read_bytes())
    )
    (sidecar,) = sidecar_factory(spec)
    pool = pool_of(sidecar, running["dev-mlp-torch"])
    for values in [(1_500_000, -250_000, 3_000_000, 42), (-(10**7), 1, 2, 3)]:
        ours = infer_input(spec.model_id, values)
        result = pool.execute(INFER_ADDRESS, spec.model_id, ours, CONTEXT, CHAIN_ID)
        assert_attested(result, INFER_ADDRESS, spec.model_id, ours)
        theirs = infer_input(script.model_id, values)
        reference = pool.execute(INFER_ADDRESS, script.model_id, theirs, CONTEXT, CHAIN_ID)
        assert result.output == reference.output
    pool.close()


def test_two_processes_give_byte_identical_results(running):
    first = pool_of(running["dev-mlp-torch"])
    second = pool_of(running["dev-mlp-torch-2"])
    model_id = running["dev-mlp-torch"].spec.model_id
    for i in range(20):
        data = infer_input(model_id, (i * 123_457, -i * 98_765, 10**6 - i, i * i))
        a = first.execute(INFER_ADDRESS, model_id, data, CONTEXT, CHAIN_ID)
        b = second.execute(INFER_ADDRESS, model_id, data, CONTEXT, CHAIN_ID)
        assert a.status == b.status == "ok"
        assert a.output == b.output
        assert a.signature == b.signature  # RFC 6979: same key, same digest, same signature


def test_calls_are_routed_by_model_id(running):
    pool = pool_of(*running.values())
    for sidecar in running.values():
        model_id = sidecar.spec.model_id
        data = infer_input(model_id)
        assert_attested(
            pool.execute(INFER_ADDRESS, model_id, data, CONTEXT, CHAIN_ID),
            INFER_ADDRESS, model_id, data,
        )  # fmt: skip
    unknown = keccak(b"no such model")
    result = pool.execute(INFER_ADDRESS, unknown, infer_input(unknown), CONTEXT, CHAIN_ID)
    assert result.status == "failed"
    assert result.error == f"no sidecar serves model 0x{unknown.hex()}"


def test_bad_requests_are_failed_calls_with_the_sidecars_reason(running):
    sidecar = running["dev-mlp-onnx"]
    pool = pool_of(sidecar)
    model_id = sidecar.spec.model_id
    cases = [
        (infer_input(model_id, (1, 2, 3), (1, 3)), "model failed: model error"),
        (infer_input(model_id, (1, 2, 3), (2, 2)), "refused: bad INFER input: shape [2, 2]"),
        (b"\x01\x02", "refused: bad INFER input"),
    ]
    for data, reason in cases:
        result = pool.execute(INFER_ADDRESS, model_id, data, CONTEXT, CHAIN_ID)
        assert result.status == "failed"
        assert reason in result.error
        assert result.signature == b""
    result = pool.execute(EMBED_ADDRESS, model_id, infer_input(model_id), CONTEXT, CHAIN_ID)
    assert "refused: precompile 0x" in result.error
    counters = pool.counters()[sidecar.spec.name]
    assert counters["failures"] == 4 and counters["breaker_opens"] == 0
    assert counters["breaker"] == "closed"


def test_info_health_and_counters(running):
    sidecar = running["dev-mlp-torch"]
    pool = pool_of(sidecar)
    info = pool.info(sidecar.spec.name)
    assert info.runtime == "torch"
    assert info.model_ids == (sidecar.spec.model_id,)
    assert info.executor == EXECUTOR
    assert info.capabilities == ("INFER",)
    assert "torch" in info.versions
    assert pool.health(sidecar.spec.name)
    data = infer_input(sidecar.spec.model_id)
    for _ in range(3):
        pool.execute(INFER_ADDRESS, sidecar.spec.model_id, data, CONTEXT, CHAIN_ID)
    counters = pool.counters()[sidecar.spec.name]
    assert counters["calls"] == 3 and counters["failures"] == 0
    assert counters["latency_seconds_sum"] > 0


def test_submitted_job_is_signed_with_the_job_id_as_context(running):
    sidecar = running["dev-mlp-onnx"]
    pool = pool_of(sidecar)
    model_id = sidecar.spec.model_id
    data = infer_input(model_id)
    job_id = keccak(b"job 1")
    submitted = pool.submit(job_id, INFER_ADDRESS, model_id, data, CHAIN_ID)
    assert submitted.status == "ok", submitted.error
    deadline = time.monotonic() + 10
    result = pool.result(job_id, INFER_ADDRESS, model_id, data, CHAIN_ID)
    while result.status == "pending" and time.monotonic() < deadline:
        time.sleep(0.02)
        result = pool.result(job_id, INFER_ADDRESS, model_id, data, CHAIN_ID)
    assert_attested(result, INFER_ADDRESS, model_id, data, context=job_id)
    local = load_model("onnx", sidecar.spec.model, model_id)
    assert result.output == local.run(INFER_ADDRESS, model_id, data)
    again = pool.result(job_id, INFER_ADDRESS, model_id, data, CHAIN_ID)
    assert again.status == "failed" and "was not submitted here" in again.error


def test_embedding_sidecar(sidecar_factory):
    spec = dev_spec("embed")
    (sidecar,) = sidecar_factory(spec)
    pool = pool_of(sidecar)
    data = eth_abi.encode(["bytes32", "string", "uint8"], [spec.model_id, "a sibyl speaks", 8])
    result = pool.execute(EMBED_ADDRESS, spec.model_id, data, CONTEXT, CHAIN_ID)
    assert_attested(result, EMBED_ADDRESS, spec.model_id, data)
    (vector,) = eth_abi.decode(["int256[]"], result.output)
    assert len(vector) == 384
    norm = sum((v / 1e8) ** 2 for v in vector)
    assert abs(norm - 1) < 1e-4  # all-MiniLM-L6-v2 normalises its embeddings
    local = load_model("embed", spec.model, spec.model_id)
    assert result.output == local.run(EMBED_ADDRESS, spec.model_id, data)
