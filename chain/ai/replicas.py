"""Models in verification mode ``replicate``: every node runs them itself.

A cheap, deterministic model needs no attestation: the builder and every importing node
run it in-process (one thread, fixed-point output, as a sidecar would) and get the same
bytes, so its calls are neither signed nor recorded in the block. A node finds the
artifact by its model id among the model files of its model directories (the bundled
dev models, and the ``model_dirs`` of its config); a node without it cannot build or
validate blocks that call it.
"""

import logging
import threading
from pathlib import Path

from sidecars.runtimes import Failed, Model, ModelLoadError, Refused, load_model, model_id_of

log = logging.getLogger("sibyl.replicas")

RUNTIME_BY_SUFFIX = {".pt": "torch", ".onnx": "onnx"}


class ReplicaUnavailable(Exception):
    """This node has no artifact (or no runtime) for a replicate-mode model."""


class ReplicaFailed(Exception):
    """The model refused the input or failed on it: the call fails on every node."""


class LocalModels:
    def __init__(self, directories: list[Path]) -> None:
        self.directories = directories
        self._files: dict[bytes, tuple[str, Path]] | None = None
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
                        self._files[model_id_of(runtime, path)] = (runtime, path)
        return self._files

    def _model(self, model_id: bytes) -> Model:
        with self._lock:
            if model_id not in self._loaded:
                found = self._index().get(model_id)
                if found is None:
                    raise ReplicaUnavailable(
                        f"model 0x{model_id.hex()} (replicate mode) has no artifact in "
                        f"{', '.join(map(str, self.directories)) or 'any model directory'}"
                    )
                try:
                    self._loaded[model_id] = load_model(found[0], found[1], model_id)
                except ModelLoadError as exc:
                    raise ReplicaUnavailable(str(exc)) from None
                log.info("replica loaded model=0x%s file=%s", model_id.hex(), found[1])
            return self._loaded[model_id]

    def run(self, precompile: bytes, model_id: bytes, data: bytes) -> bytes:
        model = self._model(model_id)
        try:
            return model.run(precompile, model_id, data)
        except (Refused, Failed) as exc:
            raise ReplicaFailed(str(exc)) from None
