"""Two of geth's tracers, in geth's output shapes, because explorers, hardhat and foundry
parse them:

* the struct logger (geth's default): one entry per executed opcode, with its pc, the
  gas left before it, its cost, the call depth, the stack, and on request the memory,
  the return data and the storage slots the contract has touched;
* ``callTracer``: the tree of calls and creates, each with its type, gas, input, output,
  and error and revert reason when it failed.

The traced computations look their opcodes up in a table of wrapped opcode functions;
py-evm's interpreter loop is not touched. A tracer stops its execution with
:class:`TraceTimeout` after ``timeout`` seconds (geth's default 5 s), and the struct
logger keeps at most ``limit`` entries when one is given, so one request cannot hold the
node for minutes or fill its memory.

Where geth and these tracers may differ: ``refund`` is not reported, and a failed opcode
reports the gas it consumed rather than the cost it could not pay.
"""

import threading
import time
from dataclasses import dataclass
from typing import Any

from eth.abc import ComputationAPI, MessageAPI
from eth.exceptions import Revert, VMError
from eth.vm.logic.invalid import InvalidOpcode

from chain.ai.attested import inner_transaction
from chain.ai.delivery import DeliveryTransaction
from chain.ai.jobs import JOBS
from chain.errors import ExecutionStopped
from chain.simulate import halt_message, revert_reason
from chain.state_db import last_log, memory_bytes, stack_values

CALL_TRACER = "callTracer"
DEFAULT_TIMEOUT = 5.0  # seconds, as geth


class TraceTimeout(ExecutionStopped):
    """A trace ran past its timeout."""


class TraceTooLarge(ExecutionStopped):
    """A struct-logger trace grew past the node's memory bound for one trace."""


@dataclass(frozen=True)
class TraceOptions:
    """geth's ``TraceConfig``: ``tracer`` None is the struct logger."""

    tracer: str | None = None
    disable_stack: bool = False
    disable_storage: bool = False
    enable_memory: bool = False
    enable_return_data: bool = False
    only_top_call: bool = False  # callTracer's tracerConfig.onlyTopCall
    with_log: bool = False  # callTracer's tracerConfig.withLog
    timeout: float = DEFAULT_TIMEOUT
    limit: int = 0  # the struct logger's most entries; 0: no limit
    max_bytes: int = 0  # the node's bound on the struct logger's memory; 0: none


class Tracer:
    """What the traced computations report: each computation made, each opcode run.

    Only the transaction's own message and what it calls are traced: a scheduled call
    first runs its predicate check as a message of its own, which is not the call."""

    def __init__(self, options: TraceOptions, tx: Any, abort: threading.Event | None) -> None:
        self.options = options
        self.tx = tx
        self.abort = abort
        self.top: ComputationAPI | None = None
        self.ignoring = False  # inside a top-level message that is not the transaction's
        self.deadline = time.monotonic() + options.timeout

    def enter(self, computation: ComputationAPI) -> None:
        if computation.msg.depth == 0:
            self.ignoring = not _is_the_transactions(computation.msg, self.tx)
            if not self.ignoring:
                self.top = computation

    def step(self, computation: ComputationAPI, mnemonic: str) -> Any:
        """Called before an opcode runs; returns what :meth:`done` gets back."""
        if time.monotonic() > self.deadline:
            raise TraceTimeout("execution timeout")  # geth's words
        if self.abort is not None and self.abort.is_set():
            raise TraceTimeout("trace aborted: the node is stopping")

    def done(self, token: Any, computation: ComputationAPI, error: VMError | None) -> None:
        """Called after the opcode ran (or raised ``error``)."""

    def result(self, gas_used: int) -> dict[str, Any]:
        raise NotImplementedError


def _is_the_transactions(msg: MessageAPI, tx: Any) -> bool:
    if isinstance(inner_transaction(tx), DeliveryTransaction):
        return msg.sender == JOBS  # a delivery's own message is its callback, from JOBS
    if not tx.to:
        return msg.is_create
    return msg.to == tx.to and msg.data_as_bytes == tx.data


class StructLogger(Tracer):
    def __init__(self, options: TraceOptions, tx: Any, abort: threading.Event | None) -> None:
        super().__init__(options, tx, abort)
        self.logs: list[dict[str, Any]] = []
        self.size = 0  # about what self.logs holds, in bytes
        self.storage: dict[bytes, dict[int, int]] = {}  # per contract: slots touched so far
        self.running: tuple[dict[str, Any], ComputationAPI] | None = None
        self.resume: dict[int, int] = {}  # id(computation) -> its pc after its last opcode

    def enter(self, computation: ComputationAPI) -> None:
        super().enter(computation)
        # A CALL has paid for itself and the gas it hands on by the time its child
        # starts: that is geth's gasCost of the op. A CREATE's cost excludes the gas it
        # hands the init code, which geth charges inside the op.
        if self.running is not None and "gasCost" not in self.running[0]:
            entry, caller = self.running
            cost = entry["gas"] - caller.get_gas_remaining()
            if computation.msg.is_create:
                cost -= computation.msg.gas
            entry["gasCost"] = cost

    def step(self, computation: ComputationAPI, mnemonic: str) -> Any:
        super().step(computation, mnemonic)
        code = computation.code
        if self.ignoring or not len(code):  # geth runs no interpreter for code-less accounts
            return None
        if self.options.limit and len(self.logs) >= self.options.limit:
            return None
        pc = code.program_counter - 1
        # Past the last byte py-evm runs a STOP without moving the pc; geth logs it at
        # the pc where the code ends.
        if code.program_counter == self.resume.get(id(computation)) == len(code):
            pc += 1
        stack = stack_values(computation)
        entry: dict[str, Any] = {
            "pc": pc,
            "op": mnemonic,
            "gas": computation.get_gas_remaining(),
            "depth": computation.msg.depth + 1,
        }
        if not self.options.disable_stack:
            entry["stack"] = [hex(_word(v)) for v in stack]
        memory = memory_bytes(computation)
        if self.options.enable_memory and memory:  # geth leaves out what is empty
            entry["memory"] = [memory[i : i + 32].hex() for i in range(0, len(memory), 32)]
        if self.options.enable_return_data and computation.return_data:
            entry["returnData"] = "0x" + computation.return_data.hex()
        touches = {"SLOAD": 1, "SSTORE": 2}.get(mnemonic, 0)  # stack items it needs
        if not self.options.disable_storage and touches and len(stack) >= touches:
            address = computation.msg.storage_address
            slot = _word(stack[-1])
            if mnemonic == "SLOAD":
                value = computation.state.get_storage(address, slot)
            else:
                value = _word(stack[-2])
            slots = self.storage.setdefault(address, {})
            slots[slot] = value
            entry["storage"] = {f"{k:064x}": f"{v:064x}" for k, v in slots.items()}
        self._count(entry, len(memory))
        self.logs.append(entry)
        self.running = (entry, computation)
        return entry

    def _count(self, entry: dict[str, Any], memory: int) -> None:
        """Add the entry's size (Python objects: about 4 bytes per byte of memory kept as
        hex, 80 per stack item, 250 per storage slot) and stop past the node's bound."""
        self.size += 200 + 80 * len(entry.get("stack", ())) + 250 * len(entry.get("storage", ()))
        self.size += (4 * memory if "memory" in entry else 0) + len(entry.get("returnData", ""))
        if self.options.max_bytes and self.size > self.options.max_bytes:
            raise TraceTooLarge(
                f"trace larger than {self.options.max_bytes} bytes after {len(self.logs)} "
                "steps: ask for fewer (limit) or less detail (disableStack, disableStorage, "
                "no enableMemory)"
            )

    def done(self, token: Any, computation: ComputationAPI, error: VMError | None) -> None:
        if token is None:
            return
        entry = token
        self.resume[id(computation)] = computation.code.program_counter
        entry.setdefault("gasCost", entry["gas"] - computation.get_gas_remaining())
        if error is not None and not isinstance(error, Revert):
            entry["error"] = halt_message(error)

    def result(self, gas_used: int) -> dict[str, Any]:
        top = self.top  # None: a scheduled call that was skipped ran nothing
        return {
            "gas": gas_used,
            "failed": top is not None and top.is_error,
            "returnValue": "0x" + (top.output.hex() if top is not None else ""),
            "structLogs": self.logs,
        }


class CallTracer(Tracer):
    def __init__(self, options: TraceOptions, tx: Any, abort: threading.Event | None) -> None:
        super().__init__(options, tx, abort)
        self.op = ""  # the opcode running in the innermost computation
        self.running: ComputationAPI | None = None  # and that computation
        self.kinds: dict[int, str] = {}  # id(computation) -> CALL, STATICCALL, CREATE2, ...
        self.calls_made: dict[int, int] = {}  # id(computation) -> children so far
        self.logs: dict[int, list[dict[str, Any]]] = {}  # id(computation) -> its own logs
        self.selfdestructs: dict[int, dict[str, Any]] = {}  # id(computation) -> its frame

    def enter(self, computation: ComputationAPI) -> None:
        super().enter(computation)
        if computation.msg.depth > 0:
            self.kinds[id(computation)] = self.op
            caller = id(self.running)
            self.calls_made[caller] = self.calls_made.get(caller, 0) + 1

    def step(self, computation: ComputationAPI, mnemonic: str) -> Any:
        super().step(computation, mnemonic)
        self.op, self.running = mnemonic, computation
        if self.ignoring:
            return None
        if mnemonic.startswith("LOG") and self.options.with_log:
            return "log"
        stack = stack_values(computation)
        if mnemonic != "SELFDESTRUCT" or not stack:
            return None
        address = computation.msg.storage_address
        return {  # geth shows the transfer of what is left as a call of its own
            "type": "SELFDESTRUCT",
            "from": "0x" + address.hex(),
            "to": "0x" + _word(stack[-1]).to_bytes(32, "big")[12:].hex(),
            "gas": "0x0",
            "gasUsed": "0x0",
            "input": "0x",
            "value": hex(computation.state.get_balance(address)),
        }

    def done(self, token: Any, computation: ComputationAPI, error: VMError | None) -> None:
        if token is None or error is not None:
            return
        if token == "log":
            _, address, topics, data = last_log(computation)
            self.logs.setdefault(id(computation), []).append(
                {
                    "address": "0x" + address.hex(),
                    "topics": [f"0x{topic:064x}" for topic in topics],
                    "data": "0x" + data.hex(),
                    "position": hex(self.calls_made.get(id(computation), 0)),
                }
            )
        else:
            self.selfdestructs[id(computation)] = token

    def result(self, gas_used: int) -> dict[str, Any]:
        tx, top = self.tx, self.top
        if top is None:  # a scheduled call that was skipped ran nothing
            frame = {"type": "CALL", "from": "0x" + tx.sender.hex(), "to": "0x" + tx.to.hex(),
                     "gas": hex(tx.gas), "gasUsed": hex(gas_used), "input": "0x" + tx.data.hex(),
                     "value": hex(tx.value)}  # fmt: skip
            return frame
        kind = "CREATE" if top.msg.is_create else "CALL"
        return self._frame(top, kind, top.msg.sender, tx.gas or top.msg.gas, gas_used)

    def _frame(
        self,
        c: ComputationAPI,
        kind: str,
        sender: bytes,
        gas: int,
        gas_used: int,
        failed_above: bool = False,
    ) -> dict[str, Any]:
        msg = c.msg
        failed = failed_above or c.is_error  # geth drops the logs of what was reverted
        if msg.is_create:
            to, data = msg.storage_address, msg.code
        elif kind in ("DELEGATECALL", "CALLCODE"):
            to, data = msg.code_address, msg.data
        else:
            to, data = msg.to, msg.data
        frame: dict[str, Any] = {
            "type": kind,
            "from": "0x" + sender.hex(),
            "to": "0x" + to.hex(),
            "gas": hex(gas),
            "gasUsed": hex(gas_used),
            "input": "0x" + bytes(data).hex(),
        }
        if kind != "STATICCALL":
            frame["value"] = hex(msg.value)
        if c.output:
            frame["output"] = "0x" + c.output.hex()
        if c.is_error:
            if msg.is_create:  # geth: a create that failed made no account
                del frame["to"]
            if isinstance(c.error, Revert):
                frame["error"] = "execution reverted"
                reason = revert_reason(c.output)
                if reason is not None:
                    frame["revertReason"] = reason
            else:
                frame["error"] = halt_message(c.error)
        if not self.options.only_top_call:
            calls = [
                self._frame(
                    child,
                    self.kinds.get(id(child), "CALL"),
                    msg.storage_address,
                    child.msg.gas,
                    child.get_gas_used(),
                    failed,
                )
                for child in c.children
            ]
            if id(c) in self.selfdestructs:
                calls.append(self.selfdestructs[id(c)])
            if calls:
                frame["calls"] = calls
        if id(c) in self.logs and not failed:
            frame["logs"] = self.logs[id(c)]
        return frame


def make_tracer(options: TraceOptions, tx: Any, abort: threading.Event | None) -> Tracer:
    kind = CallTracer if options.tracer == CALL_TRACER else StructLogger
    return kind(options, tx, abort)


def _word(value: int | bytes) -> int:
    """A stack item as an integer: py-evm keeps some as the bytes they were pushed as."""
    return value if isinstance(value, int) else int.from_bytes(value, "big")


def traced_computation(base: type[ComputationAPI], tracer: Tracer) -> type[ComputationAPI]:
    """``base`` with every opcode wrapped to report to ``tracer``."""

    class Opcodes(dict):
        """py-evm runs ``InvalidOpcode`` for bytes missing from its table; geth logs them."""

        def __missing__(self, opcode: int) -> Any:
            name = "INVALID" if opcode == 0xFE else f"opcode {opcode:#x} not defined"
            return _wrap(InvalidOpcode(opcode), tracer, name)

    opcodes = Opcodes({number: _wrap(fn, tracer) for number, fn in base.opcodes.items()})

    class Traced(base):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.opcodes = opcodes
            tracer.enter(self)

    return Traced


def _wrap(fn: Any, tracer: Tracer, mnemonic: str | None = None) -> Any:
    mnemonic = mnemonic or getattr(fn, "mnemonic", None) or fn.__wrapped__.mnemonic

    def traced(computation: ComputationAPI) -> None:
        token = tracer.step(computation, mnemonic)
        error = None
        try:
            fn(computation=computation)
        except VMError as exc:
            error = exc
            raise
        finally:  # STOP and RETURN end the frame by raising Halt, which is no error
            tracer.done(token, computation, error)

    return traced
