"""Sibyl's execution client: VM, storage, pool, builder, importer and node wiring.

The execution core sits here (``vm``, ``state_db``, ``execution``, ``builder``,
``engine``, ``producer``, ``follower``, ``txpool``, ``simulate``, ``trace``,
``genesis``, ``config``, ``node``); the wings beside it are ``storage/`` (the LMDB store
and what reads it), ``trie/`` (trie roots, batched writes, reads, the decode cache),
``ai/`` (executing and verifying AI calls), ``precompiles/`` and ``cmd/`` (the command
line, the only part that imports ``rpc``). Importing any of it changes nothing outside
it: the node's start-up (:func:`chain.cmd.run.run`) does what must be done once.
"""
