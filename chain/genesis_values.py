"""A genesis file's values read as geth reads them: numbers as JSON numbers, hex or
decimal strings, bytes as hex, storage words left-padded, objects with known keys. Every
error names the offending key (:class:`GenesisError`), so an operator can fix the file
without reading code."""

from typing import Any

from chain.errors import SibylError


class GenesisError(SibylError):
    """A genesis file that cannot define a chain; the message names the key."""


def quantity(value: Any, key: str, *, bits: int = 256) -> int:
    """An integer given as a JSON number, a 0x-hex string or a decimal string (as geth)."""
    if isinstance(value, bool):
        raise GenesisError(f"{key}: must be a number, not a boolean")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str):
        try:
            number = int(value, 16) if value.lower().startswith("0x") else int(value, 10)
        except ValueError:
            raise GenesisError(f"{key}: {value!r} is not a hex or decimal number") from None
    else:
        raise GenesisError(f"{key}: must be a number or a numeric string")
    if not 0 <= number < 2**bits:
        raise GenesisError(f"{key}: {number} is out of range for a {bits}-bit unsigned value")
    return number


def hex_bytes(value: Any, key: str, *, length: int | None = None) -> bytes:
    if not isinstance(value, str):
        raise GenesisError(f"{key}: must be a hex string")
    text = value[2:] if value.lower().startswith("0x") else value
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise GenesisError(f"{key}: {value!r} is not valid hex") from None
    if length is not None and len(raw) != length:
        raise GenesisError(f"{key}: must be {length} bytes, got {len(raw)}")
    return raw


def storage_word(value: Any, key: str) -> int:
    """A storage key or value: up to 32 bytes of hex, left-padded as geth reads them."""
    raw = hex_bytes(value, key)
    if len(raw) > 32:
        raise GenesisError(f"{key}: more than 32 bytes")
    return int.from_bytes(raw, "big")


def json_object(value: Any, key: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise GenesisError(f"{key}: must be a JSON object")
    return value


def known_keys(data: dict[str, Any], key: str, allowed: set[str]) -> None:
    unknown = set(data) - allowed
    if unknown:
        raise GenesisError(f"{key}: unknown field {sorted(unknown)[0]!r}")


def choice(value: Any, key: str, options: tuple[str, ...]) -> str:
    if value not in options:
        raise GenesisError(f"{key}: must be one of {', '.join(options)}")
    return value
