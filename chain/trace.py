"""``debug_traceTransaction`` and ``debug_traceBlockBy*``: replay stored transactions and
report what the EVM did.

Two of geth's tracers, in geth's output shapes, because explorers, hardhat and foundry
parse them:

* the struct logger (geth's default): one entry per executed opcode, with its pc, the
  gas left before it, its cost, the call depth, the stack, and on request the memory,
  the return data and the storage slots the contract has touched;
* ``callTracer``: the tree of calls and creates, each with its type, gas, input, output,
  and error and revert reason when it failed.

The transaction is replayed on its parent's state after the transactions before it in
its block, exactly as on import: AI calls take their results from the block's
attestations, so tracing never runs a model. The traced computations look their opcodes
up in a table of wrapped opcode functions; py-evm's interpreter loop is not touched.

Where geth and this replay may differ: ``refund`` is not reported, and a failed opcode
reports the gas it consumed rather than the cost it could not pay.
"""

from dataclasses import dataclass
from typing import Any

from eth.abc import BlockAPI, BlockHeaderAPI, ComputationAPI
from eth.exceptions import Revert, VMError

from chain.execution import BlockExecution, HeaderLookup, StateLookup
from chain.oracle import Oracle
from chain.simulate import halt_message, revert_reason
from chain.vm import ChainConfig

CALL_TRACER = "callTracer"


@dataclass(frozen=True)
class TraceOptions:
    """geth's ``TraceConfig``: ``tracer`` None is the struct logger."""

    tracer: str | None = None
    disable_stack: bool = False
    disable_storage: bool = False
    enable_memory: bool = False
    enable_return_data: bool = False
    only_top_call: bool = False  # callTracer's tracerConfig.onlyTopCall


def trace_block(
    config: ChainConfig,
    parent: BlockHeaderAPI,
    block: BlockAPI,
    state: StateLookup,
    headers: HeaderLookup,
    oracle: Oracle,
    options: TraceOptions,
    only: int | None = None,
) -> list[dict[str, Any]]:
    """The traces of ``block``'s transactions, replayed on ``parent``'s state; with
    ``only``, the trace of that transaction alone (the ones before it run untraced)."""
    execution = BlockExecution(config, parent, block.header, state, headers, oracle)
    untraced = execution.state.computation_class
    end = len(block.transactions) if only is None else only + 1
    traces = []
    for index, tx in enumerate(block.transactions[:end]):
        if only is not None and index < only:
            execution.apply(tx)
            continue
        tracer = CallTracer(options) if options.tracer == CALL_TRACER else StructLogger(options)
        execution.state.computation_class = _traced(untraced, tracer)
        gas_before = execution.gas.gas_used
        receipt = execution.apply(tx)
        traces.append(tracer.result(tx.gas, receipt.gas_used - gas_before))
    return traces


class Tracer:
    """What the traced computations report: each computation made, each opcode run."""

    def __init__(self, options: TraceOptions) -> None:
        self.options = options
        self.top: ComputationAPI | None = None

    def enter(self, computation: ComputationAPI) -> None:
        if self.top is None:
            self.top = computation

    def step(self, computation: ComputationAPI, mnemonic: str) -> Any:
        """Called before an opcode runs; returns what :meth:`done` gets back."""

    def done(self, token: Any, computation: ComputationAPI, error: VMError | None) -> None:
        """Called after the opcode ran (or raised ``error``)."""

    def result(self, gas_limit: int, gas_used: int) -> dict[str, Any]:
        raise NotImplementedError


class StructLogger(Tracer):
    def __init__(self, options: TraceOptions) -> None:
        super().__init__(options)
        self.logs: list[dict[str, Any]] = []
        self.storage: dict[bytes, dict[int, int]] = {}  # per contract: slots touched so far
        self.running: tuple[dict[str, Any], ComputationAPI] | None = None
        self.resume: dict[int, int] = {}  # id(computation) -> its pc after its last opcode

    def enter(self, computation: ComputationAPI) -> None:
        super().enter(computation)
        # A CALL or CREATE has paid for itself (and the gas it hands on) by the time its
        # child starts: that is geth's gasCost of the op, not what the child gives back.
        if self.running is not None and "gasCost" not in self.running[0]:
            entry, caller = self.running
            entry["gasCost"] = entry["gas"] - caller.get_gas_remaining()

    def step(self, computation: ComputationAPI, mnemonic: str) -> Any:
        code = computation.code
        if not len(code):  # geth runs no interpreter for code-less accounts
            return None
        pc = code.program_counter - 1
        # Past the last byte py-evm runs a STOP without moving the pc; geth logs it at
        # the pc where the code ends.
        if code.program_counter == self.resume.get(id(computation)) == len(code):
            pc += 1
        stack = computation._stack.values
        entry: dict[str, Any] = {
            "pc": pc,
            "op": mnemonic,
            "gas": computation.get_gas_remaining(),
            "depth": computation.msg.depth + 1,
        }
        if not self.options.disable_stack:
            entry["stack"] = [hex(_word(v)) for v in stack]
        if self.options.enable_memory:
            memory = bytes(computation._memory._bytes)
            entry["memory"] = [memory[i : i + 32].hex() for i in range(0, len(memory), 32)]
        if self.options.enable_return_data:
            entry["returnData"] = "0x" + computation.return_data.hex()
        if not self.options.disable_storage and mnemonic in ("SLOAD", "SSTORE") and stack:
            address = computation.msg.storage_address
            slot = _word(stack[-1])
            if mnemonic == "SLOAD":
                value = computation.state.get_storage(address, slot)
            else:
                value = _word(stack[-2]) if len(stack) > 1 else 0
            slots = self.storage.setdefault(address, {})
            slots[slot] = value
            entry["storage"] = {f"{k:064x}": f"{v:064x}" for k, v in slots.items()}
        self.logs.append(entry)
        self.running = (entry, computation)
        return entry

    def done(self, token: Any, computation: ComputationAPI, error: VMError | None) -> None:
        if token is None:
            return
        entry = token
        self.resume[id(computation)] = computation.code.program_counter
        entry.setdefault("gasCost", entry["gas"] - computation.get_gas_remaining())
        if error is not None and not isinstance(error, Revert):
            entry["error"] = halt_message(error)

    def result(self, gas_limit: int, gas_used: int) -> dict[str, Any]:
        assert self.top is not None
        return {
            "gas": gas_used,
            "failed": self.top.is_error,
            "returnValue": "0x" + self.top.output.hex(),
            "structLogs": self.logs,
        }


class CallTracer(Tracer):
    def __init__(self, options: TraceOptions) -> None:
        super().__init__(options)
        self.op = ""  # the opcode running in the innermost computation
        self.kinds: dict[int, str] = {}  # id(computation) -> CALL, STATICCALL, CREATE2, ...

    def enter(self, computation: ComputationAPI) -> None:
        super().enter(computation)
        if computation is not self.top:
            self.kinds[id(computation)] = self.op

    def step(self, computation: ComputationAPI, mnemonic: str) -> Any:
        self.op = mnemonic

    def result(self, gas_limit: int, gas_used: int) -> dict[str, Any]:
        assert self.top is not None
        top_kind = "CREATE" if self.top.msg.is_create else "CALL"
        return self._frame(self.top, top_kind, self.top.msg.sender, gas_limit, gas_used)

    def _frame(
        self, c: ComputationAPI, kind: str, sender: bytes, gas: int, gas_used: int
    ) -> dict[str, Any]:
        msg = c.msg
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
                )
                for child in c.children
            ]
            if calls:
                frame["calls"] = calls
        return frame


def _word(value: int | bytes) -> int:
    """A stack item as an integer: py-evm keeps some as the bytes they were pushed as."""
    return value if isinstance(value, int) else int.from_bytes(value, "big")


def _traced(base: type[ComputationAPI], tracer: Tracer) -> type[ComputationAPI]:
    """``base`` with every opcode wrapped to report to ``tracer``."""
    opcodes = {number: _wrap(fn, tracer) for number, fn in base.opcodes.items()}

    class Traced(base):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.opcodes = opcodes
            tracer.enter(self)

    return Traced


def _wrap(fn: Any, tracer: Tracer) -> Any:
    mnemonic = getattr(fn, "mnemonic", None) or fn.__wrapped__.mnemonic

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
