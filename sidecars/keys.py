"""Key files for executors.

A key file holds one secp256k1 private key as 64 hex digits (an optional ``0x`` and
surrounding whitespace are accepted), like geth's ``--nodekey`` file. It is written with
mode 0600 because whoever reads it can sign attestations in the key's name.
"""

import os
from pathlib import Path

from eth_keys import keys
from eth_utils import to_checksum_address

from sidecars.errors import SidecarError


class KeyFileError(SidecarError):
    """A key file is missing, unreadable or does not hold a valid private key."""


def load_key(path: str | Path) -> keys.PrivateKey:
    """Read a private key from ``path``, with an error that names the file."""
    try:
        text = Path(path).read_text().strip()
    except OSError as exc:
        raise KeyFileError(f"cannot read key file {path}: {exc.strerror}") from None
    text = text.removeprefix("0x")
    try:
        raw = bytes.fromhex(text)
        if len(raw) != 32:
            raise ValueError
        return keys.PrivateKey(raw)
    except Exception:
        raise KeyFileError(
            f"key file {path} must hold a 32-byte secp256k1 private key as 64 hex digits"
        ) from None


def write_key(path: str | Path, key: keys.PrivateKey) -> None:
    """Write ``key`` to a new file at ``path`` that only its owner can read."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key.to_hex() + "\n")


def new_key() -> keys.PrivateKey:
    """A fresh random private key."""
    return keys.PrivateKey(os.urandom(32))


def address_of(key: keys.PrivateKey) -> str:
    """The checksummed address that ``key`` signs for."""
    return to_checksum_address(key.public_key.to_canonical_address())
