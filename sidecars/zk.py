"""ZK models (ezkl): a model directory, its ids, and proofs of its inferences.

A ZK model is a directory that ``genesis/models/make_zk_model.py`` (or an operator's own
ezkl pipeline) writes:

* ``model.onnx``: the network; ``model.compiled``: ezkl's circuit of it;
* ``settings.json``: the circuit's settings (fixed-point scales, public values);
* ``pk.key``: the proving key (the prover needs it); ``vk.key``: the verifying key;
* ``kzg.srs``: the structured reference string both keys were made with.

Two hashes name it (DESIGN sections 5 and 7): the **model id** is keccak256 of the
canonical archive of every file, and the **verifying key hash** is keccak256 of the
canonical archive of the three files a verifier needs (``kzg.srs``, ``settings.json``,
``vk.key``), so a node that only verifies carries no proving key. The canonical archive
is each file, sorted by relative path, as ``utf8(path) ‖ 0x00 ‖ len(bytes) as 8 bytes
big-endian ‖ bytes``.

Public values. The circuit's public inputs and outputs are field elements (BN254's
scalar field) holding integers at the circuit's binary scale ``2**scale``. A contract's
fixed-point value ``v`` at ``decimals`` is the real ``v / 10**decimals``; it is
quantised to ``round(v * 2**scale / 10**decimals)`` (half to even, exact integer
arithmetic, so every machine gets the same element), and an output element back to
``round(q * 10**decimals / 2**scale)``. The prover is given the quantised inputs
directly, so ezkl's own float rounding never enters.

A **Sibyl proof** is ``abi.encode(uint256[] instances, bytes snark)``: the public values
the proof claims (inputs, then outputs, as field elements) and ezkl's proof bytes. A
verifier compares the claimed values with the ones the call says before it checks the
proof, so a mismatch gets a precise reason; the proof itself binds the claimed values.
"""

import json
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path

from eth_abi import encode as abi_encode

from sidecars.attestation import keccak

ONNX = "model.onnx"
CIRCUIT = "model.compiled"
SETTINGS = "settings.json"
PROVING_KEY = "pk.key"
VERIFYING_KEY = "vk.key"
SRS = "kzg.srs"
VERIFIER_FILES = (SRS, SETTINGS, VERIFYING_KEY)
PROVER_FILES = (CIRCUIT, PROVING_KEY, SRS, SETTINGS, VERIFYING_KEY)
# BN254's scalar field: the field ezkl's circuits (halo2 over KZG) compute in
FIELD = 0x30644E72E131A029B85045B68181585D2833E84879B9709143E1F593F0000001
MAX_PROOF_BYTES = 64 * 1024


class ZkModelError(Exception):
    """A directory that is not a usable ZK model (missing files, bad settings)."""


class MalformedProof(ValueError):
    """Bytes that are not a Sibyl proof."""


class ProvingFailed(Exception):
    """ezkl could not prove this input (out of the circuit's range, or an ezkl error)."""


def archive_hash(directory: Path, names: tuple[str, ...] | None = None) -> bytes:
    """keccak256 of the canonical archive of ``names`` (default: every file) in
    ``directory``."""
    if names is None:
        files = sorted(
            (p.relative_to(directory).as_posix(), p) for p in directory.rglob("*") if p.is_file()
        )
    else:
        files = sorted((name, directory / name) for name in names)
    parts = []
    for name, path in files:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ZkModelError(f"cannot read {path}: {exc.strerror}") from None
        parts += [name.encode(), b"\x00", len(data).to_bytes(8, "big"), data]
    return keccak(b"".join(parts))


def model_id_of(directory: Path) -> bytes:
    return archive_hash(directory)


def verifying_key_hash(directory: Path) -> bytes:
    return archive_hash(directory, VERIFIER_FILES)


def quantize(values: list[int], decimals: int, scale: int) -> list[int]:
    """Fixed-point values at ``decimals`` as integers at the binary ``scale``."""
    return [_divide_rounding(v << scale, 10**decimals) for v in values]


def dequantize(values: list[int], decimals: int, scale: int) -> list[int]:
    """Integers at the binary ``scale`` as fixed-point values at ``decimals``."""
    return [_divide_rounding(v * 10**decimals, 1 << scale) for v in values]


def _divide_rounding(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` rounded half to even (``denominator`` > 0)."""
    quotient, remainder = divmod(numerator, denominator)
    twice = 2 * remainder
    if twice > denominator or (twice == denominator and quotient & 1):
        quotient += 1
    return quotient


def to_field(value: int) -> int:
    return value % FIELD


def from_field(element: int) -> int:
    """The signed integer a field element stands for (elements above half are negative)."""
    return element - FIELD if element > FIELD // 2 else element


@dataclass(frozen=True)
class Proof:
    instances: tuple[int, ...]  # field elements: inputs, then outputs
    snark: bytes

    def encode(self) -> bytes:
        return abi_encode(["uint256[]", "bytes"], [list(self.instances), self.snark])

    @classmethod
    def decode(cls, data: bytes) -> "Proof":
        """The proof of its canonical encoding (decoded by hand: every verification of a
        block reads one, and eth_abi's decoder costs milliseconds)."""
        if len(data) > MAX_PROOF_BYTES:
            raise MalformedProof(f"proof of {len(data)} bytes exceeds {MAX_PROOF_BYTES}")
        words = len(data) // 32
        word = [int.from_bytes(data[i * 32 : i * 32 + 32], "big") for i in range(min(words, 3))]
        count = word[2] if len(word) == 3 else -1
        snark_at = 3 + count  # in words: after both offsets, the count and the instances
        if (
            len(data) % 32
            or len(word) < 3
            or word[0] != 64
            or word[1] != 32 * snark_at
            or words < snark_at + 1
        ):
            raise MalformedProof("proof is not abi.encode(uint256[] instances, bytes snark)")
        instances = tuple(
            int.from_bytes(data[i * 32 : i * 32 + 32], "big") for i in range(3, snark_at)
        )
        size = int.from_bytes(data[snark_at * 32 : snark_at * 32 + 32], "big")
        start = (snark_at + 1) * 32
        padded = -(-size // 32) * 32
        if len(data) != start + padded or any(data[start + size :]):
            raise MalformedProof("proof is not abi.encode(uint256[] instances, bytes snark)")
        if any(element >= FIELD for element in instances):
            raise MalformedProof("proof instance is not a field element")
        if not size:
            raise MalformedProof("proof holds no snark")
        return cls(instances, data[start : start + size])


@dataclass(frozen=True)
class Circuit:
    """What a verifier needs of a ZK model: its public values and its key files."""

    directory: Path
    input_scale: int
    output_scale: int
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]

    @property
    def input_count(self) -> int:
        return math.prod(self.input_shape)

    @property
    def output_count(self) -> int:
        return math.prod(self.output_shape)

    def outputs(self, proof: Proof, decimals: int) -> list[int]:
        """The fixed-point outputs at ``decimals`` that ``proof`` claims."""
        claimed = [from_field(e) for e in proof.instances[self.input_count :]]
        return dequantize(claimed, decimals, self.output_scale)

    def check(self, proof: Proof, inputs: list[int], outputs: list[int], decimals: int) -> str:
        """Why ``proof`` does not prove that the model maps ``inputs`` to ``outputs``
        (fixed-point at ``decimals``), or "" when it does. The inputs are quantised as the
        prover quantised them; the outputs must be exactly the claimed ones at
        ``decimals``."""
        if len(inputs) != self.input_count or len(outputs) != self.output_count:
            return (
                f"the circuit takes {self.input_count} inputs and gives {self.output_count} "
                f"outputs, not {len(inputs)} and {len(outputs)}"
            )
        if len(proof.instances) != self.input_count + self.output_count:
            return (
                f"proof has {len(proof.instances)} public values, the circuit "
                f"{self.input_count + self.output_count}"
            )
        quantized = tuple(to_field(q) for q in quantize(inputs, decimals, self.input_scale))
        if proof.instances[: self.input_count] != quantized:
            return "proof is for other inputs"
        if self.outputs(proof, decimals) != outputs:
            return "proof is for other outputs"
        if not self.verify_snark(proof):
            return "proof does not verify with the model's verifying key"
        return ""

    def verify_snark(self, proof: Proof) -> bool:
        """ezkl's verification of the snark for its claimed public values; any error
        (a proof ezkl cannot parse included) is a proof that does not verify."""
        import ezkl

        document = {
            "instances": [[element.to_bytes(32, "little").hex() for element in proof.instances]],
            "proof": list(proof.snark),
        }
        with tempfile.NamedTemporaryFile("w", suffix=".json") as file:
            file.write(json.dumps(document))  # json.dump's streaming encoder is 30x slower
            file.flush()
            try:
                return bool(
                    ezkl.verify(
                        file.name,
                        str(self.directory / SETTINGS),
                        str(self.directory / VERIFYING_KEY),
                        str(self.directory / SRS),
                    )
                )
            except BaseException as exc:  # pyo3 turns a Rust panic into a BaseException
                if isinstance(exc, KeyboardInterrupt | SystemExit):
                    raise
                return False


def load_circuit(directory: Path, files: tuple[str, ...] = VERIFIER_FILES) -> Circuit:
    """The circuit of the ZK model at ``directory``, checking ``files`` are there."""
    missing = [name for name in files if not (directory / name).is_file()]
    if missing:
        raise ZkModelError(f"ZK model {directory} lacks {', '.join(missing)}")
    try:
        settings = json.loads((directory / SETTINGS).read_text())
        input_shape, output_shape = settings["model_instance_shapes"]
        (input_scale,) = settings["model_input_scales"]
        (output_scale,) = settings["model_output_scales"]
        run_args = settings["run_args"]
        if (run_args["input_visibility"], run_args["output_visibility"]) != ("Public", "Public"):
            raise ValueError("inputs and outputs must be public")
        if run_args["param_visibility"] != "Fixed":
            raise ValueError("parameters must be fixed (part of the circuit)")
        return Circuit(
            directory,
            int(input_scale),
            int(output_scale),
            tuple(int(d) for d in input_shape),
            tuple(int(d) for d in output_shape),
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ZkModelError(
            f"{directory / SETTINGS}: not the settings of a one-input, one-output circuit "
            f"with public inputs and outputs ({exc})"
        ) from None


def prove(circuit: Circuit, inputs: list[int], decimals: int) -> tuple[list[int], Proof]:
    """Run and prove the circuit on fixed-point ``inputs``: the outputs (fixed-point at
    ``decimals``) and the proof. Raises ProvingFailed."""
    import ezkl

    quantized = [to_field(q) for q in quantize(inputs, decimals, circuit.input_scale)]
    directory = circuit.directory
    with tempfile.TemporaryDirectory(prefix="sibyl-zk-") as work:
        data, witness, proof_path = (Path(work) / n for n in ("input.json", "w.json", "p.json"))
        data.write_text(
            json.dumps({"input_data": [[q.to_bytes(32, "little").hex() for q in quantized]]})
        )
        try:
            ezkl.gen_witness(
                str(data),
                str(directory / CIRCUIT),
                str(witness),
                str(directory / VERIFYING_KEY),
                str(directory / SRS),
            )
            result = ezkl.prove(
                str(witness),
                str(directory / CIRCUIT),
                str(directory / PROVING_KEY),
                str(proof_path),
                str(directory / SRS),
            )
        except BaseException as exc:  # a Rust panic included
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ProvingFailed(f"ezkl: {reason}") from None
    (instances,) = result["instances"]
    elements = tuple(int.from_bytes(bytes.fromhex(e), "little") for e in instances)
    proof = Proof(elements, bytes.fromhex(result["proof"].removeprefix("0x")))
    return circuit.outputs(proof, decimals), proof
