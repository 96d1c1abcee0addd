"""Sibyl's typed transaction envelopes (EIP-2718: ``type ‖ rlp(payload)``), decoded one
way: the scheduled (0x10) and attested (0x13) transactions share this first step."""

import rlp


def envelope_fields(encoded: bytes, name: str, error: type[Exception]) -> list:
    """The RLP list after an envelope's type byte; anything else raises ``error`` with a
    message that starts with ``name`` (the envelope's kind, as a user reads it)."""
    try:
        payload = rlp.decode(encoded[1:])
    except rlp.DecodingError as exc:
        raise error(f"{name}: {exc}") from None
    if not isinstance(payload, list):
        raise error(f"{name}: must be an RLP list")
    return payload


class Envelope:
    """A transaction of Sibyl's own type: two are the same when their encodings are."""

    def encode(self) -> bytes:
        raise NotImplementedError

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.encode() == self.encode()

    def __hash__(self) -> int:
        return hash(self.encode())
