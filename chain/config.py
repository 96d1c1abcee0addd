"""The node's configuration: a TOML file, overridden by command-line flags.

Every key is checked at start against the typed dataclasses of :mod:`chain.node`; an
unknown key or a value of the wrong type stops the node with a message that names it
(``node.toml: rpc.http_port: must be an integer``), and defaults run on a laptop.

```toml
datadir = "/var/lib/sibyl"
block_time = 0            # dev: seconds between blocks, 0 = a block per arrival
sidecar_mode = "auto"     # auto | docker | process | none (--sidecars)
fee_recipient = "0x..."

[rpc]
http_addr = "127.0.0.1"
http_port = 8545
cors_origins = ["*"]

[pool]
max_txs = 10000

[[sidecars]]              # see docs/sidecars.md
name = "mlp"
runtime = "torch"
model = "genesis/models/mlp.pt"
```
"""

import dataclasses
import tomllib
import types
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

from chain.errors import SibylError
from chain.node import NodeConfig, RpcConfig
from chain.txpool import PoolConfig
from sidecars.config import SidecarConfigError, parse_sidecar_specs

SIDECAR_MODES = ("auto", "docker", "process", "none")


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
    if top.get("sidecar_mode", "auto") not in SIDECAR_MODES:
        raise ConfigError(f"{source}: sidecar_mode: must be one of {', '.join(SIDECAR_MODES)}")
    return NodeConfig(rpc=rpc, pool=pool, sidecar_specs=specs, **top)
