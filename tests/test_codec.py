"""Encodings made from parts (chain.storage.codec: a block from its header's and its
transactions' own encodings, a receipt from its fields; chain.state_db: an account from
its four fields) are byte for byte rlp's and py-evm's own, for every transaction and
receipt layout a block holds."""

import pytest
import rlp
from eth.rlp.accounts import Account
from eth.rlp.logs import Log
from eth.rlp.receipts import Receipt
from eth.vm.forks.shanghai.withdrawals import Withdrawal
from eth_keys import keys

from chain.ai.delivery import DELIVERY_TX_TYPE, DeliveryReceipt
from chain.state_db import CopyingAccount, decode_account, encode_account
from chain.storage import codec
from chain.vm import decode_transaction, vm_classes
from scheduler.transactions import SCHEDULED_TX_TYPE, ScheduledReceipt

KEY = keys.PrivateKey(b"\x01" * 32)
RECIPIENT = b"\x22" * 20


def signed_transactions(vm_class):
    builder = vm_class.get_transaction_builder()
    legacy = builder.create_unsigned_transaction(
        nonce=0, gas_price=10**9, gas=21_000, to=RECIPIENT, value=1, data=b""
    ).as_signed_transaction(KEY, chain_id=19183)
    dynamic = builder.new_unsigned_dynamic_fee_transaction(
        chain_id=19183,
        nonce=1,
        max_priority_fee_per_gas=1,
        max_fee_per_gas=10**10,
        gas=60_000,
        to=RECIPIENT,
        value=0,
        data=b"\xa9\x05\x9c\xbb" + b"\x00" * 64,
        access_list=[(RECIPIENT, [1, 2])],
    ).as_signed_transaction(KEY)
    return [decode_transaction(vm_class, tx.encode()) for tx in (legacy, dynamic)]


def test_a_block_made_from_its_parts_is_rlps_encoding():
    vm_class = vm_classes()["prague"]
    block_class = vm_class.get_block_class()
    header_class = dict(block_class._meta.fields)["header"]
    header = header_class(
        difficulty=0,
        block_number=7,
        gas_limit=30_000_000,
        timestamp=1_700_000_000,
        coinbase=RECIPIENT,
        parent_beacon_block_root=b"\x00" * 32,
    )
    transactions = signed_transactions(vm_class)
    withdrawals = [Withdrawal(index=3, validator_index=9, address=RECIPIENT, amount=10**9)]
    for txs, ws in ((transactions, withdrawals), ([], []), (transactions[:1], [])):
        block = block_class(header=header, transactions=txs, uncles=[], withdrawals=ws)
        assert header.hash  # encodes the header, which rlp keeps, as a committed block's
        encoded = codec.encode_block(block, [tx.encode() for tx in txs])
        assert encoded == rlp.encode(block)
        assert codec.encode_block(block) == encoded


def test_a_receipt_made_from_its_fields_is_py_evms_encoding():
    logs = [
        Log(RECIPIENT, (1, 2**256 - 1, 0), b"data"),
        Log(b"\x33" * 20, (), b""),
    ]
    inner = [
        Receipt(b"\x01", 51_234, logs),
        Receipt(b"", 21_000, []),
        Receipt(b"\x44" * 32, 0, logs[:1]),  # a pre-Byzantium state root
    ]
    receipt_builder = vm_classes()["prague"].get_block_class().receipt_builder
    typed = receipt_builder.typed_receipt_class  # Sibyl's: py-evm's types and its own
    receipts = [
        *inner,
        *(typed(2, receipt) for receipt in inner),
        typed(1, inner[0]),
        typed(4, inner[1]),
        typed(SCHEDULED_TX_TYPE, inner[0]),
        ScheduledReceipt(SCHEDULED_TX_TYPE, inner[0]),
        DeliveryReceipt(DELIVERY_TX_TYPE, inner[1]),
    ]
    for receipt in receipts:
        assert codec.encode_receipt(receipt) == receipt.encode()
        assert receipt_builder.decode(codec.encode_receipt(receipt)) == receipt


def test_stored_receipts_are_rlps_encoding():
    encoded = [Receipt(b"\x01", 21_000, []).encode(), b"\x02\xc0"]
    senders = [b"\x01" * 20, b"\x02" * 20]
    signers = [(), ((b"\x03" * 20, b"\x04" * 20), (b"\x05" * 20,))]
    raw = codec.encode_receipts(encoded, senders, signers)
    calls = [[list(call) for call in tx] for tx in signers]
    assert raw == rlp.encode([encoded, senders, calls])


def test_accounts_encode_and_decode_as_rlps_sedes():
    accounts = [
        CopyingAccount(),
        CopyingAccount(1, 2, b"\x01" * 32, b"\x02" * 32),
        CopyingAccount(2**64 - 2, 2**256 - 1, b"\x03" * 32, b"\x04" * 32),
    ]
    for account in accounts:
        encoded = encode_account(account)
        assert encoded == rlp.encode(account, sedes=Account)
        assert decode_account.__wrapped__(encoded) == account
        assert type(decode_account.__wrapped__(encoded)) is CopyingAccount
    not_canonical = rlp.encode([b"\x00\x01", b"", b"\x01" * 32, b"\x02" * 32])
    with pytest.raises(rlp.DeserializationError):  # the sedes' own error
        decode_account.__wrapped__(not_canonical)
