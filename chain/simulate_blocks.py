"""``eth_simulateV1``: calls run inside a chain of blocks that exist only for the request.

Each simulated block is made as the builder makes a block (:class:`BlockExecution` on
its parent, then ``finish``), from unsigned calls instead of pool transactions: every
call becomes an EIP-1559 transaction with a placeholder signature whose sender is taken as
given, as geth's ``simulator.processBlock`` does. The blocks follow one another on the
state their predecessors left, in memory over the base block's state; nothing is written
to the store and the pool is never read, so a simulation changes nothing.

What geth's simulator does, this one does (internal/ethapi/simulate.go):

* block numbers and timestamps must increase (-38020, -38021); a gap in numbers is
  filled with empty blocks 12 s apart; at most 256 blocks past the base;
* without ``validation`` the base fee is 0 (unless overridden) and nonces are not
  checked; with it the base fee follows EIP-1559 and nonces must match; a sender with
  code may call either way;
* a call that cannot be included ends the simulation with its -380xx error (geth's
  words, ``err: ... (supplied gas N)``); a call that runs and fails is a result with
  ``status`` 0 and its error;
* state overrides (balance, nonce, code, state, stateDiff, movePrecompileToAddress) are
  applied at the start of their block; ``traceTransfers`` adds an ERC-20 style
  ``Transfer`` log from 0xeeee…eeee for every value transfer of a frame that did not
  revert (not in the receipts, so not in the bloom);
* all calls together get at most the node's call gas cap, each the block's remaining gas
  unless it names its own.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from eth.abc import BlockHeaderAPI, ComputationAPI
from eth.exceptions import Halt, Revert
from eth_utils import keccak, to_checksum_address

from chain.ai.results import CallOracle
from chain.execution import (
    MAX_NONCE,
    BlockExecution,
    ExecutedBlock,
    InvalidBlock,
    InvalidTransaction,
)
from chain.gas import floor_gas
from chain.headers import PayloadAttributes, next_header
from chain.simulate import CallArgs, Simulator, halt_message, revert_reason
from chain.state_db import stack_values
from chain.vm import MERGED_FORKS, child_fork, decode_transaction, fork_since, vm_classes

MAX_BLOCKS = 256  # geth's maxSimulateBlocks
MAX_CALLS_PER_BLOCK = 5000
MAX_CALLS = 10_000
TIMESTAMP_INCREMENT = 12
TRANSFER_ADDRESS = b"\xee" * 20  # the "contract" whose logs are ETH transfers
TRANSFER_TOPIC = keccak(b"Transfer(address,address,uint256)")

NONCE_TOO_LOW = -38010
NONCE_TOO_HIGH = -38011
BASE_FEE_TOO_LOW = -38012
INTRINSIC_GAS = -38013
INSUFFICIENT_FUNDS = -38014
BLOCK_GAS_LIMIT_REACHED = -38015
BLOCK_NUMBER_INVALID = -38020
BLOCK_TIMESTAMP_INVALID = -38021
CLIENT_LIMIT_EXCEEDED = -38026
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
SERVER_ERROR = -32000
VM_ERROR = -32015
EXECUTION_REVERTED = 3


class SimulationError(Exception):
    """A simulation that cannot go on, with geth's JSON-RPC code and words."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class AccountOverride:
    """What ``stateOverrides`` sets on one account before its block runs."""

    balance: int | None = None
    nonce: int | None = None
    code: bytes | None = None
    state: dict[int, int] | None = None  # the whole storage
    state_diff: dict[int, int] | None = None  # only these slots
    move_precompile_to: bytes | None = None


@dataclass
class BlockOverrides:
    number: int | None = None
    time: int | None = None
    gas_limit: int | None = None
    fee_recipient: bytes | None = None
    prev_randao: bytes | None = None
    base_fee_per_gas: int | None = None
    beacon_root: bytes | None = None  # the parent beacon block root (EIP-4788)
    withdrawals: tuple = ()  # EIP-4895 withdrawals, applied after the calls


@dataclass
class SimBlock:
    """One entry of ``blockStateCalls``."""

    overrides: BlockOverrides = field(default_factory=BlockOverrides)
    state_overrides: dict[bytes, AccountOverride] = field(default_factory=dict)
    calls: list[CallArgs] = field(default_factory=list)


@dataclass
class SimOptions:
    blocks: list[SimBlock]
    trace_transfers: bool = False
    validation: bool = False
    full_transactions: bool = False


@dataclass
class Log:
    address: bytes
    topics: tuple[int, ...]
    data: bytes


@dataclass
class CallResult:
    """What ``calls[i]`` of a simulated block reports."""

    output: bytes
    logs: list[Log]
    gas_used: int
    max_used_gas: int  # before refunds
    error: Exception | None  # a Revert or another halt; None: status 1
    revert_data: bytes = b""


@dataclass
class SimulatedBlock:
    executed: ExecutedBlock
    calls: list[CallResult]


def check_limits(options: SimOptions) -> None:
    """geth's bounds on the request itself, before anything runs."""
    if not options.blocks:
        raise SimulationError(INVALID_PARAMS, "empty input")
    if len(options.blocks) > MAX_BLOCKS:
        raise SimulationError(CLIENT_LIMIT_EXCEEDED, "too many blocks")
    total = 0
    for block in options.blocks:
        if len(block.calls) > MAX_CALLS_PER_BLOCK:
            raise SimulationError(
                CLIENT_LIMIT_EXCEEDED,
                f"too many calls in block: {len(block.calls)} > {MAX_CALLS_PER_BLOCK}",
            )
        total += len(block.calls)
        if total > MAX_CALLS:
            raise SimulationError(CLIENT_LIMIT_EXCEEDED, f"too many calls: {total} > {MAX_CALLS}")


def sanitize_chain(base: BlockHeaderAPI, blocks: list[SimBlock]) -> list[SimBlock]:
    """Numbers and timestamps filled in and checked to increase; gaps filled with empty
    blocks (geth's ``sanitizeChain``)."""
    out: list[SimBlock] = []
    number, timestamp = base.block_number, base.timestamp
    for block in blocks:
        overrides = block.overrides
        wanted = overrides.number if overrides.number is not None else number + 1
        if wanted <= number:
            raise SimulationError(
                BLOCK_NUMBER_INVALID, f"block numbers must be in order: {wanted} <= {number}"
            )
        if wanted - base.block_number > MAX_BLOCKS:
            raise SimulationError(CLIENT_LIMIT_EXCEEDED, "too many blocks")
        for gap in range(number + 1, wanted):
            timestamp += TIMESTAMP_INCREMENT
            out.append(SimBlock(BlockOverrides(number=gap, time=timestamp)))
        number = wanted
        if overrides.time is None:
            time = timestamp + TIMESTAMP_INCREMENT
        elif overrides.time <= timestamp:
            raise SimulationError(
                BLOCK_TIMESTAMP_INVALID,
                f"block timestamps must be in order: {overrides.time} <= {timestamp}",
            )
        else:
            time = overrides.time
        timestamp = time
        fixed = BlockOverrides(**{**vars(overrides), "number": wanted, "time": time})
        out.append(SimBlock(fixed, block.state_overrides, block.calls))
    return out


def simulate(
    simulator: Simulator, base: BlockHeaderAPI, options: SimOptions
) -> list[SimulatedBlock]:
    """Run ``options`` on the state after ``base``; within the simulator's time limit."""
    check_limits(options)
    blocks = sanitize_chain(base, options.blocks)
    with simulator.deadline.running(simulator.timeout):
        return list(_Run(simulator, base, options).blocks(blocks))


class _Run:
    """One simulation: the blocks made so far, their state writes, the gas left."""

    def __init__(self, simulator: Simulator, base: BlockHeaderAPI, options: SimOptions) -> None:
        self.simulator = simulator
        self.config = simulator.config
        self.base = base
        self.options = options
        self.gas_left = simulator.gas_cap  # geth's gas budget across all blocks
        self.writes: dict[bytes, bytes] = {}  # the state the simulated blocks wrote
        self.headers: dict[bytes, BlockHeaderAPI] = {}
        # the last block's, which says (as on import) whether the next one is
        # a proof-of-work or a proof-of-stake block
        self.total_difficulty = simulator.total_difficulty(base)

    def _state(self, key: bytes) -> bytes | None:
        value = self.writes.get(key)
        return value if value is not None else self.simulator.state_get(key)

    def _header(self, block_hash: bytes) -> BlockHeaderAPI | None:
        return self.headers.get(block_hash) or self.simulator.headers(block_hash)

    def blocks(self, blocks: list[SimBlock]) -> Iterator[SimulatedBlock]:
        parent = self.base
        for block in blocks:
            simulated = self._block(parent, block)
            parent = simulated.executed.header
            self.total_difficulty += parent.difficulty
            self.headers[parent.hash] = parent
            self.writes.update(simulated.executed.state)
            yield simulated

    def _block(self, parent: BlockHeaderAPI, block: SimBlock) -> SimulatedBlock:
        overrides = block.overrides
        assert overrides.number is not None and overrides.time is not None
        fork = child_fork(self.config, parent, overrides.time, self.total_difficulty)
        attributes = PayloadAttributes(
            timestamp=overrides.time,
            prev_randao=overrides.prev_randao or bytes(32),
            fee_recipient=overrides.fee_recipient or parent.coinbase,
            parent_beacon_block_root=(overrides.beacon_root or bytes(32))
            if fork_since(fork, "cancun")
            else None,
            gas_limit=overrides.gas_limit,  # None: the parent's
        )
        if fork in MERGED_FORKS:
            header = next_header(self.config, parent, attributes)
        else:  # a proof-of-work block: its fork's difficulty, as an importer checks it
            header = vm_classes(self.config.sibyl)[fork].create_header_from_parent(
                parent,
                timestamp=attributes.timestamp,
                coinbase=attributes.fee_recipient,
                mix_hash=attributes.prev_randao,
                gas_limit=attributes.gas_limit or parent.gas_limit,
            )
        fields: dict[str, Any] = {}  # its number: the parent's + 1 (no gaps)
        if fork_since(fork, "london"):
            base_fee = overrides.base_fee_per_gas
            if base_fee is None:
                base_fee = header.base_fee_per_gas if self.options.validation else 0
            fields["base_fee_per_gas"] = base_fee
        if overrides.gas_limit is not None:  # 0 included, which next_header reads as unset
            fields["gas_limit"] = overrides.gas_limit
        header = header.copy(**fields)
        oracle = CallOracle(self.config.chain_id, self.simulator.sidecars, self.simulator.replicas)
        execution = BlockExecution(self.config, parent, header, self._state, self._header, oracle)
        state = execution.state
        state.calls_from_contracts = True  # geth skips EIP-3607 in simulations, as in calls
        precompiles = _apply_overrides(state, block.state_overrides)
        computation_class = state.computation_class  # bounded by the deadline (chain.vm)
        opcodes = dict(computation_class.opcodes)
        opcodes[SELFDESTRUCT] = _recording_selfdestruct(opcodes[SELFDESTRUCT])
        state.computation_class = type(
            f"Simulated{computation_class.__name__}",
            (_TransferRecorder, computation_class),
            # the overridden precompiles run; the fork's own stay warm, as in geth
            # (py-evm warms the class's get_precompiles())
            {"precompiles": property(lambda _: precompiles), "opcodes": opcodes},
        )
        results = [self._call(execution, args) for args in block.calls]
        try:
            executed = execution.finish(overrides.withdrawals)
        except InvalidBlock as exc:  # e.g. a deposit log of another layout (EIP-6110)
            raise SimulationError(INTERNAL_ERROR, str(exc)) from None
        return SimulatedBlock(executed, results)

    def _call(self, execution: BlockExecution, args: CallArgs) -> CallResult:
        state, header = execution.state, execution.header
        tx = self._transaction(execution, args)
        self._check(state, header, args, tx)
        gas_before = execution.gas.gas_used
        try:
            execution.apply(tx)
        except InvalidTransaction as exc:
            raise SimulationError(INTERNAL_ERROR, f"err: {exc} (supplied gas {tx.gas})") from None
        computation = execution.computation
        self.gas_left -= execution.gas.gas_used - gas_before
        logs = [] if computation.is_error else _logs(computation, self.options.trace_transfers)
        return CallResult(
            output=b"" if computation.is_error else computation.output,
            logs=logs,
            gas_used=execution.gas.gas_used - gas_before,
            max_used_gas=max(
                tx.gas - computation.get_gas_remaining(), floor_gas(type(state), tx.data)
            ),
            error=computation.error if computation.is_error else None,
            revert_data=computation.output if computation.is_error else b"",
        )

    def _transaction(self, execution: BlockExecution, args: CallArgs) -> Any:
        """The call as the EIP-1559 transaction a block can hold (before London one
        with a gas price, before Berlin a legacy one): geth's defaults (all the block's
        remaining gas, within what the whole simulation has left; fees 0) and a
        signature no key made; its sender is the one given."""
        remaining = execution.header.gas_limit - execution.gas.gas_used
        gas = args.gas if args.gas is not None else remaining
        if gas > remaining:
            raise SimulationError(
                BLOCK_GAS_LIMIT_REACHED,
                f"block gas limit reached: remaining: {remaining}, required: {gas}",
            )
        gas = min(gas, self.gas_left)
        if args.gas_price is not None:
            fee_cap = tip = args.gas_price
        else:
            fee_cap, tip = args.max_fee_per_gas or 0, args.max_priority_fee_per_gas or 0
        if tip > fee_cap:
            raise SimulationError(
                INVALID_PARAMS, "max priority fee per gas higher than max fee per gas"
            )
        state_nonce = execution.state.get_nonce(args.sender)
        nonce = state_nonce  # without validation nonces are not checked, as in geth
        if self.options.validation and args.nonce is not None:
            nonce = args.nonce
        builder = execution.vm_class.get_transaction_builder()
        fields = dict(nonce=nonce, gas=gas, to=args.to, value=args.value, data=args.data)
        # geth signs with zeros; py-evm's checks want r and s in range, and no key
        # signs this either
        signature = dict(r=1, s=1)
        if not fork_since(execution.fork, "berlin"):
            unsigned = builder(gas_price=args.gas_price or 0, v=27, **fields, **signature)
        elif not fork_since(execution.fork, "london"):  # geth then ignores EIP-1559 fees
            unsigned = builder.new_access_list_transaction(
                chain_id=self.config.chain_id, gas_price=args.gas_price or 0,
                access_list=args.access_list, y_parity=0, **fields, **signature,
            )  # fmt: skip
        else:
            unsigned = builder.new_dynamic_fee_transaction(
                chain_id=self.config.chain_id, max_priority_fee_per_gas=tip,
                max_fee_per_gas=fee_cap, access_list=args.access_list, y_parity=0,
                **fields, **signature,
            )  # fmt: skip
        tx = decode_transaction(execution.vm_class, unsigned.encode())
        tx._sender = args.sender  # chain.vm.CachedSender: taken as given, never recovered
        return tx

    def _check(self, state: Any, header: BlockHeaderAPI, args: CallArgs, tx: Any) -> None:
        """geth's ``preCheck`` and ``buyGas``, in its order and words, for the calls a
        block cannot include; each ends the simulation."""

        def fail(code: int, message: str) -> None:
            raise SimulationError(code, f"err: {message} (supplied gas {tx.gas})")

        sender = to_checksum_address(args.sender)
        state_nonce = state.get_nonce(args.sender)
        nonces = f"address {sender}, tx: {tx.nonce} state: {state_nonce}"
        if tx.nonce < state_nonce:
            fail(NONCE_TOO_LOW, f"nonce too low: {nonces}")
        if tx.nonce > state_nonce:
            fail(NONCE_TOO_HIGH, f"nonce too high: {nonces}")
        if state_nonce >= MAX_NONCE:
            fail(INTERNAL_ERROR, f"nonce has max value: address {sender}, nonce: {state_nonce}")
        fee_cap, tip = (  # before London a gas price
            (tx.max_fee_per_gas, tx.max_priority_fee_per_gas)
            if hasattr(tx, "max_fee_per_gas")
            else (tx.gas_price, tx.gas_price)
        )
        base_fee = getattr(header, "base_fee_per_gas", 0)
        if (self.options.validation or fee_cap or tip) and (fee_cap < base_fee):
            fail(
                BASE_FEE_TOO_LOW,
                f"max fee per gas less than block base fee: address {sender}, "
                f"maxFeePerGas: {fee_cap}, baseFee: {base_fee}",
            )
        balance = state.get_balance(args.sender)
        want = tx.gas * fee_cap + tx.value
        if balance < want:
            fail(
                INSUFFICIENT_FUNDS,
                f"insufficient funds for gas * price + value: address {sender} have {balance} "
                f"want {want}",
            )
        intrinsic = tx.intrinsic_gas
        if tx.gas < intrinsic:
            fail(INTRINSIC_GAS, f"intrinsic gas too low: have {tx.gas}, want {intrinsic}")


class _TransferRecorder:
    """Mixed into a simulation's computation class: each frame notes the value it moves
    (on entry, and by SELFDESTRUCT), numbered among the transaction's logs, so that
    ``traceTransfers`` can report it in order, and only if the frame (and every frame
    above it) did not fail."""

    def __init__(self, state: Any, message: Any, transaction_context: Any) -> None:
        super().__init__(state, message, transaction_context)  # type: ignore[call-arg]
        self.transfers: list[tuple[int, Log]] = []
        if message.should_transfer_value and message.value:
            self.record_transfer(message.sender, message.storage_address, message.value)

    def record_transfer(self, sender: bytes, recipient: bytes, value: int) -> None:
        topics = (
            TRANSFER_TOPIC_INT,
            int.from_bytes(sender, "big"),
            int.from_bytes(recipient, "big"),
        )
        sequence = self.transaction_context.get_next_log_counter()  # type: ignore[attr-defined]
        self.transfers.append((sequence, Log(TRANSFER_ADDRESS, topics, value.to_bytes(32, "big"))))


TRANSFER_TOPIC_INT = int.from_bytes(TRANSFER_TOPIC, "big")
SELFDESTRUCT = 0xFF


def _recording_selfdestruct(opcode: Any) -> Any:
    """SELFDESTRUCT that records the balance it sends to its beneficiary."""

    def selfdestruct(computation: Any) -> None:
        top = stack_values(computation)[-1]  # the beneficiary, before the opcode pops it
        raw = top if isinstance(top, bytes) else top.to_bytes(32, "big")
        beneficiary = raw[-20:].rjust(20, b"\x00")
        balance = computation.state.get_balance(computation.msg.storage_address)
        try:
            opcode(computation=computation)
        except Halt:  # how SELFDESTRUCT ends its frame, once the balance has moved
            if balance:
                computation.record_transfer(computation.msg.storage_address, beneficiary, balance)
            raise

    selfdestruct.mnemonic = getattr(opcode, "mnemonic", None) or opcode.__wrapped__.mnemonic  # type: ignore[attr-defined]
    return selfdestruct


def _logs(computation: ComputationAPI, trace_transfers: bool) -> list[Log]:
    """The logs of a successful call in order, with its transfers when asked for."""
    entries = [
        (sequence, Log(address, tuple(topics), data))
        for sequence, address, topics, data in computation.get_raw_log_entries()
    ]
    if trace_transfers:
        entries.extend(_transfers(computation))
    return [log for _, log in sorted(entries, key=lambda entry: entry[0])]


def _transfers(computation: Any) -> Iterator[tuple[int, Log]]:
    if computation.is_error:
        return
    yield from computation.transfers
    for child in computation.children:
        yield from _transfers(child)


def _apply_overrides(state: Any, overrides: dict[bytes, AccountOverride]) -> dict[bytes, Any]:
    """Set the overridden accounts and return the block's precompiles: those moved are
    found at their new address, and an address given code runs the code (geth's
    ``StateOverride.Apply``)."""
    precompiles = dict(state.computation_class.get_precompiles())
    moved_to: set[bytes] = set()
    for address in sorted(overrides):
        account = overrides[address]
        hex_address = to_checksum_address(address)
        if address in moved_to:
            raise SimulationError(
                SERVER_ERROR, f"account {hex_address} has already been overridden by a precompile"
            )
        is_precompile = address in precompiles
        if account.move_precompile_to is not None:
            if not is_precompile:
                raise SimulationError(SERVER_ERROR, f"account {hex_address} is not a precompile")
            if account.move_precompile_to in overrides:
                raise SimulationError(
                    SERVER_ERROR,
                    f"account {to_checksum_address(account.move_precompile_to)} is already "
                    "overridden",
                )
            precompiles[account.move_precompile_to] = precompiles[address]
            moved_to.add(account.move_precompile_to)
        if is_precompile:
            del precompiles[address]
        if account.nonce is not None:
            state.set_nonce(address, account.nonce)
        if account.code is not None:
            state.set_code(address, account.code)
        if account.balance is not None:
            state.set_balance(address, account.balance)
        if account.state is not None and account.state_diff is not None:
            raise SimulationError(
                SERVER_ERROR, f"account {hex_address} has both 'state' and 'stateDiff'"
            )
        if account.state is not None:
            state.delete_storage(address)
        for slot, value in (account.state or account.state_diff or {}).items():
            state.set_storage(address, slot, value)
    state.lock_changes()  # as if set by a transaction just before the block's calls
    return precompiles


def call_error(error: Exception, output: bytes) -> tuple[int, str, bytes | None]:
    """A failed call's error object as geth reports it: code 3 with the revert data, or
    -32015 with the halt's words."""
    if isinstance(error, Revert):
        reason = revert_reason(output)
        return EXECUTION_REVERTED, "execution reverted" + (f": {reason}" if reason else ""), output
    return VM_ERROR, halt_message(error), None
