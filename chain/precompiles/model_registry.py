"""MODEL_REGISTRY (0x…0a03): registered models and their policy (kind, gas schedule,
output limit, quorum, verification mode). Only the registry admin may change it; any
contract may read it. Layout: :mod:`chain.ai.registry`.

A ``prove``-mode model is registered with the hash of its verifying key (DESIGN section
5): through the ``registerModel`` overload that ends in ``bytes32 verifyingKeyHash``, and
read back with ``verifyingKeyHash(bytes32)``; the eleven-argument ``registerModel`` keeps
its ABI and refuses prove mode, as before. Every node that validates calls to a model
registered this way must hold its key files in a model directory (a node checks the
genesis models' keys at start; one lacking a key registered later cannot validate the
blocks whose calls or deliveries need it and stops at the first, naming the model).
"""

from eth.abc import ComputationAPI
from eth_abi import encode as abi_encode

from chain.ai import registry
from chain.precompiles.native import (
    LOG_GAS,
    READ_GAS,
    WRITE_GAS,
    Function,
    NativeContract,
    NativeRevert,
    event_topic,
)

MODEL_REGISTERED = event_topic("ModelRegistered(bytes32,string,uint8)")
MODEL_REMOVED = event_topic("ModelRemoved(bytes32)")
RECORD = (
    "string",
    "uint8",
    "uint32[]",
    "uint32[]",
    "uint8",
    "uint8",
    "uint8",
    "uint64",
    "uint64",
    "uint32",
)


def _require_admin(computation: ComputationAPI) -> None:
    if computation.msg.sender != registry.admin(computation.state, registry.MODEL_REGISTRY):
        raise NativeRevert("only the registry admin may change models")


class ModelRegistry(NativeContract):
    address = registry.MODEL_REGISTRY
    name = "ModelRegistry"

    def functions(self) -> list[Function]:
        signature = "registerModel(bytes32,string," + ",".join(RECORD[1:]) + ")"
        proved = signature[:-1] + ",bytes32)"
        return [
            Function(signature, (), self.register, writes=True, gas=5 * WRITE_GAS),
            Function(proved, (), self.register_proved, writes=True, gas=5 * WRITE_GAS),
            Function("verifyingKeyHash(bytes32)", ("bytes32",), self.key_hash, False, 8 * READ_GAS),
            Function("removeModel(bytes32)", (), self.remove, writes=True, gas=3 * WRITE_GAS),
            Function("getModel(bytes32)", RECORD, self.get, writes=False, gas=8 * READ_GAS),
            Function(
                "isRegistered(bytes32)", ("bool",), self.is_registered, writes=False, gas=READ_GAS
            ),
            Function("modelIds()", ("bytes32[]",), self.ids, writes=False, gas=4 * READ_GAS),
            Function("admin()", ("address",), self.admin, writes=False, gas=READ_GAS),
        ]

    def register(
        self, computation: ComputationAPI, model_id: bytes, name: str, kind: int,
        input_shape: list[int], output_shape: list[int], decimals: int, quorum: int, mode: int,
        gas_base: int, gas_per_unit: int, output_limit: int,
    ) -> None:  # fmt: skip
        _require_admin(computation)
        if mode < len(registry.MODES) and registry.MODES[mode] == "prove":
            # a prove model is named with its verifying key hash, which this ABI lacks
            raise NativeRevert(
                "prove-mode models are registered with the registerModel overload that "
                "ends in bytes32 verifyingKeyHash"
            )
        self._put(
            computation, model_id, name, kind, input_shape, output_shape, decimals, quorum,
            mode, gas_base, gas_per_unit, output_limit, b"",
        )  # fmt: skip

    def register_proved(
        self, computation: ComputationAPI, model_id: bytes, name: str, kind: int,
        input_shape: list[int], output_shape: list[int], decimals: int, quorum: int, mode: int,
        gas_base: int, gas_per_unit: int, output_limit: int, verifying_key_hash: bytes,
    ) -> None:  # fmt: skip
        _require_admin(computation)
        if mode >= len(registry.MODES) or registry.MODES[mode] != "prove":
            raise NativeRevert("a verifying key hash is registered for prove-mode models only")
        if kind >= len(registry.KINDS) or registry.KINDS[kind] != "zk":
            raise NativeRevert("prove mode needs a model of kind zk")
        if verifying_key_hash == b"\x00" * 32:
            raise NativeRevert("verifyingKeyHash must not be zero")
        self._put(
            computation, model_id, name, kind, input_shape, output_shape, decimals, quorum,
            mode, gas_base, gas_per_unit, output_limit, verifying_key_hash,
        )  # fmt: skip

    def _put(
        self, computation: ComputationAPI, model_id: bytes, name: str, kind: int,
        input_shape: list[int], output_shape: list[int], decimals: int, quorum: int, mode: int,
        gas_base: int, gas_per_unit: int, output_limit: int, verifying_key_hash: bytes,
    ) -> None:  # fmt: skip
        if kind >= len(registry.KINDS) or mode >= len(registry.MODES):
            raise NativeRevert("unknown kind or mode")
        if quorum == 0:
            raise NativeRevert("quorum must be at least 1")
        record = registry.ModelRecord(
            model_id, name, registry.KINDS[kind], tuple(input_shape) or None,
            tuple(output_shape) or None, decimals, quorum, registry.MODES[mode], gas_base,
            gas_per_unit, output_limit, verifying_key_hash,
        )  # fmt: skip
        registry.put_model(computation.state, record)
        computation.consume_gas(WRITE_GAS * (len(record.encode()) // 32), reason="model record")
        computation.add_log_entry(
            registry.MODEL_REGISTRY,
            [MODEL_REGISTERED, int.from_bytes(model_id, "big")],
            abi_encode(["string", "uint8"], [name, kind]),
        )

    def remove(self, computation: ComputationAPI, model_id: bytes) -> None:
        _require_admin(computation)
        if registry.get_model(computation.state, model_id) is None:
            raise NativeRevert("model is not registered")
        registry.remove_model(computation.state, model_id)
        computation.consume_gas(LOG_GAS, reason="event")
        computation.add_log_entry(
            registry.MODEL_REGISTRY, [MODEL_REMOVED, int.from_bytes(model_id, "big")], b""
        )

    def get(self, computation: ComputationAPI, model_id: bytes) -> tuple:
        record = registry.get_model(computation.state, model_id)
        if record is None:
            raise NativeRevert("model is not registered")
        return (
            record.name, registry.KINDS.index(record.kind), list(record.input_shape or ()),
            list(record.output_shape or ()), record.decimals, record.quorum,
            registry.MODES.index(record.mode), record.gas_base, record.gas_per_unit,
            record.output_limit,
        )  # fmt: skip

    def key_hash(self, computation: ComputationAPI, model_id: bytes) -> bytes:
        """A prove-mode model's verifying key hash; zero for a model of another mode."""
        record = registry.get_model(computation.state, model_id)
        if record is None:
            raise NativeRevert("model is not registered")
        return record.verifying_key_hash or b"\x00" * 32

    def is_registered(self, computation: ComputationAPI, model_id: bytes) -> bool:
        return registry.get_model(computation.state, model_id) is not None

    def ids(self, computation: ComputationAPI) -> list[bytes]:
        return registry.model_ids(computation.state)

    def admin(self, computation: ComputationAPI) -> str:
        return "0x" + registry.admin(computation.state, registry.MODEL_REGISTRY).hex()
