"""A batch of writes applied to a trie in one pass: each changed node built and hashed once.

py-evm hands a block's storage writes to py-trie one slot at a time, and each ``set``
rewrites, re-encodes and rehashes the path from the root to that slot, then prunes the
path it replaced: about 100 µs a slot in a storage trie of 800k slots, and twelve
slots' paths share their upper nodes. :func:`apply_writes` takes the batch, sorted by
key, down the trie once: a node is rebuilt only if a write lies below it, and each
rebuilt node is encoded and hashed once. The result is the trie py-trie would build
(a trie's shape follows from its keys alone), which ``tests/test_trie_batch.py``
checks against py-trie on random tries and batches.

Nodes are walked as hex digit strings (a key's nibbles) and read through
:func:`chain.trie.reads.node_at`, whose values are shared: nothing here edits a node
it did not build, nor one it built once it is referenced (built nodes join
:data:`chain.trie.reads.NODES` by hash). A child is referenced by its hash, or embedded
in its parent when its encoding is shorter than 32 bytes; the root is always stored
under its hash.
"""

from itertools import groupby
from os.path import commonprefix
from typing import Any

from eth_hash.auto import keccak
from rlp.codec import encode_raw
from trie.constants import BLANK_NODE_HASH

from chain.trie.reads import NODES, hex_path, node_at

BLANK = b""
Changes = list[tuple[str, bytes]]  # (remaining hex path, new value or b"" to delete)


def apply_writes(db: Any, root_hash: bytes, writes: dict[bytes, bytes]) -> bytes:
    """The root hash of the trie at ``root_hash`` after ``writes`` (key -> value, b""
    deletes); the nodes it adds are written to ``db``."""
    changes = sorted((key.hex(), value) for key, value in writes.items())
    root = BLANK if root_hash == BLANK_NODE_HASH else node_at(db, root_hash)
    node = _apply(db, root, changes)
    if node == BLANK:
        return BLANK_NODE_HASH
    encoded = encode_raw(node)
    root_hash = keccak(encoded)
    db[root_hash] = encoded
    NODES[root_hash] = node
    return root_hash


def _apply(db: Any, node: Any, changes: Changes) -> Any:
    """``node`` with ``changes`` (paths relative to it) applied: a node or BLANK."""
    if node == BLANK:
        return _build(db, [(path, value) for path, value in changes if value])
    if len(node) == 17:
        return _apply_to_branch(db, node, changes)
    path, leaf = hex_path(node[0])
    if leaf:  # one key: merge it with the changes and build what they leave
        merged = dict([(path, node[1]), *changes])
        return _build(db, sorted((p, v) for p, v in merged.items() if v))
    if all(change.startswith(path) for change, _ in changes):  # extension, all below it
        below = [(p[len(path) :], v) for p, v in changes]
        return _prefixed(db, path, _apply(db, _resolve(db, node[1]), below))
    # a change leaves the extension: split off its first nibble as a branch and go on
    branch = [BLANK] * 17
    slot = int(path[0], 16)
    branch[slot] = node[1] if len(path) == 1 else [_hex_prefix(path[1:], False), node[1]]
    return _apply_to_branch(db, branch, changes, [slot])


def _apply_to_branch(db: Any, node: list, changes: Changes, built: list[int] | None = None) -> Any:
    """``node`` (a branch) with ``changes``; ``built`` names its children that are nodes
    made by the caller rather than references. Only those and the children the changes
    rebuild are referenced again: the others are references already."""
    branch = list(node)
    built = built or []
    for nibble, group in groupby(changes, key=lambda change: change[0][:1]):
        if nibble == "":  # a key that ends here: the branch's own value
            branch[16] = list(group)[-1][1]
            continue
        slot = int(nibble, 16)
        below = [(path[1:], value) for path, value in group]
        branch[slot] = _apply(db, _resolve(db, branch[slot]), below)
        built.append(slot)
    children = [i for i in range(16) if branch[i] != BLANK]
    if not children:
        return [_hex_prefix("", True), branch[16]] if branch[16] else BLANK
    if len(children) == 1 and not branch[16]:  # a branch of one: it joins its child
        only = children[0]
        return _prefixed(db, f"{only:x}", branch[only])
    for slot in built:
        branch[slot] = _ref(db, branch[slot])
    return branch


def _build(db: Any, items: Changes) -> Any:
    """A new subtrie of ``items`` (sorted, values non-empty)."""
    if not items:
        return BLANK
    if len(items) == 1:
        return [_hex_prefix(items[0][0], True), items[0][1]]
    prefix = commonprefix([path for path, _ in items])
    if prefix:
        child = _build(db, [(path[len(prefix) :], value) for path, value in items])
        return [_hex_prefix(prefix, False), _ref(db, child)]
    branch = [BLANK] * 17
    for nibble, group in groupby(items, key=lambda item: item[0][:1]):
        if nibble == "":
            branch[16] = list(group)[-1][1]
        else:
            below = [(path[1:], value) for path, value in group]
            branch[int(nibble, 16)] = _ref(db, _build(db, below))
    return branch


def _prefixed(db: Any, prefix: str, reference: Any) -> Any:
    """The node at ``reference`` reached through ``prefix``: a leaf or extension takes
    the prefix onto its own path, a branch gets an extension pointing at it."""
    child = _resolve(db, reference)
    if child == BLANK:
        return BLANK
    if len(child) == 17:
        return [_hex_prefix(prefix, False), _ref(db, reference)]
    path, leaf = hex_path(child[0])
    return [_hex_prefix(prefix + path, leaf), child[1]]


def _ref(db: Any, node: Any) -> Any:
    """How a parent points at ``node``: itself if it encodes to under 32 bytes, else its
    hash, with the node stored. A stored reference (a hash) is returned as it is."""
    if node.__class__ is bytes:
        return node
    encoded = encode_raw(node)
    if len(encoded) < 32:
        return node
    node_hash = keccak(encoded)
    db[node_hash] = encoded
    NODES[node_hash] = node  # the next block reads it back: no lookup, no decoding
    return node_hash


def _resolve(db: Any, reference: Any) -> Any:
    if reference.__class__ is list or reference == BLANK:
        return reference
    return node_at(db, reference)


def _hex_prefix(path: str, leaf: bool) -> bytes:
    odd = len(path) & 1
    return bytes.fromhex(f"{2 * leaf + odd:x}" + ("" if odd else "0") + path)
