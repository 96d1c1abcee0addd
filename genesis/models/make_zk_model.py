"""Build the bundled ZK dev model ``genesis/models/zk-mlp/`` from ``mlp.onnx``, offline.

The steps are ezkl's pipeline: ``gen_settings`` (public inputs and outputs, fixed
parameters, scale 2**-12, 256-wide range checks so the circuit fits in 2**9 rows),
``calibrate_settings`` on fixed sample inputs, ``compile_circuit``, ``gen_srs`` (a
locally generated structured reference string: **for development only**, since whoever
ran it could forge proofs; see the README for bringing a ceremony SRS) and ``setup``.
Nothing is downloaded: ezkl's ``get_srs`` is never called.

The SRS is random, so the directory's bytes (and its model id) change with every build:
the script refuses to replace an existing directory unless ``--force`` is given, and
``--check`` only confirms that the committed keys follow from the committed SRS and
circuit (``setup`` is deterministic) and that ``models.json`` names the directory's ids.
It prints the model id and the verifying key hash and writes them to ``models.json``.

Run it as ``python genesis/models/make_zk_model.py [--force | --check | --ids DIR]``;
``--ids`` prints the model id and verifying key hash of any ZK model directory (one an
operator set up with a ceremony SRS, say), for its genesis entry.
"""

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import ezkl

from sidecars import zk

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "mlp.onnx"
TARGET = HERE / "zk-mlp"
NAME = "dev-mlp-zk"
SCALE = 12
LOGROWS = 10
DECOMP_BASE, DECOMP_LEGS = 256, 4
CALIBRATION = [0.5, -0.25, 1.0, 0.125, -1.5, 2.0, 0.75, -2.0, 0.1, 0.2, -0.3, 0.4]


def build(directory: Path) -> None:
    onnx, settings = directory / zk.ONNX, directory / zk.SETTINGS
    shutil.copyfile(SOURCE, onnx)
    args = ezkl.PyRunArgs()
    args.input_visibility = "public"
    args.output_visibility = "public"
    args.param_visibility = "fixed"
    args.variables = [("batch", 1)]  # mlp.onnx's symbolic batch dimension
    args.input_scale = args.param_scale = SCALE
    args.logrows = LOGROWS
    args.decomp_base, args.decomp_legs = DECOMP_BASE, DECOMP_LEGS
    with tempfile.TemporaryDirectory() as work:
        samples = Path(work) / "calibration.json"
        samples.write_text(json.dumps({"input_data": [CALIBRATION]}))
        _require(ezkl.gen_settings(str(onnx), str(settings), py_run_args=args), "gen_settings")
        _require(
            ezkl.calibrate_settings(
                str(samples), str(onnx), str(settings), "resources", scales=[SCALE],
                max_logrows=LOGROWS,
            ),
            "calibrate_settings",
        )  # fmt: skip
    circuit = directory / zk.CIRCUIT
    _require(ezkl.compile_circuit(str(onnx), str(circuit), str(settings)), "compile_circuit")
    logrows = json.loads(settings.read_text())["run_args"]["logrows"]
    ezkl.gen_srs(str(directory / zk.SRS), logrows)
    setup(directory, directory)


def setup(source: Path, keys: Path) -> None:
    """ezkl's setup: keys for ``source``'s circuit and SRS, written into ``keys``."""
    _require(
        ezkl.setup(
            str(source / zk.CIRCUIT),
            str(keys / zk.VERIFYING_KEY),
            str(keys / zk.PROVING_KEY),
            str(source / zk.SRS),
        ),
        "setup",
    )


def _require(ok: bool, step: str) -> None:
    if not ok:
        raise SystemExit(f"error: ezkl {step} failed")


def listing_entry(directory: Path) -> dict:
    circuit = zk.load_circuit(directory, zk.PROVER_FILES)
    return {
        "id": "0x" + zk.model_id_of(directory).hex(),
        "name": NAME,
        "kind": "zk",
        "file": "genesis/models/" + directory.name,
        "inputShape": list(circuit.input_shape),
        "outputShape": list(circuit.output_shape),
        "verifyingKeyHash": "0x" + zk.verifying_key_hash(directory).hex(),
    }


def write_listing(entry: dict) -> None:
    path = HERE / "models.json"
    listing = [e for e in json.loads(path.read_text()) if e["name"] != NAME] + [entry]
    path.write_text(json.dumps(listing, indent=2) + "\n")


def check() -> int:
    with tempfile.TemporaryDirectory() as work:
        setup(TARGET, Path(work))
        for name in (zk.VERIFYING_KEY, zk.PROVING_KEY):
            if (Path(work) / name).read_bytes() != (TARGET / name).read_bytes():
                print(f"error: {TARGET / name} does not follow from the SRS and circuit")
                return 1
    entry = listing_entry(TARGET)
    listed = [e for e in json.loads((HERE / "models.json").read_text()) if e["name"] == NAME]
    if listed != [entry]:
        print(f"error: models.json does not list {TARGET.name} as {entry}")
        return 1
    print(f"ok {NAME} id={entry['id']} verifyingKeyHash={entry['verifyingKeyHash']}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="replace an existing directory")
    parser.add_argument("--check", action="store_true", help="check the committed directory")
    parser.add_argument("--ids", type=Path, help="print a ZK model directory's two hashes")
    options = parser.parse_args()
    if options.check:
        return check()
    if options.ids:
        try:
            zk.load_circuit(options.ids)
            print(
                f"id=0x{zk.model_id_of(options.ids).hex()} "
                f"verifyingKeyHash=0x{zk.verifying_key_hash(options.ids).hex()}"
            )
        except zk.ZkModelError as exc:
            print(f"error: {exc}")
            return 1
        return 0
    if TARGET.exists() and not options.force:
        print(f"error: {TARGET} exists; a rebuild changes its model id (use --force)")
        return 1
    with tempfile.TemporaryDirectory(dir=HERE) as work:
        build(Path(work))
        shutil.rmtree(TARGET, ignore_errors=True)
        shutil.copytree(work, TARGET)
    TARGET.chmod(0o755)
    entry = listing_entry(TARGET)
    write_listing(entry)
    print(f"built {NAME} id={entry['id']} verifyingKeyHash={entry['verifyingKeyHash']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
