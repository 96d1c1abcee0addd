"""How headers, blocks and receipts are serialized in the store and on the wire.

Headers and blocks are their consensus RLP (what ``debug_getRawHeader`` and
``debug_getRawBlock`` return). A block's receipts are stored with the senders of its
transactions and the executors that attested each AI call, ``rlp([[receipt, ...],
[sender, ...], [[[executor, ...] per call] per transaction]])``, so that serving a receipt
never repeats a signature recovery.
"""

from typing import Any

import rlp
from eth.abc import BlockAPI, BlockHeaderAPI, ReceiptAPI
from eth.exceptions import UnrecognizedTransactionType
from eth.vm.forks.prague.blocks import PragueBackwardsHeader
from eth_utils import ValidationError
from rlp.codec import consume_length_prefix

from chain.limits import check_rlp
from chain.vm import ChainConfig, vm_class_of

# What pyrlp and py-evm raise for bytes that are not what they should decode to.
DECODE_ERRORS = (
    rlp.DecodingError,
    rlp.DeserializationError,
    ValidationError,  # e.g. a typed transaction whose type byte is 0x80 or more
    UnrecognizedTransactionType,
    ValueError,
    IndexError,
    TypeError,
    RecursionError,  # a long, deeply nested byte string inside an item (chain.limits)
)


def encode_header(header: BlockHeaderAPI) -> bytes:
    return rlp.encode(header)


def decode_header(raw: bytes) -> BlockHeaderAPI:
    """A header of any fork; its layout follows from its number of fields."""
    return rlp.decode(raw, sedes=PragueBackwardsHeader)


def encode_block(block: BlockAPI) -> bytes:
    return rlp.encode(block)


def decode_block(raw: bytes, block_class: type[BlockAPI]) -> BlockAPI:
    return rlp.decode(raw, sedes=block_class)


def decode_any_block(config: ChainConfig, raw: bytes) -> BlockAPI:
    """A block of any fork of ``config``: its header (number, timestamp and difficulty)
    names the layout.

    Raises ``rlp.DecodingError``/``rlp.DeserializationError`` (or ``ValueError``) for bytes
    that are not a block; nesting is bounded before any decoder runs (:mod:`chain.limits`).
    """
    check_rlp(raw)
    header_rlp = rlp.decode(raw, strict=True)[0]
    header = PragueBackwardsHeader.deserialize(header_rlp)
    return decode_block(raw, vm_class_of(config, header).get_block_class())


def split_rlp_items(data: bytes) -> list[bytes]:
    """Cut a concatenation of RLP items (an export file) into the items."""
    items, position = [], 0
    while position < len(data):
        _, _, length, start = consume_length_prefix(data, position)
        end = start + length
        if end > len(data):
            raise rlp.DecodingError("truncated RLP item at the end of the data", data)
        items.append(data[position:end])
        position = end
    return items


Signers = list[tuple[tuple[bytes, ...], ...]]  # per transaction, per AI call: executors


def encode_receipts(encoded: list[bytes], senders: list[bytes], signers: Signers) -> bytes:
    """``encoded``: each receipt's own encoding (``receipt.encode()``), which the block's
    execution made for its receipt root."""
    calls = [[list(call) for call in tx] for tx in signers]
    return rlp.encode([encoded, senders, calls])


def decode_receipts(
    raw: bytes, receipt_builder: Any
) -> tuple[list[ReceiptAPI], list[bytes], Signers]:
    encoded, senders, calls = rlp.decode(raw)
    signers = [tuple(tuple(call) for call in tx) for tx in calls]
    return [receipt_builder.decode(item) for item in encoded], list(senders), signers
