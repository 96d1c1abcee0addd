"""A time limit on the EVM work that serves a request (geth's ``--rpc.evmtimeout``).

``eth_call`` and ``eth_estimateGas`` run caller-chosen code with up to the gas cap
(50M gas, which py-evm spends in about 25 s on a loop). Geth cancels the interpreter
when the timeout passes; py-evm's interpreter loop has no such hook, and patching it is
not an option. But EVM code can only run long by looping through a ``JUMP``/``JUMPI`` or
by calling or creating again (straight-line code ends with the 24 KB it is made of), so
the clock is read before those opcodes alone: a call stops within a few hundred opcodes
of its deadline, and every other opcode runs untouched.

The deadline is per thread, because calls run on several threads at once.
"""

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from eth.abc import ComputationAPI

from chain.errors import ExecutionStopped

# JUMP, JUMPI, CREATE, CALL, CALLCODE, DELEGATECALL, CREATE2, STATICCALL
CHECKED_OPCODES = (0x56, 0x57, 0xF0, 0xF1, 0xF2, 0xF4, 0xF5, 0xFA)


class EvmTimeout(ExecutionStopped):
    """The request's EVM work ran past its time limit: stopped on purpose, never a
    property of what was executed."""


class Deadline:
    """When the current thread's EVM work must stop; no limit outside :meth:`running`."""

    def __init__(self) -> None:
        self._local = threading.local()

    @contextmanager
    def running(self, seconds: float) -> Iterator[None]:
        self._local.at = time.monotonic() + seconds
        self._local.seconds = seconds
        try:
            yield
        finally:
            self._local.at = None

    def check(self) -> None:
        at = getattr(self._local, "at", None)
        if at is not None and time.monotonic() > at:
            raise EvmTimeout(f"execution aborted (timeout = {self._local.seconds:g}s)")  # geth


# The process's one deadline. It is per thread, so every simulator shares it, and the
# VM classes' computations (chain.vm) are bounded by it: a thread that never sets one
# (the chain thread, executing blocks) never stops.
DEADLINE = Deadline()


def bounded(base: type[ComputationAPI], deadline: Deadline) -> type[ComputationAPI]:
    """``base`` whose looping and calling opcodes first check ``deadline``."""
    opcodes = dict(base.opcodes)
    for number in CHECKED_OPCODES:
        if number in opcodes:
            opcodes[number] = _checked(opcodes[number], deadline)
    return type(f"Bounded{base.__name__}", (base,), {"opcodes": opcodes})


def _checked(fn: Any, deadline: Deadline) -> Any:
    def checked(computation: ComputationAPI) -> None:
        deadline.check()
        fn(computation=computation)

    checked.mnemonic = getattr(fn, "mnemonic", None) or fn.__wrapped__.mnemonic  # type: ignore[attr-defined]
    return checked
