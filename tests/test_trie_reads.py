"""The node's trie walk (chain.trie.reads) answers every read exactly as py-trie does:
branches, extensions, leaves, nodes embedded in their parents, keys that end at a
branch, absent keys, and a missing node (py-trie's own error)."""

import contextlib
import random

import pytest
from trie import HexaryTrie
from trie.exceptions import MissingTrieNode, ValidationError

from chain.trie.reads import NODES, WalkingTrie


def build(items: dict[bytes, bytes]) -> tuple[WalkingTrie, dict]:
    db: dict[bytes, bytes] = {}
    trie = HexaryTrie(db)
    for key, value in items.items():
        trie[key] = value
    return WalkingTrie(db, trie.root_hash), db


def shapes(rng: random.Random) -> list[dict[bytes, bytes]]:
    hashed = {rng.randbytes(32): rng.randbytes(rng.randint(1, 40)) for _ in range(2000)}
    # short keys and values: leaves small enough to be embedded in their parents
    embedded = {
        rng.randbytes(rng.randint(1, 3)): rng.randbytes(rng.randint(1, 4)) for _ in range(300)
    }
    # shared prefixes (extension nodes), and keys that are prefixes of others
    prefixed = {}
    for _ in range(300):
        stem = bytes([0xAB, 0xCD, rng.randrange(4)])
        prefixed[stem + rng.randbytes(rng.randint(0, 3))] = rng.randbytes(rng.randint(1, 50))
    return [hashed, embedded, prefixed, {b"only": b"one"}]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_read_matches_pytrie(seed):
    rng = random.Random(seed)
    for items in shapes(rng):
        trie, db = build(items)
        probes = list(items) + [rng.randbytes(rng.randint(0, 33)) for _ in range(500)]
        probes += [key[:-1] for key in list(items)[:200]] + [key + b"\x00" for key in items]
        for key in probes:
            assert trie.get(key) == items.get(key, b""), key
            # py-trie itself fails on a key that ends inside an extension node
            with contextlib.suppress(ValidationError):
                assert trie.get(key) == HexaryTrie(db, trie.root_hash).get(key), key


def test_an_empty_trie_has_nothing():
    assert WalkingTrie({}).get(b"\x01" * 32) == b""


def test_a_missing_node_raises_pytries_error():
    rng = random.Random(4)
    items = {rng.randbytes(32): rng.randbytes(32) for _ in range(300)}
    trie, db = build(items)
    key = next(iter(items))
    del db[trie.root_hash]
    NODES.pop(trie.root_hash, None)  # a node never seen: nothing to find it by
    with pytest.raises(MissingTrieNode):
        trie.get(key)
