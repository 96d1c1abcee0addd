"""The ABI codec of the AI precompiles (DESIGN section 4): INFER, EMBED, LLM, ZK_PROVE.

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

import json
from dataclasses import dataclass
from typing import Any

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_abi.exceptions import DecodingError

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


def for_model(request: Any, model_id: bytes) -> Any:
    """``request`` (any decoded call input), if it names the model ``model_id``: a
    sidecar serves its own model only."""
    if request.model_id != model_id:
        raise AbiError(f"input names model 0x{request.model_id.hex()}")
    return request


def decode_infer_input(data: bytes) -> InferRequest:
    """Decode and validate an INFER input; the shape's product must equal len(values)."""
    _require_min_length(data, 4 * WORD, "INFER input")
    model_id = data[0:WORD]
    values_at = _uint(data, 1, 256, "values offset")
    shape_at = _uint(data, 2, 256, "shape offset")
    decimals = _uint(data, 3, 8, "decimals")
    values, shape = _values_and_shape(data, values_at, shape_at, 4, "INFER input")

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
    return _values_and_shape(data, values_at, shape_at, 2, "INFER output")


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


def _values_and_shape(
    data: bytes, values_at: int, shape_at: int, head_words: int, what: str
) -> tuple[list[int], list[int]]:
    """The ``int256[] values`` and ``uint32[] shape`` tails of an INFER input or output
    whose head is ``head_words`` words, in canonical layout only: values right after the
    head, shape right after values, nothing after shape."""
    _require_offset(values_at, head_words * WORD, "values")
    values_count = _array_length(data, values_at, "values")
    _require_offset(shape_at, values_at + WORD * (1 + values_count), "shape")
    shape_count = _array_length(data, shape_at, "shape")
    _require_exact_length(data, shape_at + WORD * (1 + shape_count), what)
    first = values_at // WORD + 1
    values = [_int256(data, first + i) for i in range(values_count)]
    first = shape_at // WORD + 1
    shape = [_uint(data, first + i, 32, f"shape[{i}]") for i in range(shape_count)]
    return values, shape


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


# LLM (0x…0802): complete(bytes32 modelId, string messagesJson, uint32 maxTokens,
# uint32 temperatureMilli, uint64 seed, bytes4 callbackSelector, uint64 callbackGasLimit,
# uint32 ttlBlocks) -> (bytes32 jobId); delivered output (string text, uint32
# promptTokens, uint32 completionTokens). Decoded with eth_abi and checked to be the
# canonical encoding by encoding it again: an LLM call is rare and slow, so the general
# decoder's cost does not matter here.

LLM_ADDRESS = bytes.fromhex("0000000000000000000000000000000000000802")
LLM_INPUT_TYPES = (
    "bytes32", "string", "uint32", "uint32", "uint64", "bytes4", "uint64", "uint32",
)  # fmt: skip
LLM_OUTPUT_TYPES = ("string", "uint32", "uint32")
LLM_ROLES = ("system", "user", "assistant", "tool")


@dataclass(frozen=True, slots=True)
class LlmRequest:
    model_id: bytes
    messages_json: str
    max_tokens: int
    temperature_milli: int
    seed: int
    callback_selector: bytes
    callback_gas_limit: int
    ttl_blocks: int

    def messages(self) -> list[dict[str, str]]:
        """The chat messages; :func:`decode_llm_input` has checked their shape."""
        return json.loads(self.messages_json)


def decode_llm_input(data: bytes) -> LlmRequest:
    """Decode and validate an LLM input: canonical ABI, and ``messagesJson`` a non-empty
    JSON list of ``{"role": ..., "content": ...}`` objects with string values."""
    try:
        values = abi_decode(LLM_INPUT_TYPES, data)
    except (DecodingError, ValueError, OverflowError) as exc:
        raise AbiError(
            f"LLM input is not abi.encode of {','.join(LLM_INPUT_TYPES)}: {exc}"
        ) from None
    if abi_encode(LLM_INPUT_TYPES, values) != data:
        raise AbiError("LLM input is not in the canonical ABI encoding")
    request = LlmRequest(*values)
    try:
        messages = json.loads(request.messages_json)
    except ValueError as exc:
        raise AbiError(f"messagesJson is not valid JSON: {exc}") from None
    if not isinstance(messages, list) or not messages:
        raise AbiError("messagesJson must be a non-empty list of messages")
    for i, message in enumerate(messages):
        if (
            not isinstance(message, dict)
            or set(message) != {"role", "content"}
            or message["role"] not in LLM_ROLES
            or not isinstance(message["content"], str)
        ):
            raise AbiError(
                f'messagesJson[{i}] must be {{"role": one of {", ".join(LLM_ROLES)}, '
                '"content": a string}'
            )
    if request.max_tokens == 0:
        raise AbiError("maxTokens must be at least 1")
    return request


def encode_llm_output(text: str, prompt_tokens: int, completion_tokens: int) -> bytes:
    return abi_encode(LLM_OUTPUT_TYPES, (text, prompt_tokens, completion_tokens))


def decode_llm_output(data: bytes) -> tuple[str, int, int]:
    return tuple(abi_decode(LLM_OUTPUT_TYPES, data))


# ZK_PROVE (0x…0803): prove(bytes32 modelId, int256[] values, uint32[] shape, uint8
# decimals, bytes4 callbackSelector, uint64 callbackGasLimit, uint32 ttlBlocks) ->
# (bytes32 jobId); delivered output (int256[] values, uint32[] shape, bytes proof). Decoded
# with eth_abi and checked to be canonical by encoding again, as LLM's: a proof job is rare
# and its proving takes far longer than any decoder.

ZK_PROVE_ADDRESS = bytes.fromhex("0000000000000000000000000000000000000803")
PROVE_INPUT_TYPES = ("bytes32", "int256[]", "uint32[]", "uint8", "bytes4", "uint64", "uint32")
PROVE_OUTPUT_TYPES = ("int256[]", "uint32[]", "bytes")


@dataclass(frozen=True, slots=True)
class ProveRequest:
    model_id: bytes
    values: list[int]
    shape: list[int]
    decimals: int
    callback_selector: bytes
    callback_gas_limit: int
    ttl_blocks: int


def decode_prove_input(data: bytes) -> ProveRequest:
    """Decode and validate a ZK_PROVE input: canonical ABI, values not empty, the shape's
    product equal to their number, decimals at most 18."""
    try:
        decoded = abi_decode(PROVE_INPUT_TYPES, data)
    except (DecodingError, ValueError, OverflowError) as exc:
        raise AbiError(
            f"ZK_PROVE input is not abi.encode of {','.join(PROVE_INPUT_TYPES)}: {exc}"
        ) from None
    if abi_encode(PROVE_INPUT_TYPES, decoded) != data:
        raise AbiError("ZK_PROVE input is not in the canonical ABI encoding")
    model_id, values, shape, decimals, selector, gas_limit, ttl = decoded
    request = ProveRequest(model_id, list(values), list(shape), decimals, selector, gas_limit, ttl)
    _check_decimals(decimals)
    if not request.values:
        raise AbiError("values must not be empty")
    if not request.shape:
        raise AbiError("shape must have at least one dimension")
    product = 1
    for dim in request.shape:
        product *= dim
    if product != len(request.values):
        raise AbiError(
            f"shape {request.shape} holds {product} values but {len(request.values)} "
            "values were given"
        )
    return request


def encode_prove_output(values: list[int], shape: list[int], proof: bytes) -> bytes:
    return abi_encode(PROVE_OUTPUT_TYPES, (values, shape, proof))


def decode_prove_output(data: bytes) -> tuple[list[int], list[int], bytes]:
    """The values, shape and proof of a ZK_PROVE delivery's output, canonical only."""
    try:
        values, shape, proof = abi_decode(PROVE_OUTPUT_TYPES, data)
    except (DecodingError, ValueError, OverflowError) as exc:
        raise AbiError(
            f"output is not abi.encode(int256[] values, uint32[] shape, bytes proof): {exc}"
        ) from None
    if encode_prove_output(values, shape, proof) != data:
        raise AbiError("output is not in the canonical ABI encoding")
    return list(values), list(shape), proof
