"""Attestations: an executor's signature over the result of one AI call (DESIGN section 5).

The sidecar that runs a call signs, and every node that imports the block checks, the
same digest::

    keccak256(b"\\x19sibyl-spc-v1" ‖ chainId ‖ precompile ‖ modelId ‖ keccak256(input)
              ‖ keccak256(output) ‖ context)

with each of the six fields as one 32-byte word (integers big-endian, the 20-byte
precompile address left-padded with zeros). ``context`` is :func:`sync_context` for a
synchronous call and the job id for an asynchronous delivery.

Signatures are 65 bytes ``r ‖ s ‖ v`` with ``v`` in {0, 1} and ``s`` in the lower half of
the curve order (as EIP-2 requires of transactions), so each result has exactly one valid
signature per key. Signing and recovery use libsecp256k1 through coincurve. Each call
hashes seven times between sidecar and node, so :func:`keccak` here is the fast one.
"""

import coincurve
from eth_keys import keys

try:  # safe-pysha3 hashes ~4x faster than eth_hash's pycryptodome backend
    from sha3 import keccak_256

    def keccak(data: bytes) -> bytes:
        return keccak_256(data).digest()

except ImportError:
    from eth_hash.auto import keccak

DOMAIN = b"\x19sibyl-spc-v1"
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


class InvalidAttestation(ValueError):
    """A signature is malformed or does not recover to a public key."""


def attestation_digest(
    chain_id: int,
    precompile: bytes,
    model_id: bytes,
    input_hash: bytes,
    output_hash: bytes,
    context: bytes,
) -> bytes:
    """The 32-byte digest an executor signs for one call's result."""
    if not 0 <= chain_id < 2**256:
        raise ValueError(f"chain id {chain_id} does not fit in 32 bytes")
    if len(precompile) != 20:
        raise ValueError(f"precompile address must be 20 bytes, got {len(precompile)}")
    for name, field in (
        ("model id", model_id),
        ("input hash", input_hash),
        ("output hash", output_hash),
        ("context", context),
    ):
        if len(field) != 32:
            raise ValueError(f"{name} must be 32 bytes, got {len(field)}")
    return keccak(
        DOMAIN
        + chain_id.to_bytes(32, "big")
        + bytes(12)
        + precompile
        + model_id
        + input_hash
        + output_hash
        + context
    )


def sync_context(tx_hash: bytes, call_index: int) -> bytes:
    """The context of a transaction's ``call_index``-th sidecar-backed call."""
    if len(tx_hash) != 32:
        raise ValueError(f"transaction hash must be 32 bytes, got {len(tx_hash)}")
    return keccak(tx_hash + call_index.to_bytes(32, "big"))


def signing_key(key: keys.PrivateKey) -> coincurve.PrivateKey:
    """The libsecp256k1 form of ``key``; build it once and sign many digests with it."""
    return coincurve.PrivateKey(key.to_bytes())


def sign_digest(key: keys.PrivateKey | coincurve.PrivateKey, digest: bytes) -> bytes:
    """Sign ``digest``: 65 bytes ``r ‖ s ‖ v``, low ``s``, ``v`` in {0, 1}.

    Pass a key from :func:`signing_key` on hot paths: converting an eth_keys key costs
    more than the signature itself.
    """
    if len(digest) != 32:
        raise ValueError(f"digest must be 32 bytes, got {len(digest)}")
    if isinstance(key, keys.PrivateKey):
        key = signing_key(key)
    signature = key.sign_recoverable(digest, hasher=None)
    if signature[64] > 1:
        raise ValueError("signature recovery id above 1: r overflowed the curve order")
    return signature


def recover_signer(digest: bytes, signature: bytes) -> bytes:
    """The 20-byte address whose key made ``signature`` over ``digest``."""
    if len(digest) != 32:
        raise InvalidAttestation(f"digest must be 32 bytes, got {len(digest)}")
    if len(signature) != 65:
        raise InvalidAttestation(f"signature must be 65 bytes (r ‖ s ‖ v), got {len(signature)}")
    r = int.from_bytes(signature[0:32], "big")
    s = int.from_bytes(signature[32:64], "big")
    v = signature[64]
    if v > 1:
        raise InvalidAttestation(f"signature v must be 0 or 1, got {v}")
    if not 0 < r < SECP256K1_N:
        raise InvalidAttestation("signature r is out of range")
    if not 0 < s <= SECP256K1_N // 2:
        raise InvalidAttestation("signature s is zero or in the upper half of the curve order")
    try:
        public_key = coincurve.PublicKey.from_signature_and_message(signature, digest, hasher=None)
    except Exception:
        raise InvalidAttestation("signature does not recover to a public key") from None
    return keccak(public_key.format(compressed=False)[1:])[12:]
