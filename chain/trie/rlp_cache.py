"""pyrlp's decoder, chosen by input size, and kept from decoding a trie node twice.

pyrlp decodes through rusty-rlp when it is installed, and it is a dependency: its encoder
is several times faster on the small items that tries, accounts and receipts are made of.
But rusty-rlp copies byte strings into Python at about 25 ns a byte, so a 12 KB AI output
takes 0.3 ms to decode and a block of fifty of them 12 ms, where pyrlp's own decoder
takes a fraction of that. Inputs longer than a trie node therefore go to pyrlp's own
decoder, with the same errors.

Trie nodes are decoded again and again: each block reads the paths to every account and
slot it touches, each ``eth_call`` the paths to the contract's account and storage, and
a branch node takes 10 µs to decode. An encoding always decodes to the same value, so
short list encodings (trie nodes, accounts) are kept decoded, keyed by their bytes, as
geth keeps a clean cache of trie nodes. Each caller gets its own lists, because py-trie
edits branch nodes in place; the byte strings in them are immutable and shared.

Both choices replace pyrlp's ``decode_raw``, so they take effect only when the node's
start-up calls :func:`install` (:mod:`chain.startup`); importing this module changes
nothing.
"""

from typing import Any

import rlp.codec
from lru import LRU
from rlp.exceptions import DecodingError

LONG = 600  # bytes: a branch node is at most 532 (rusty-rlp decodes those faster)
DECODED: LRU = LRU(1 << 14)  # full of branch nodes, about 35 MB


def _decode_raw(item: bytes, strict: bool, preserve_per_item_rlp: bool) -> Any:
    if len(item) >= LONG:
        return _decode_long(item, strict)
    if not strict or preserve_per_item_rlp or type(item) is not bytes or item[:1] < b"\xc0":
        return _native(item, strict, preserve_per_item_rlp)
    decoded = DECODED.get(item)
    if decoded is None:
        decoded = DECODED[item] = _native(item, strict, preserve_per_item_rlp)[0]
    return _copy(decoded), []


def decoded(encoded: bytes) -> Any:
    """The decoded form of ``encoded``, shared with every other reader of it, for callers
    that never modify what they get (a trie walk)."""
    node = DECODED.get(encoded)
    return node if node is not None else _decode_raw(encoded, True, False)[0]


def _copy(items: list) -> list:
    return [x if x.__class__ is bytes else _copy(x) for x in items]


def _decode_long(item: bytes, strict: bool) -> Any:
    try:
        result, per_item_rlp, end = rlp.codec.consume_item(item, 0)
    except IndexError:
        raise DecodingError("RLP string too short", item) from None
    if end != len(item) and strict:
        raise DecodingError(f"RLP string ends with {len(item) - end} superfluous bytes", item)
    return result, per_item_rlp


_native = rlp.codec.decode_raw  # pyrlp's own (rusty-rlp's when it is installed)


def install() -> None:
    """Route pyrlp's decoding through :func:`_decode_raw` (once, at start-up)."""
    rlp.codec.decode_raw = _decode_raw
