"""The node's own model directories: replicate-mode models and ZK verifying keys.

Models in verification mode ``replicate``: every node runs them itself.

A cheap, deterministic model needs no attestation: the builder and every importing node
run it in-process (one thread, fixed-point output, as a sidecar would) and get the same
bytes, so its calls are neither signed nor recorded in the block. A node finds the
artifact by its model id among the model files of its model directories (the bundled
dev models, and the ``model_dirs`` of its config); a node without it cannot build or
validate blocks that call it.

Models in verification mode ``prove``: every node checks their proofs with the
verifying key the model registry names by hash. The node finds the key's files (a ZK
model directory's ``kzg.srs``, ``settings.json`` and ``vk.key``, see :mod:`sidecars.zk`)
among the subdirectories of the same model directories, and refuses to start when a
registered prove model's key is missing or differs.

The model runtimes (:mod:`sidecars.runtimes`: numpy, and torch or onnxruntime as a
model needs) are imported when a replica is first indexed or run: most nodes never run
one, and the import would delay the node's JSON-RPC port by a large part of a second.
"""

import logging
import threading
from pathlib import Path
from types import ModuleType

from chain.ai.registry import ModelRecord
from chain.errors import SibylError
from sidecars import zk
from sidecars.model import Failed, Model, ModelLoadError, Refused

log = logging.getLogger("sibyl.replicas")

RUNTIME_BY_SUFFIX = {".pt": "torch", ".onnx": "onnx"}


def _runtimes() -> ModuleType:
    """:mod:`sidecars.runtimes`, imported on first use (module docstring)."""
    from sidecars import runtimes

    return runtimes


class ReplicaUnavailable(Exception):
    """This node has no artifact (or no runtime) for a replicate-mode model."""


class ReplicaFailed(Exception):
    """The model refused the input or failed on it: the call fails on every node."""


class MissingVerifyingKey(SibylError):
    """A registered prove-mode model whose verifying key this node does not hold."""


class LocalModels:
    def __init__(self, directories: list[Path]) -> None:
        self.directories = directories
        self._files: dict[bytes, tuple[str, Path]] | None = None
        self._circuits: dict[bytes, zk.Circuit] | None = None  # by verifying key hash
        self._loaded: dict[bytes, Model] = {}
        self._lock = threading.Lock()

    def _index(self) -> dict[bytes, tuple[str, Path]]:
        """Model id → (runtime, file), by hashing the model files once."""
        if self._files is None:
            self._files = {}
            for directory in self.directories:
                for path in sorted(directory.glob("*")):
                    runtime = RUNTIME_BY_SUFFIX.get(path.suffix)
                    if runtime is not None:
                        self._files[_runtimes().model_id_of(runtime, path)] = (runtime, path)
        return self._files

    def _model(self, model_id: bytes) -> Model:
        runtimes = _runtimes()
        with self._lock:
            if model_id not in self._loaded:
                found = self._index().get(model_id)
                if found is None:
                    raise ReplicaUnavailable(
                        f"model 0x{model_id.hex()} (replicate mode) has no artifact in "
                        f"{', '.join(map(str, self.directories)) or 'any model directory'}"
                    )
                try:
                    self._loaded[model_id] = runtimes.load_model(found[0], found[1], model_id)
                except ModelLoadError as exc:
                    raise ReplicaUnavailable(str(exc)) from None
                log.info("replica loaded model=0x%s file=%s", model_id.hex(), found[1])
            return self._loaded[model_id]

    def circuit(self, verifying_key_hash: bytes) -> zk.Circuit | None:
        """The verifier of the ZK model whose key files hash to ``verifying_key_hash``."""
        with self._lock:
            if self._circuits is None:
                self._circuits = {}
                for path in self._zk_directories():
                    try:
                        self._circuits[zk.verifying_key_hash(path)] = zk.load_circuit(path)
                    except zk.ZkModelError as exc:
                        log.warning("zk model directory skipped path=%s reason=%s", path, exc)
            return self._circuits.get(verifying_key_hash)

    def _zk_directories(self) -> list[Path]:
        return [
            path
            for directory in self.directories
            for path in sorted(directory.glob("*/"))
            if (path / zk.VERIFYING_KEY).is_file() and (path / zk.SETTINGS).is_file()
        ]

    def require_verifying_keys(self, models: list[ModelRecord]) -> None:
        """Refuse (MissingVerifyingKey) when a prove-mode model's key is not here."""
        for model in models:
            if model.mode != "prove" or self.circuit(model.verifying_key_hash) is not None:
                continue
            where = ", ".join(map(str, self.directories))
            for path in self._zk_directories():
                if zk.model_id_of(path) == model.id:
                    raise MissingVerifyingKey(
                        f"model 0x{model.id.hex()} ({model.name}, prove mode): the verifying "
                        f"key files in {path} hash to 0x{zk.verifying_key_hash(path).hex()}, "
                        f"the model registry names 0x{model.verifying_key_hash.hex()}"
                    )
            raise MissingVerifyingKey(
                f"model 0x{model.id.hex()} ({model.name}, prove mode) needs its verifying key "
                f"(hash 0x{model.verifying_key_hash.hex()}): no model directory in {where} "
                "holds it; add the model's directory (kzg.srs, settings.json, vk.key) to "
                "model_dirs"
            )

    def run(self, precompile: bytes, model_id: bytes, data: bytes) -> bytes:
        model = self._model(model_id)
        try:
            return model.run(precompile, model_id, data)
        except (Refused, Failed) as exc:
            raise ReplicaFailed(str(exc)) from None
