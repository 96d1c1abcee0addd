"""Sibyl's execution client: VM, storage, pool, builder, importer and node wiring."""

import os

# py-evm hashes through eth_hash, whose automatic choice is pycryptodome; pysha3's keccak
# (safe-pysha3, a dependency) is about six times faster, and tries hash constantly.
os.environ.setdefault("ETH_HASH_BACKEND", "pysha3")

from chain import (
    rlp_backend,  # noqa: E402, F401 (chooses pyrlp's decoder by input size)
    trie_reads,  # noqa: E402, F401 (walks tries without py-trie's overhead)
)
