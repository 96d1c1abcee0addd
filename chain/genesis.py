"""Genesis files: geth's ``genesis.json`` format plus a ``sibyl`` section.

A genesis file fixes the chain id, the fork schedule (post-merge chains: Shanghai,
Cancun, Prague), the first header's fields and the accounts that exist at block 0.
Every error names the offending key, so an operator can fix the file without reading
code.

The genesis hash follows from the file alone, as in every Ethereum client (DESIGN
section 3): block 0's state is exactly ``alloc``. A file with a ``sibyl`` section (models,
executors, scheduler limits) describes a Sibyl chain, whose system contracts' accounts
(DESIGN section 6) must then be in ``alloc`` holding exactly the records the section
describes; :func:`complete_genesis` (``sibyl genesis complete``) writes them there. A
file without one is a plain Ethereum chain: no Sibyl precompiles, no system contracts.
"""

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from eth.constants import BLANK_ROOT_HASH, EMPTY_SHA256, ZERO_ADDRESS, ZERO_HASH32
from eth.db.account import AccountDB

from chain.ai import jobs, registry
from chain.errors import SibylError
from chain.limits import load_json
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


class GenesisError(SibylError):
    """A genesis file that cannot define a chain; the message names the key."""


@dataclass(frozen=True)
class GenesisAccount:
    balance: int = 0
    nonce: int = 0
    code: bytes = b""
    storage: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True)
class SibylGenesis:
    """The ``sibyl`` section: registry admin, executors, models, scheduler limits."""

    admin: bytes | None = None
    min_stake: int = 0
    executors: tuple[registry.ExecutorRecord, ...] = ()
    models: tuple[registry.ModelRecord, ...] = ()
    scheduler_gas_per_block: int = 5_000_000
    jobs_max_ttl: int = jobs.DEFAULT_MAX_TTL
    jobs_expiry_gas_per_block: int | None = jobs.DEFAULT_EXPIRY_GAS  # None: the default


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


def _quantity(value: Any, key: str, *, bits: int = 256) -> int:
    """An integer given as a JSON number, a 0x-hex string or a decimal string (as geth)."""
    if isinstance(value, bool):
        raise GenesisError(f"{key}: must be a number, not a boolean")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str):
        try:
            number = int(value, 16) if value.lower().startswith("0x") else int(value, 10)
        except ValueError:
            raise GenesisError(f"{key}: {value!r} is not a hex or decimal number") from None
    else:
        raise GenesisError(f"{key}: must be a number or a numeric string")
    if not 0 <= number < 2**bits:
        raise GenesisError(f"{key}: {number} is out of range for a {bits}-bit unsigned value")
    return number


def _hex_bytes(value: Any, key: str, *, length: int | None = None) -> bytes:
    if not isinstance(value, str):
        raise GenesisError(f"{key}: must be a hex string")
    text = value[2:] if value.lower().startswith("0x") else value
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise GenesisError(f"{key}: {value!r} is not valid hex") from None
    if length is not None and len(raw) != length:
        raise GenesisError(f"{key}: must be {length} bytes, got {len(raw)}")
    return raw


def _word(value: Any, key: str) -> int:
    """A storage key or value: up to 32 bytes of hex, left-padded as geth reads them."""
    raw = _hex_bytes(value, key)
    if len(raw) > 32:
        raise GenesisError(f"{key}: more than 32 bytes")
    return int.from_bytes(raw, "big")


def _object(value: Any, key: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise GenesisError(f"{key}: must be a JSON object")
    return value


def _optional_time(config: dict[str, Any], name: str) -> int | None:
    if config.get(name) is None:
        return None
    return _quantity(config[name], f"config.{name}", bits=64)


BLOCK_FORK_NAMES = {  # geth's key of each proof-of-work fork, and py-evm's fork
    "homesteadBlock": "homestead",
    "eip150Block": "tangerine_whistle",
    "eip158Block": "spurious_dragon",  # EIP-155 and EIP-158 together, as on every chain
    "byzantiumBlock": "byzantium",
    "constantinopleBlock": "constantinople",
    "petersburgBlock": "petersburg",
    "istanbulBlock": "istanbul",
    "muirGlacierBlock": "muir_glacier",
    "berlinBlock": "berlin",
    "londonBlock": "london",
    "arrowGlacierBlock": "arrow_glacier",
    "grayGlacierBlock": "gray_glacier",
}
BLOCK_FORKS = ("eip155Block", *BLOCK_FORK_NAMES)
BLOB_SCHEDULE = {  # what py-evm's forks run (EIP-4844, EIP-7691)
    "cancun": {"target": 3, "max": 6, "baseFeeUpdateFraction": 3_338_477},
    "prague": {"target": 6, "max": 9, "baseFeeUpdateFraction": 5_007_716},
}


def _check_blob_schedule(value: Any) -> None:
    """geth's ``blobSchedule``: accepted when it states the forks' own parameters."""
    if value is None:
        return
    for fork, entry in _object(value, "config.blobSchedule").items():
        expected = BLOB_SCHEDULE.get(fork)
        key = f"config.blobSchedule.{fork}"
        if expected is None:
            raise GenesisError(f"{key}: not a fork Sibyl runs (cancun, prague)")
        given = {name: _quantity(v, f"{key}.{name}") for name, v in _object(entry, key).items()}
        if given != expected:
            raise GenesisError(f"{key}: Sibyl runs the fork's own blob parameters {expected}")


def _block_forks(config: dict[str, Any]) -> tuple[tuple[str, int], ...]:
    """The proof-of-work forks as geth reads them: each from its block on, in fork order
    (geth's ``CheckConfigForkOrder``: a fork is not before an earlier one)."""
    forks: list[tuple[str, int]] = []
    for key, fork in BLOCK_FORK_NAMES.items():
        if config.get(key) is None:
            continue
        block = _quantity(config[key], f"config.{key}", bits=64)
        if forks and block < forks[-1][1]:
            raise GenesisError(f"config.{key}: {block} is before an earlier fork's block")
        forks.append((fork, block))
    eip155 = config.get("eip155Block")
    if eip155 is not None and _quantity(eip155, "config.eip155Block", bits=64) != dict(forks).get(
        "spurious_dragon"
    ):
        raise GenesisError("config.eip155Block: must equal eip158Block (py-evm's Spurious Dragon)")
    return tuple(forks)


def _chain_config(config: dict[str, Any], difficulty: int, sibyl: bool) -> ChainConfig:
    if "chainId" not in config:
        raise GenesisError("config.chainId: missing")
    chain_id = _quantity(config["chainId"], "config.chainId", bits=64)
    if chain_id == 0:
        raise GenesisError("config.chainId: must be positive")
    shanghai = _optional_time(config, "shanghaiTime")
    ttd = config.get("terminalTotalDifficulty")
    # geth: no terminalTotalDifficulty, no merge; files written for Sibyl before it read
    # pre-merge history state only shanghaiTime, meaning merged at genesis
    terminal = (
        _quantity(ttd, "config.terminalTotalDifficulty")
        if ttd is not None
        else (0 if shanghai is not None else None)
    )
    block_forks = _block_forks(config)
    if sibyl:
        _check_merged_at_genesis(terminal, difficulty, block_forks, shanghai)
    _check_blob_schedule(config.get("blobSchedule"))
    cancun = _optional_time(config, "cancunTime")
    prague = _optional_time(config, "pragueTime")
    if cancun is not None and (shanghai is None or cancun < shanghai):
        raise GenesisError("config.cancunTime: needs shanghaiTime at or before it")
    if prague is not None and (cancun is None or prague < cancun):
        raise GenesisError("config.pragueTime: needs cancunTime at or before it")
    deposit = config.get("depositContractAddress")
    dao = config.get("daoForkBlock") if config.get("daoForkSupport", False) is True else None
    return ChainConfig(
        chain_id,
        shanghai,
        cancun,
        prague,
        sibyl=sibyl,
        terminal_total_difficulty=terminal,
        deposit_contract=None
        if deposit is None
        else _hex_bytes(deposit, "config.depositContractAddress", length=20),
        block_forks=block_forks,
        dao_fork_block=None if dao is None else _quantity(dao, "config.daoForkBlock", bits=64),
        ethash="ethash" in config,
    )


def _check_merged_at_genesis(
    terminal: int | None, difficulty: int, block_forks: tuple, shanghai: int | None
) -> None:
    """A Sibyl chain is built by its own nodes through the Engine API: it starts merged."""
    if terminal is None or terminal > difficulty:
        # geth: the merge happened at genesis when its total difficulty (its own) has
        # reached the terminal one; a later merge means proof-of-work blocks first
        raise GenesisError(
            f"config.terminalTotalDifficulty: {terminal} is above the genesis "
            f"difficulty {difficulty}, so the chain would start before the merge; a Sibyl "
            "chain (one with a sibyl section) runs merged at genesis"
        )
    for fork, block in block_forks:
        if block != 0:
            key = next(k for k, f in BLOCK_FORK_NAMES.items() if f == fork)
            raise GenesisError(
                f"config.{key}: a fork after genesis by block number means proof-of-work "
                "blocks first; a Sibyl chain runs merged at genesis (set it to 0)"
            )
    if shanghai is None:
        raise GenesisError(
            "config.shanghaiTime: missing; a Sibyl chain runs the post-merge forks "
            "(Shanghai, Cancun, Prague) and needs at least shanghaiTime"
        )


def _account(value: Any, key: str) -> GenesisAccount:
    data = _object(value, key)
    unknown = set(data) - {"balance", "nonce", "code", "storage", "secretKey"}
    if unknown:
        raise GenesisError(f"{key}: unknown field {sorted(unknown)[0]!r}")
    storage = {
        _word(slot, f"{key}.storage key {slot}"): _word(word, f"{key}.storage[{slot}]")
        for slot, word in _object(data.get("storage", {}), f"{key}.storage").items()
    }
    return GenesisAccount(
        balance=_quantity(data.get("balance", 0), f"{key}.balance"),
        nonce=_quantity(data.get("nonce", 0), f"{key}.nonce", bits=64),
        code=_hex_bytes(data.get("code", "0x"), f"{key}.code"),
        storage=storage,
    )


def _known_keys(data: dict[str, Any], key: str, allowed: set[str]) -> None:
    unknown = set(data) - allowed
    if unknown:
        raise GenesisError(f"{key}: unknown field {sorted(unknown)[0]!r}")


def _choice(value: Any, key: str, options: tuple[str, ...]) -> str:
    if value not in options:
        raise GenesisError(f"{key}: must be one of {', '.join(options)}")
    return value


def _shape(value: Any, key: str) -> tuple[int, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not value:
        raise GenesisError(f"{key}: must be a non-empty list of dimensions, or null")
    return tuple(_quantity(dim, f"{key}[{i}]", bits=32) for i, dim in enumerate(value))


DEFAULT_GAS = {"torch": (30_000, 200), "onnx": (30_000, 200), "embed": (50_000, 16)}


def _model(value: Any, key: str) -> registry.ModelRecord:
    data = _object(value, key)
    _known_keys(
        data,
        key,
        {"id", "name", "kind", "inputShape", "outputShape", "decimals", "quorum", "mode", "gas",
         "outputLimit", "file", "package", "verifyingKeyHash"},
    )  # fmt: skip
    kind = _choice(data.get("kind"), f"{key}.kind", registry.KINDS)
    gas = _object(data.get("gas", {}), f"{key}.gas")
    _known_keys(gas, f"{key}.gas", {"base", "perUnit"})
    default_base, default_per_unit = DEFAULT_GAS.get(kind, (100_000, 100))
    quorum = _quantity(data.get("quorum", 1), f"{key}.quorum", bits=8)
    if quorum == 0:
        raise GenesisError(f"{key}.quorum: must be at least 1")
    if "id" not in data:
        raise GenesisError(f"{key}.id: missing (keccak256 of the model artifact)")
    name = data.get("name", "")
    if not isinstance(name, str):
        raise GenesisError(f"{key}.name: must be a string")
    mode = _choice(data.get("mode", "attest"), f"{key}.mode", registry.MODES)
    if mode == "prove" and kind != "zk":
        raise GenesisError(f"{key}.mode: prove needs a model of kind zk, not {kind}")
    if (mode == "prove") != ("verifyingKeyHash" in data):
        raise GenesisError(
            f"{key}.verifyingKeyHash: required for mode prove (keccak256 of the model's "
            "verifier files, see sidecars.zk), and only there"
        )
    return registry.ModelRecord(
        id=_hex_bytes(data["id"], f"{key}.id", length=32),
        name=name,
        kind=kind,
        input_shape=_shape(data.get("inputShape"), f"{key}.inputShape"),
        output_shape=_shape(data.get("outputShape"), f"{key}.outputShape"),
        decimals=_quantity(data.get("decimals", 6), f"{key}.decimals", bits=8),
        quorum=quorum,
        mode=mode,
        gas_base=_quantity(gas.get("base", default_base), f"{key}.gas.base", bits=64),
        gas_per_unit=_quantity(gas.get("perUnit", default_per_unit), f"{key}.gas.perUnit", bits=64),
        output_limit=_quantity(data.get("outputLimit", 16384), f"{key}.outputLimit", bits=32),
        verifying_key_hash=_hex_bytes(
            data["verifyingKeyHash"], f"{key}.verifyingKeyHash", length=32
        )
        if mode == "prove"
        else b"",
    )


def _executor(value: Any, key: str) -> registry.ExecutorRecord:
    data = _object(value, key)
    _known_keys(data, key, {"address", "capabilities", "stake", "active"})
    capabilities = data.get("capabilities", [])
    if not isinstance(capabilities, list):
        raise GenesisError(f"{key}.capabilities: must be a list")
    for i, name in enumerate(capabilities):
        _choice(name, f"{key}.capabilities[{i}]", registry.CAPABILITIES)
    active = data.get("active", True)
    if not isinstance(active, bool):
        raise GenesisError(f"{key}.active: must be true or false")
    return registry.ExecutorRecord(
        address=_hex_bytes(data.get("address"), f"{key}.address", length=20),
        capabilities=registry.capability_bits(capabilities),
        stake=_quantity(data.get("stake", 0), f"{key}.stake"),
        active=active,
    )


def _sibyl(value: Any) -> SibylGenesis:
    data = _object(value, "sibyl")
    _known_keys(data, "sibyl", {"admin", "minStake", "executors", "models", "scheduler", "jobs"})
    executors = data.get("executors", [])
    models = data.get("models", [])
    if not isinstance(executors, list):
        raise GenesisError("sibyl.executors: must be a list")
    if not isinstance(models, list):
        raise GenesisError("sibyl.models: must be a list")
    scheduler = _object(data.get("scheduler", {}), "sibyl.scheduler")
    _known_keys(scheduler, "sibyl.scheduler", {"maxGasPerBlock"})
    job_limits = _object(data.get("jobs", {}), "sibyl.jobs")
    _known_keys(job_limits, "sibyl.jobs", {"maxTtlBlocks", "maxExpiryGasPerBlock"})
    parsed = SibylGenesis(
        admin=_hex_bytes(data["admin"], "sibyl.admin", length=20) if data.get("admin") else None,
        min_stake=_quantity(data.get("minStake", 0), "sibyl.minStake"),
        executors=tuple(_executor(e, f"sibyl.executors[{i}]") for i, e in enumerate(executors)),
        models=tuple(_model(m, f"sibyl.models[{i}]") for i, m in enumerate(models)),
        scheduler_gas_per_block=_quantity(
            scheduler.get("maxGasPerBlock", 5_000_000), "sibyl.scheduler.maxGasPerBlock", bits=64
        ),
        jobs_max_ttl=_quantity(
            job_limits.get("maxTtlBlocks", jobs.DEFAULT_MAX_TTL), "sibyl.jobs.maxTtlBlocks", bits=32
        ),
        jobs_expiry_gas_per_block=_quantity(
            job_limits.get("maxExpiryGasPerBlock", -1), "sibyl.jobs.maxExpiryGasPerBlock", bits=64
        )
        if "maxExpiryGasPerBlock" in job_limits
        else None,
    )
    for kind, records in (("executors", parsed.executors), ("models", parsed.models)):
        keys = [getattr(r, "address", None) or getattr(r, "id", None) for r in records]
        if len(set(keys)) != len(keys):
            raise GenesisError(f"sibyl.{kind}: listed twice")
    return parsed


def parse_genesis(raw: bytes, source: str = "genesis") -> Genesis:
    """Parse and validate a genesis file's bytes; errors are prefixed with ``source``."""
    try:
        data = _genesis_object(raw)
        alloc = {
            _hex_bytes(address, f"alloc[{address}]", length=20): _account(
                account, f"alloc[{address}]"
            )
            for address, account in _object(data.get("alloc", {}), "alloc").items()
        }
        gas_limit = _quantity(data.get("gasLimit", DEFAULT_GAS_LIMIT), "gasLimit", bits=64)
        sibyl = _sibyl_within(data, gas_limit) if "sibyl" in data else None
        if sibyl is not None:
            _check_system_accounts(alloc, system_alloc(sibyl))
        difficulty = _quantity(data.get("difficulty", 0), "difficulty")
        config = _chain_config(_object(data.get("config"), "config"), difficulty, sibyl is not None)
        extra = _hex_bytes(data.get("extraData", "0x"), "extraData")
        if len(extra) > 32:
            raise GenesisError("extraData: at most 32 bytes")
        base_fee = data.get("baseFeePerGas")  # geth: null or absent means the initial one
        # Each block's timestamp exceeds its parent's: a genesis at the top of uint64
        # could have no block 1. Below 2**63 leaves the chain its life, and int64 readers
        # (Go's time, which consensus clients use) their range.
        timestamp = _quantity(data.get("timestamp", 0), "timestamp", bits=63)
        return Genesis(
            config=config,
            timestamp=timestamp,
            gas_limit=gas_limit,
            base_fee=INITIAL_BASE_FEE if base_fee is None else _quantity(base_fee, "baseFeePerGas"),
            extra_data=extra,
            coinbase=_hex_bytes(data.get("coinbase", "0x" + "00" * 20), "coinbase", length=20),
            mix_hash=_hex_bytes(data.get("mixHash", "0x" + "00" * 32), "mixHash", length=32),
            alloc=alloc,
            sibyl=sibyl,
            raw=raw,
            nonce=_quantity(data.get("nonce", 0), "nonce", bits=64).to_bytes(8, "big"),
            excess_blob_gas=_optional_quantity(data, "excessBlobGas"),
            blob_gas_used=_optional_quantity(data, "blobGasUsed"),
            difficulty=difficulty,
        )
    except GenesisError as exc:
        raise GenesisError(f"{source}: {exc}") from None


def _sibyl_within(data: dict[str, Any], gas_limit: int) -> SibylGenesis:
    """The ``sibyl`` section, its per-block limits checked against the block gas limit and
    the expiry limit defaulted to what the gas limit leaves beside the scheduler's cap."""
    sibyl = _sibyl(data["sibyl"])
    if sibyl.scheduler_gas_per_block > gas_limit:
        raise GenesisError("sibyl.scheduler.maxGasPerBlock: must not exceed gasLimit")
    room = gas_limit - sibyl.scheduler_gas_per_block  # a block holds calls and expiries
    if sibyl.jobs_expiry_gas_per_block is None:
        return replace(sibyl, jobs_expiry_gas_per_block=min(jobs.DEFAULT_EXPIRY_GAS, room))
    if sibyl.jobs_expiry_gas_per_block > room:
        raise GenesisError(
            "sibyl.jobs.maxExpiryGasPerBlock: with sibyl.scheduler.maxGasPerBlock, must "
            "not exceed gasLimit (a block must hold its scheduled calls and expiries)"
        )
    return sibyl


def _genesis_object(raw: bytes) -> dict[str, Any]:
    try:
        data = load_json(raw)
    except ValueError as exc:
        raise GenesisError(f"not valid JSON: {exc}") from None
    return _object(data, "genesis")


def _optional_quantity(data: dict[str, Any], key: str) -> int:
    """A header quantity geth writes as null when the fork lacks the field."""
    value = data.get(key)
    return 0 if value is None else _quantity(value, key, bits=64)


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
            for address, account in _object(data.get("alloc", {}), "alloc").items()
            if _hex_bytes(address, f"alloc[{address}]", length=20) not in SYSTEM_ADDRESSES
        }
        gas_limit = _quantity(data.get("gasLimit", DEFAULT_GAS_LIMIT), "gasLimit", bits=64)
        for address, account in system_alloc(_sibyl_within(data, gas_limit)).items():
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
