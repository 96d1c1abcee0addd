"""INFER (0x…0800) and EMBED (0x…0801): a contract calls a model as it calls ecrecover.

The input is checked and the gas charged before any model runs: gas follows from the
model's schedule in the registry and the input alone (``base + perUnit × units``, units
being the number of input values for INFER and of text bytes for EMBED), never from the
output. The output then comes from the oracle of the execution (built on a sidecar,
verified from an attestation, or run for eth_call; see :mod:`chain.ai.results`). Anything
that keeps a call from producing an output reverts it with a reason, so the calling
contract sees ``success == false`` and the block goes on.
"""

from collections.abc import Callable
from typing import Any

from eth.abc import ComputationAPI
from eth_abi import encode as abi_encode

from chain.ai import jobs, registry
from chain.ai.results import AiCall, AiCallFailed
from chain.precompiles.native import returns_revert_data, revert
from sidecars.abi import AbiError, decode_embed_input, decode_infer_input

# Charged when a call is refused before its model is known (malformed input, no model).
REFUSAL_GAS = 3_000


def _run(
    computation: ComputationAPI,
    precompile: bytes,
    name: str,
    decode: Callable[[bytes], Any],
    units: Callable[[Any], int],
    check: Callable[[Any, registry.ModelRecord], None],
) -> ComputationAPI:
    data = computation.msg.data_as_bytes
    try:
        request = decode(data)
    except AbiError as exc:
        computation.consume_gas(REFUSAL_GAS, reason=f"{name}: malformed input")
        raise revert(f"{name}: {exc}") from None
    model = registry.get_model(computation.state, request.model_id)
    if model is None or not model.serves(precompile):
        computation.consume_gas(REFUSAL_GAS, reason=f"{name}: unknown model")
        raise revert(f"{name}: model 0x{request.model_id.hex()} is not registered for {name}")
    computation.consume_gas(
        model.gas_base + model.gas_per_unit * units(request), reason=f"{name} model call"
    )
    try:
        check(request, model)
    except AiCallFailed as exc:
        raise revert(f"{name}: {exc}") from None
    oracle = getattr(computation.state, "oracle", None)
    if oracle is None:
        raise revert(f"{name}: AI calls are not available in this context")
    try:
        computation.output = oracle.call(AiCall(precompile, model, data), computation.state)
    except AiCallFailed as exc:
        raise revert(f"{name}: {exc}") from None
    return computation


def _check_infer(request: Any, model: registry.ModelRecord) -> None:
    if model.input_shape is not None and tuple(request.shape) != model.input_shape:
        raise AiCallFailed(
            f"input shape {list(request.shape)} does not match the model's "
            f"{list(model.input_shape)}"
        )


def _check_embed(request: Any, model: registry.ModelRecord) -> None:
    if not request.text:
        raise AiCallFailed("text is empty")


@returns_revert_data
def infer(computation: ComputationAPI) -> ComputationAPI:
    return _run(
        computation,
        registry.INFER,
        "INFER",
        decode_infer_input,
        lambda request: len(request.values),
        _check_infer,
    )


@returns_revert_data
def embed(computation: ComputationAPI) -> ComputationAPI:
    return _run(
        computation,
        registry.EMBED,
        "EMBED",
        decode_embed_input,
        lambda request: len(request.text.encode()),
        _check_embed,
    )


def open_job(computation: ComputationAPI, name: str, request: jobs.JobRequest) -> ComputationAPI:
    """What an async precompile (LLM, ZK_PROVE) does once its input is checked and its
    creation charged: create the job in JOBS and return ``abi.encode(bytes32 jobId)``.
    A job is state, so a static call cannot make one; the job id needs the transaction,
    which only an execution's oracle knows."""
    if computation.msg.is_static:
        raise revert(f"{name}: creates a job, so it cannot run in a static call")
    oracle = getattr(computation.state, "oracle", None)
    if oracle is None:
        raise revert(f"{name}: AI calls are not available in this context")
    job_id = jobs.job_id(oracle.chain_id, oracle.tx_hash, oracle.async_call_index())
    try:
        jobs.create_job(computation, request, job_id)
    except jobs.JobRefused as exc:
        raise revert(f"{name}: {exc}") from None
    computation.output = abi_encode(["bytes32"], [job_id])
    return computation
