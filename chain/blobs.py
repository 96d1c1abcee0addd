"""Blob transactions in their network form (EIP-4844, EIP-7594): the sidecar a sender
gives with a type-3 transaction, split from it and checked before the pool admits it.

A block carries a blob transaction in its canonical form, ``0x03 || rlp(tx_payload_body)``,
which names its blobs only by versioned hash. A sender gives the blobs themselves in the
*network* form, one of::

    0x03 || rlp([tx_payload_body, blobs, commitments, proofs])                 # EIP-4844
    0x03 || rlp([tx_payload_body, 1, blobs, commitments, cell_proofs])         # EIP-7594

The pool keeps the sidecar beside the transaction (a consensus client asks for it with
the payload: ``engine_getPayloadV3``'s ``blobsBundle``, ``engine_getBlobsV1``). Before it
does, each versioned hash must be ``kzg_to_versioned_hash(commitment)`` and every KZG proof
must verify against its blob and commitment, checked as geth's pool checks them and
refused with geth's words. The KZG library (ckzg) ships with py-evm, and so does the
trusted setup it reads; the setup is loaded once, when the first blob transaction comes
(a few seconds), never at start-up.
"""

import functools
from dataclasses import dataclass
from typing import Any

import ckzg
import rlp
from eth._utils.calculations import fake_exponential
from eth.abc import BlockHeaderAPI
from eth.precompiles.point_evaluation import TRUSTED_SETUP_PATH, kzg_to_versioned_hash
from eth.vm.forks.cancun.constants import BLOB_BASE_FEE_UPDATE_FRACTION
from eth.vm.forks.prague.constants import BLOB_BASE_FEE_UPDATE_FRACTION_PRAGUE

from chain.headers import EXCESS_BLOB_GAS, MAX_BLOB_GAS
from chain.vm import ChainConfig

BLOB_TX_TYPE = 3
BYTES_PER_BLOB = 131_072
BYTES_PER_COMMITMENT = BYTES_PER_PROOF = 48
CELLS_PER_EXT_BLOB = 128  # EIP-7594: a cell proof per cell of the extended blob
MAX_BLOBS_PER_TX = 6  # geth's params.BlobTxMaxBlobs (the pool's bound; EIP-7594's)
MIN_BLOB_GAS_PRICE = 1
SIDECAR_VERSIONS = {0: "proofs", 1: "cell proofs"}


# each fork's blob fee parameters (EIP-4844, EIP-7691): how the fee answers excess gas,
# and the excess a block inherits from its parent
UPDATE_FRACTION = {
    "cancun": BLOB_BASE_FEE_UPDATE_FRACTION,
    "prague": BLOB_BASE_FEE_UPDATE_FRACTION_PRAGUE,
}


def blob_base_fee(config: ChainConfig, header: BlockHeaderAPI) -> int:
    """The price of a unit of blob gas in ``header``'s block (1 before Cancun)."""
    fork = config.fork_at(header.timestamp)
    if fork not in UPDATE_FRACTION:
        return MIN_BLOB_GAS_PRICE
    return fake_exponential(MIN_BLOB_GAS_PRICE, header.excess_blob_gas, UPDATE_FRACTION[fork])


def next_blob_base_fee(config: ChainConfig, parent: BlockHeaderAPI) -> int:
    """The blob gas price of the block after ``parent`` (``eth_blobBaseFee``)."""
    fork = config.fork_at(parent.timestamp + 1)
    if fork not in UPDATE_FRACTION:
        return MIN_BLOB_GAS_PRICE
    excess = EXCESS_BLOB_GAS[fork](parent)
    return fake_exponential(MIN_BLOB_GAS_PRICE, excess, UPDATE_FRACTION[fork])


def blob_gas_used_ratio(config: ChainConfig, header: BlockHeaderAPI) -> float:
    allowance = MAX_BLOB_GAS.get(config.fork_at(header.timestamp), 0)
    return getattr(header, "blob_gas_used", 0) / allowance if allowance else 0.0


class BlobError(ValueError):
    """A blob transaction whose sidecar is missing, malformed or fails its proofs."""


@dataclass(frozen=True)
class BlobSidecar:
    """The blobs of one transaction with their commitments and proofs: one blob proof
    per blob (version 0) or :data:`CELLS_PER_EXT_BLOB` cell proofs per blob (version 1)."""

    version: int
    blobs: tuple[bytes, ...]
    commitments: tuple[bytes, ...]
    proofs: tuple[bytes, ...]

    def blob_proofs(self) -> tuple[bytes, ...]:
        """One EIP-4844 proof per blob, what ``engine_getPayloadV3/V4`` hand out before
        Osaka: the sender's, or computed from the blob when it sent cell proofs."""
        if self.version == 0:
            return self.proofs
        setup = trusted_setup()
        return tuple(
            bytes(ckzg.compute_blob_kzg_proof(blob, commitment, setup))
            for blob, commitment in zip(self.blobs, self.commitments, strict=True)
        )


@functools.cache
def trusted_setup() -> Any:
    """The KZG ceremony's output, as py-evm ships it (loaded once, on first use)."""
    return ckzg.load_trusted_setup(TRUSTED_SETUP_PATH, 0)


def split_network_form(raw: bytes) -> tuple[bytes, BlobSidecar | None]:
    """The canonical encoding of a type-3 transaction and its sidecar, if ``raw`` is in
    the network form; ``(raw, None)`` if it is already canonical. ``raw`` must have
    passed :func:`chain.limits.check_transaction`."""
    items = rlp.decode(raw[1:])
    if not items or not isinstance(items[0], list):
        return raw, None
    if rlp.encode(items) != raw[1:]:
        raise BlobError("rlp: non-canonical transaction encoding")
    if len(items) == 4:
        version, fields = 0, items[1:]
    elif len(items) == 5 and isinstance(items[1], bytes) and len(items[1]) <= 1:
        version, fields = int.from_bytes(items[1], "big"), items[2:]
        if version not in SIDECAR_VERSIONS or version == 0:  # version 0 has no version field
            raise BlobError(f"unsupported blob sidecar version {version}")
    else:
        raise BlobError(
            "rlp: blob transaction network form must be [tx, blobs, commitments, proofs] "
            "or [tx, version, blobs, commitments, cell proofs]"
        )
    blobs, commitments, proofs = (_byte_strings(f, name, size) for f, name, size in zip(
        fields,
        ("blobs", "commitments", "proofs"),
        (BYTES_PER_BLOB, BYTES_PER_COMMITMENT, BYTES_PER_PROOF),
        strict=True,
    ))  # fmt: skip
    return b"\x03" + rlp.encode(items[0]), BlobSidecar(version, blobs, commitments, proofs)


def _byte_strings(value: Any, name: str, size: int) -> tuple[bytes, ...]:
    if not isinstance(value, list) or not all(isinstance(v, bytes) for v in value):
        raise BlobError(f"rlp: sidecar {name} must be a list of byte strings")
    for index, item in enumerate(value):
        if len(item) != size:
            raise BlobError(f"rlp: sidecar {name}[{index}] is {len(item)} bytes, expected {size}")
    return tuple(value)


def validate_sidecar(tx: Any, sidecar: BlobSidecar | None) -> None:
    """geth's ``validateBlobTx``: the sidecar matches the transaction's versioned hashes
    and every proof verifies; raises :class:`BlobError` with geth's words otherwise."""
    if sidecar is None:
        raise BlobError("missing sidecar in blob transaction")
    if tx.max_fee_per_blob_gas < MIN_BLOB_GAS_PRICE:
        raise BlobError(
            f"transaction gas price below minimum: blob fee cap {tx.max_fee_per_blob_gas}, "
            f"minimum needed {MIN_BLOB_GAS_PRICE}"
        )
    hashes = tx.blob_versioned_hashes
    if not hashes:
        raise BlobError("blobless blob transaction")
    if len(hashes) > MAX_BLOBS_PER_TX:
        raise BlobError(
            f"too many blobs in transaction: have {len(hashes)}, permitted {MAX_BLOBS_PER_TX}"
        )
    if len(sidecar.blobs) != len(hashes):
        raise BlobError(
            f"invalid number of {len(sidecar.blobs)} blobs compared to {len(hashes)} blob hashes"
        )
    if len(sidecar.commitments) != len(hashes):
        raise BlobError(
            f"invalid number of {len(sidecar.commitments)} blob commitments compared to "
            f"{len(hashes)} blob hashes"
        )
    for index, (commitment, versioned_hash) in enumerate(
        zip(sidecar.commitments, hashes, strict=True)
    ):
        computed = kzg_to_versioned_hash(commitment)
        if computed != versioned_hash:
            raise BlobError(
                f"blob {index}: computed hash 0x{computed.hex()} mismatches transaction one "
                f"0x{bytes(versioned_hash).hex()}"
            )
    per_blob = 1 if sidecar.version == 0 else CELLS_PER_EXT_BLOB
    if len(sidecar.proofs) != len(hashes) * per_blob:
        raise BlobError(
            f"invalid number of {len(sidecar.proofs)} blob proofs expected {len(hashes) * per_blob}"
        )
    if not _proofs_verify(sidecar):
        raise BlobError(f"KZG verification error: invalid blob {SIDECAR_VERSIONS[sidecar.version]}")


def _proofs_verify(sidecar: BlobSidecar) -> bool:
    setup = trusted_setup()
    try:
        if sidecar.version == 0:
            return ckzg.verify_blob_kzg_proof_batch(
                b"".join(sidecar.blobs),
                b"".join(sidecar.commitments),
                b"".join(sidecar.proofs),
                setup,
            )
        cells, commitments, indices = [], [], []
        for blob, commitment in zip(sidecar.blobs, sidecar.commitments, strict=True):
            cells.extend(ckzg.compute_cells(blob, setup))
            commitments.extend([commitment] * CELLS_PER_EXT_BLOB)
            indices.extend(range(CELLS_PER_EXT_BLOB))
        return ckzg.verify_cell_kzg_proof_batch(
            commitments, indices, cells, list(sidecar.proofs), setup
        )
    except RuntimeError:  # ckzg's word for a commitment or proof that is not a G1 point,
        return False  # or a blob with a field element past the modulus
