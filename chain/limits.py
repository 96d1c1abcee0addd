"""Decoding untrusted bytes without reaching the C stack: JSON and RLP nesting bounds.

Importing py_ecc raises the interpreter's recursion limit to 100,000 (py-evm raises it to
12,288, which its 1024-deep calls need). Parsers that recurse on the C stack once per
nesting level (the standard library's JSON scanner, rusty-rlp) then overflow the stack,
a SIGSEGV, long before the limit fires: a 200,000-deep JSON string sent to
``eth_signTypedData_v4`` killed the node. So:

* :func:`contain_recursion` puts the limit back to py-evm's at the node's start-up;
* JSON from outside (request bodies, string parameters, genesis files) is parsed by
  :func:`load_json`, orjson's parser, which refuses more than 1024 levels;
* RLP from outside (raw transactions, block files, a peer's blocks) is measured by
  :func:`check_rlp`, a flat walk over its length prefixes, before any decoder sees it.
  Nested byte strings (a typed transaction inside a block) are decoded by pyrlp's Python
  decoder when long, so a deep one ends in a ``RecursionError`` the callers report.
"""

import json
import sys
from typing import Any

import orjson

MAX_JSON_DEPTH = 1024  # orjson's own bound, fixed in its parser
MAX_RLP_DEPTH = 16  # a block with an attested transaction nests 6 deep; a raw tx 4


class NestingError(ValueError):
    """Input nested deeper than the node decodes, or with lengths that do not fit."""


def contain_recursion() -> None:
    """Undo py_ecc's recursion limit (import it now, so that no later import raises the
    limit again) and keep the one py-evm needs for 1024 nested calls."""
    import eth
    import py_ecc  # noqa: F401  (its import is what raises the limit)

    sys.setrecursionlimit(eth.EVM_RECURSION_LIMIT)


def load_json(data: bytes | str) -> Any:
    """Parse JSON nested at most :data:`MAX_JSON_DEPTH` deep, integers exact; raises
    ``ValueError`` with the position of the problem otherwise.

    orjson checks the depth (and the syntax) first; the standard library then reads the
    accepted text, because orjson reads integers above 64 bits as floats, and genesis
    balances or typed-data values may be such integers."""
    orjson.loads(data)
    return json.loads(data)


def check_transaction(raw: bytes) -> None:
    """:func:`check_rlp` of a transaction's encoding: after its type byte when typed."""
    check_rlp(raw[1:] if raw and raw[0] <= 0x7F else raw)


def check_rlp(data: bytes, max_depth: int = MAX_RLP_DEPTH) -> None:
    """Raise :class:`NestingError` unless ``data`` is exactly one RLP item whose lists
    nest at most ``max_depth`` deep and whose every length fits inside its parent.

    Costs one step per item, touches no payload bytes, and recurses nowhere."""
    size = len(data)
    ends: list[int] = []  # where each enclosing list ends
    position = 0
    while True:
        while ends and position == ends[-1]:
            ends.pop()
        if not ends and position > 0:
            break
        limit = ends[-1] if ends else size
        if position >= limit:
            raise NestingError("RLP item is truncated")
        prefix = data[position]
        if prefix < 0x80:
            position += 1
            continue
        if prefix < 0xB8 or 0xC0 <= prefix < 0xF8:
            start = position + 1
            length = prefix - (0x80 if prefix < 0xC0 else 0xC0)
        else:
            width = prefix - (0xB7 if prefix < 0xC0 else 0xF7)
            start = position + 1 + width
            length = int.from_bytes(data[position + 1 : start], "big")
        end = start + length
        if end > limit:
            raise NestingError("RLP item is longer than the data that holds it")
        if prefix < 0xC0:
            position = end
            continue
        if len(ends) >= max_depth:
            raise NestingError(f"RLP lists nested deeper than {max_depth}")
        ends.append(end)
        position = start
    if position != size:
        raise NestingError(f"RLP item is followed by {size - position} superfluous bytes")
