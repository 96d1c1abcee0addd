"""The ``zk`` runtime: an ezkl model directory run by INFER and for ZK_PROVE jobs, each
output with a proof of it.

The circuit, its files, ids and the proving itself are :mod:`sidecars.zk`, which the node
shares to verify proofs without any sidecar; this module only turns a loaded circuit into
the :class:`~sidecars.model.Model` a sidecar serves. ezkl is imported when the model is
loaded.
"""

from pathlib import Path

from sidecars import zk
from sidecars.abi import (
    INFER_ADDRESS,
    AbiError,
    decode_infer_input,
    decode_prove_input,
    encode_infer_output,
    encode_prove_output,
    for_model,
)
from sidecars.model import Failed, Model, ModelLoadError, Refused, RuntimeUnavailable


def load_zk(model_id: bytes, path: Path) -> Model:
    """INFER on an ezkl circuit: the output is the circuit's, with a proof of it (the
    block builder checks the proof, as every verifier will, before it enters a block)."""
    try:
        import ezkl
    except ImportError:
        raise RuntimeUnavailable("runtime zk needs ezkl: pip install ezkl") from None
    try:
        circuit = zk.load_circuit(path, zk.PROVER_FILES)
    except zk.ZkModelError as exc:
        raise ModelLoadError(str(exc)) from None

    def proved(request, name: str) -> tuple[list[int], zk.Proof]:  # noqa: ANN001
        try:
            for_model(request, model_id)
            if tuple(request.shape) != circuit.input_shape:
                raise AbiError(
                    f"shape {request.shape} is not the circuit's {list(circuit.input_shape)}"
                )
        except AbiError as exc:
            raise Refused(f"bad {name} input: {exc}") from None
        try:
            return zk.prove(circuit, request.values, request.decimals)
        except zk.ProvingFailed as exc:
            raise Failed(str(exc)) from None

    def prove(data: bytes) -> tuple[bytes, bytes]:
        try:
            request = decode_infer_input(data)
        except AbiError as exc:
            raise Refused(f"bad INFER input: {exc}") from None
        outputs, proof = proved(request, "INFER")
        try:
            return encode_infer_output(outputs, list(circuit.output_shape)), proof.encode()
        except AbiError as exc:
            raise Failed(str(exc)) from None

    def prove_job(data: bytes) -> bytes:
        try:
            request = decode_prove_input(data)
        except AbiError as exc:
            raise Refused(f"bad ZK_PROVE input: {exc}") from None
        outputs, proof = proved(request, "ZK_PROVE")
        try:
            return encode_prove_output(outputs, list(circuit.output_shape), proof.encode())
        except (AbiError, OverflowError) as exc:
            raise Failed(str(exc)) from None

    return Model(
        "zk",
        model_id,
        INFER_ADDRESS,
        {"ezkl": ezkl.__version__},
        lambda data: prove(data)[0],
        prove,
        prove_job,
    )
