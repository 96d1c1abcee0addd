"""The node's configuration: a TOML file, overridden by command-line flags.

Every key is checked at start against the typed dataclasses below; an
unknown key or a value of the wrong type stops the node with a message that names it
(``node.toml: rpc.http_port: must be an integer``), and defaults run on a laptop.

```toml
datadir = "/var/lib/sibyl"
block_time = 0            # dev: seconds between blocks, 0 = a block per arrival
sidecar_mode = "auto"     # auto | docker | process | none (--sidecars)
fee_recipient = "0x..."
rpc_gas_cap = 50_000_000  # most gas an eth_call / eth_estimateGas runs with (geth's)
rpc_evm_timeout = 5.0     # seconds one of them may run (geth's)

[rpc]
http_addr = "127.0.0.1"
http_port = 8545
cors_origins = ["*"]
header_timeout = 30.0     # seconds to send a request's headers, or to stay idle
body_timeout = 30.0
max_connections_per_ip = 256
max_filters_per_ip = 1000
max_ws_queue_bytes = 4194304    # unsent to one WebSocket client, then it is dropped
max_ws_queue_total = 33554432   # unsent to all of them
max_trace_timeout = 60.0  # the most a trace's `timeout` may ask for
max_trace_bytes = 268435456
max_proof_keys = 1024

[pool]
max_txs = 10000

[[sidecars]]              # see docs/sidecars.md
name = "mlp"
runtime = "torch"
model = "genesis/models/mlp.pt"
```
"""

import dataclasses
import math
import tomllib
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints
from urllib.parse import urlsplit

from chain.errors import SibylError
from chain.simulate import CALL_GAS_CAP, CALL_TIMEOUT
from chain.txpool import PoolConfig
from sidecars.config import (
    DEFAULT_IMAGE,
    MODES,
    SidecarConfigError,
    SidecarSpec,
    parse_sidecar_specs,
)


@dataclass
class RpcConfig:
    http_addr: str = "127.0.0.1"
    http_port: int = 8545
    engine_port: int = 8551
    jwt_secret: Path | None = None
    cors_origins: tuple[str, ...] = ("*",)
    max_body_bytes: int = 5 * 1024 * 1024
    max_batch: int = 1000
    max_subscriptions: int = 1000  # per WebSocket connection
    max_connections_per_ip: int = 256
    header_timeout: float = 30.0  # seconds to send a request's headers (or stay idle)
    body_timeout: float = 30.0  # seconds to send a request's body
    max_ws_queue_bytes: int = 4 * 1024 * 1024  # unsent to one WebSocket client
    max_ws_queue_total: int = 32 * 1024 * 1024  # unsent to all WebSocket clients
    max_filters_per_ip: int = 1000  # polling filters (eth_newFilter...) per client address
    max_log_range: int = 10_000
    max_logs: int = 10_000
    max_trace_timeout: float = 60.0  # seconds: the most a trace's `timeout` may ask for
    max_trace_bytes: int = 256 * 1024 * 1024  # the most a struct-logger trace may hold
    max_proof_keys: int = 1024  # storage keys one eth_getProof may ask for, as geth


@dataclass
class NodeConfig:
    datadir: Path | None = None
    genesis: Path | None = None
    dev: bool = False
    block_time: float = 0.0
    sidecar_mode: str = "auto"
    follow: str | None = None
    metrics_port: int | None = None
    rpc: RpcConfig = field(default_factory=RpcConfig)
    pool: PoolConfig = field(default_factory=PoolConfig)
    fee_recipient: bytes = b"\x00" * 20
    sidecar_image: str = DEFAULT_IMAGE
    model_dirs: tuple[str, ...] = ()  # where replicate-mode model artifacts are found
    spot_check_rate: float = 0.0
    sidecar_specs: list[SidecarSpec] = field(default_factory=list)
    rpc_gas_cap: int = CALL_GAS_CAP  # most gas an eth_call or estimate runs with
    rpc_evm_timeout: float = CALL_TIMEOUT  # seconds an eth_call or estimate may run
    temporary: bool = False


class ConfigError(SibylError):
    """A configuration value the node cannot run with; the message names the key."""


def _convert(value: Any, kind: Any, key: str, base: Path) -> Any:
    origin = get_origin(kind)
    if origin in (Union, types.UnionType):
        options = [k for k in get_args(kind) if k is not type(None)]
        return _convert(value, options[0], key, base)
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: must be true or false")
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"{key}: must be a non-negative integer")
        return value
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ConfigError(f"{key}: must be a non-negative number")
        if not math.isfinite(value):
            raise ConfigError(f"{key}: must be a finite number")
        return float(value)
    if kind is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: must be a string")
        return value
    if kind is Path:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: must be a path string")
        path = Path(value).expanduser()
        return path if path.is_absolute() else base / path
    if kind is bytes:
        if not isinstance(value, str) or not value.startswith("0x") or len(value) != 42:
            raise ConfigError(f"{key}: must be a 0x-prefixed 20-byte address")
        try:
            return bytes.fromhex(value[2:])
        except ValueError:
            raise ConfigError(f"{key}: must be a 0x-prefixed 20-byte address") from None
    if origin is tuple:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{key}: must be a list of strings")
        return tuple(value)
    raise ConfigError(f"{key}: cannot be set from the config file")


def _section(cls: type, data: Any, prefix: str, base: Path, skip: set[str]) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix or 'config'}: must be a table")
    hints = get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)} - skip
    values = {}
    for key, value in data.items():
        full = f"{prefix}{key}"
        if key not in names:
            raise ConfigError(f"{full}: unknown key")
        values[key] = _convert(value, hints[key], full, base)
    return values


def load_config(path: Path | None, overrides: dict[str, Any]) -> NodeConfig:
    """The node configuration from ``path`` (if any) with non-None ``overrides`` applied."""
    data: dict[str, Any] = {}
    source = "config"
    base = Path.cwd()
    if path is not None:
        source = str(path)
        base = path.resolve().parent
        try:
            data = tomllib.loads(path.read_text())
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
        except RecursionError:  # tomllib recurses once per nested array or table
            raise ConfigError(f"{path}: not valid TOML: nested too deeply") from None
    try:
        rpc = RpcConfig(**_section(RpcConfig, data.pop("rpc", {}), "rpc.", base, set()))
        pool = PoolConfig(**_section(PoolConfig, data.pop("pool", {}), "pool.", base, set()))
        specs = parse_sidecar_specs(data.pop("sidecars", []), base)
        top = _section(
            NodeConfig, data, "", base, {"rpc", "pool", "sidecar_specs", "temporary", "dev"}
        )
    except (ConfigError, SidecarConfigError) as exc:
        raise ConfigError(f"{source}: {exc}") from None
    for key in ("http_addr", "http_port", "engine_port", "jwt_secret"):
        if overrides.get(key) is not None:
            setattr(rpc, key, overrides.pop(key))
    top.update({k: v for k, v in overrides.items() if v is not None})
    if top.get("sidecar_mode", "auto") not in MODES:
        raise ConfigError(f"{source}: sidecar_mode: must be one of {', '.join(MODES)}")
    config = NodeConfig(rpc=rpc, pool=pool, sidecar_specs=specs, **top)
    try:
        check_values(config)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    return config


# Values the types allow but the node cannot run with; flags are checked here too.
AT_LEAST_ONE = (
    "rpc.max_body_bytes", "rpc.max_batch", "rpc.max_subscriptions", "rpc.max_log_range",
    "rpc.max_logs", "rpc.max_trace_bytes", "rpc.max_proof_keys",
    "rpc.max_connections_per_ip", "rpc.max_ws_queue_bytes", "rpc.max_ws_queue_total",
    "rpc.max_filters_per_ip",
    "pool.max_txs", "pool.max_queued_per_account", "rpc_gas_cap",
)  # fmt: skip
POSITIVE_SECONDS = ("rpc_evm_timeout", "rpc.header_timeout", "rpc.body_timeout",
                    "rpc.max_trace_timeout")  # fmt: skip


def _value(config: NodeConfig, key: str) -> Any:
    section, _, name = key.rpartition(".")
    return getattr(getattr(config, section) if section else config, name)


def check_values(config: NodeConfig) -> None:
    """Refuse, naming the key, what would start a node that cannot work: a port out of
    range (70000 would listen on 4464), an infinite or non-positive time, a zero limit,
    a peer URL that does not parse."""
    ports = [("rpc.http_port", False), ("rpc.engine_port", True), ("metrics_port", True)]
    for key, may_be_off in ports:
        port = _value(config, key)
        if not (port is None or (may_be_off and port == 0) or 1 <= port <= 65535):
            raise ConfigError(f"{key}: {port} is not a port (1-65535)")
    for key in AT_LEAST_ONE:
        if _value(config, key) < 1:
            raise ConfigError(f"{key}: must be at least 1")
    for key in POSITIVE_SECONDS:
        seconds = _value(config, key)
        if not (math.isfinite(seconds) and seconds > 0):
            raise ConfigError(f"{key}: must be a positive, finite number of seconds")
    if not (math.isfinite(config.block_time) and config.block_time >= 0):
        raise ConfigError("block_time: must be a finite number of seconds, 0 or more")
    if not 0 <= config.spot_check_rate <= 1:
        raise ConfigError("spot_check_rate: must be between 0 and 1")
    if config.follow is not None:
        _check_url("follow", config.follow)


def _check_url(key: str, url: str) -> None:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises for a port that is not a number or out of range)
    except ValueError as exc:
        raise ConfigError(f"{key}: {url!r} is not a URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{key}: {url!r} is not an http:// or https:// URL")
