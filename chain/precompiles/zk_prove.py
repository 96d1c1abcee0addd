"""ZK_PROVE (0x…0803): a proof of a model's inference, asked for now, delivered later.

``prove(modelId, values, shape, decimals, callbackSelector, callbackGasLimit, ttlBlocks)``
(the input is the ABI encoding of these values, no selector) creates a job in JOBS
(:mod:`chain.ai.jobs`) for a model registered in ``prove`` mode and returns
``abi.encode(bytes32 jobId)`` at once. A builder's zk sidecar proves the inference and
the job's delivery carries ``abi.encode(int256[] values, uint32[] shape, bytes proof)``,
which every node checks natively against the job's input before it accepts the delivery
(:func:`chain.ai.delivery.check_proof`), whoever delivered it.

So that a verifier can tie the proof's public inputs to the job from state alone, JOBS
keeps a ZK_PROVE job's full input (not only its hash) until the job settles
(docs/decisions.md). Gas and fee follow from the input alone: the caller pays the job's
creation (``JOB_GAS``, 8 gas a byte of input for the ``JobCreated`` log, and a storage
write per 32 bytes of the kept input), and the requester's balance in JOBS is charged the
model's compute fee for ``units = len(values)`` (as INFER prices a call) and the
callback's gas. A malformed input, an unknown model, a model not in prove mode, an input
shape other than the model's or an underfunded requester fails the call (``success ==
false``) and creates no job.
"""

from eth.abc import ComputationAPI

from chain.ai import jobs, registry
from chain.precompiles.ai import REFUSAL_GAS, open_job
from chain.precompiles.native import returns_revert_data, revert
from sidecars.abi import AbiError, decode_prove_input


@returns_revert_data
def prove(computation: ComputationAPI) -> ComputationAPI:
    data = computation.msg.data_as_bytes
    try:
        request = decode_prove_input(data)
    except AbiError as exc:
        computation.consume_gas(REFUSAL_GAS, reason="ZK_PROVE: malformed input")
        raise revert(f"ZK_PROVE: {exc}") from None
    model = registry.get_model(computation.state, request.model_id)
    if model is None or not model.serves(registry.ZK_PROVE):
        computation.consume_gas(REFUSAL_GAS, reason="ZK_PROVE: unknown model")
        raise revert(f"ZK_PROVE: model 0x{request.model_id.hex()} is not registered for ZK_PROVE")
    if model.mode != "prove":
        computation.consume_gas(REFUSAL_GAS, reason="ZK_PROVE: model not in prove mode")
        raise revert(
            f"ZK_PROVE: model 0x{model.id.hex()} is registered in {model.mode} mode, "
            "ZK_PROVE needs prove mode"
        )
    computation.consume_gas(
        jobs.JOB_GAS + jobs.LOG_BYTE_GAS * len(data) + jobs.input_gas(data),
        reason="ZK_PROVE job creation",
    )
    if model.input_shape is not None and tuple(request.shape) != model.input_shape:
        raise revert(
            f"ZK_PROVE: input shape {request.shape} does not match the model's "
            f"{list(model.input_shape)}"
        )
    job_request = jobs.JobRequest(
        precompile=registry.ZK_PROVE,
        model=model,
        input=data,
        units=len(request.values),
        callback_selector=request.callback_selector,
        callback_gas_limit=request.callback_gas_limit,
        ttl_blocks=request.ttl_blocks,
        keep_input=True,
    )
    return open_job(computation, "ZK_PROVE", job_request)
