"""The INFER / EMBED / ZK_PROVE codec agrees with eth_abi and rejects every malformed input."""

import re

import eth_abi
import pytest

from sidecars.abi import (
    AbiError,
    decode_embed_input,
    decode_infer_input,
    decode_prove_input,
    decode_prove_output,
    encode_embed_output,
    encode_infer_output,
    encode_prove_output,
)

INFER_TYPES = ["bytes32", "int256[]", "uint32[]", "uint8"]
MODEL = bytes(range(32))


def infer_input(values, shape, decimals=6, model=MODEL) -> bytes:
    return eth_abi.encode(INFER_TYPES, [model, values, shape, decimals])


def test_infer_input_decodes_what_eth_abi_encodes():
    values = [1, -1, 2**255 - 1, -(2**255), 0, 123456789]
    request = decode_infer_input(infer_input(values, [2, 3], 18))
    assert request.model_id == MODEL
    assert request.values == values
    assert request.shape == [2, 3]
    assert request.decimals == 18


def test_infer_output_is_what_eth_abi_encodes():
    values, shape = [5, -7, 2**255 - 1, -(2**255)], [1, 4]
    encoded = encode_infer_output(values, shape)
    assert encoded == eth_abi.encode(["int256[]", "uint32[]"], [values, shape])


def test_embed_round_trip_matches_eth_abi():
    for text in ["", "hello", "x" * 32, "ünïcødé ✓ " * 7]:
        data = eth_abi.encode(["bytes32", "string", "uint8"], [MODEL, text, 4])
        request = decode_embed_input(data)
        assert (request.model_id, request.text, request.decimals) == (MODEL, text, 4)
    vector = [1, -2, 3]
    assert encode_embed_output(vector) == eth_abi.encode(["int256[]"], [vector])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (infer_input([1, 2, 3], [2, 2]), "shape [2, 2] holds 4 values but 3 values were given"),
        (infer_input([1], [1], decimals=19), "decimals must be at most 18, got 19"),
        (infer_input([], [0]), "values must not be empty"),
        (infer_input([1], []), "shape must have at least one dimension"),
        (infer_input([1], [1])[:100], "truncated"),
        (infer_input([1], [1]) + bytes(32), "must be exactly"),
        (infer_input([1], [1])[:-32], "ends before them"),
    ],
)
def test_malformed_infer_input_is_rejected_with_a_reason(data, message):
    with pytest.raises(AbiError, match=message.replace("[", r"\[").replace("]", r"\]")):
        decode_infer_input(data)


def test_non_canonical_infer_encodings_are_rejected():
    good = bytearray(infer_input([1, 2], [2]))
    moved = bytearray(good)
    moved[63] += 32  # values offset points one word later
    with pytest.raises(AbiError, match="canonical"):
        decode_infer_input(bytes(moved))
    dirty = bytearray(good)
    dirty[96] = 1  # decimals word with a high byte set
    with pytest.raises(AbiError, match="does not fit in uint8"):
        decode_infer_input(bytes(dirty))
    dim = bytearray(good)
    dim[-32] = 1  # a shape entry over uint32
    with pytest.raises(AbiError, match="shape.0. does not fit in uint32"):
        decode_infer_input(bytes(dim))


def test_malformed_embed_input_is_rejected():
    good = eth_abi.encode(["bytes32", "string", "uint8"], [MODEL, "hi", 2])
    bad_utf8 = bytearray(good)
    bad_utf8[128] = 0xFF
    with pytest.raises(AbiError, match="not valid UTF-8"):
        decode_embed_input(bytes(bad_utf8))
    dirty_pad = bytearray(good)
    dirty_pad[-1] = 1
    with pytest.raises(AbiError, match="padding"):
        decode_embed_input(bytes(dirty_pad))
    with pytest.raises(AbiError, match="truncated"):
        decode_embed_input(good[:64])
    big = eth_abi.encode(["bytes32", "string", "uint8"], [MODEL, "hi", 30])
    with pytest.raises(AbiError, match="decimals"):
        decode_embed_input(big)


def test_outputs_out_of_range_are_rejected():
    with pytest.raises(AbiError, match="int256"):
        encode_infer_output([2**255], [1])
    with pytest.raises(AbiError, match="uint32"):
        encode_infer_output([1], [2**32])
    with pytest.raises(AbiError, match="int256"):
        encode_embed_output([-(2**255) - 1])


PROVE_TYPES = [*INFER_TYPES, "bytes4", "uint64", "uint32"]


def prove_input(values, shape, decimals=6) -> bytes:
    return eth_abi.encode(PROVE_TYPES, [MODEL, values, shape, decimals, b"abcd", 7, 9])


def test_prove_input_decodes_what_eth_abi_encodes():
    request = decode_prove_input(prove_input([1, -2, 3, 4], [1, 4]))
    assert (request.model_id, request.values, request.shape, request.decimals) == (
        MODEL, [1, -2, 3, 4], [1, 4], 6,
    )  # fmt: skip
    assert (request.callback_selector, request.callback_gas_limit, request.ttl_blocks) == (
        b"abcd", 7, 9,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (prove_input([1, 2, 3], [1, 4]), "shape [1, 4] holds 4 values but 3 values were given"),
        (prove_input([], [0]), "values must not be empty"),
        (prove_input([1], [1], decimals=19), "decimals must be at most 18"),
        (prove_input([1], [1]) + b"\0" * 32, "not in the canonical ABI encoding"),
        (b"\x01" * 40, "ZK_PROVE input is not abi.encode of bytes32,int256[]"),
    ],
)
def test_prove_input_rejects_malformed_inputs(data, reason):
    with pytest.raises(AbiError, match=re.escape(reason)):
        decode_prove_input(data)


def test_prove_output_round_trips_and_is_canonical_only():
    data = encode_prove_output([5, -6], [1, 2], b"proof")
    assert decode_prove_output(data) == ([5, -6], [1, 2], b"proof")
    with pytest.raises(AbiError, match="not in the canonical ABI encoding"):
        decode_prove_output(data + b"\0" * 32)
    with pytest.raises(AbiError, match=r"output is not abi.encode\(int256\[\] values"):
        decode_prove_output(encode_infer_output([5, -6], [1, 2]))
