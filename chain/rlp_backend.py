"""pyrlp's decoder, chosen by input size.

pyrlp decodes through rusty-rlp when it is installed, and it is a dependency: its encoder
is several times faster on the small items that tries, accounts and receipts are made of.
But rusty-rlp copies byte strings into Python at about 25 ns a byte, so a 12 KB AI output
takes 0.3 ms to decode and a block of fifty of them 12 ms, where pyrlp's own decoder
takes a fraction of that. Inputs longer than a trie node therefore go to pyrlp's own
decoder, with the same errors.
"""

from typing import Any

import rlp.codec
from rlp.exceptions import DecodingError

LONG = 600  # bytes: a branch node is at most 532 (rusty-rlp decodes those faster)


def _decode_raw(item: bytes, strict: bool, preserve_per_item_rlp: bool) -> Any:
    if len(item) < LONG:
        return _native(item, strict, preserve_per_item_rlp)
    try:
        result, per_item_rlp, end = rlp.codec.consume_item(item, 0)
    except IndexError:
        raise DecodingError("RLP string too short", item) from None
    if end != len(item) and strict:
        raise DecodingError(f"RLP string ends with {len(item) - end} superfluous bytes", item)
    return result, per_item_rlp


_native = rlp.codec.decode_raw
if hasattr(rlp.codec, "rusty_rlp"):
    rlp.codec.decode_raw = _decode_raw
