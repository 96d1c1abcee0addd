"""The root of an ordered Merkle-Patricia trie (transactions, receipts, withdrawals).

A block's transaction, receipt and withdrawal roots are tries keyed by ``rlp(index)``.
py-evm builds them by inserting into a ``HexaryTrie`` one item at a time, which costs
about a third of a block's build time; the root depends only on the sorted items, so it
is computed here in one pass, as ethereum/execution-specs' ``patricialize`` does.
"""

from collections.abc import Sequence

import rlp
from eth.constants import BLANK_ROOT_HASH
from eth_utils import keccak

Node = bytes | list


def _compact(nibbles: bytes, is_leaf: bool) -> bytes:
    """Hex-prefix encoding of a nibble path (yellow paper, appendix C)."""
    flag = 2 if is_leaf else 0
    if len(nibbles) % 2:
        packed = bytes([(flag + 1) << 4 | nibbles[0]])
        nibbles = nibbles[1:]
    else:
        packed = bytes([flag << 4])
    return packed + bytes(nibbles[i] << 4 | nibbles[i + 1] for i in range(0, len(nibbles), 2))


def _reference(node: Node) -> Node:
    """A child as its parent holds it: inline when its encoding is short, else its hash."""
    encoded = rlp.encode(node)
    return node if len(encoded) < 32 else keccak(encoded)


def _patricialize(items: list[tuple[bytes, bytes]], level: int) -> Node:
    """The node for ``items`` (sorted nibble keys sharing their first ``level`` nibbles)."""
    if not items:
        return b""
    if len(items) == 1:
        key, value = items[0]
        return [_compact(key[level:], True), value]
    first, last = items[0][0], items[-1][0]
    shared = level
    while shared < len(first) and shared < len(last) and first[shared] == last[shared]:
        shared += 1
    if shared > level:
        child = _reference(_patricialize(items, shared))
        return [_compact(first[level:shared], False), child]
    branches: list[list[tuple[bytes, bytes]]] = [[] for _ in range(16)]
    value = b""
    for key, item in items:
        if len(key) == level:
            value = item
        else:
            branches[key[level]].append((key, item))
    return [_reference(_patricialize(branch, level + 1)) for branch in branches] + [value]


def _nibbles(key: bytes) -> bytes:
    return bytes(n for byte in key for n in (byte >> 4, byte & 0x0F))


def ordered_trie_root(values: Sequence[bytes]) -> bytes:
    """Root of the trie mapping ``rlp(i)`` to ``values[i]``."""
    if not values:
        return BLANK_ROOT_HASH
    items = sorted((_nibbles(rlp.encode(i)), value) for i, value in enumerate(values))
    return keccak(rlp.encode(_patricialize(items, 0)))
