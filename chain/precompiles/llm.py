"""LLM (0x…0802): a chat completion, asked for now and delivered by callback later.

``complete(modelId, messagesJson, maxTokens, temperatureMilli, seed, callbackSelector,
callbackGasLimit, ttlBlocks)`` (the input is the ABI encoding of these values, no selector)
creates a job in JOBS (:mod:`chain.ai.jobs`) and returns ``abi.encode(bytes32 jobId)``
at once; no model runs in the block, so building, importing, ``eth_call`` and
``eth_estimateGas`` all do the same thing and none of them asks a sidecar. Gas and fee
follow from the input alone: the caller pays the job's creation (``JOB_GAS`` plus 8 gas
a byte of input, which the ``JobCreated`` log carries), and the requester's balance in
JOBS is charged the model's compute fee for ``units = bytes(messagesJson) + maxTokens``
and the callback's gas, at the transaction's gas price. A malformed input, an unknown
model, a ``maxTokens`` above the model's limit or an underfunded requester fails the
call (``success == false``) and creates no job.
"""

from eth.abc import ComputationAPI

from chain.ai import jobs, registry
from chain.precompiles.ai import REFUSAL_GAS, open_job
from chain.precompiles.native import returns_revert_data, revert
from sidecars.abi import AbiError, LlmRequest, decode_llm_input


def max_tokens(model: registry.ModelRecord) -> int:
    """An LLM's limit on ``maxTokens`` is its registered output shape, ``[maxTokens]``."""
    return model.output_shape[0] if model.output_shape else 0


def job_units(request: LlmRequest) -> int:
    return len(request.messages_json.encode()) + request.max_tokens


@returns_revert_data
def complete(computation: ComputationAPI) -> ComputationAPI:
    data = computation.msg.data_as_bytes
    try:
        request = decode_llm_input(data)
    except AbiError as exc:
        computation.consume_gas(REFUSAL_GAS, reason="LLM: malformed input")
        raise revert(f"LLM: {exc}") from None
    model = registry.get_model(computation.state, request.model_id)
    if model is None or model.precompile != registry.LLM:
        computation.consume_gas(REFUSAL_GAS, reason="LLM: unknown model")
        raise revert(f"LLM: model 0x{request.model_id.hex()} is not registered for LLM")
    computation.consume_gas(jobs.JOB_GAS + jobs.LOG_BYTE_GAS * len(data), reason="LLM job creation")
    if request.max_tokens > max_tokens(model):
        raise revert(f"LLM: maxTokens {request.max_tokens} above the model's {max_tokens(model)}")
    job_request = jobs.JobRequest(
        precompile=registry.LLM,
        model=model,
        input=data,
        units=job_units(request),
        callback_selector=request.callback_selector,
        callback_gas_limit=request.callback_gas_limit,
        ttl_blocks=request.ttl_blocks,
    )
    return open_job(computation, "LLM", job_request)
