"""Attestation digests, signatures and recovery (DESIGN section 5)."""

import pytest
from eth_hash.auto import keccak
from eth_keys import keys

from sidecars.abi import INFER_ADDRESS
from sidecars.attestation import (
    SECP256K1_N,
    InvalidAttestation,
    attestation_digest,
    recover_signer,
    sign_digest,
    signing_key,
    sync_context,
)

KEY = keys.PrivateKey(keccak(b"attestation test key"))
MODEL = keccak(b"model")
INPUT_HASH = keccak(b"input")
OUTPUT_HASH = keccak(b"output")
CONTEXT = keccak(b"context")


def test_digest_is_keccak_of_domain_and_six_words():
    digest = attestation_digest(19183, INFER_ADDRESS, MODEL, INPUT_HASH, OUTPUT_HASH, CONTEXT)
    expected = keccak(
        b"\x19sibyl-spc-v1"
        + (19183).to_bytes(32, "big")
        + bytes(12) + INFER_ADDRESS
        + MODEL + INPUT_HASH + OUTPUT_HASH + CONTEXT
    )  # fmt: skip
    assert digest == expected
    assert len(b"\x19sibyl-spc-v1") == 13


def test_digest_rejects_wrong_field_sizes():
    with pytest.raises(ValueError, match="precompile address must be 20 bytes"):
        attestation_digest(1, bytes(32), MODEL, INPUT_HASH, OUTPUT_HASH, CONTEXT)
    with pytest.raises(ValueError, match="context must be 32 bytes"):
        attestation_digest(1, INFER_ADDRESS, MODEL, INPUT_HASH, OUTPUT_HASH, b"short")


def test_sync_context_is_keccak_of_tx_hash_and_index():
    tx_hash = keccak(b"tx")
    assert sync_context(tx_hash, 3) == keccak(tx_hash + (3).to_bytes(32, "big"))


def test_signature_recovers_to_the_signer_and_matches_eth_keys():
    digest = attestation_digest(1, INFER_ADDRESS, MODEL, INPUT_HASH, OUTPUT_HASH, CONTEXT)
    signature = sign_digest(KEY, digest)
    assert len(signature) == 65 and signature[64] in (0, 1)
    assert recover_signer(digest, signature) == KEY.public_key.to_canonical_address()
    assert sign_digest(signing_key(KEY), digest) == signature
    assert KEY.sign_msg_hash(digest).to_bytes() == signature  # eth_keys, same RFC 6979 nonce


def test_high_s_signature_is_rejected():
    digest = keccak(b"digest")
    signature = sign_digest(KEY, digest)
    s = int.from_bytes(signature[32:64], "big")
    flipped = signature[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([1 - signature[64]])
    with pytest.raises(InvalidAttestation, match="upper half"):
        recover_signer(digest, flipped)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda sig: sig[:64], "must be 65 bytes"),
        (lambda sig: sig + b"\x00", "must be 65 bytes"),
        (lambda sig: sig[:64] + b"\x1b", "v must be 0 or 1, got 27"),
        (lambda sig: bytes(32) + sig[32:], "r is out of range"),
        (lambda sig: sig[:32] + bytes(32) + sig[64:], "s is zero"),
    ],
)
def test_malformed_signatures_are_rejected(mutate, message):
    digest = keccak(b"digest")
    with pytest.raises(InvalidAttestation, match=message):
        recover_signer(digest, mutate(sign_digest(KEY, digest)))


def test_signature_over_another_digest_recovers_to_another_address():
    signature = sign_digest(KEY, keccak(b"one"))
    assert recover_signer(keccak(b"two"), signature) != KEY.public_key.to_canonical_address()
