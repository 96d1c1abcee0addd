"""Proof-of-work seals: chain.ethash against ethereum/tests' own Ethash vector
(``PoWTests/ethash_tests.json``, "first": block 0, a known header, nonce and mix hash),
which py-evm's Ethash fails."""

import pytest

from chain.ethash import InvalidSeal, cache_size, check_seal, dataset_size

HEADER_HASH = bytes.fromhex("2a8de2adf89af77358250bf908bf04ba94a6e8c3ba87775564a41d269a05e4ce")
NONCE = bytes.fromhex("4242424242424242")
MIX_HASH = bytes.fromhex("58f759ede17a706c93f13030328bcea40c1d1341fb26f2facd21ceb0dae57017")
DIFFICULTY = 0x20000  # its result 0xdd47… is above 2**256 / 0x20000


def test_ethash_verifies_the_consensus_tests_vector_and_refuses_a_wrong_nonce():
    assert (cache_size(0), dataset_size(0)) == (16_776_896, 1_073_739_904)
    check_seal(0, HEADER_HASH, MIX_HASH, NONCE, 1)
    with pytest.raises(InvalidSeal, match="mix hash"):
        check_seal(0, HEADER_HASH, MIX_HASH, bytes.fromhex("4242424242424243"), 1)
    with pytest.raises(InvalidSeal, match="above 2\\*\\*256 / difficulty"):
        check_seal(0, HEADER_HASH, MIX_HASH, NONCE, DIFFICULTY)
