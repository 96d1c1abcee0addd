"""chain.vm.signing_message cuts a typed transaction's signed message from its encoding;
it must be, byte for byte, what py-evm's ``get_message_for_signing`` builds, for every
transaction type the pool admits (the recovered sender depends on it)."""

import pytest
import rlp
from eth_account import Account

from chain.vm import recover_sender, signing_message, vm_classes

TO = bytes.fromhex("5fbdb2315678afecb367f032d93f642f64180aa3")
ACCESS = [[TO, [b"\x00" * 31 + b"\x01", b"\x11" * 32]]]
R, S = 0x1234 << 200, 0x5678 << 100  # the message does not depend on the signature

TYPED = {
    1: [1337, 7, 10**9, 21000, TO, 5, b"\x01\x02", ACCESS, 1, R, S],
    2: [1337, 7, 10**9, 2 * 10**9, 90000, TO, 0, b"\xa9\x05\x9c\xbb" + b"\x00" * 64, [], 0, R, S],
    3: [1337, 0, 1, 2, 21000, TO, 0, b"", ACCESS, 3, [b"\x01" + b"\x22" * 31], 1, R, S],
    4: [1337, 1, 1, 2, 60000, TO, 0, b"", [], [[1337, TO, 4, 1, R, S]], 0, R, S],
}


@pytest.mark.parametrize("type_id", sorted(TYPED))
def test_a_typed_transactions_message_is_py_evms(type_id):
    encoded = bytes([type_id]) + rlp.encode(TYPED[type_id])
    tx = vm_classes(True)["prague"].get_transaction_builder().decode(encoded)
    assert signing_message(tx) == tx.get_message_for_signing()
    assert tx.encode() == encoded  # its type byte is chain.vm.CachedTypedSender's


@pytest.mark.parametrize("chain_id", [None, 1337])
def test_a_legacy_transaction_recovers_its_signer(chain_id):
    key = Account.create()
    fields = {"nonce": 3, "gasPrice": 10**9, "gas": 21000, "to": TO, "value": 1, "data": b""}
    signed = key.sign_transaction(fields | ({"chainId": chain_id} if chain_id else {}))
    tx = vm_classes(True)["prague"].get_transaction_builder().decode(signed.raw_transaction)
    assert signing_message(tx) == tx.get_message_for_signing()
    assert recover_sender(tx) == bytes.fromhex(key.address[2:])


def test_a_signed_dynamic_fee_transaction_recovers_its_signer():
    key = Account.create()
    signed = key.sign_transaction(
        {"type": 2, "chainId": 1337, "nonce": 0, "maxFeePerGas": 2, "maxPriorityFeePerGas": 1,
         "gas": 21000, "to": TO, "value": 1, "data": b"", "accessList": []}
    )  # fmt: skip
    tx = vm_classes(True)["prague"].get_transaction_builder().decode(signed.raw_transaction)
    assert recover_sender(tx) == bytes.fromhex(key.address[2:])
