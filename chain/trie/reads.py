"""py-trie's reads, without its per-level overhead.

Every slot and account a block or an ``eth_call`` reads is a walk from a trie root down
to a leaf. ``HexaryTrie.get`` spends about 45 µs on it whatever the depth (nibble
tuples, node type checks, validation at each level), ten times what the walk needs; a
block of scheduled calls reads fifty slots, an ``eth_call`` a dozen. This walk follows
the same nodes over the hex digits of the key, reading each node's decoded form shared
from :mod:`chain.trie.rlp_cache` (it only reads them). Anything it does not expect (a key
that is not bytes, a missing node, a malformed reference) goes to py-trie's own ``get``,
so errors are py-trie's. :class:`WalkingTrie` is py-trie's ``HexaryTrie`` with this
``get``: the node's account and storage databases (:mod:`chain.state_db`) and its proofs
construct it, and py-trie itself is left as it is.

Decoded nodes are also kept by hash (:data:`NODES`, filled by reads and by
:mod:`chain.trie.batch` as it builds nodes): a hash names its node's content, so an
entry is right for every trie and database that holds it and never goes stale. The upper
levels every path crosses, and the nodes the last block wrote, are then found without
going through the database layers (py-evm's logging, atomic and overlay wrappers, then
the store) and without decoding. A node found there is not looked for in the database,
which matters only to a database that may lack nodes (the node prunes none).
"""

from typing import Any

from lru import LRU
from rlp import DecodingError
from trie import HexaryTrie
from trie.constants import BLANK_NODE_HASH

from chain.trie.rlp_cache import decoded

NODES: LRU = LRU(1 << 14)  # node hash -> decoded node, shared: never to be modified


def node_at(db: Any, node_hash: bytes) -> Any:
    """The decoded node stored under ``node_hash`` (a shared value: only read it)."""
    node = NODES.get(node_hash)
    if node is None:
        node = decoded(db[node_hash])
        if node.__class__ is list:
            NODES[node_hash] = node
    return node


def hex_path(encoded: bytes) -> tuple[str, bool]:
    """A leaf's or extension's hex-prefix encoded path: its hex digits, and leaf or not."""
    digits = encoded.hex()
    flag = int(digits[0], 16)
    return digits[1:] if flag & 1 else digits[2:], flag >= 2


class _Unexpected(Exception):
    """Let py-trie answer: it raises the error this walk would have to imitate."""


class WalkingTrie(HexaryTrie):
    """py-trie's hexary trie whose reads walk the decoded nodes directly."""

    def get(self, key: bytes) -> bytes:
        if type(key) is not bytes:
            return super().get(key)
        value = walk(self.db, self.root_hash, key)
        return super().get(key) if value is None else value


def walk(db: Any, root_hash: bytes, key: bytes) -> bytes | None:
    """The value at ``key`` in the trie under ``root_hash`` (b"" if none), or None where
    py-trie's own ``get`` must answer (and raise its error)."""
    try:
        return _walk(db, root_hash, key.hex())
    except (_Unexpected, KeyError, DecodingError):
        return None


def _walk(db: Any, root_hash: bytes, path: str) -> bytes:
    """The value at ``path`` (hex digits: the key's nibbles), or b"" if there is none."""
    if root_hash == BLANK_NODE_HASH:
        return b""
    node = _node(db, root_hash)
    at = 0
    while True:
        if len(node) == 17:  # branch
            if at == len(path):
                return node[16]
            child = node[int(path[at], 16)]
            at += 1
        elif len(node) == 2:  # leaf or extension
            rest, leaf = hex_path(node[0])
            if leaf:
                return node[1] if path[at:] == rest else b""
            if not path.startswith(rest, at):
                return b""
            at += len(rest)
            child = node[1]
        else:
            raise _Unexpected
        if child == b"":
            return b""
        node = child if child.__class__ is list else _node(db, child)


def _node(db: Any, reference: bytes) -> list:
    if len(reference) != 32:
        raise _Unexpected
    node = node_at(db, reference)
    if node.__class__ is not list:
        raise _Unexpected
    return node
