"""A genesis file's ``sibyl`` section: the registry admin, the executors and models the
registries hold at block 0, and the scheduler's and JOBS' per-block limits. A file with
one describes a Sibyl chain; the section's records are what its system accounts hold
(``chain.genesis.system_alloc``)."""

from dataclasses import dataclass, replace
from typing import Any

from chain.ai import jobs, registry
from chain.genesis_values import GenesisError, choice, hex_bytes, json_object, known_keys, quantity


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


def _shape(value: Any, key: str) -> tuple[int, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not value:
        raise GenesisError(f"{key}: must be a non-empty list of dimensions, or null")
    return tuple(quantity(dim, f"{key}[{i}]", bits=32) for i, dim in enumerate(value))


DEFAULT_GAS = {"torch": (30_000, 200), "onnx": (30_000, 200), "embed": (50_000, 16)}


def _model(value: Any, key: str) -> registry.ModelRecord:
    data = json_object(value, key)
    known_keys(
        data,
        key,
        {"id", "name", "kind", "inputShape", "outputShape", "decimals", "quorum", "mode", "gas",
         "outputLimit", "file", "package", "verifyingKeyHash"},
    )  # fmt: skip
    kind = choice(data.get("kind"), f"{key}.kind", registry.KINDS)
    gas = json_object(data.get("gas", {}), f"{key}.gas")
    known_keys(gas, f"{key}.gas", {"base", "perUnit"})
    default_base, default_per_unit = DEFAULT_GAS.get(kind, (100_000, 100))
    quorum = quantity(data.get("quorum", 1), f"{key}.quorum", bits=8)
    if quorum == 0:
        raise GenesisError(f"{key}.quorum: must be at least 1")
    if "id" not in data:
        raise GenesisError(f"{key}.id: missing (keccak256 of the model artifact)")
    name = data.get("name", "")
    if not isinstance(name, str):
        raise GenesisError(f"{key}.name: must be a string")
    mode = choice(data.get("mode", "attest"), f"{key}.mode", registry.MODES)
    if mode == "prove" and kind != "zk":
        raise GenesisError(f"{key}.mode: prove needs a model of kind zk, not {kind}")
    if (mode == "prove") != ("verifyingKeyHash" in data):
        raise GenesisError(
            f"{key}.verifyingKeyHash: required for mode prove (keccak256 of the model's "
            "verifier files, see sidecars.zk), and only there"
        )
    return registry.ModelRecord(
        id=hex_bytes(data["id"], f"{key}.id", length=32),
        name=name,
        kind=kind,
        input_shape=_shape(data.get("inputShape"), f"{key}.inputShape"),
        output_shape=_shape(data.get("outputShape"), f"{key}.outputShape"),
        decimals=quantity(data.get("decimals", 6), f"{key}.decimals", bits=8),
        quorum=quorum,
        mode=mode,
        gas_base=quantity(gas.get("base", default_base), f"{key}.gas.base", bits=64),
        gas_per_unit=quantity(gas.get("perUnit", default_per_unit), f"{key}.gas.perUnit", bits=64),
        output_limit=quantity(data.get("outputLimit", 16384), f"{key}.outputLimit", bits=32),
        verifying_key_hash=hex_bytes(data["verifyingKeyHash"], f"{key}.verifyingKeyHash", length=32)
        if mode == "prove"
        else b"",
    )


def _executor(value: Any, key: str) -> registry.ExecutorRecord:
    data = json_object(value, key)
    known_keys(data, key, {"address", "capabilities", "stake", "active"})
    capabilities = data.get("capabilities", [])
    if not isinstance(capabilities, list):
        raise GenesisError(f"{key}.capabilities: must be a list")
    for i, name in enumerate(capabilities):
        choice(name, f"{key}.capabilities[{i}]", registry.CAPABILITIES)
    active = data.get("active", True)
    if not isinstance(active, bool):
        raise GenesisError(f"{key}.active: must be true or false")
    return registry.ExecutorRecord(
        address=hex_bytes(data.get("address"), f"{key}.address", length=20),
        capabilities=registry.capability_bits(capabilities),
        stake=quantity(data.get("stake", 0), f"{key}.stake"),
        active=active,
    )


def _sibyl(value: Any) -> SibylGenesis:
    data = json_object(value, "sibyl")
    known_keys(data, "sibyl", {"admin", "minStake", "executors", "models", "scheduler", "jobs"})
    executors = data.get("executors", [])
    models = data.get("models", [])
    if not isinstance(executors, list):
        raise GenesisError("sibyl.executors: must be a list")
    if not isinstance(models, list):
        raise GenesisError("sibyl.models: must be a list")
    scheduler = json_object(data.get("scheduler", {}), "sibyl.scheduler")
    known_keys(scheduler, "sibyl.scheduler", {"maxGasPerBlock"})
    job_limits = json_object(data.get("jobs", {}), "sibyl.jobs")
    known_keys(job_limits, "sibyl.jobs", {"maxTtlBlocks", "maxExpiryGasPerBlock"})
    parsed = SibylGenesis(
        admin=hex_bytes(data["admin"], "sibyl.admin", length=20) if data.get("admin") else None,
        min_stake=quantity(data.get("minStake", 0), "sibyl.minStake"),
        executors=tuple(_executor(e, f"sibyl.executors[{i}]") for i, e in enumerate(executors)),
        models=tuple(_model(m, f"sibyl.models[{i}]") for i, m in enumerate(models)),
        scheduler_gas_per_block=quantity(
            scheduler.get("maxGasPerBlock", 5_000_000), "sibyl.scheduler.maxGasPerBlock", bits=64
        ),
        jobs_max_ttl=quantity(
            job_limits.get("maxTtlBlocks", jobs.DEFAULT_MAX_TTL), "sibyl.jobs.maxTtlBlocks", bits=32
        ),
        jobs_expiry_gas_per_block=quantity(
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


def parse_sibyl_section(data: dict[str, Any], gas_limit: int) -> SibylGenesis:
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
