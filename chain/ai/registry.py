"""The model and executor registries: which AI calls may run, and who may attest them.

Both registries are native system contracts whose records live in their own accounts'
storage, so the state root commits to them and every node reads the same policy while
verifying a block. The storage layout follows Solidity's conventions so a reader (or a
``eth_getStorageAt`` caller) can find a record without this code:

MODEL_REGISTRY (0x…0a03)
  slot 0            number of models; model ids at ``keccak(0) + i``
  keccak(id ‖ 1)    the model record, RLP-encoded ``[name, kind, inputShape, outputShape,
                    isTensor, decimals, quorum, mode, gasBase, gasPerUnit, outputLimit]``
                    and, for a ``prove`` model only, its verifying key hash as a twelfth
                    field; stored as a byte string (length, then 32-byte chunks after it)
  keccak(id ‖ 2)    position of the id in the list, plus one (0: not registered)
  slot 3            admin: the only account that may register or remove models

EXECUTOR_REGISTRY (0x…0a02)
  slot 0            number of executors; addresses at ``keccak(0) + i``
  keccak(addr ‖ 1)  capabilities bitmask; +1 stake (wei); +2 active (0 or 1)
  keccak(addr ‖ 2)  position in the list, plus one
  slot 3            admin: may deactivate executors
  slot 4            minimum stake to register

Every AI call reads its model's record and its executors' records, so a block of calls
reads the same few records again and again. A state may carry ``registry_records``
(Sibyl's VM states do, see chain.vm): records already read, kept until the first write
to either registry, after which that state reads storage every time. Dropping the
records for good at a write, rather than updating them, keeps them right through
reverted frames without following py-evm's snapshots.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import rlp

from chain.slots import DictStorage, Storage, array_slot, mapping_slot, read_blob, write_blob

EXECUTOR_REGISTRY = bytes.fromhex("0000000000000000000000000000000000000a02")
MODEL_REGISTRY = bytes.fromhex("0000000000000000000000000000000000000a03")
INFER = bytes.fromhex("0000000000000000000000000000000000000800")
EMBED = bytes.fromhex("0000000000000000000000000000000000000801")
LLM = bytes.fromhex("0000000000000000000000000000000000000802")
ZK_PROVE = bytes.fromhex("0000000000000000000000000000000000000803")

KINDS = ("torch", "onnx", "embed", "llm", "zk")
KIND_PRECOMPILE = {"torch": INFER, "onnx": INFER, "embed": EMBED, "llm": LLM, "zk": ZK_PROVE}
MODES = ("attest", "replicate", "prove")
CAPABILITIES = ("infer", "embed", "llm", "zk")
PRECOMPILE_CAPABILITY = {INFER: "infer", EMBED: "embed", LLM: "llm", ZK_PROVE: "zk"}

# Code placed at system contract addresses: never run (the node dispatches the address
# natively), but non-empty so Solidity's extcodesize check before a call passes, and the
# account is never "empty" under EIP-161.
SYSTEM_CODE = bytes.fromhex("5f5ffd")  # PUSH0 PUSH0 REVERT

ADMIN_SLOT = 3
MIN_STAKE_SLOT = 4
_RECORD_SEDES = rlp.sedes.List(
    [
        rlp.sedes.text,
        rlp.sedes.big_endian_int,
        rlp.sedes.CountableList(rlp.sedes.big_endian_int),
        rlp.sedes.CountableList(rlp.sedes.big_endian_int),
        rlp.sedes.boolean,
    ]
    + [rlp.sedes.big_endian_int] * 6
)
_PROVE_RECORD_SEDES = rlp.sedes.List([*_RECORD_SEDES, rlp.sedes.Binary.fixed_length(32)])


def capability_bits(names: Iterable[str]) -> int:
    return sum(1 << CAPABILITIES.index(name) for name in set(names))


def capability_names(bits: int) -> list[str]:
    return [name for i, name in enumerate(CAPABILITIES) if bits >> i & 1]


@dataclass(frozen=True)
class ModelRecord:
    id: bytes
    name: str
    kind: str
    input_shape: tuple[int, ...] | None
    output_shape: tuple[int, ...] | None
    decimals: int
    quorum: int
    mode: str
    gas_base: int
    gas_per_unit: int
    output_limit: int
    # prove mode: keccak256 of the verifier's files (sidecars.zk.verifying_key_hash)
    verifying_key_hash: bytes = b""

    @property
    def precompile(self) -> bytes:
        return KIND_PRECOMPILE[self.kind]

    def serves(self, precompile: bytes) -> bool:
        """Whether calls to ``precompile`` may name this model: a ZK model answers INFER
        (in prove mode, with a proof of each output) as well as ZK_PROVE."""
        return precompile == self.precompile or (self.kind == "zk" and precompile == INFER)

    def encode(self) -> bytes:
        """The stored form: compact RLP, so that reading a record (which every AI call
        does) takes a few storage slots."""
        fields = [
            self.name,
            KINDS.index(self.kind),
            list(self.input_shape or ()),
            list(self.output_shape or ()),
            self.input_shape is not None,
            self.decimals,
            self.quorum,
            MODES.index(self.mode),
            self.gas_base,
            self.gas_per_unit,
            self.output_limit,
        ]
        if self.verifying_key_hash:
            return rlp.encode([*fields, self.verifying_key_hash], sedes=_PROVE_RECORD_SEDES)
        return rlp.encode(fields, sedes=_RECORD_SEDES)

    @classmethod
    def decode(cls, model_id: bytes, blob: bytes) -> "ModelRecord":
        fields = rlp.decode(blob)
        sedes = _PROVE_RECORD_SEDES if len(fields) == 12 else _RECORD_SEDES
        (name, kind, shape_in, shape_out, tensor, decimals, quorum, mode, base, per_unit, limit) = (
            sedes.deserialize(fields)[:11]
        )
        return cls(
            model_id,
            name,
            KINDS[kind],
            tuple(shape_in) if tensor else None,
            tuple(shape_out) or None,
            decimals,
            quorum,
            MODES[mode],
            base,
            per_unit,
            limit,
            fields[11] if len(fields) == 12 else b"",
        )


@dataclass(frozen=True)
class ExecutorRecord:
    address: bytes
    capabilities: int
    stake: int
    active: bool

    def can(self, capability: str) -> bool:
        return self.active and bool(self.capabilities >> CAPABILITIES.index(capability) & 1)


# records read once per state, until a registry is written


def _read_through(state: Storage, key: bytes, read: Callable[[], Any]) -> Any:
    """``key`` is a model id (32 bytes) or an executor address (20): one dict holds both."""
    records = getattr(state, "registry_records", None)
    if records is None:
        return read()
    if key not in records:
        records[key] = read()
    return records[key]


def _written(state: Storage) -> None:
    if getattr(state, "registry_records", None) is not None:
        state.registry_records = None  # type: ignore[attr-defined]


# lists of ids, shared by both registries


def _list(state: Storage, address: bytes) -> list[int]:
    return [
        state.get_storage(address, array_slot(0, i)) for i in range(state.get_storage(address, 0))
    ]


def _list_add(state: Storage, address: bytes, key: bytes) -> None:
    _written(state)
    count = state.get_storage(address, 0)
    state.set_storage(address, array_slot(0, count), int.from_bytes(key, "big"))
    state.set_storage(address, mapping_slot(key, 2), count + 1)
    state.set_storage(address, 0, count + 1)


def _list_remove(state: Storage, address: bytes, key: bytes, width: int) -> None:
    """Swap-and-pop, keeping the position index of the moved entry right."""
    _written(state)
    position = state.get_storage(address, mapping_slot(key, 2)) - 1
    last = state.get_storage(address, 0) - 1
    moved = state.get_storage(address, array_slot(0, last))
    state.set_storage(address, array_slot(0, position), moved)
    state.set_storage(address, mapping_slot(moved.to_bytes(width, "big"), 2), position + 1)
    state.set_storage(address, array_slot(0, last), 0)
    state.set_storage(address, mapping_slot(key, 2), 0)
    state.set_storage(address, 0, last)


# models


def get_model(state: Storage, model_id: bytes) -> ModelRecord | None:
    return _read_through(state, model_id, lambda: _read_model(state, model_id))


def _read_model(state: Storage, model_id: bytes) -> ModelRecord | None:
    if not state.get_storage(MODEL_REGISTRY, mapping_slot(model_id, 2)):
        return None
    return ModelRecord.decode(model_id, read_blob(state, MODEL_REGISTRY, mapping_slot(model_id, 1)))


def model_ids(state: Storage) -> list[bytes]:
    return [v.to_bytes(32, "big") for v in _list(state, MODEL_REGISTRY)]


def put_model(state: Storage, record: ModelRecord) -> None:
    _written(state)
    if not state.get_storage(MODEL_REGISTRY, mapping_slot(record.id, 2)):
        _list_add(state, MODEL_REGISTRY, record.id)
    write_blob(state, MODEL_REGISTRY, mapping_slot(record.id, 1), record.encode())


def remove_model(state: Storage, model_id: bytes) -> None:
    _written(state)
    write_blob(state, MODEL_REGISTRY, mapping_slot(model_id, 1), b"")
    _list_remove(state, MODEL_REGISTRY, model_id, 32)


# executors


def get_executor(state: Storage, address: bytes) -> ExecutorRecord | None:
    return _read_through(state, address, lambda: _read_executor(state, address))


def _read_executor(state: Storage, address: bytes) -> ExecutorRecord | None:
    if not state.get_storage(EXECUTOR_REGISTRY, mapping_slot(address, 2)):
        return None
    base = mapping_slot(address, 1)
    return ExecutorRecord(
        address,
        state.get_storage(EXECUTOR_REGISTRY, base),
        state.get_storage(EXECUTOR_REGISTRY, base + 1),
        bool(state.get_storage(EXECUTOR_REGISTRY, base + 2)),
    )


def executor_addresses(state: Storage) -> list[bytes]:
    return [v.to_bytes(20, "big") for v in _list(state, EXECUTOR_REGISTRY)]


def put_executor(state: Storage, record: ExecutorRecord) -> None:
    _written(state)
    if not state.get_storage(EXECUTOR_REGISTRY, mapping_slot(record.address, 2)):
        _list_add(state, EXECUTOR_REGISTRY, record.address)
    base = mapping_slot(record.address, 1)
    state.set_storage(EXECUTOR_REGISTRY, base, record.capabilities)
    state.set_storage(EXECUTOR_REGISTRY, base + 1, record.stake)
    state.set_storage(EXECUTOR_REGISTRY, base + 2, int(record.active))


def admin(state: Storage, registry: bytes) -> bytes:
    return state.get_storage(registry, ADMIN_SLOT).to_bytes(20, "big")


def genesis_storage(section: Any, storage: DictStorage) -> None:
    """Write both registries' records for a genesis ``sibyl`` section (chain.genesis)."""
    for address in (EXECUTOR_REGISTRY, MODEL_REGISTRY):
        storage.slots[address] = {}
        if section.admin:
            storage.set_storage(address, ADMIN_SLOT, int.from_bytes(section.admin, "big"))
    storage.set_storage(EXECUTOR_REGISTRY, MIN_STAKE_SLOT, section.min_stake)
    for executor in section.executors:
        put_executor(storage, executor)
    for model in section.models:
        put_model(storage, model)
