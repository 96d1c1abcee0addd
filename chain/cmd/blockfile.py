"""``sibyl import`` and ``sibyl export``: blocks as a file of concatenated RLP blocks.

The format is geth's: each canonical block after genesis, RLP-encoded, back to back.
Importing validates every block exactly as a follower does (execution, and the
attestations of AI calls) and stops at the first invalid one with its reason; the blocks
before it stay imported.
"""

import logging
from pathlib import Path

import rlp

from chain.config import NodeConfig
from chain.engine import Engine
from chain.errors import SibylError
from chain.execution import InvalidBlock
from chain.node import open_datadir
from chain.storage import codec
from chain.storage.reader import ChainReader
from chain.storage.store import StoreError, number_key
from chain.vm import ChainConfig

log = logging.getLogger("sibyl.blockfile")


class BlockFileError(SibylError):
    """An import file that is unreadable, not RLP, or holds an invalid block."""


def export_blocks(config: NodeConfig, path: Path) -> int:
    """Write the canonical chain after genesis to ``path``; returns the block count.

    Runs beside a node that owns the data dir, as a reader: the chain is read in one
    read transaction (one consistent view, whatever the node commits meanwhile), and
    the file appears, complete, only once it is written."""
    store, _ = open_datadir(config, readonly=True)
    partial = path.with_name(path.name + ".partial")
    try:
        tables = store.tables
        with store.env.begin(buffers=False) as txn, open(partial, "wb") as out:
            head = txn.get(b"head", db=tables["meta"])
            number, block_hash = 0, txn.get(number_key(0), db=tables["canonical"])
            while block_hash != head:
                number += 1
                block_hash = txn.get(number_key(number), db=tables["canonical"])
                if block_hash is None:
                    raise StoreError(f"data dir has no canonical block {number} below its head")
                out.write(txn.get(block_hash, db=tables["blocks"]))
        partial.replace(path)
        return number
    finally:
        partial.unlink(missing_ok=True)
        store.close()


def import_raw_block(engine: Engine, reader: ChainReader, config: ChainConfig, raw: bytes) -> bool:
    """Decode one RLP block, validate it and make it the head, as ``sibyl import`` does;
    False when it is known already. Raises :class:`BlockFileError` for bytes that are not
    a block, :class:`InvalidBlock` with the reason for an invalid one."""
    try:
        block = codec.decode_any_block(config, raw)
    except codec.DECODE_ERRORS as exc:
        raise BlockFileError(f"is not a block: {exc}") from None
    if reader.header(block.header.hash) is not None:
        return False
    engine.import_block(block)
    return True


def import_blocks(config: NodeConfig, path: Path) -> int:
    """Validate and append the blocks of ``path``; returns how many were new."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BlockFileError(f"cannot read {path}: {exc.strerror}") from None
    store, genesis = open_datadir(config)
    try:
        reader = ChainReader(store, genesis.config)
        engine = Engine(genesis.config, store, reader)
        imported = 0
        try:
            items = codec.split_rlp_items(data)
        except rlp.DecodingError as exc:
            raise BlockFileError(f"{path}: not a file of RLP blocks: {exc}") from None
        for position, raw in enumerate(items):
            try:
                imported += import_raw_block(engine, reader, genesis.config, raw)
            except BlockFileError as exc:
                raise BlockFileError(f"{path}: item {position} {exc}") from None
            except InvalidBlock as exc:
                raise BlockFileError(f"{path}: invalid block: {exc}") from None
        return imported
    finally:
        store.close()
