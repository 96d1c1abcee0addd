"""The manager runs sidecars as local processes, watches them and restarts crashed ones."""

import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import eth_abi
import pytest
from eth_hash.auto import keccak
from sidecar_helpers import CHAIN_ID, dev_spec, wait_until

from sidecars.abi import INFER_ADDRESS
from sidecars.attestation import sync_context
from sidecars.config import DEV_EXECUTOR_KEY, ServedModel, SidecarSpec
from sidecars.keys import address_of, load_key
from sidecars.manager import SidecarManager, SidecarStartError
from sidecars.protocol import sidecar_pb2

CONTEXT = sync_context(keccak(b"tx"), 0)
EXECUTOR = address_of(load_key(DEV_EXECUTOR_KEY)).lower()


def infer_input(model_id: bytes) -> bytes:
    return eth_abi.encode(
        ["bytes32", "int256[]", "uint32[]", "uint8"], [model_id, [1, 2, 3, 4], [1, 4], 0]
    )


@pytest.fixture
def manager_factory(tmp_path):
    managers = []

    def make(specs, mode="process", **kwargs) -> SidecarManager:
        manager = SidecarManager(specs, mode=mode, owner="test", log_dir=tmp_path, **kwargs)
        managers.append(manager)
        return manager

    yield make
    for manager in managers:
        manager.stop()


def test_process_sidecars_start_healthy_and_report_status(manager_factory):
    specs = [dev_spec("torch"), dev_spec("onnx")]
    manager = manager_factory(specs)
    manager.start()
    status = {entry["name"]: entry for entry in manager.status()}
    for spec in specs:
        entry = status[spec.name]
        assert entry["runtime"] == "process"
        assert entry["healthy"] is True
        assert entry["endpoint"].startswith("127.0.0.1:")
        assert entry["models"] == ["0x" + spec.model_id.hex()]
        assert entry["executor"] == EXECUTOR
        result = manager.pool.execute(
            INFER_ADDRESS, spec.model_id, infer_input(spec.model_id), CONTEXT, CHAIN_ID
        )
        assert result.status == "ok", result.error
    processes = [managed.process for managed in manager._sidecars]
    manager.stop()
    assert all(process.poll() is not None for process in processes)
    assert all(not entry["healthy"] for entry in manager.status())


def test_one_process_serves_several_models_routed_by_model_id(manager_factory):
    torch_spec, onnx_spec = dev_spec("torch"), dev_spec("onnx")
    also = (ServedModel("onnx", onnx_spec.model, onnx_spec.model_id),)
    manager = manager_factory([dataclasses.replace(torch_spec, name="mlps", also=also)])
    manager.start()
    (entry,) = manager.status()
    assert entry["healthy"] is True
    assert entry["models"] == ["0x" + torch_spec.model_id.hex(), "0x" + onnx_spec.model_id.hex()]
    info = manager.pool.info("mlps")
    assert (info.runtime, info.capabilities) == ("torch,onnx", ("INFER",))
    assert {"torch", "onnxruntime"} <= set(info.versions)
    outputs = []
    for spec in (torch_spec, onnx_spec):
        result = manager.pool.execute(
            INFER_ADDRESS, spec.model_id, infer_input(spec.model_id), CONTEXT, CHAIN_ID
        )
        assert result.status == "ok", result.error
        outputs.append(result.output)
    assert outputs[0] == outputs[1]  # the same MLP in both formats
    other = keccak(b"no such model")
    command = manager._sidecars[0].process.args
    assert command.count("--runtime") == command.count("--model-id") == 2
    refused = manager.pool._get("mlps").stub.Execute(
        sidecar_pb2.ExecuteRequest(
            precompile=INFER_ADDRESS,
            model_id=other,
            input=infer_input(other),
            context=CONTEXT,
            chain_id=CHAIN_ID,
        )  # fmt: skip
    )
    assert refused.status == sidecar_pb2.STATUS_REFUSED
    assert refused.reason == f"model 0x{other.hex()} is not served here"


def test_background_start_reports_starting_fails_calls_then_announces_ready(manager_factory):
    spec = dev_spec("onnx")
    ready: list[tuple[str, list[str]]] = []
    manager = manager_factory([spec], on_ready=lambda name, models: ready.append((name, models)))
    manager.start(wait=False)
    (entry,) = manager.status()
    assert entry["healthy"] is False and entry["state"] == "starting"
    early = manager.pool.execute(
        INFER_ADDRESS, spec.model_id, infer_input(spec.model_id), CONTEXT, CHAIN_ID
    )
    assert early.status != "ok"  # a sidecar that is not up fails like any sidecar failure
    assert wait_until(lambda: manager.status()[0]["healthy"], timeout=120)
    assert manager.status()[0]["state"] == "healthy"
    assert ready == [(spec.name, ["0x" + spec.model_id.hex()])]
    result = manager.pool.execute(
        INFER_ADDRESS, spec.model_id, infer_input(spec.model_id), CONTEXT, CHAIN_ID
    )
    assert result.status == "ok", result.error


def test_killed_sidecar_fails_fast_then_is_restarted(manager_factory):
    spec = dev_spec("onnx")
    manager = manager_factory([spec])
    manager.start()
    data = infer_input(spec.model_id)
    outcomes: list[tuple[float, str]] = []
    stop = threading.Event()

    def stream():
        while not stop.is_set():
            started = time.monotonic()
            result = manager.pool.execute(
                INFER_ADDRESS, spec.model_id, data, CONTEXT, CHAIN_ID, deadline=10.0
            )
            outcomes.append((time.monotonic() - started, result.status))
            time.sleep(0.01)

    caller = threading.Thread(target=stream)
    caller.start()
    try:
        time.sleep(0.3)
        (managed,) = manager._sidecars
        old_pid = managed.process.pid
        managed.process.kill()
        killed_at = len(outcomes)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            after = outcomes[killed_at:]
            if any(s == "failed" for _, s in after) and after[-1][1] == "ok":
                break
            time.sleep(0.1)
    finally:
        stop.set()
        caller.join()
    before, after = outcomes[:killed_at], outcomes[killed_at:]
    assert before and all(status == "ok" for _, status in before)
    failures = [seconds for seconds, status in after if status == "failed"]
    assert failures, "no call failed while the sidecar was down"
    assert max(failures) < 1.0, f"a call waited {max(failures):.2f} s with a 10 s deadline"
    assert after[-1][1] == "ok", "calls did not succeed again after the restart"
    assert managed.process.pid != old_pid
    assert wait_until(lambda: manager.status()[0]["healthy"])  # the watchdog saw it too
    assert manager.pool.counters()[spec.name]["breaker_opens"] >= 1


def test_remote_sidecar_is_attached_not_started(manager_factory, sidecar_factory):
    (remote,) = sidecar_factory(dev_spec("onnx"))
    spec = SidecarSpec(name="farm", runtime=None, address=remote.endpoint)
    manager = manager_factory([spec], mode="docker")  # remote in every mode: no engine needed
    manager.start()
    (entry,) = manager.status()
    assert entry["runtime"] == "remote" and entry["endpoint"] == remote.endpoint
    assert entry["healthy"] and entry["models"] == ["0x" + remote.spec.model_id.hex()]
    model_id = remote.spec.model_id
    assert (
        manager.pool.execute(INFER_ADDRESS, model_id, infer_input(model_id), CONTEXT, CHAIN_ID)
    ).status == "ok"
    manager.stop()
    assert remote.process.poll() is None


def test_tampered_model_fails_start_with_the_sidecars_reason(manager_factory):
    spec = dataclasses.replace(dev_spec("onnx"), model_id=keccak(b"not this model"))
    manager = manager_factory([spec])
    with pytest.raises(SidecarStartError) as error:
        manager.start()
    message = str(error.value)
    assert "sidecar dev-mlp-onnx (process) exited with code 2 before becoming healthy" in message
    assert "was expected: the artifact was changed" in message


def test_mode_none_starts_nothing(manager_factory):
    manager = manager_factory([dev_spec("onnx")], mode="none")
    manager.start()
    assert manager.status() == [] and manager.pool.names() == []


def test_auto_uses_processes_when_no_docker_engine_answers(manager_factory, monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    manager = manager_factory([dev_spec("onnx")], mode="auto")
    manager.start()
    assert manager.status()[0]["runtime"] == "process"


def test_docker_mode_without_an_engine_is_a_clear_error(manager_factory, monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    manager = manager_factory([dev_spec("onnx")], mode="docker")
    with pytest.raises(SidecarStartError, match="--sidecars docker: no Docker engine answers"):
        manager.start()


OWNER_SCRIPT = """
import sys, time
from pathlib import Path
from sidecars.config import dev_sidecar_specs
from sidecars.manager import SidecarManager
specs = [s for s in dev_sidecar_specs() if s.runtime == "onnx"]
manager = SidecarManager(specs, mode="process", owner="orphan-test", log_dir=Path(sys.argv[1]))
manager.start()
print(manager._sidecars[0].process.pid, flush=True)
time.sleep(600)
"""


def test_process_sidecars_end_when_their_node_is_killed(tmp_path):
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER_SCRIPT, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    sidecar_pid = int(owner.stdout.readline())
    os.kill(owner.pid, signal.SIGKILL)  # no chance to stop its sidecars
    owner.wait(10)

    def gone() -> bool:
        try:
            os.kill(sidecar_pid, 0)
        except ProcessLookupError:
            return True
        state = Path(f"/proc/{sidecar_pid}/stat").read_text().split()[2]
        return state == "Z"  # exited, waiting to be reaped by init

    assert wait_until(gone, 20), "the sidecar outlived the node that started it"
