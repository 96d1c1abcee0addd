"""How headers, blocks and receipts are serialized in the store and on the wire.

Headers and blocks are their consensus RLP (what ``debug_getRawHeader`` and
``debug_getRawBlock`` return). A block's receipts are stored with the senders of its
transactions, ``rlp([[receipt, ...], [sender, ...]])``, so that serving a receipt never
repeats a signature recovery.
"""

from typing import Any

import rlp
from eth.abc import BlockAPI, BlockHeaderAPI, ReceiptAPI
from eth.vm.forks.prague.blocks import PragueBackwardsHeader


def encode_header(header: BlockHeaderAPI) -> bytes:
    return rlp.encode(header)


def decode_header(raw: bytes) -> BlockHeaderAPI:
    """Any post-merge header; the fork follows from its number of fields."""
    return rlp.decode(raw, sedes=PragueBackwardsHeader)


def encode_block(block: BlockAPI) -> bytes:
    return rlp.encode(block)


def decode_block(raw: bytes, block_class: type[BlockAPI]) -> BlockAPI:
    return rlp.decode(raw, sedes=block_class)


def encode_receipts(receipts: list[ReceiptAPI], senders: list[bytes]) -> bytes:
    return rlp.encode([[receipt.encode() for receipt in receipts], senders])


def decode_receipts(raw: bytes, receipt_builder: Any) -> tuple[list[ReceiptAPI], list[bytes]]:
    encoded, senders = rlp.decode(raw)
    return [receipt_builder.decode(item) for item in encoded], list(senders)
