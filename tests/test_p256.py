"""P256VERIFY (0x…0100, RIP-7212): secp256r1 signatures checked natively, through
eth_call and eth_estimateGas on a dev node, and against signatures made by OpenSSL."""

import hashlib
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from test_web3_e2e import transact

from chain.precompiles.p256 import GAS, N, P, verify

FIXTURES = Path(__file__).resolve().parent / "fixtures"
P256 = "0x0000000000000000000000000000000000000100"
VALID = "0x" + (1).to_bytes(32, "big").hex()


def words(*values: int) -> bytes:
    return b"".join(v.to_bytes(32, "big") for v in values)


def signed(message: bytes, seed: int = 1) -> tuple[bytes, int, int, int, int]:
    """``(hash, r, s, x, y)`` of a P-256 signature over sha256(message)."""
    key = ec.derive_private_key(seed, ec.SECP256R1())
    r, s = decode_dss_signature(key.sign(message, ec.ECDSA(hashes.SHA256())))
    point = key.public_key().public_numbers()
    return hashlib.sha256(message).digest(), r, s, point.x, point.y


def call_input(digest: bytes, r: int, s: int, x: int, y: int) -> bytes:
    return digest + words(r, s, x, y)


def test_signatures_made_by_openssl_verify_and_any_change_breaks_them():
    for seed in range(1, 21):
        digest, r, s, x, y = signed(b"passkey login %d" % seed, seed)
        assert verify(call_input(digest, r, s, x, y))
        assert verify(call_input(digest, r, N - s, x, y))  # RIP-7212 takes high s too
        flipped = bytes([digest[0] ^ 1]) + digest[1:]
        assert not verify(call_input(flipped, r, s, x, y))
        assert not verify(call_input(digest, s, r, x, y))
        other = signed(b"someone else", seed + 100)
        assert not verify(call_input(digest, r, s, other[3], other[4]))


@pytest.mark.parametrize(
    "change",
    [
        lambda d, r, s, x, y: (d, 0, s, x, y),
        lambda d, r, s, x, y: (d, r, 0, x, y),
        lambda d, r, s, x, y: (d, r + N, s, x, y),
        lambda d, r, s, x, y: (d, r, s + N, x, y),
        lambda d, r, s, x, y: (d, r, s, x + P, y),
        lambda d, r, s, x, y: (d, r, s, x, y + 1),  # off the curve
        lambda d, r, s, x, y: (d, r, s, 0, 0),  # the point at infinity's encoding
    ],
)
def test_out_of_range_values_and_bad_keys_are_invalid_not_errors(change):
    d, r, s, x, y = change(*signed(b"edge"))
    if max(r, s, x, y) < 2**256:
        assert not verify(call_input(d, r, s, x, y))


def test_the_node_answers_like_rip_7212(w3, accounts):
    digest, r, s, x, y = signed(b"a dApp's challenge")
    good = call_input(digest, r, s, x, y)
    assert w3.eth.call({"to": P256, "data": good}).to_0x_hex() == VALID
    for bad in (good[:-1], good + b"\x00", bytes(160), call_input(digest, r, s, x, y + 1)):
        assert w3.eth.call({"to": P256, "data": bad}).to_0x_hex() == "0x"
    for data in (good, good[:-1], b""):  # the same gas, valid or not, and no revert
        # (sent with the gas eth_estimateGas gives, which must cover EIP-7623's floor)
        receipt = transact(w3, accounts[0], {"to": P256, "data": "0x" + data.hex()})
        zeros = data.count(0)
        executed = 21000 + 4 * zeros + 16 * (len(data) - zeros) + GAS
        floor = 21000 + 10 * (zeros + 4 * (len(data) - zeros))
        assert receipt.status == 1 and receipt.gasUsed == max(executed, floor)


def test_a_contract_checks_passkey_signatures_through_the_library(w3, accounts):
    compiled = json.loads((FIXTURES / "P256Wallet.json").read_text())
    factory = w3.eth.contract(abi=compiled["abi"], bytecode=compiled["bytecode"])
    receipt = transact(w3, accounts[0], {"data": factory.constructor().data_in_transaction})
    wallet = w3.eth.contract(address=receipt.contractAddress, abi=compiled["abi"])
    digest, r, s, x, y = signed(b"webauthn assertion")
    as_words = [v.to_bytes(32, "big") for v in (r, s, x, y)]
    assert wallet.functions.check(digest, *as_words).call() is True
    assert wallet.functions.check(bytes(32), *as_words).call() is False
