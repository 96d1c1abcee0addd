"""ZK_VERIFY (0x…0804): check a proof of a prove-mode model's inference, natively.

A contract asks whether ``proof`` shows that the registered model maps ``inputs`` to
``outputs`` (fixed-point at ``decimals``). The input is the ABI encoding of
``(bytes32 modelId, int256[] inputs, int256[] outputs, uint8 decimals, bytes proof)``,
with no selector, as for INFER; the output is ``abi.encode(bool valid)``. The proof is
checked with the verifying key the model registry names (DESIGN section 5), found among
the node's model directories, which every node checked at start.

Gas is known before the proof is looked at: the model's schedule over the public values,
``gasBase + gasPerUnit × (len(inputs) + len(outputs))``; a call that does not decode or
names no prove-mode model costs 3000. The call never reverts: whatever is wrong (a
malformed or truncated proof, another model's key, other inputs or outputs) is ``false``,
the same on every node, since the check is deterministic.
"""

from eth.abc import ComputationAPI
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode

from chain.ai import registry
from chain.precompiles.native import returns_revert_data, revert
from sidecars import zk

ZK_VERIFY = bytes.fromhex("0000000000000000000000000000000000000804")
REFUSAL_GAS = 3_000
ARGUMENTS = ["bytes32", "int256[]", "int256[]", "uint8", "bytes"]
TRUE, FALSE = abi_encode(["bool"], [True]), abi_encode(["bool"], [False])


@returns_revert_data
def zk_verify(computation: ComputationAPI) -> ComputationAPI:
    try:
        model_id, inputs, outputs, decimals, proof = abi_decode(
            ARGUMENTS, computation.msg.data_as_bytes
        )
    except Exception:  # eth_abi raises several types for bytes that are no encoding
        computation.consume_gas(REFUSAL_GAS, reason="ZK_VERIFY: malformed input")
        computation.output = FALSE
        return computation
    model = registry.get_model(computation.state, model_id)
    if model is None or model.mode != "prove":
        computation.consume_gas(REFUSAL_GAS, reason="ZK_VERIFY: no prove-mode model")
        computation.output = FALSE
        return computation
    units = len(inputs) + len(outputs)
    computation.consume_gas(model.gas_base + model.gas_per_unit * units, reason="ZK_VERIFY")
    oracle = getattr(computation.state, "oracle", None)
    circuit = (
        oracle.replicas.circuit(model.verifying_key_hash) if oracle and oracle.replicas else None
    )
    if circuit is None:  # a started node holds every registered key; a bare VM does not
        raise revert("ZK_VERIFY: this node has no verifying key for the model")
    computation.output = (
        TRUE if check(circuit, proof, list(inputs), list(outputs), decimals) else FALSE
    )
    return computation


def check(
    circuit: zk.Circuit, proof: bytes, inputs: list[int], outputs: list[int], decimals: int
) -> bool:
    try:
        decoded = zk.Proof.decode(proof)
    except zk.MalformedProof:
        return False
    return circuit.check(decoded, inputs, outputs, decimals) == ""
