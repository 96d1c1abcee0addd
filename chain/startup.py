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
  they overflow the stack (:func:`chain.limits.contain_recursion`);
* log records without the caller's file and line, thread and process, as the logging
  HOWTO's "Optimization" section says to when no format shows them (the node's shows
  time, level, logger and message): a record took 30 µs to make and write, 13 without
  them, and a dev block logs one;
* the cyclic garbage collector run less often: py-evm makes thousands of containers a
  block (decoded nodes, accounts, headers, receipts), so at Python's default threshold
  of 700 the collector ran about once a block, and a full collection, over every
  object since start-up, took 50-90 ms. What exists when this runs (the imported
  modules) is frozen out of all collections, and the youngest generation is collected
  every :data:`GC_YOUNGEST` allocations.
"""

import gc
import logging

import eth_hash.auto
from eth_hash.backends.pysha3 import backend as pysha3

from chain.limits import contain_recursion
from chain.trie import rlp_cache

GC_YOUNGEST = 20_000  # net container allocations between collections (Python's: 700)


def prepare_process() -> None:
    """Make the process-wide choices above; calling it again changes nothing more."""
    eth_hash.auto.keccak.hasher = pysha3.keccak256
    eth_hash.auto.keccak.preimage = pysha3.preimage
    rlp_cache.install()
    contain_recursion()
    logging._srcfile = None  # type: ignore[attr-defined]
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    gc.freeze()
    gc.set_threshold(GC_YOUNGEST, *gc.get_threshold()[1:])
