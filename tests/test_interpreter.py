"""The interpreter loop (chain.interpreter) of blocks and calls against py-evm's own:
random programs, run as the init code of a call on the dev genesis, end with the same gas
left and refund, output, error (type and words), stack, memory and logs either way; a
traced call still runs py-evm's loop, and a loop still stops at its deadline."""

import random
from typing import Any

import pytest
from blocks import next_block
from eth_account import Account
from nodes import CHAIN_ID, DEV_KEYS, REPO

from chain.evm_timeout import EvmTimeout
from chain.execution import InvalidTransaction
from chain.genesis import genesis_block, load_genesis
from chain.interpreter import BINARY_OPS, MOVES, UNARY_OPS
from chain.simulate import CallArgs, Simulator
from chain.vm import decode_transaction, vm_class_at

# opcodes the loop runs itself, and some of the table's (calls, storage, logs, halts)
STACK_AND_FLOW = [0x50, 0x5B] + list(range(0x80, 0xA0))  # POP, JUMPDEST, DUPn, SWAPn
ARITHMETIC = [0x01, 0x02, 0x03, 0x04, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17,
              0x18, 0x19, 0x1B, 0x1C, 0x1D, 0x0A, 0x1A]  # fmt: skip
MEMORY = [0x51, 0x52, 0x35, 0x53, 0x59]  # MLOAD, MSTORE, CALLDATALOAD, MSTORE8, MSIZE
TABLE = [0x30, 0x33, 0x34, 0x36, 0x58, 0x5A, 0x54, 0x55, 0x20, 0xA1, 0x5C, 0x5D, 0x3D]
ENDS = [0x00, 0xF3, 0xFD, 0xFE, 0x0C, 0xEF]  # STOP, RETURN, REVERT, INVALID, undefined
# pushes cut short by the end of the code, PUSH0, a full stack, jumps into push data
EDGES = ["600161ff", "7fff01", "5f5f", "5f" * 1025, "6003565b", "6004565b5b", "600456605b5b"]


def program(rng: random.Random) -> bytes:
    """A random program: mostly pushes and the loop's opcodes, jumps to its own
    JUMPDESTs (or anywhere), calls to the identity precompile and to itself."""
    pieces: list[bytes | str] = [bytes([0x60, rng.randrange(256)]) for _ in range(rng.randrange(6))]
    for _ in range(rng.randrange(1, 50)):
        roll = rng.random()
        if roll < 0.3:
            size = rng.choice([0, 1, 1, 2, 4, 20, 32])
            word = rng.choice([bytes(size), rng.randbytes(size), b"\xff" * size])
            pieces.append(bytes([0x5F + size]) + word)
        elif roll < 0.5:
            pieces.append(bytes([rng.choice(STACK_AND_FLOW)]))
        elif roll < 0.65:
            pieces.append(bytes([rng.choice(ARITHMETIC)]))
        elif roll < 0.75:  # an offset first, now and then one past any gas
            offset = rng.choice([0, 0x20, 0x40, 0x3F, 0x1000, 2**64])
            pieces.append(b"\x7f" + offset.to_bytes(32, "big") + bytes([rng.choice(MEMORY)]))
        elif roll < 0.85:
            pieces.append(rng.choice(["jump", "jumpi"]))
        elif roll < 0.9:
            pieces.append(bytes([rng.choice(TABLE)]))
        elif roll < 0.95:  # CALL(gas, identity or this, 0, 0, 32, 0, 32)
            target = rng.choice([b"\x60\x04", b"\x30"])
            pieces.append(b"\x60\x20\x60\x00\x60\x20\x60\x00\x60\x00" + target + b"\x5a\xf1")
        else:
            pieces.append(bytes([rng.choice(ENDS)]))
    if rng.random() < 0.2:
        pieces.append(bytes([0x60 + rng.randrange(32)]))  # a push cut short by the end
    starts, at = [], 0
    for piece in pieces:
        if piece == b"\x5b":
            starts.append(at)
        at += 4 if isinstance(piece, str) else len(piece)
    code = b""
    for piece in pieces:
        if isinstance(piece, str):  # PUSH2 target, then JUMP or JUMPI
            target = rng.choice(starts) if starts and rng.random() < 0.8 else rng.randrange(at + 2)
            code += b"\x61" + target.to_bytes(2, "big") + (b"\x56" if piece == "jump" else b"\x57")
        else:
            code += piece
    return code


def outcome(simulator, header, code: bytes, gas: int, computation_class=None) -> tuple:
    args = CallArgs(sender=b"\x01" * 20, data=code, gas=gas)
    with simulator.execution(header, args, computation_class=computation_class) as (run, _):
        error = (type(run.error), str(run.error)) if run.is_error else None
        return (
            error,
            run.output,
            run.get_gas_remaining(),
            run.get_gas_refund(),
            list(run._stack.values),
            bytes(run._memory._bytes),
            run.get_log_entries(),
            [(child.is_error, child.output, child.get_gas_remaining()) for child in run.children],
        )


def test_random_programs_end_as_in_py_evm(dev_genesis):
    simulator, header = dev_genesis
    plain = simulator.vm_class_after(header).get_state_class().computation_class.base
    rng = random.Random(18)
    ran, errors = 0, set()
    for code in [bytes.fromhex(edge) for edge in EDGES] + [program(rng) for _ in range(600)]:
        for gas in (54_000 + 16 * len(code) + rng.randrange(400), 300_000):
            ours = outcome(simulator, header, code, gas)
            theirs = outcome(simulator, header, code, gas, lambda _: plain)
            assert ours == theirs, code.hex()
            ran += 1
            errors.add(ours[0] and ours[0][0].__name__)
    # the programs reach the loop's own errors, not only the table's
    assert {"OutOfGas", "InsufficientStack", "InvalidJumpDestination", "Revert"} <= errors


def test_the_loop_runs_only_py_evm_s_own_opcodes(dev_genesis):
    """Each opcode the loop runs itself is one whose table entry is py-evm's function."""
    simulator, header = dev_genesis
    base = simulator.vm_class_after(header).get_state_class().computation_class.base
    known = set(MOVES) | set(BINARY_OPS) | set(UNARY_OPS)
    ours = {number for number, op in base.opcodes.items() if getattr(op, "logic_fn", None) in known}
    assert len(ours) == 2 + 33 + 16 + 16 + 2 + len(BINARY_OPS) + len(UNARY_OPS) + 3


def test_a_subclass_runs_py_evm_s_loop(dev_genesis):
    """A tracer's class wraps every opcode of the table, so it runs py-evm's loop."""
    simulator, header = dev_genesis
    seen = []
    fast = simulator.vm_class_after(header).get_state_class().computation_class

    def counting(fn):
        def run(computation):
            seen.append(fn)
            fn(computation=computation)

        return run

    class Counting(fast):  # type: ignore[misc, valid-type]
        opcodes = {number: counting(fn) for number, fn in fast.opcodes.items()}

    outcome(simulator, header, bytes.fromhex("600160005260206000f3"), 100_000, lambda _: Counting)
    assert len(seen) == 6  # PUSH1 PUSH1 MSTORE PUSH1 PUSH1 RETURN, each through the table


def test_a_loop_stops_at_its_deadline():
    """The loop reads the clock at its jumps: a loop of 50M gas (seconds of work) stops."""
    genesis = load_genesis(REPO / "genesis" / "dev.json")
    block, write = genesis_block(genesis)
    headers = {block.hash: block.header}.get
    simulator = Simulator(genesis.config, write.state.get, headers, None, timeout=0.1)
    with pytest.raises(EvmTimeout):
        simulator.call(block.header, CallArgs(sender=b"\x01" * 20, data=bytes.fromhex("5b600056")))


def executed_block(txs: list, loop: str) -> tuple:
    """A block on the dev genesis of ``txs``, run with the VM's interpreter loop or
    (``loop="py-evm"``) py-evm's: each transaction's receipt (or why it was refused), then
    the block's state root."""
    execution, _ = next_block(load_genesis(REPO / "genesis" / "dev.json"))
    if loop == "py-evm":
        execution.state.computation_class = execution.state.computation_class.base
    outcomes: list[Any] = []
    for tx in txs:
        try:
            receipt = execution.apply(tx)
            outcomes.append((receipt.state_root, receipt.gas_used, receipt.logs))
        except InvalidTransaction as exc:
            outcomes.append(str(exc))
    return outcomes, execution.finish().block.header.state_root


def stored_program(rng: random.Random) -> bytes:
    """A random program that keeps what it computes: each step's result (the loop's
    arithmetic, comparisons, stack moves, memory, a jump taken or not) is stored in a slot
    of its own, and its memory is logged at the end, so a block's state root and receipts
    show every result."""

    def push(value: int) -> bytes:
        return b"\x7f" + value.to_bytes(32, "big")

    def word() -> int:
        return rng.choice([0, 1, 2, 255, 2**255, 2**256 - 1, rng.randrange(2**256)])

    code = b"".join(push(word()) for _ in range(17))  # room for DUP16 and SWAP16
    for slot in range(30):
        roll = rng.random()
        if roll < 0.5:
            step = push(word()) + push(word()) + bytes([rng.choice(ARITHMETIC)])
        elif roll < 0.65:
            step = bytes([rng.randrange(0x80, 0x90)])  # DUPn: the copy is stored
        elif roll < 0.75:
            step = bytes([rng.randrange(0x90, 0xA0), 0x80])  # SWAPn, then DUP1 to store
        elif roll < 0.9:
            offset, read = rng.randrange(128), rng.randrange(160)
            step = push(word()) + push(offset) + b"\x52" + push(read) + b"\x51"
        else:  # JUMPI over a store of 1, then 2 stored either way
            over = push(1) + b"\x60" + bytes([slot]) + b"\x55"
            destination = len(code) + 33 + 33 + 1 + len(over)  # the JUMPDEST's
            step = push(rng.randrange(2)) + push(destination) + b"\x57" + over
            step += b"\x5b" + push(2)
        code += step + b"\x60" + bytes([slot]) + b"\x55"  # PUSH1 slot, SSTORE
    return code + b"\x60\x07\x60\xa0\x60\x00\xa1\x00"  # LOG1(0, 160, topic 7), STOP


def test_a_block_of_random_programs_ends_as_in_py_evm():
    """Blocks run the same loop as calls: a block of random programs (each the init code
    of a creation, which stores its results) has the same receipts, logs, gas and state
    root with either loop."""
    rng = random.Random(7623)
    sender = Account.from_key(DEV_KEYS[0])
    vm_class = vm_class_at(load_genesis(REPO / "genesis" / "dev.json").config, 0)
    txs = []
    for nonce in range(24):
        raw = sender.sign_transaction({
            "data": stored_program(rng), "gas": 1_000_000, "nonce": nonce,
            "chainId": CHAIN_ID, "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9,
        }).raw_transaction  # fmt: skip
        txs.append(decode_transaction(vm_class, bytes(raw)))
    ours, theirs = executed_block(txs, "ours"), executed_block(txs, "py-evm")
    assert ours == theirs
    assert all(outcome[0] == b"\x01" for outcome in ours[0])  # each ran to its end
