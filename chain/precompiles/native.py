"""Native system contracts: Solidity ABI functions implemented in Python.

A native contract is a precompile with an ABI: the first four bytes of the call data
select a function, its arguments are ABI-decoded, and its return values ABI-encoded, so
contracts call it through an ordinary Solidity interface (``contracts/``). Functions
that write refuse to run in a static context, as ``SSTORE`` does; a call that breaks a
rule reverts with ``Error(string)``, so the caller sees the reason.
"""

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eth.abc import ComputationAPI
from eth.exceptions import Revert, WriteProtection
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_abi.exceptions import DecodingError
from eth_utils import function_signature_to_4byte_selector, keccak

ERROR_SELECTOR = bytes.fromhex("08c379a0")
READ_GAS = 2_600
WRITE_GAS = 22_100
LOG_GAS = 1_500


class NativeRevert(Exception):
    """A rule a native function enforces; the call reverts with this reason."""


def revert(reason: str) -> Revert:
    """A Revert carrying ``Error(reason)`` as its return data, as Solidity's require."""
    return Revert(ERROR_SELECTOR + abi_encode(["string"], [reason]))


def returns_revert_data(
    precompile: Callable[[ComputationAPI], ComputationAPI],
) -> Callable[[ComputationAPI], ComputationAPI]:
    """Make a :func:`revert` raised by ``precompile`` the caller's return data.

    py-evm keeps a reverted computation's output but, unlike the REVERT opcode, a Python
    precompile that raises Revert sets none, so without this the caller would see empty
    return data instead of the reason.
    """

    @functools.wraps(precompile)
    def run(computation: ComputationAPI) -> ComputationAPI:
        try:
            return precompile(computation)
        except Revert as exc:
            computation.output = exc.args[0] if exc.args else b""
            raise

    return run


@dataclass(frozen=True)
class Function:
    signature: str  # e.g. "register(uint256)"
    returns: tuple[str, ...]
    handler: Callable[..., Any]
    writes: bool
    gas: int

    @property
    def argument_types(self) -> list[str]:
        inner = self.signature[self.signature.index("(") + 1 : -1]
        return _split_types(inner)


def _split_types(text: str) -> list[str]:
    types, depth, current = [], 0, ""
    for char in text:
        if char == "," and depth == 0:
            types.append(current)
            current = ""
            continue
        depth += char == "("
        depth -= char == ")"
        current += char
    return types + [current] if current else types


def event_topic(signature: str) -> int:
    return int.from_bytes(keccak(text=signature), "big")


class NativeContract:
    """Dispatch by selector; subclasses list their functions in ``functions``."""

    address: bytes
    name: str

    def __init__(self) -> None:
        self.by_selector = {
            function_signature_to_4byte_selector(f.signature): f for f in self.functions()
        }

    def functions(self) -> list[Function]:
        raise NotImplementedError

    def __call__(self, computation: ComputationAPI) -> ComputationAPI:
        return returns_revert_data(self._dispatch)(computation)

    def _dispatch(self, computation: ComputationAPI) -> ComputationAPI:
        if computation.msg.storage_address != self.address:
            # Through DELEGATECALL or CALLCODE a native contract would see a value it never
            # received and a sender that did not call it: a deposit out of thin air.
            computation.consume_gas(READ_GAS, reason=f"{self.name}: not called directly")
            raise revert(f"{self.name}: must be called directly, not by DELEGATECALL or CALLCODE")
        data = computation.msg.data_as_bytes
        function = self.by_selector.get(data[:4])
        if function is None:
            computation.consume_gas(READ_GAS, reason=f"{self.name}: unknown function")
            raise revert(f"{self.name}: unknown function selector 0x{data[:4].hex()}")
        computation.consume_gas(function.gas, reason=f"{self.name}.{function.signature}")
        if function.writes and computation.msg.is_static:
            raise WriteProtection(f"{self.name}.{function.signature} writes state")
        if not function.writes and computation.msg.value:
            raise revert(f"{self.name}: {function.signature} does not take value")
        try:
            arguments = abi_decode(function.argument_types, data[4:])
        except (DecodingError, ValueError, OverflowError):
            raise revert(f"{self.name}: malformed arguments for {function.signature}") from None
        try:
            result = function.handler(computation, *arguments)
        except NativeRevert as exc:
            raise revert(f"{self.name}: {exc}") from None
        if function.returns:
            values = result if len(function.returns) > 1 else (result,)
            computation.output = abi_encode(list(function.returns), list(values))
        return computation
