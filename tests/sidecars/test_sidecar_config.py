"""The [[sidecars]] tables: valid ones parse, every mistake names its key."""

from pathlib import Path

import pytest

from sidecars.config import (
    DEV_EXECUTOR_KEY,
    DEV_MODELS,
    SidecarConfigError,
    dev_default_specs,
    dev_sidecar_specs,
    parse_sidecar_specs,
)


def local(**overrides) -> dict:
    table = {
        "name": "mlp",
        "runtime": "onnx",
        "model": "models/mlp.onnx",
        "executor_key": str(DEV_EXECUTOR_KEY),
    }
    table.update(overrides)
    return table


@pytest.fixture
def base_dir(tmp_path: Path) -> Path:
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "mlp.onnx").write_bytes((DEV_MODELS / "mlp.onnx").read_bytes())
    return tmp_path


def test_local_and_remote_tables_parse(base_dir):
    model_id = "0x" + "ab" * 32
    specs = parse_sidecar_specs(
        [
            local(model_id=model_id, port=50070, gpu=True),
            {"name": "farm", "address": "10.0.0.7:50051"},
        ],
        base_dir,
    )
    assert specs[0].model == base_dir / "models" / "mlp.onnx"
    assert specs[0].model_id == bytes.fromhex("ab" * 32)
    assert (specs[0].port, specs[0].gpu, specs[0].remote) == (50070, True, False)
    assert specs[1].remote and specs[1].address == "10.0.0.7:50051" and specs[1].runtime is None


@pytest.mark.parametrize(
    ("tables", "message"),
    [
        (
            [local(runtime="tensorflow")],
            "sidecars[0].runtime: must be one of torch, onnx, embed, llm, zk",
        ),
        ([local(), local(name="other", runtime="tf")], "sidecars[1].runtime: must be one of"),
        ([local(name="bad name")], "sidecars[0].name: required"),
        ([local(), local()], "sidecars[1].name: 'mlp' is already used by sidecars[0]"),
        ([local(model="missing.onnx")], "sidecars[0].model: "),
        ([local(executor_key="nope.key")], "sidecars[0].executor_key: "),
        ([local(model_id="0x1234")], "sidecars[0].model_id: must be 0x followed by 64 hex"),
        ([local(port=70000)], "sidecars[0].port: must be an integer from 1 to 65535"),
        ([local(gpu="yes")], "sidecars[0].gpu: must be true or false"),
        ([local(modle="x")], "sidecars[0].modle: unknown key"),
        ([{"name": "r", "address": "nohost"}], "sidecars[0].address: must be host:port"),
        ([{"name": "r", "address": "h:1", "model": "x"}], "sidecars[0].model: unknown key"),
        ([local(port=5000), local(name="b", port=5000)], "port: 5000 is used twice"),
        ({"name": "x"}, "sidecars: must be an array of tables"),
    ],
)
def test_mistakes_name_the_offending_key(base_dir, tables, message):
    with pytest.raises(SidecarConfigError) as error:
        parse_sidecar_specs(tables, base_dir)
    assert message in str(error.value)


def test_dev_specs_serve_the_bundled_mlp_with_the_dev_key():
    specs = {spec.runtime: spec for spec in dev_sidecar_specs()}
    assert specs["torch"].model == DEV_MODELS / "mlp.pt"
    assert specs["onnx"].model == DEV_MODELS / "mlp.onnx"
    assert all(spec.executor_key == DEV_EXECUTOR_KEY for spec in specs.values())
    assert all(spec.model_id is not None for spec in specs.values())


def test_the_dev_default_serves_every_bundled_model_from_one_process():
    (spec,) = dev_default_specs()
    bundled = dev_sidecar_specs()
    assert spec.name == "dev" and spec.executor_key == DEV_EXECUTOR_KEY
    assert [(m.runtime, m.model, m.model_id) for m in spec.models] == [
        (s.runtime, s.model, s.model_id) for s in bundled
    ]
