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
from eth.rlp.receipts import Receipt
from eth.vm.forks.berlin.receipts import TypedReceipt
from eth.vm.forks.prague.blocks import PragueBackwardsHeader
from eth_utils import ValidationError
from rlp.codec import consume_length_prefix, encode_raw, length_prefix

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


def encode_block(block: BlockAPI, encoded_transactions: list[bytes] | None = None) -> bytes:
    """``rlp.encode(block)``; given the transactions' own encodings (``tx.encode()``, the
    items of the block's transaction root), made from them and the header's encoding
    (kept by rlp once the header is hashed) instead of serializing every field again.
    In a block an EIP-2718 typed transaction is a byte string, a legacy one its list."""
    if encoded_transactions is None:
        return rlp.encode(block)
    transactions = [tx if tx[0] >= 0xC0 else encode_raw(tx) for tx in encoded_transactions]
    rest = [rlp.encode(getattr(block, name)) for name in block._meta.field_names[2:]]
    return _list([rlp.encode(block.header), _list(transactions), *rest])


def _list(encoded_items: list[bytes]) -> bytes:
    """The RLP list of items already encoded."""
    body = b"".join(encoded_items)
    return length_prefix(len(body), 0xC0) + body


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


def encode_receipt(receipt: ReceiptAPI) -> bytes:
    """``receipt.encode()``, made from the receipt's fields, as the receipt root and the
    store take it: rlp's sedes, and py-evm's type byte (through eth_utils' ``to_bytes``),
    took 25 µs of a one-transfer block. A receipt of a layout other than py-evm's
    ``Receipt`` (status, gas used, bloom, logs) is left to its own ``encode``."""
    if isinstance(receipt, TypedReceipt):
        if receipt.get_payload_codec(receipt.type_id) is not Receipt:
            return receipt.encode()
        prefix = bytes([receipt.type_id])
    elif isinstance(receipt, Receipt):
        prefix = b""
    else:
        return receipt.encode()
    gas_used = receipt.gas_used
    logs = [
        [log.address, [topic.to_bytes(32, "big") for topic in log.topics], log.data]
        for log in receipt.logs
    ]
    fields = [
        receipt.state_root,
        gas_used.to_bytes((gas_used.bit_length() + 7) // 8, "big"),
        receipt.bloom.to_bytes(256, "big"),
        logs,
    ]
    return prefix + encode_raw(fields)


def encode_receipts(encoded: list[bytes], senders: list[bytes], signers: Signers) -> bytes:
    """``encoded``: each receipt's own encoding (``receipt.encode()``), which the block's
    execution made for its receipt root."""
    calls = [[list(call) for call in tx] for tx in signers]
    return encode_raw([encoded, senders, calls])  # all byte strings: rlp.encode's result


def decode_receipts(
    raw: bytes, receipt_builder: Any
) -> tuple[list[ReceiptAPI], list[bytes], Signers]:
    encoded, senders, calls = rlp.decode(raw)
    signers = [tuple(tuple(call) for call in tx) for tx in calls]
    return [receipt_builder.decode(item) for item in encoded], list(senders), signers
