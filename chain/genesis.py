"""Genesis files: geth's ``genesis.json`` format plus a ``sibyl`` section.

A genesis file fixes the chain id, the fork schedule (``chain.fork_schedule``), the first
header's fields and the accounts that exist at block 0. Every error names the offending
key (``chain.genesis_values``), so an operator can fix the file without reading code.

The genesis hash follows from the file alone, as in every Ethereum client (DESIGN
section 3): block 0's state is exactly ``alloc``. A file with a ``sibyl`` section
(``chain.sibyl_genesis``: models, executors, scheduler limits) describes a Sibyl chain,
whose system contracts' accounts (DESIGN section 6) must then be in ``alloc`` holding
exactly the records the section describes; :func:`complete_genesis` (``sibyl genesis
complete``) writes them there. A file without one is a plain Ethereum chain: no Sibyl
precompiles, no system contracts.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth.constants import BLANK_ROOT_HASH, EMPTY_SHA256, ZERO_ADDRESS, ZERO_HASH32
from eth.db.account import AccountDB

from chain.ai import jobs, registry
from chain.fork_schedule import chain_config
from chain.genesis_values import GenesisError, hex_bytes, json_object, quantity, storage_word
from chain.limits import load_json
from chain.sibyl_genesis import SibylGenesis, parse_sibyl_section
from chain.slots import DictStorage
from chain.storage import codec
from chain.storage.store import BlockWrite, state_view
from chain.vm import ChainConfig, fork_since, make_block, vm_classes
from scheduler.state import GAS_CAP_SLOT, SCHEDULER

SYSTEM_ADDRESSES = (SCHEDULER, registry.EXECUTOR_REGISTRY, registry.MODEL_REGISTRY, jobs.JOBS)
DEFAULT_GAS_LIMIT = 30_000_000
INITIAL_BASE_FEE = 1_000_000_000


SYSTEM_NAMES = {
    SCHEDULER: "SCHEDULER",
    registry.EXECUTOR_REGISTRY: "EXECUTOR_REGISTRY",
    registry.MODEL_REGISTRY: "MODEL_REGISTRY",
    jobs.JOBS: "JOBS",
}
COMPLETE_HINT = "run `sibyl genesis complete FILE` to write the system accounts into alloc"


@dataclass(frozen=True)
class GenesisAccount:
    balance: int = 0
    nonce: int = 0
    code: bytes = b""
    storage: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Genesis:
    """A parsed genesis file; ``sibyl`` is None for a plain Ethereum chain."""

    config: ChainConfig
    timestamp: int
    gas_limit: int
    base_fee: int
    extra_data: bytes
    coinbase: bytes
    mix_hash: bytes
    alloc: dict[bytes, GenesisAccount]
    sibyl: SibylGenesis | None
    raw: bytes
    nonce: bytes = b"\x00" * 8
    excess_blob_gas: int = 0
    blob_gas_used: int = 0
    difficulty: int = 0


def _account(value: Any, key: str) -> GenesisAccount:
    data = json_object(value, key)
    unknown = set(data) - {"balance", "nonce", "code", "storage", "secretKey"}
    if unknown:
        raise GenesisError(f"{key}: unknown field {sorted(unknown)[0]!r}")
    storage = {
        storage_word(slot, f"{key}.storage key {slot}"): storage_word(
            word, f"{key}.storage[{slot}]"
        )
        for slot, word in json_object(data.get("storage", {}), f"{key}.storage").items()
    }
    return GenesisAccount(
        balance=quantity(data.get("balance", 0), f"{key}.balance"),
        nonce=quantity(data.get("nonce", 0), f"{key}.nonce", bits=64),
        code=hex_bytes(data.get("code", "0x"), f"{key}.code"),
        storage=storage,
    )


def parse_genesis(raw: bytes, source: str = "genesis") -> Genesis:
    """Parse and validate a genesis file's bytes; errors are prefixed with ``source``."""
    try:
        data = _genesis_object(raw)
        alloc = {
            hex_bytes(address, f"alloc[{address}]", length=20): _account(
                account, f"alloc[{address}]"
            )
            for address, account in json_object(data.get("alloc", {}), "alloc").items()
        }
        gas_limit = quantity(data.get("gasLimit", DEFAULT_GAS_LIMIT), "gasLimit", bits=64)
        sibyl = parse_sibyl_section(data, gas_limit) if "sibyl" in data else None
        if sibyl is not None:
            _check_system_accounts(alloc, system_alloc(sibyl))
        difficulty = quantity(data.get("difficulty", 0), "difficulty")
        config = chain_config(
            json_object(data.get("config"), "config"), difficulty, sibyl is not None
        )
        extra = hex_bytes(data.get("extraData", "0x"), "extraData")
        if len(extra) > 32:
            raise GenesisError("extraData: at most 32 bytes")
        base_fee = data.get("baseFeePerGas")  # geth: null or absent means the initial one
        # Each block's timestamp exceeds its parent's: a genesis at the top of uint64
        # could have no block 1. Below 2**63 leaves the chain its life, and int64 readers
        # (Go's time, which consensus clients use) their range.
        timestamp = quantity(data.get("timestamp", 0), "timestamp", bits=63)
        return Genesis(
            config=config,
            timestamp=timestamp,
            gas_limit=gas_limit,
            base_fee=INITIAL_BASE_FEE if base_fee is None else quantity(base_fee, "baseFeePerGas"),
            extra_data=extra,
            coinbase=hex_bytes(data.get("coinbase", "0x" + "00" * 20), "coinbase", length=20),
            mix_hash=hex_bytes(data.get("mixHash", "0x" + "00" * 32), "mixHash", length=32),
            alloc=alloc,
            sibyl=sibyl,
            raw=raw,
            nonce=quantity(data.get("nonce", 0), "nonce", bits=64).to_bytes(8, "big"),
            excess_blob_gas=_optional_quantity(data, "excessBlobGas"),
            blob_gas_used=_optional_quantity(data, "blobGasUsed"),
            difficulty=difficulty,
        )
    except GenesisError as exc:
        raise GenesisError(f"{source}: {exc}") from None


def _genesis_object(raw: bytes) -> dict[str, Any]:
    try:
        data = load_json(raw)
    except ValueError as exc:
        raise GenesisError(f"not valid JSON: {exc}") from None
    return json_object(data, "genesis")


def _optional_quantity(data: dict[str, Any], key: str) -> int:
    """A header quantity geth writes as null when the fork lacks the field."""
    value = data.get(key)
    return 0 if value is None else quantity(value, key, bits=64)


def system_alloc(sibyl: SibylGenesis) -> dict[bytes, GenesisAccount]:
    """The accounts of Sibyl's system contracts (DESIGN section 6) at block 0, holding the
    records that the ``sibyl`` section describes: the one place they are derived from."""
    storage = DictStorage()
    registry.genesis_storage(sibyl, storage)
    storage.set_storage(SCHEDULER, GAS_CAP_SLOT, sibyl.scheduler_gas_per_block)
    jobs.genesis_storage(sibyl.jobs_max_ttl, sibyl.jobs_expiry_gas_per_block, storage)
    return {
        address: GenesisAccount(
            nonce=1, code=registry.SYSTEM_CODE, storage=dict(storage.slots.get(address, {}))
        )
        for address in SYSTEM_ADDRESSES
    }


def _check_system_accounts(
    alloc: dict[bytes, GenesisAccount], expected: dict[bytes, GenesisAccount]
) -> None:
    for address, account in expected.items():
        key = f"alloc[0x{address.hex()}]"
        given = alloc.get(address)
        if given is None:
            raise GenesisError(
                f"{key}: missing; the sibyl section needs the {SYSTEM_NAMES[address]} "
                f"system account in alloc: {COMPLETE_HINT}"
            )
        for name in ("nonce", "code", "storage"):
            if getattr(given, name) != getattr(account, name):
                raise GenesisError(
                    f"{key}.{name}: differs from what the sibyl section gives the "
                    f"{SYSTEM_NAMES[address]} system account: {COMPLETE_HINT}"
                )


def complete_genesis(raw: bytes, source: str = "genesis") -> dict[str, Any]:
    """The genesis file ``raw`` with its ``sibyl`` section's system accounts written into
    ``alloc`` (replacing any there), ready for every client to compute the same block 0.
    A file without a ``sibyl`` section is returned unchanged."""
    try:
        data = _genesis_object(raw)
        if "sibyl" not in data:
            return data
        alloc = {
            address: account
            for address, account in json_object(data.get("alloc", {}), "alloc").items()
            if hex_bytes(address, f"alloc[{address}]", length=20) not in SYSTEM_ADDRESSES
        }
        gas_limit = quantity(data.get("gasLimit", DEFAULT_GAS_LIMIT), "gasLimit", bits=64)
        for address, account in system_alloc(parse_sibyl_section(data, gas_limit)).items():
            alloc["0x" + address.hex()] = {
                "balance": "0x0",
                "nonce": hex(account.nonce),
                "code": "0x" + account.code.hex(),
                "storage": {
                    f"0x{slot:064x}": f"0x{word:064x}"
                    for slot, word in sorted(account.storage.items())
                },
            }
        data["alloc"] = alloc
    except GenesisError as exc:
        raise GenesisError(f"{source}: {exc}") from None
    parse_genesis(json.dumps(data).encode(), source)  # what it writes must load
    return data


def load_genesis(path: Path) -> Genesis:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise GenesisError(f"cannot read genesis file {path}: {exc.strerror}") from None
    return parse_genesis(raw, str(path))


def genesis_block(genesis: Genesis) -> tuple[Any, BlockWrite]:
    """Block 0 and the store write that holds it and the allocated state."""
    db, overlay = state_view(lambda key: None)
    accounts = AccountDB(db)
    for address, account in genesis.alloc.items():
        accounts.set_balance(address, account.balance)
        accounts.set_nonce(address, account.nonce)
        accounts.set_code(address, account.code)
        for slot, word in account.storage.items():
            accounts.set_storage(address, slot, word)
    accounts.persist()

    fork = genesis.config.fork_of(0, genesis.timestamp, genesis.difficulty)
    vm_class = vm_classes(genesis.config.sibyl)[fork]
    fields: dict[str, Any] = dict(
        parent_hash=ZERO_HASH32,
        coinbase=genesis.coinbase or ZERO_ADDRESS,
        state_root=accounts.state_root,
        transaction_root=BLANK_ROOT_HASH,
        receipt_root=BLANK_ROOT_HASH,
        difficulty=genesis.difficulty,
        block_number=0,
        gas_limit=genesis.gas_limit,
        timestamp=genesis.timestamp,
        extra_data=genesis.extra_data,
        mix_hash=genesis.mix_hash,
        nonce=genesis.nonce,
    )
    if fork_since(fork, "london"):
        fields["base_fee_per_gas"] = genesis.base_fee
    if fork_since(fork, "shanghai"):
        fields["withdrawals_root"] = BLANK_ROOT_HASH
    if fork_since(fork, "cancun"):
        fields.update(
            blob_gas_used=genesis.blob_gas_used,
            excess_blob_gas=genesis.excess_blob_gas,
            parent_beacon_block_root=ZERO_HASH32,
        )
    if fork_since(fork, "prague"):
        fields["requests_hash"] = EMPTY_SHA256
    block_class = vm_class.get_block_class()
    header = block_class._meta.sedes[0](**fields)
    block = make_block(block_class, header)
    write = BlockWrite(
        hash=header.hash,
        number=0,
        header=codec.encode_header(header),
        block=codec.encode_block(block),
        receipts=codec.encode_receipts([], [], []),
        state=overlay.writes,
        tx_hashes=[],
    )
    return block, write
