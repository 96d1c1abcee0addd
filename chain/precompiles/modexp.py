"""MODEXP (EIP-198, 0x05) as geth computes it: ``base ** exponent % modulus``.

py-evm answers 0 whenever the base is empty, but an empty base is 0 and ``0 ** 0`` is 1:
with an empty base and exponent and a modulus above 1 the result is 1 (the consensus
tests' ``modexp`` case ``base_-exponent_-modulus_02`` in every fork from Byzantium).
Gas is the fork's own formula (EIP-198, or EIP-2565 from Berlin), taken from py-evm.
"""

from collections.abc import Callable

from eth.abc import ComputationAPI
from eth.precompiles.modexp import extract_lengths

MODEXP = b"\x00" * 19 + b"\x05"


def _field(data: bytes, start: int, length: int) -> int:
    """A big-endian field of ``data``; bytes past its end read as zeros."""
    return int.from_bytes(data[start : start + length].ljust(length, b"\x00"), "big")


def modexp(gas_calculator: Callable[[bytes], int]) -> Callable[[ComputationAPI], ComputationAPI]:
    """The MODEXP precompile charging ``gas_calculator(input)``."""

    def run(computation: ComputationAPI) -> ComputationAPI:
        data = computation.msg.data_as_bytes
        computation.consume_gas(gas_calculator(data), reason="MODEXP Precompile")
        base_length, exponent_length, modulus_length = extract_lengths(data)
        if modulus_length == 0:
            computation.output = b""
            return computation
        modulus = _field(data, 96 + base_length + exponent_length, modulus_length)
        base = _field(data, 96, base_length)
        exponent = _field(data, 96 + base_length, exponent_length)
        result = 0 if modulus == 0 else pow(base, exponent, modulus)
        computation.output = result.to_bytes(modulus_length, "big")
        return computation

    return run
