"""py-evm's interpreter loop, with the commonest opcodes run in the loop itself.

py-evm runs every opcode through five to eight Python calls: the code stream's
generator, the opcode object, the computation's and the gas meter's ``consume_gas``, the
logic function, the computation's stack method, the stack's own. That is about 2 µs an
opcode, and an ERC-20 ``balanceOf`` is 119 of them: two thirds of the CPU its
``eth_call`` spends. Two thirds of those opcodes are stack moves (PUSHn, DUPn, SWAPn,
POP), JUMPDEST and jumps, and a fifth plain arithmetic and comparisons.

:func:`interpreted` gives a computation class whose loop runs those opcodes itself,
directly on the stack's list and the gas meter, and every other opcode through the
class's opcode table (where each charges its fixed gas on the meter directly:
:func:`charged`). The VM classes (:mod:`chain.vm`) are made with it, so blocks, calls
and simulations execute alike. Only an opcode whose table entry is py-evm's own logic
function is run in the loop, with that function's gas, checks, results and errors (the
same exception types and words), so gas, outputs and errors stay py-evm's:
``tests/test_interpreter.py`` holds them equal on random programs, in calls and in a
block, and the BlockchainTests hold whole blocks. A subclass (a tracer's, which wraps
every opcode) runs py-evm's own loop.
"""

from collections.abc import Callable
from operator import attrgetter
from typing import Any

from eth.abc import ComputationAPI, MessageAPI, StateAPI, TransactionContextAPI
from eth.exceptions import (
    FullStack,
    Halt,
    InsufficientStack,
    InvalidInstruction,
    InvalidJumpDestination,
    OutOfGas,
)
from eth.vm.computation import NO_RESULT
from eth.vm.logic import arithmetic, comparison, context, duplication, flow, memory, stack, swap
from eth.vm.logic.invalid import InvalidOpcode
from eth.vm.opcode import _FastOpcode

from chain.evm_timeout import Deadline, bounded

STOP, JUMPDEST = 0x00, 0x5B
UINT_256_MAX = 2**256 - 1
UINT_255_MAX = 2**255 - 1
UINT_256_CEILING = 2**256

# what the loop does with an opcode (the first item of its step)
PUSH, DUP, SWAP, POP, JUMPDEST_STEP, JUMP, JUMPI, BINARY, UNARY, MSTORE, MLOAD, CALLDATALOAD = (
    range(12)
)


def _jump_destination(code: Any, raw: bytes, end: int, destination: int | bytes) -> int:
    """Move the code to JUMP's or JUMPI's ``destination`` and check that it is a JUMPDEST
    outside push data, as py-evm does (its checks and words, after the move)."""
    if destination.__class__ is bytes:
        destination = int.from_bytes(destination, "big")
    code.program_counter = destination
    if (raw[destination] if destination < end else STOP) != JUMPDEST:
        raise InvalidJumpDestination("Invalid Jump Destination")
    if not code.is_valid_opcode(destination):
        raise InvalidInstruction("Jump resulted in invalid instruction")
    return destination


def _signed(value: int) -> int:
    return value if value <= UINT_255_MAX else value - UINT_256_CEILING


# py-evm's logic functions of two words (top first), as each computes its result
BINARY_OPS: dict[Callable[..., None], Callable[[int, int], int]] = {
    arithmetic.add: lambda left, right: (left + right) & UINT_256_MAX,
    arithmetic.sub: lambda left, right: (left - right) & UINT_256_MAX,
    arithmetic.mul: lambda left, right: (left * right) & UINT_256_MAX,
    arithmetic.div: lambda left, right: 0 if right == 0 else (left // right) & UINT_256_MAX,
    arithmetic.shl: lambda shift, value: 0 if shift >= 256 else (value << shift) & UINT_256_MAX,
    arithmetic.shr: lambda shift, value: 0 if shift >= 256 else (value >> shift) & UINT_256_MAX,
    comparison.lt: lambda left, right: 1 if left < right else 0,
    comparison.gt: lambda left, right: 1 if left > right else 0,
    comparison.slt: lambda left, right: 1 if _signed(left) < _signed(right) else 0,
    comparison.sgt: lambda left, right: 1 if _signed(left) > _signed(right) else 0,
    comparison.eq: lambda left, right: 1 if left == right else 0,
    comparison.and_op: lambda left, right: left & right,
    comparison.or_op: lambda left, right: left | right,
    comparison.xor: lambda left, right: left ^ right,
}
UNARY_OPS: dict[Callable[..., None], Callable[[int], int]] = {
    comparison.iszero: lambda value: 1 if value == 0 else 0,
    comparison.not_op: lambda value: UINT_256_MAX - value,
}
# py-evm's stack moves, by logic function: what the loop does, and how far
MOVES: dict[Callable[..., None], tuple[int, int]] = {
    stack.pop: (POP, 0),
    flow.jumpdest: (JUMPDEST_STEP, 0),
    flow.jump: (JUMP, 0),
    flow.jumpi: (JUMPI, 0),
    memory.mstore: (MSTORE, 0),
    memory.mload: (MLOAD, 0),
    context.calldataload: (CALLDATALOAD, 0),
    **{getattr(stack, f"push{n}"): (PUSH, n) for n in range(33)},
    **{getattr(duplication, f"dup{n}"): (DUP, n) for n in range(1, 17)},
    **{getattr(swap, f"swap{n}"): (SWAP, n) for n in range(1, 17)},
}


# py-evm's computation hands out its stack's methods through ``cached_property``, whose
# first read in each computation (about once per opcode kind) asks whether the method is
# a coroutine: a property costs less for what a computation reads a few times
STACK_METHODS = {
    f"stack_{name}": property(attrgetter(f"_stack.{name}"))
    for name in ("pop_ints", "pop_bytes", "pop_any", "pop1_int", "pop1_bytes", "pop1_any",
                 "push_int", "push_bytes")
}  # fmt: skip


def charged(base: type[ComputationAPI]) -> type[ComputationAPI]:
    """``base`` whose plain opcodes charge their fixed gas on the gas meter themselves.

    py-evm's opcode reaches the meter through two calls (the computation's
    ``consume_gas``, then the meter's); the checks and the out-of-gas error are the
    meter's own (its debug-level log line, which only a debug2 logger prints, is left
    out)."""
    opcodes = dict(base.opcodes)
    for number, opcode in opcodes.items():
        if type(opcode) is _FastOpcode:
            opcodes[number] = _charging(opcode.logic_fn, opcode.gas_cost, opcode.mnemonic)
    return type(f"Charged{base.__name__}", (base,), {"opcodes": opcodes})


def _charging(logic: Callable[[ComputationAPI], None], gas: int, mnemonic: str) -> Any:
    def run(computation: ComputationAPI) -> None:
        meter = computation._gas_meter  # type: ignore[attr-defined]
        if gas > meter.gas_remaining:
            raise OutOfGas(
                f"Out of gas: Needed {gas} - Remaining {meter.gas_remaining} - Reason: {mnemonic}"
            )
        meter.gas_remaining -= gas
        logic(computation)

    run.mnemonic = mnemonic  # type: ignore[attr-defined]
    return run


def _steps(opcodes: dict[int, Any]) -> list[tuple | None]:
    """For each byte, what the loop runs itself (kind, gas, argument, mnemonic), or None
    for the opcode table: only py-evm's own opcodes, with their own gas."""
    steps: list[tuple | None] = [None] * 256
    for number, opcode in opcodes.items():
        if type(opcode) is not _FastOpcode:
            continue
        logic, step = opcode.logic_fn, None
        if logic in MOVES:
            kind, size = MOVES[logic]
            step = (kind, opcode.gas_cost, size, opcode.mnemonic)
        elif logic in BINARY_OPS:
            step = (BINARY, opcode.gas_cost, BINARY_OPS[logic], opcode.mnemonic)
        elif logic in UNARY_OPS:
            step = (UNARY, opcode.gas_cost, UNARY_OPS[logic], opcode.mnemonic)
        steps[number] = step
    return steps


def interpreted(base: type[ComputationAPI], deadline: Deadline) -> type[ComputationAPI]:
    """``base`` (a fork's computation class) for blocks and calls, bounded by
    ``deadline`` (which stops only a thread that set one: a call's): its
    opcodes :func:`charged` and :func:`~chain.evm_timeout.bounded`, the commonest run in
    the loop of :func:`run_code` (which checks ``deadline`` before each jump, as the
    bounded JUMP and JUMPI do)."""
    table = bounded(charged(base), deadline)
    steps = _steps(base.opcodes)
    # the table's opcode for each byte; py-evm's InvalidOpcode for a byte it lacks
    opcodes = [table.opcodes.get(number) or InvalidOpcode(number) for number in range(256)]
    base_apply = table.apply_computation.__func__  # type: ignore[attr-defined]

    def apply_computation(
        cls: type[ComputationAPI],
        state: StateAPI,
        message: MessageAPI,
        transaction_context: TransactionContextAPI,
        parent_computation: ComputationAPI | None = None,
    ) -> ComputationAPI:
        """py-evm's ``BaseComputation.apply_computation``, its loop :func:`run_code`."""
        if cls is not computation_class or cls.logger.show_debug2:  # type: ignore[attr-defined]
            return base_apply(cls, state, message, transaction_context, parent_computation)
        with cls(state, message, transaction_context) as computation:  # type: ignore[call-arg]
            if computation.is_origin_computation:
                computation.contracts_created = []
                if message.is_create:
                    cls.consume_initcode_gas_cost(computation)
            if parent_computation is not None:
                computation.contracts_created = parent_computation.contracts_created
            if message.is_create:
                computation.contracts_created.append(message.storage_address)
            precompile = computation.precompiles.get(message.code_address, NO_RESULT)
            if precompile is not NO_RESULT:
                if not message.is_delegation:
                    precompile(computation)
                return computation
            run_code(computation, steps, opcodes, deadline)
        return computation

    computation_class = type(
        f"Interpreted{base.__name__}",
        (table,),
        # ``base`` stays at hand: its own loop is py-evm's, the reference this one is held to
        {"apply_computation": classmethod(apply_computation), "base": base, **STACK_METHODS},
    )
    return computation_class


def run_code(
    computation: ComputationAPI,
    steps: list[tuple | None],
    table: list[Any],
    deadline: Deadline,
) -> None:
    """Run the computation's code to its end, as py-evm's loop does: past the last byte
    comes STOP, and a Halt (STOP, RETURN, SELFDESTRUCT) ends the code without error. The
    program counter lives here and is handed to the code stream around each opcode of the
    table, which may read or move it (PC, CODECOPY). The deadline is read after a jump's
    gas is charged, not before as the bounded table's jumps read it: a jump short of gas
    right at its deadline ends out of gas instead of timed out."""
    code = computation.code
    raw = code._raw_code_bytes  # type: ignore[attr-defined]
    end = len(raw)
    values = computation._stack.values  # type: ignore[attr-defined]
    meter = computation._gas_meter  # type: ignore[attr-defined]
    memory = computation._memory  # type: ignore[attr-defined]  (its buffer may be replaced)
    pc = 0
    while True:
        opcode = raw[pc] if pc < end else STOP
        step = steps[opcode]
        if step is None:
            code.program_counter = pc + 1
            try:
                table[opcode](computation=computation)
            except Halt:
                return
            pc = code.program_counter
            continue
        kind, gas, argument, mnemonic = step
        if gas > meter.gas_remaining:
            raise OutOfGas(
                f"Out of gas: Needed {gas} - Remaining {meter.gas_remaining} - Reason: {mnemonic}"
            )
        meter.gas_remaining -= gas
        if kind == PUSH:
            pc += 1
            word = raw[pc : pc + argument]
            if len(word) != argument:
                word = word.ljust(argument, b"\x00")
            if len(values) > 1023:
                raise FullStack("Stack limit reached")
            values.append(word)
            pc += argument
        elif kind == DUP:
            if len(values) > 1023:
                raise FullStack("Stack limit reached")
            if len(values) < argument:
                raise InsufficientStack(f"Insufficient stack items for DUP{argument}")
            values.append(values[-argument])
            pc += 1
        elif kind == BINARY:
            if len(values) < 2:
                raise InsufficientStack(f"Wanted 2 stack items, only had {len(values)}")
            left, right = values.pop(), values[-1]
            values[-1] = argument(
                int.from_bytes(left, "big") if left.__class__ is bytes else left,
                int.from_bytes(right, "big") if right.__class__ is bytes else right,
            )
            pc += 1
        elif kind == JUMPDEST_STEP:
            pc += 1
        elif kind == SWAP:
            if len(values) <= argument:
                raise InsufficientStack(f"Insufficient stack items for SWAP{argument}")
            values[-1], values[-argument - 1] = values[-argument - 1], values[-1]
            pc += 1
        elif kind == JUMPI:
            deadline.check()
            if len(values) < 2:
                raise InsufficientStack(f"Wanted 2 stack items, only had {len(values)}")
            destination, condition = values.pop(), values.pop()
            if condition.__class__ is bytes:
                condition = int.from_bytes(condition, "big")
            if not condition:
                pc += 1
                continue
            pc = _jump_destination(code, raw, end, destination)
        elif kind == JUMP:
            deadline.check()
            if not values:
                raise InsufficientStack("Wanted 1 stack item, had none")
            destination = values.pop()
            pc = _jump_destination(code, raw, end, destination)
        elif kind == POP:
            if not values:
                raise InsufficientStack("Wanted 1 stack item, had none")
            values.pop()
            pc += 1
        elif kind == MSTORE:
            if len(values) < 2:
                values.clear()  # py-evm pops the start before it finds no value
                raise InsufficientStack("Wanted 1 stack item, had none")
            start, word = values.pop(), values.pop()
            if start.__class__ is bytes:
                start = int.from_bytes(start, "big")
            if word.__class__ is bytes:
                word = word.rjust(32, b"\x00")[-32:]
            else:
                word = word.to_bytes(32, "big")
            if start + 32 > len(memory._bytes):
                computation.extend_memory(start, 32)  # charges the expansion
            memory._bytes[start : start + 32] = word
            pc += 1
        elif kind == UNARY:
            if not values:
                raise InsufficientStack("Wanted 1 stack item, had none")
            value = values[-1]
            if value.__class__ is bytes:
                value = int.from_bytes(value, "big")
            values[-1] = argument(value)
            pc += 1
        elif kind == MLOAD:
            if not values:
                raise InsufficientStack("Wanted 1 stack item, had none")
            start = values.pop()
            if start.__class__ is bytes:
                start = int.from_bytes(start, "big")
            if start + 32 > len(memory._bytes):
                computation.extend_memory(start, 32)
            values.append(bytes(memory._bytes[start : start + 32]))
            pc += 1
        else:  # CALLDATALOAD
            if not values:
                raise InsufficientStack("Wanted 1 stack item, had none")
            start = values[-1]
            if start.__class__ is bytes:
                start = int.from_bytes(start, "big")
            word = computation.msg.data_as_bytes[start : start + 32]
            values[-1] = word.ljust(32, b"\x00").lstrip(b"\x00")
            pc += 1
