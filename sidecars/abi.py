"""The ABI codec of the INFER and EMBED precompiles (DESIGN section 4).

The node's precompiles decode their input with these functions to charge gas and reject
malformed calls before a sidecar is asked; the sidecar decodes the same bytes again to run
the model. Both must agree on every input, so decoding is strict: only the canonical ABI
encoding (what Solidity's ``abi.encode`` and ``eth_abi.encode`` produce: offsets in order,
no gaps, zero padding, nothing trailing) is accepted, and anything else raises
:class:`AbiError` with a message that says what is wrong.

Written by hand rather than with ``eth_abi`` because these four fixed signatures are
decoded on every AI call, and the general decoder costs ~50 µs a call.

Inputs carry no function selector: the precompile input is the encoding of the tuple.

* INFER input: ``(bytes32 modelId, int256[] values, uint32[] shape, uint8 decimals)``;
  output: ``(int256[] values, uint32[] shape)`` with the input's ``decimals``.
* EMBED input: ``(bytes32 modelId, string text, uint8 decimals)``; output:
  ``(int256[] vector)``.

Values are fixed-point: the real value of ``v`` is ``v / 10**decimals``.
"""

from dataclasses import dataclass

INFER_ADDRESS = bytes.fromhex("0000000000000000000000000000000000000800")
EMBED_ADDRESS = bytes.fromhex("0000000000000000000000000000000000000801")

MAX_DECIMALS = 18
WORD = 32
INT256_MIN = -(2**255)
INT256_MAX = 2**255 - 1
UINT32_MAX = 2**32 - 1


class AbiError(ValueError):
    """A precompile input is malformed, or an output does not fit its ABI types."""


@dataclass(frozen=True, slots=True)
class InferRequest:
    model_id: bytes
    values: list[int]
    shape: list[int]
    decimals: int


@dataclass(frozen=True, slots=True)
class EmbedRequest:
    model_id: bytes
    text: str
    decimals: int


def decode_infer_input(data: bytes) -> InferRequest:
    """Decode and validate an INFER input; the shape's product must equal len(values)."""
    _require_min_length(data, 4 * WORD, "INFER input")
    model_id = data[0:WORD]
    values_at = _uint(data, 1, 256, "values offset")
    shape_at = _uint(data, 2, 256, "shape offset")
    decimals = _uint(data, 3, 8, "decimals")
    _require_offset(values_at, 4 * WORD, "values")
    values_count = _array_length(data, values_at, "values")
    _require_offset(shape_at, values_at + WORD * (1 + values_count), "shape")
    shape_count = _array_length(data, shape_at, "shape")
    _require_exact_length(data, shape_at + WORD * (1 + shape_count), "INFER input")

    first = values_at // WORD + 1
    values = [_int256(data, first + i) for i in range(values_count)]
    first = shape_at // WORD + 1
    shape = [_uint(data, first + i, 32, f"shape[{i}]") for i in range(shape_count)]

    _check_decimals(decimals)
    if not values:
        raise AbiError("values must not be empty")
    if not shape:
        raise AbiError("shape must have at least one dimension")
    product = 1
    for dim in shape:
        product *= dim
    if product != len(values):
        raise AbiError(f"shape {shape} holds {product} values but {len(values)} values were given")
    return InferRequest(model_id, values, shape, decimals)


def encode_infer_output(values: list[int], shape: list[int]) -> bytes:
    """Encode an INFER output ``(int256[] values, uint32[] shape)``."""
    for dim in shape:
        if not 0 <= dim <= UINT32_MAX:
            raise AbiError(f"output shape dimension {dim} does not fit in uint32")
    values_part = _encode_int256_array(values)
    return b"".join(
        (
            (2 * WORD).to_bytes(WORD, "big"),
            (2 * WORD + len(values_part)).to_bytes(WORD, "big"),
            values_part,
            len(shape).to_bytes(WORD, "big"),
            *(dim.to_bytes(WORD, "big") for dim in shape),
        )
    )


def decode_infer_output(data: bytes) -> tuple[list[int], list[int]]:
    """Decode an INFER output ``(int256[] values, uint32[] shape)``, canonical only (a
    prove-mode verifier reads the recorded output back into values)."""
    _require_min_length(data, 2 * WORD, "INFER output")
    values_at = _uint(data, 0, 256, "values offset")
    shape_at = _uint(data, 1, 256, "shape offset")
    _require_offset(values_at, 2 * WORD, "values")
    values_count = _array_length(data, values_at, "values")
    _require_offset(shape_at, values_at + WORD * (1 + values_count), "shape")
    shape_count = _array_length(data, shape_at, "shape")
    _require_exact_length(data, shape_at + WORD * (1 + shape_count), "INFER output")
    first = values_at // WORD + 1
    values = [_int256(data, first + i) for i in range(values_count)]
    first = shape_at // WORD + 1
    shape = [_uint(data, first + i, 32, f"shape[{i}]") for i in range(shape_count)]
    return values, shape


def decode_embed_input(data: bytes) -> EmbedRequest:
    """Decode and validate an EMBED input; the text must be valid UTF-8."""
    _require_min_length(data, 4 * WORD, "EMBED input")
    model_id = data[0:WORD]
    text_at = _uint(data, 1, 256, "text offset")
    decimals = _uint(data, 2, 8, "decimals")
    _require_offset(text_at, 3 * WORD, "text")
    size = _uint(data, text_at // WORD, 256, "text length")
    start = text_at + WORD
    padded = -(-size // WORD) * WORD
    _require_exact_length(data, start + padded, "EMBED input")
    if any(data[start + size : start + padded]):
        raise AbiError("text padding must be zero bytes")
    try:
        text = data[start : start + size].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise AbiError(f"text is not valid UTF-8 at byte {exc.start}") from None
    _check_decimals(decimals)
    return EmbedRequest(model_id, text, decimals)


def encode_embed_output(vector: list[int]) -> bytes:
    """Encode an EMBED output ``(int256[] vector)``."""
    return WORD.to_bytes(WORD, "big") + _encode_int256_array(vector)


def _encode_int256_array(values: list[int]) -> bytes:
    for value in values:
        if not INT256_MIN <= value <= INT256_MAX:
            raise AbiError(f"output value {value} does not fit in int256")
    return len(values).to_bytes(WORD, "big") + b"".join(
        value.to_bytes(WORD, "big", signed=True) for value in values
    )


def _check_decimals(decimals: int) -> None:
    if decimals > MAX_DECIMALS:
        raise AbiError(f"decimals must be at most {MAX_DECIMALS}, got {decimals}")


def _uint(data: bytes, index: int, bits: int, field: str) -> int:
    value = int.from_bytes(data[index * WORD : (index + 1) * WORD], "big")
    if value >> bits:
        raise AbiError(f"{field} does not fit in uint{bits} (word {index} is {value:#x})")
    return value


def _int256(data: bytes, index: int) -> int:
    return int.from_bytes(data[index * WORD : (index + 1) * WORD], "big", signed=True)


def _array_length(data: bytes, offset: int, field: str) -> int:
    _require_min_length(data, offset + WORD, f"{field} length")
    count = _uint(data, offset // WORD, 256, f"{field} length")
    if offset + WORD * (1 + count) > len(data):
        raise AbiError(f"{field} declares {count} elements but the input ends before them")
    return count


def _require_offset(actual: int, canonical: int, field: str) -> None:
    if actual != canonical:
        raise AbiError(
            f"{field} offset is {actual}, the canonical ABI encoding puts it at {canonical}"
        )


def _require_min_length(data: bytes, size: int, what: str) -> None:
    if len(data) < size:
        raise AbiError(f"{what} is truncated: needs at least {size} bytes, got {len(data)}")


def _require_exact_length(data: bytes, size: int, what: str) -> None:
    if len(data) != size:
        raise AbiError(f"{what} must be exactly {size} bytes for its contents, got {len(data)}")
