"""The ``sibyl`` command line: init, run (the node with its RPC servers), import and
export of block files, keys. The only part of ``chain`` that imports ``rpc``."""
