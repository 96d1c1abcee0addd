"""Execute once, verify many: where an AI precompile gets its output.

A precompile hands each AI call to the oracle of the execution it runs in:

* :class:`BuildOracle` (the block builder) runs the call on a sidecar, collects the
  attestation signatures and records the result, in call order, for the block;
* :class:`VerifyOracle` (every importing node) takes the next recorded result instead,
  after checking that it answers this very call (precompile, input hash) and that a
  quorum of distinct registered executors with the capability signed it; it never calls
  a sidecar (it may, for a sample of calls, re-run them in the background and report a
  disagreement, the hook for slashing);
* :class:`CallOracle` (``eth_call``, ``eth_estimateGas``) runs the call on a sidecar and
  records nothing; it reports a model no sidecar serves, so the RPC can say so.

A call to a ``prove``-mode model takes the same path, with a proof in place of the
signatures: the builder's sidecar returns the output and a proof of it, the builder
checks the proof and records it in the result, and every verifier checks it with the
verifying key the model registry names (:func:`proof_problem`) instead of asking who
signed: no executor needs to be trusted for such a model.

A call that fails on a sidecar (timeout, crash, refusal, bad reply) fails like a revert:
the calling contract sees ``success == false``, and the block records a failed result
(no output, no signature) that verifiers accept as such. A mismatch while verifying is an
:class:`InvalidAiResult`, which makes the whole block invalid.
"""

import logging
import random
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from eth_utils import keccak

from chain.ai import registry
from chain.ai.attested import FAILED, OK, SpcResult
from chain.ai.registry import ModelRecord
from chain.ai.replicas import LocalModels, ReplicaFailed, ReplicaUnavailable
from chain.errors import SibylError
from sidecars import zk
from sidecars.abi import AbiError, decode_infer_input, decode_infer_output
from sidecars.attestation import (
    InvalidAttestation,
    attestation_digest,
    recover_signer,
    sync_context,
)

log = logging.getLogger("sibyl.oracle")

NO_TX = b"\x00" * 32


class AiCallFailed(Exception):
    """The call did not produce an output; the precompile reverts with this reason."""


# The revert reason of a call whose recorded result is FAILED, on the builder and on every
# verifier alike: the contract may store or log it, so it cannot be the sidecar's error,
# which verifiers never see (the builder logs that).
RECORDED_FAILURE = "the sidecar call failed"


class ModelUnavailable(SibylError):
    """No sidecar of this node serves the model (eth_call on a node without it)."""

    def __init__(self, model_id: bytes) -> None:
        super().__init__(f"model 0x{model_id.hex()} is not served by any sidecar of this node")
        self.model_id = model_id


class InvalidAiResult(Exception):
    """A recorded AI result that does not verify: the block is invalid."""


class ReplicaNotHere(Exception):
    """The builder cannot run a replicate-mode model: the transaction cannot be included."""


class SidecarPool(Protocol):
    """What the oracles need of :class:`sidecars.client.SidecarPool`."""

    def execute(
        self, precompile: bytes, model_id: bytes, data: bytes, context: bytes, chain_id: int
    ) -> Any: ...

    def execute_each(
        self, precompile: bytes, model_id: bytes, data: bytes, context: bytes, chain_id: int
    ) -> list[Any]: ...

    def serves(self, model_id: bytes) -> bool: ...


@dataclass
class AiCall:
    precompile: bytes
    model: ModelRecord
    input: bytes


class Oracle:
    """The per-transaction session every oracle keeps: the transaction and its call count.

    Calls to ``replicate``-mode models are run here, in-process, by every kind of oracle
    alike; they are not sidecar-backed, so they take no call index and leave no result.
    """

    def __init__(self, chain_id: int, replicas: LocalModels | None = None) -> None:
        self.chain_id = chain_id
        self.replicas = replicas
        self.tx_hash = NO_TX
        self.index = 0
        self.signers: list[tuple[bytes, ...]] = []  # per call of the transaction

    def begin(self, tx_hash: bytes, results: tuple[SpcResult, ...] = ()) -> None:
        self.tx_hash = tx_hash
        self.index = 0
        self.signers = []

    def finish(self) -> tuple[SpcResult, ...]:
        return ()

    def call(self, call: AiCall, state: Any) -> bytes:
        if call.model.mode == "replicate":
            return self._replicate(call)
        return self.attested_call(call, state)

    def attested_call(self, call: AiCall, state: Any) -> bytes:
        raise NotImplementedError

    def _replicate(self, call: AiCall) -> bytes:
        if self.replicas is None:
            raise self.replica_unavailable(call, "this node runs no replicate-mode models")
        try:
            output = self.replicas.run(call.precompile, call.model.id, call.input)
        except ReplicaUnavailable as exc:
            raise self.replica_unavailable(call, str(exc)) from None
        except ReplicaFailed as exc:
            raise AiCallFailed(str(exc)) from None
        _check_output(call, output)
        return output

    def replica_unavailable(self, call: AiCall, reason: str) -> Exception:
        """What a replicate-mode model this node cannot run means for this oracle."""
        return ModelUnavailable(call.model.id)

    def _context(self) -> bytes:
        context = sync_context(self.tx_hash, self.index)
        self.index += 1
        return context

    def async_call_index(self) -> int:
        """The call index of an async call (its job id follows from it): async calls
        count among the transaction's sidecar-backed calls, but record no result here."""
        self.index += 1
        return self.index - 1


def proof_problem(replicas: LocalModels | None, call: AiCall, output: bytes, proof: bytes) -> str:
    """Why ``proof`` does not show that the prove-mode model of ``call`` gives ``output``
    for the call's input, or "" when it does."""
    request = decode_infer_input(call.input)  # the precompile has checked it
    try:
        values, shape = decode_infer_output(output)
    except AbiError as exc:
        return f"output is not an INFER output: {exc}"
    return proved_values_problem(
        replicas, call.model, request.values, request.decimals, values, shape, proof
    )


def proved_values_problem(
    replicas: LocalModels | None,
    model: ModelRecord,
    inputs: list[int],
    decimals: int,
    outputs: list[int],
    shape: list[int],
    proof: bytes,
) -> str:
    """Why ``proof`` does not show that the prove-mode ``model`` maps ``inputs`` to
    ``outputs`` of ``shape`` (fixed-point at ``decimals``), or "" when it does: the check
    of a prove-mode INFER result and of a ZK_PROVE delivery alike."""
    circuit = replicas.circuit(model.verifying_key_hash) if replicas else None
    if circuit is None:
        return "this node has no verifying key for the model"
    if tuple(shape) != circuit.output_shape:
        return f"output shape {list(shape)} is not the circuit's {list(circuit.output_shape)}"
    try:
        decoded = zk.Proof.decode(proof)
    except zk.MalformedProof as exc:
        return str(exc)
    return circuit.check(decoded, inputs, outputs, decimals)


def _check_output(call: AiCall, output: bytes) -> None:
    if len(output) > call.model.output_limit:
        raise AiCallFailed(
            f"output of {len(output)} bytes exceeds the model's limit of {call.model.output_limit}"
        )


class BuildOracle(Oracle):
    """Runs calls on sidecars and records their signed results for the block."""

    def __init__(
        self, chain_id: int, pool: SidecarPool | None, replicas: LocalModels | None = None
    ) -> None:
        super().__init__(chain_id, replicas)
        self.pool = pool
        self.results: list[SpcResult] = []

    def begin(self, tx_hash: bytes, results: tuple[SpcResult, ...] = ()) -> None:
        super().begin(tx_hash)
        self.results = []

    def finish(self) -> tuple[SpcResult, ...]:
        return tuple(self.results)

    def replica_unavailable(self, call: AiCall, reason: str) -> Exception:
        # Every validator runs the model and would disagree with a failed call: the
        # transaction stays out of the block instead.
        return ReplicaNotHere(reason)

    def attested_call(self, call: AiCall, state: Any) -> bytes:
        context = self._context()
        input_hash = keccak(call.input)
        proof = b""
        try:
            if call.model.mode == "prove":
                output, proof, signatures = *self._prove(call, context), {}
            else:
                output, signatures = self._run(call, context, state)
            _check_output(call, output)
        except AiCallFailed as exc:
            log.info(
                "ai call failed tx=0x%s model=0x%s reason=%s",
                self.tx_hash.hex(),
                call.model.id.hex(),
                exc,
            )
            self.results.append(SpcResult(call.precompile, input_hash, FAILED, b"", ()))
            self.signers.append(())
            raise AiCallFailed(RECORDED_FAILURE) from None
        self.results.append(
            SpcResult(call.precompile, input_hash, OK, output, tuple(signatures.values()), proof)
        )
        self.signers.append(tuple(signatures))
        return output

    def _prove(self, call: AiCall, context: bytes) -> tuple[bytes, bytes]:
        """The output and its proof, checked as every verifier will check it."""
        if self.pool is None or not self.pool.serves(call.model.id):
            raise AiCallFailed(f"no sidecar serves model 0x{call.model.id.hex()}")
        result = self.pool.execute(
            call.precompile, call.model.id, call.input, context, self.chain_id
        )
        if result.status != "ok":
            raise AiCallFailed(result.error or "sidecar call failed")
        problem = proof_problem(self.replicas, call, result.output, result.proof)
        if problem:
            raise AiCallFailed(f"the sidecar's proof does not verify: {problem}")
        return result.output, result.proof

    def _run(self, call: AiCall, context: bytes, state: Any) -> tuple[bytes, dict[bytes, bytes]]:
        """The output and a quorum of signatures (executor → signature) by distinct
        executors registered with the capability, or AiCallFailed: a signature every
        verifier would refuse must not go into the block."""
        if self.pool is None or not self.pool.serves(call.model.id):
            raise AiCallFailed(f"no sidecar serves model 0x{call.model.id.hex()}")
        quorum = call.model.quorum
        args = (call.precompile, call.model.id, call.input, context, self.chain_id)
        results = [self.pool.execute(*args)] if quorum == 1 else self.pool.execute_each(*args)
        capability = registry.PRECOMPILE_CAPABILITY[call.precompile]
        agreeing: dict[bytes, dict[bytes, bytes]] = {}  # output → executor → signature
        errors = []
        for result in results:
            if result.status != "ok":
                errors.append(result.error or "sidecar call failed")
                continue
            executor = registry.get_executor(state, result.executor)
            if executor is None or not executor.can(capability):
                errors.append(
                    f"sidecar executor 0x{result.executor.hex()} is not a registered executor "
                    f"active with the {capability} capability"
                )
                log.warning("ai result dropped tx=0x%s reason=%s", self.tx_hash.hex(), errors[-1])
                continue
            agreeing.setdefault(result.output, {}).setdefault(result.executor, result.signature)
        if not agreeing:
            raise AiCallFailed("; ".join(errors) or "no sidecar answered")
        output, signatures = max(agreeing.items(), key=lambda item: len(item[1]))
        if len(signatures) < quorum:
            raise AiCallFailed(f"model needs {quorum} executors to agree, {len(signatures)} did")
        return output, dict(list(signatures.items())[:quorum])


class CallOracle(Oracle):
    """eth_call: run on a sidecar, record nothing, report models nobody serves."""

    def __init__(
        self, chain_id: int, pool: SidecarPool | None, replicas: LocalModels | None = None
    ) -> None:
        super().__init__(chain_id, replicas)
        self.pool = pool

    def attested_call(self, call: AiCall, state: Any) -> bytes:
        context = self._context()
        if self.pool is None or not self.pool.serves(call.model.id):
            raise ModelUnavailable(call.model.id)
        result = self.pool.execute(
            call.precompile, call.model.id, call.input, context, self.chain_id
        )
        if result.status != "ok":
            raise AiCallFailed(result.error or "sidecar call failed")
        _check_output(call, result.output)
        return result.output


@dataclass
class Disagreement:
    """A sampled re-execution whose output differs from the attested one."""

    tx_hash: bytes
    call_index: int
    model_id: bytes
    attested: bytes
    local: bytes
    signers: list[bytes]


@dataclass
class SpotChecker:
    """Re-runs a sample of verified calls on this node's own sidecars, off the import path."""

    pool: SidecarPool
    rate: float
    report: Callable[[Disagreement], None]
    workers: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="spot-check")
    )
    rng: random.Random = field(default_factory=random.Random)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def maybe_check(
        self, call: AiCall, context: bytes, chain_id: int, output: bytes, signers: list[bytes],
        tx_hash: bytes, index: int,
    ) -> None:  # fmt: skip
        with self.lock:
            sampled = self.rng.random() < self.rate
        if sampled and self.pool.serves(call.model.id):
            self.workers.submit(
                self._check, call, context, chain_id, output, signers, tx_hash, index
            )

    def _check(self, call, context, chain_id, output, signers, tx_hash, index) -> None:  # noqa: ANN001
        result = self.pool.execute(call.precompile, call.model.id, call.input, context, chain_id)
        if result.status == "ok" and result.output != output:
            disagreement = Disagreement(
                tx_hash, index, call.model.id, output, result.output, signers
            )
            log.warning(
                "attested output disagrees with local re-execution tx=0x%s call=%d model=0x%s "
                "signers=%s",
                tx_hash.hex(),
                index,
                call.model.id.hex(),
                ",".join("0x" + s.hex() for s in signers),
            )
            self.report(disagreement)


def verified_signers(
    state: Any,
    digest: bytes,
    signatures: tuple[bytes, ...],
    precompile: bytes,
    quorum: int,
    where: str,
) -> tuple[bytes, ...]:
    """The executors whose ``signatures`` over ``digest`` make a result valid: each one
    registered, active with the precompile's capability, none twice, at least ``quorum``
    of them; otherwise :class:`InvalidAiResult` saying which attestation failed."""
    capability = registry.PRECOMPILE_CAPABILITY[precompile]
    signers: list[bytes] = []
    for position, signature in enumerate(signatures):
        try:
            signer = recover_signer(digest, signature)
        except InvalidAttestation as exc:
            raise InvalidAiResult(f"{where}: attestation {position}: {exc}") from None
        executor = registry.get_executor(state, signer)
        if executor is None:
            raise InvalidAiResult(
                f"{where}: attestation {position}: signer 0x{signer.hex()} is not a "
                "registered executor"
            )
        if not executor.can(capability):
            raise InvalidAiResult(
                f"{where}: attestation {position}: executor 0x{signer.hex()} is not "
                f"active with the {capability} capability"
            )
        if signer in signers:
            raise InvalidAiResult(f"{where}: executor 0x{signer.hex()} signed twice")
        signers.append(signer)
    if len(signers) < quorum:
        raise InvalidAiResult(f"{where}: {len(signers)} attestations, the model needs {quorum}")
    return tuple(signers)


class VerifyOracle(Oracle):
    """Consumes recorded results, checking each against the call and the registries."""

    def __init__(
        self,
        chain_id: int,
        spot_checker: SpotChecker | None = None,
        replicas: LocalModels | None = None,
    ) -> None:
        super().__init__(chain_id, replicas)
        self.results: tuple[SpcResult, ...] = ()
        self.spot_checker = spot_checker

    def begin(self, tx_hash: bytes, results: tuple[SpcResult, ...] = ()) -> None:
        super().begin(tx_hash)
        self.results = results

    def replica_unavailable(self, call: AiCall, reason: str) -> Exception:
        return InvalidAiResult(f"cannot validate a replicate-mode call: {reason}")

    def finish(self) -> tuple[SpcResult, ...]:
        made = len(self.signers)  # one entry per synchronous call, attested or failed
        if made != len(self.results):
            raise InvalidAiResult(
                f"transaction 0x{self.tx_hash.hex()} carries {len(self.results)} AI results "
                f"but made {made} AI calls"
            )
        return self.results

    def attested_call(self, call: AiCall, state: Any) -> bytes:
        index = self.index
        slot = len(self.signers)  # async calls take a call index but no result
        where = f"AI call {index} of transaction 0x{self.tx_hash.hex()}"
        if slot >= len(self.results):
            raise InvalidAiResult(f"{where}: no recorded result")
        context = self._context()
        result = self.results[slot]
        if result.precompile != call.precompile:
            raise InvalidAiResult(
                f"{where}: result is for precompile 0x{result.precompile.hex()}, "
                f"the call went to 0x{call.precompile.hex()}"
            )
        input_hash = keccak(call.input)
        if result.input_hash != input_hash:
            raise InvalidAiResult(f"{where}: result is for another input")
        if result.status == FAILED:
            self.signers.append(())
            raise AiCallFailed(RECORDED_FAILURE)
        if len(result.output) > call.model.output_limit:
            raise InvalidAiResult(f"{where}: output exceeds the model's limit")
        if call.model.mode == "prove":
            return self._proved(call, result, where)
        if result.proof:
            raise InvalidAiResult(f"{where}: result carries a proof, the model is attested")
        digest = attestation_digest(
            self.chain_id,
            call.precompile,
            call.model.id,
            input_hash,
            keccak(result.output),
            context,
        )
        signers = verified_signers(
            state, digest, result.signatures, call.precompile, call.model.quorum, where
        )
        self.signers.append(signers)
        if self.spot_checker is not None:
            self.spot_checker.maybe_check(
                call, context, self.chain_id, result.output, signers, self.tx_hash, index
            )
        return result.output

    def _proved(self, call: AiCall, result: SpcResult, where: str) -> bytes:
        """A prove-mode result: accepted on its proof alone, whoever made it."""
        if not result.proof:
            raise InvalidAiResult(
                f"{where}: the model is in prove mode and the result has no proof"
            )
        if result.signatures:
            raise InvalidAiResult(f"{where}: a prove-mode result carries a proof, not signatures")
        problem = proof_problem(self.replicas, call, result.output, result.proof)
        if problem:
            raise InvalidAiResult(f"{where}: {problem}")
        self.signers.append(())
        return result.output
