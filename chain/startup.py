"""What a Sibyl process does once, before it executes anything.

Importing a module of the node changes nothing outside it (no library patched, no
environment set), so the process-wide choices live here, made by the command line's
entry point (:func:`chain.cmd.cli.main`), the benchmarks and the test fixtures:

* keccak through pysha3 (safe-pysha3, a dependency): eth_hash's automatic choice is
  pycryptodome, about six times slower, and tries hash constantly. This is the one place
  the backend is chosen; eth_hash's ``keccak`` is what py-evm, py-trie and eth_utils call.
* pyrlp's decoder chosen by input size, with trie nodes kept decoded
  (:mod:`chain.trie.rlp_cache`);
* the recursion limit py-evm needs, not py_ecc's 100,000, so that C parsers fail before
  they overflow the stack (:func:`chain.limits.contain_recursion`).
"""

import eth_hash.auto
from eth_hash.backends.pysha3 import backend as pysha3

from chain.limits import contain_recursion
from chain.trie import rlp_cache


def prepare_process() -> None:
    """Make the process-wide choices above; calling it again changes nothing more."""
    eth_hash.auto.keccak.hasher = pysha3.keccak256
    eth_hash.auto.keccak.preimage = pysha3.preimage
    rlp_cache.install()
    contain_recursion()
