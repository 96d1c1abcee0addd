"""MODEL_REGISTRY (0x…0a03): registered models and their policy (kind, gas schedule,
output limit, quorum, verification mode). Only the registry admin may change it; any
contract may read it. Layout: :mod:`chain.ai.registry`."""

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
        return [
            Function(signature, (), self.register, writes=True, gas=5 * WRITE_GAS),
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
        if kind >= len(registry.KINDS) or mode >= len(registry.MODES):
            raise NativeRevert("unknown kind or mode")
        if quorum == 0:
            raise NativeRevert("quorum must be at least 1")
        if registry.MODES[mode] == "prove":
            # a prove model is named with its verifying key hash, which this ABI lacks
            raise NativeRevert("prove-mode models are registered in the genesis file")
        record = registry.ModelRecord(
            model_id, name, registry.KINDS[kind], tuple(input_shape) or None,
            tuple(output_shape) or None, decimals, quorum, registry.MODES[mode], gas_base,
            gas_per_unit, output_limit,
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

    def is_registered(self, computation: ComputationAPI, model_id: bytes) -> bool:
        return registry.get_model(computation.state, model_id) is not None

    def ids(self, computation: ComputationAPI) -> list[bytes]:
        return registry.model_ids(computation.state)

    def admin(self, computation: ComputationAPI) -> str:
        return "0x" + registry.admin(computation.state, registry.MODEL_REGISTRY).hex()
