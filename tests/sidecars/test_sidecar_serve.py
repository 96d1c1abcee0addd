"""``sibyl sidecar serve`` refuses to start, with one clear line, when anything is wrong."""

import signal
import socket
import subprocess
import sys
from pathlib import Path

from sidecar_helpers import dev_spec, free_port, serve_command, start_sidecars

from sidecars.config import DEV_EXECUTOR_KEY, DEV_MODELS, dev_sidecar_specs

ONNX_ID = next(s.model_id for s in dev_sidecar_specs() if s.runtime == "onnx")


def serve(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "chain.cmd.cli", "sidecar", "serve", *args],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def assert_refused(result: subprocess.CompletedProcess, message: str) -> None:
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_tampered_artifact_refuses_to_start(tmp_path: Path):
    tampered = tmp_path / "mlp.onnx"
    data = bytearray((DEV_MODELS / "mlp.onnx").read_bytes())
    data[len(data) // 2] ^= 0x01
    tampered.write_bytes(bytes(data))
    command = serve_command("onnx", tampered, free_port(), DEV_EXECUTOR_KEY, ONNX_ID)
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert_refused(result, f"but model id 0x{ONNX_ID.hex()} was expected")
    assert "error: model " in result.stderr


def test_bad_key_file_refuses_to_start(tmp_path: Path):
    key = tmp_path / "bad.key"
    key.write_text("not a key\n")
    result = serve("--runtime", "onnx", "--model", str(DEV_MODELS / "mlp.onnx"),
                   "--port", str(free_port()), "--executor-key", str(key))  # fmt: skip
    assert_refused(result, f"key file {key} must hold a 32-byte secp256k1 private key")


def test_taken_port_refuses_to_start():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = serve("--runtime", "onnx", "--model", str(DEV_MODELS / "mlp.onnx"),
                       "--port", str(port), "--executor-key", str(DEV_EXECUTOR_KEY))  # fmt: skip
    assert_refused(result, f"cannot listen on 127.0.0.1:{port}: the port is taken")


def test_zk_runtime_refuses_a_model_that_is_no_directory():
    result = serve("--runtime", "zk", "--model", str(DEV_MODELS / "mlp.onnx"),
                   "--port", str(free_port()), "--executor-key", str(DEV_EXECUTOR_KEY))  # fmt: skip
    assert_refused(result, "must be a model directory")


def test_malformed_model_id_refuses_to_start():
    result = serve("--runtime", "onnx", "--model", str(DEV_MODELS / "mlp.onnx"),
                   "--model-id", "0x1234", "--port", str(free_port()),
                   "--executor-key", str(DEV_EXECUTOR_KEY))  # fmt: skip
    assert_refused(result, "--model-id must be 32 bytes")


def test_wrong_artifact_kind_refuses_to_start():
    result = serve("--runtime", "onnx", "--model", str(DEV_MODELS / "mlp.pt"),
                   "--port", str(free_port()), "--executor-key", str(DEV_EXECUTOR_KEY))  # fmt: skip
    assert_refused(result, "error: not an ONNX model")


def test_sigterm_stops_a_serving_sidecar_cleanly(tmp_path: Path):
    (sidecar,) = start_sidecars([dev_spec("onnx")], tmp_path)
    sidecar.process.send_signal(signal.SIGTERM)
    try:
        assert sidecar.process.wait(10) == 0
    finally:
        sidecar.stop()
    log = sidecar.log.read_text()
    assert "event=serving runtime=onnx" in log and "event=stopped" in log


def test_model_ids_must_pair_with_the_models():
    result = serve("--runtime", "onnx", "--model", str(DEV_MODELS / "mlp.onnx"),
                   "--runtime", "torch", "--model", str(DEV_MODELS / "mlp.pt"),
                   "--model-id", "0x" + ONNX_ID.hex(), "--port", str(free_port()),
                   "--executor-key", str(DEV_EXECUTOR_KEY))  # fmt: skip
    assert_refused(result, "--model-id given 1 times for 2 --runtime")


def test_each_runtime_takes_its_own_model():
    result = serve("--runtime", "onnx", "--runtime", "torch",
                   "--model", str(DEV_MODELS / "mlp.onnx"), "--port", str(free_port()),
                   "--executor-key", str(DEV_EXECUTOR_KEY))  # fmt: skip
    assert_refused(result, "--runtime given 2 times and --model 1")


def test_the_same_model_twice_refuses_to_start():
    onnx = str(DEV_MODELS / "mlp.onnx")
    result = serve("--runtime", "onnx", "--model", onnx, "--runtime", "onnx", "--model", onnx,
                   "--port", str(free_port()), "--executor-key", str(DEV_EXECUTOR_KEY))  # fmt: skip
    assert_refused(result, "are the same model")
