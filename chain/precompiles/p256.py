"""P256VERIFY (0x…0100): a secp256r1 signature check, with RIP-7212's ABI and gas.

Passkeys and secure enclaves sign with P-256, so wallets built on them verify those
signatures on chain; done in EVM code that costs hundreds of thousands of gas. The input
is 160 bytes, ``hash ‖ r ‖ s ‖ x ‖ y`` (32 bytes each, big-endian); the output is the
32-byte word 1 for a valid signature and nothing otherwise. Any input is charged the same
3450 gas and the call never reverts: a malformed input is an invalid signature. The
hash is used as given (not hashed again); ``s`` may be high, as RIP-7212 allows.
Verification is OpenSSL's, through ``cryptography``.
"""

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, encode_dss_signature
from eth.abc import ComputationAPI

P256VERIFY = bytes.fromhex("0000000000000000000000000000000000000100")
GAS = 3_450
INPUT_SIZE = 160
VALID = (1).to_bytes(32, "big")
# the curve's field prime and group order (SEC 2, secp256r1)
P = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_PREHASHED = ec.ECDSA(Prehashed(hashes.SHA256()))


def p256_verify(computation: ComputationAPI) -> ComputationAPI:
    computation.consume_gas(GAS, reason="P256VERIFY")
    data = computation.msg.data_as_bytes
    if len(data) == INPUT_SIZE and verify(data):
        computation.output = VALID
    return computation


def verify(data: bytes) -> bool:
    """Whether the 160-byte ``hash ‖ r ‖ s ‖ x ‖ y`` holds a valid signature."""
    digest = data[:32]
    r, s, x, y = (int.from_bytes(data[i : i + 32], "big") for i in range(32, 160, 32))
    if not (0 < r < N and 0 < s < N and x < P and y < P):
        return False
    try:  # refuses points off the curve, the point at infinity (0, 0) among them
        key = ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()
        key.verify(encode_dss_signature(r, s), digest, _PREHASHED)
    except (ValueError, InvalidSignature):
        return False
    return True
