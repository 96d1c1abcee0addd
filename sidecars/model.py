"""A loaded model, as each runtime hands it to a server or replica, and how it fails.

Each runtime's loader (:mod:`sidecars.tensors`, :mod:`sidecars.embed`, :mod:`sidecars.llm`,
:mod:`sidecars.prover`, :mod:`sidecars.upstream`) builds a :class:`Model`, and
:mod:`sidecars.runtimes` picks the loader; they all import this module and it imports
none of them, so it holds what they share: the model, its errors, and the helpers more
than one loader calls (:func:`first_line` for error messages, :func:`deterministic` for
torch). Each model runs one call at a time (its lock): with one intra-op thread, the same
input gives the same bytes across runs and processes on a machine.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from sidecars.abi import EMBED_ADDRESS, INFER_ADDRESS, LLM_ADDRESS, ZK_PROVE_ADDRESS

CAPABILITIES = {
    INFER_ADDRESS: "INFER", EMBED_ADDRESS: "EMBED", LLM_ADDRESS: "LLM", ZK_PROVE_ADDRESS: "ZK_PROVE"
}  # fmt: skip


class ModelLoadError(Exception):
    """A sidecar cannot serve its model; it must not start."""


class ModelIdMismatch(ModelLoadError):
    """The artifact's hash differs from the model id the operator expects."""


class RuntimeUnavailable(ModelLoadError):
    """The runtime is not part of this build, or its optional libraries are missing."""


class Refused(Exception):
    """The request was not run: wrong precompile or model, malformed input."""


class Failed(Exception):
    """The model ran on a valid request and failed."""


@dataclass
class Model:
    """A loaded model and the precompile it serves."""

    runtime: str
    model_id: bytes
    precompile: bytes
    versions: dict[str, str]
    execute: Callable[[bytes], bytes]
    # for a ZK model: the output and a proof of it (``sidecars.zk.Proof`` bytes)
    prove: Callable[[bytes], tuple[bytes, bytes]] | None = None
    # for a ZK model: a ZK_PROVE job's output, ``abi.encode(values, shape, proof)``
    prove_job: Callable[[bytes], bytes] | None = None
    # listed and servable now, its weights loaded by its first call (the LLM: jobs)
    loads_on_first_call: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def capability(self) -> str:
        return CAPABILITIES[self.precompile]

    @property
    def capabilities(self) -> list[str]:
        return [self.capability] + (["ZK_PROVE"] if self.prove_job else [])

    def run(self, precompile: bytes, model_id: bytes, data: bytes) -> bytes:
        """The raw output for the raw input ``data``; raises Refused or Failed."""
        return self.run_proved(precompile, model_id, data)[0]

    def run_proved(self, precompile: bytes, model_id: bytes, data: bytes) -> tuple[bytes, bytes]:
        """The raw output and its proof (empty unless the model proves its outputs; a
        ZK_PROVE job's output holds its proof)."""
        job = precompile == ZK_PROVE_ADDRESS and self.prove_job is not None
        if precompile != self.precompile and not job:
            raise Refused(
                f"precompile 0x{precompile.hex()} is not served here "
                f"(this {self.runtime} sidecar serves {', '.join(self.capabilities)})"
            )
        if model_id != self.model_id:
            raise Refused(f"model 0x{model_id.hex()} is not served here")
        with self.lock:
            if job:
                return self.prove_job(data), b""
            return self.prove(data) if self.prove else (self.execute(data), b"")


def deterministic(torch) -> None:  # noqa: ANN001
    """Deterministic algorithms only, erroring on an operation that has none: the flag
    ``torch.use_deterministic_algorithms(True)`` sets, set without the ~70 MB that
    function also imports (``torch._inductor``'s config, with sympy and ``torch._dynamo``,
    for a compiler no runtime here uses)."""
    torch.set_deterministic_debug_mode("error")


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
