"""Attested transactions (type 0x13): a transaction and the AI results it consumed.

A transaction whose execution made sidecar-backed AI calls enters the block wrapped as
``0x13 ‖ rlp([innerTx, [[precompile, keccak256(input), status, output, [signature, ...]],
...]])``, results in call order (DESIGN section 5). A result of a ``prove``-mode model
carries a sixth field, its proof (``sidecars.zk``), and no signature; every other result
keeps the five fields, so their encoding is unchanged (docs/decisions.md). Every node
replays the inner transaction and takes each AI call's output from the next result
instead of running the model. The wrapper is the inner transaction for everything else:
its hash (so wallets see their own hash), sender, nonce, gas, receipt type; only its
encoding differs.
"""

from dataclasses import dataclass
from typing import Any

import rlp

from chain.envelope import Envelope, envelope_fields

ATTESTED_TX_TYPE = 0x13
OK, FAILED = 1, 0
MAX_RESULTS = 1024
SIGNATURE_LENGTH = 65


class MalformedAttestedTransaction(ValueError):
    """Bytes that claim to be an attested transaction and are not one."""


@dataclass(frozen=True)
class SpcResult:
    """The recorded outcome of one AI call."""

    precompile: bytes
    input_hash: bytes
    status: int
    output: bytes
    signatures: tuple[bytes, ...]
    proof: bytes = b""  # prove mode: the proof of the output, in place of signatures

    def to_rlp(self) -> list:
        fields = [
            self.precompile,
            self.input_hash,
            self.status,
            self.output,
            list(self.signatures),
        ]
        return [*fields, self.proof] if self.proof else fields

    @classmethod
    def from_rlp(cls, item: Any, position: int) -> "SpcResult":
        where = f"result {position}"
        if not isinstance(item, list) or len(item) not in (5, 6):
            raise MalformedAttestedTransaction(f"{where}: must be a list of 5 fields (or 6)")
        precompile, input_hash, status, output, signatures = item[:5]
        proof = item[5] if len(item) == 6 else b""
        if len(item) == 6 and (not isinstance(proof, bytes) or not proof):
            raise MalformedAttestedTransaction(f"{where}: a sixth field must be a proof")
        if not isinstance(precompile, bytes) or len(precompile) != 20:
            raise MalformedAttestedTransaction(f"{where}: precompile must be 20 bytes")
        if not isinstance(input_hash, bytes) or len(input_hash) != 32:
            raise MalformedAttestedTransaction(f"{where}: input hash must be 32 bytes")
        if status not in (b"", b"\x01"):
            raise MalformedAttestedTransaction(f"{where}: status must be 0 or 1")
        if not isinstance(output, bytes) or not isinstance(signatures, list):
            raise MalformedAttestedTransaction(f"{where}: output or signatures malformed")
        if any(not isinstance(s, bytes) or len(s) != SIGNATURE_LENGTH for s in signatures):
            raise MalformedAttestedTransaction(f"{where}: signatures must be 65 bytes each")
        code = OK if status == b"\x01" else FAILED
        if code == FAILED and (output or signatures or proof):
            raise MalformedAttestedTransaction(f"{where}: a failed call has no output or signature")
        return cls(precompile, input_hash, code, output, tuple(signatures), proof)


class AttestedTransaction(Envelope):
    """The inner transaction, plus ``results``; attribute reads go to the inner one."""

    def __init__(self, inner: Any, results: tuple[SpcResult, ...]) -> None:
        self.inner = inner
        self.results = results

    def __getattr__(self, name: str) -> Any:
        if name in ("inner", "_encoded") or name.startswith("__"):  # unset, or a protocol
            raise AttributeError(name)
        return getattr(self.inner, name)

    def __copy__(self) -> "AttestedTransaction":
        return self  # immutable, like the transactions it wraps

    def __deepcopy__(self, memo: dict) -> "AttestedTransaction":
        return self

    def encode(self) -> bytes:
        """``0x13 ‖ rlp([inner, results])``, made once: outputs can be large and the
        encoding is read for the transaction root, the block body and the hash."""
        try:
            return self._encoded
        except AttributeError:
            payload = [self.inner.encode(), [r.to_rlp() for r in self.results]]
            self._encoded = bytes([ATTESTED_TX_TYPE]) + rlp.encode(payload)
            return self._encoded

    @classmethod
    def decode(cls, encoded: bytes, decode_inner: Any) -> "AttestedTransaction":
        """Decode ``0x13 ‖ rlp(...)``; ``decode_inner`` decodes the inner transaction."""
        payload = envelope_fields(encoded, "attested transaction", MalformedAttestedTransaction)
        if len(payload) != 2:
            raise MalformedAttestedTransaction("attested transaction: must hold [inner, results]")
        inner_bytes, items = payload
        if not isinstance(inner_bytes, bytes) or not inner_bytes:
            raise MalformedAttestedTransaction("attested transaction: inner transaction missing")
        if inner_bytes[0] == ATTESTED_TX_TYPE:
            raise MalformedAttestedTransaction("attested transaction: cannot wrap another one")
        if not isinstance(items, list) or not 0 < len(items) <= MAX_RESULTS:
            raise MalformedAttestedTransaction(
                f"attested transaction: needs 1 to {MAX_RESULTS} results"
            )
        results = tuple(SpcResult.from_rlp(item, i) for i, item in enumerate(items))
        transaction = cls(decode_inner(inner_bytes), results)
        transaction._encoded = bytes(encoded)  # strict RLP: the one encoding of these fields
        return transaction


def inner_transaction(tx: Any) -> Any:
    """The transaction a user signed, whether or not it is wrapped."""
    return tx.inner if isinstance(tx, AttestedTransaction) else tx
