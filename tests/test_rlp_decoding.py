"""The node's RLP decoding (chain.trie.rlp_cache): cached decodes must behave exactly as
fresh ones, because py-trie edits the branch nodes it decodes in place while building
the next state root; one shared, edited node would corrupt every later root. The
decoder is installed as the node installs it (chain.startup, by the session fixture)."""

import os

import pytest
import rlp
from trie import HexaryTrie


def test_each_decode_of_the_same_bytes_is_a_value_of_its_own():
    node = [os.urandom(32) for _ in range(16)] + [[b"\x20", b"embedded"]]
    encoded = rlp.encode(node)
    first = rlp.decode(encoded)
    first[0], first[16][1] = b"edited", b"edited"
    assert rlp.decode(encoded) == node


@pytest.mark.parametrize("bad", [b"\xc3\x80", b"\xc1\x80\x80", b"\xf9\xff"])
def test_malformed_encodings_are_refused_every_time(bad):
    for _ in range(2):
        with pytest.raises(rlp.DecodingError):
            rlp.decode(bad)


def test_trie_roots_after_many_reads_match_a_fresh_build():
    items = {os.urandom(32): os.urandom(40) for _ in range(500)}
    trie = HexaryTrie({})
    for key, value in items.items():
        trie[key] = value
    for key in items:  # read every path: each node is decoded, and cached, again
        assert trie[key] == items[key]
    for key in list(items)[:100]:
        items[key] = trie[key] = os.urandom(40)
    fresh = HexaryTrie({})
    for key, value in items.items():
        fresh[key] = value
    assert trie.root_hash == fresh.root_hash
