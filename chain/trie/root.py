"""Merkle-Patricia tries built in one pass: the root of an ordered trie (transactions,
receipts, withdrawals), and the nodes of any trie loaded in bulk.

A block's transaction, receipt and withdrawal roots are tries keyed by ``rlp(index)``.
py-evm builds them by inserting into a ``HexaryTrie`` one item at a time, which costs
about a third of a block's build time; the root depends only on the sorted items, so it
is computed here in one pass, as ethereum/execution-specs' ``patricialize`` does.
"""

from collections.abc import Sequence

import rlp
from eth.constants import BLANK_ROOT_HASH
from eth_hash.auto import keccak
from rlp.codec import encode_raw

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


def _reference(node: Node, nodes: dict[bytes, bytes] | None) -> Node:
    """A child as its parent holds it: inline when its encoding is short, else its hash
    (and, when collecting, the encoding goes into ``nodes`` under that hash)."""
    encoded = encode_raw(node)
    if len(encoded) < 32:
        return node
    digest = keccak(encoded)
    if nodes is not None:
        nodes[digest] = encoded
    return digest


def _patricialize(
    items: list[tuple[bytes, bytes]], level: int, nodes: dict[bytes, bytes] | None = None
) -> Node:
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
        child = _reference(_patricialize(items, shared, nodes), nodes)
        return [_compact(first[level:shared], False), child]
    branches: list[list[tuple[bytes, bytes]]] = [[] for _ in range(16)]
    value = b""
    for key, item in items:
        if len(key) == level:
            value = item
        else:
            branches[key[level]].append((key, item))
    return [_reference(_patricialize(branch, level + 1, nodes), nodes) for branch in branches] + [
        value
    ]


def _nibbles(key: bytes) -> bytes:
    return bytes(n for byte in key for n in (byte >> 4, byte & 0x0F))


def trie_nodes(items: dict[bytes, bytes]) -> tuple[bytes, dict[bytes, bytes]]:
    """Root and nodes (hash → encoding) of the trie mapping each key to its value, built
    in one pass: what a bulk load (a large genesis, a benchmark's state) needs instead of
    one ``HexaryTrie`` insertion per key."""
    if not items:
        return BLANK_ROOT_HASH, {}
    nodes: dict[bytes, bytes] = {}
    root = _patricialize(sorted((_nibbles(k), v) for k, v in items.items()), 0, nodes)
    encoded = encode_raw(root)
    digest = keccak(encoded)
    nodes[digest] = encoded
    return digest, nodes


def ordered_trie_root(values: Sequence[bytes]) -> bytes:
    """Root of the trie mapping ``rlp(i)`` to ``values[i]``."""
    if not values:
        return BLANK_ROOT_HASH
    items = sorted((_nibbles(rlp.encode(i)), value) for i, value in enumerate(values))
    return keccak(encode_raw(_patricialize(items, 0)))
