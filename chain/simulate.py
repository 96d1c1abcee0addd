"""Calls that run the EVM without making a block: eth_call, eth_estimateGas and
eth_createAccessList.

A call runs on the state after the requested block, in the context of the block that
would follow it (number + 1, base fee 0), as anvil and hardhat do, so ``block.number``
inside a call is the number the transaction would get if it were sent now. That block's
fork is the one the importer would run it with (:func:`chain.vm.child_fork`): a call on
a Homestead block of a plain chain runs Homestead's rules. The sender
needs no signature and, unless it names a gas price, pays nothing for gas; its balance
must still cover ``value``.
"""

import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from eth.abc import BlockHeaderAPI, ComputationAPI
from eth.consensus.context import ConsensusContext
from eth.exceptions import (
    ContractCreationCollision,
    FullStack,
    InsufficientFunds,
    InsufficientStack,
    InvalidInstruction,
    InvalidJumpDestination,
    OutOfBoundsRead,
    OutOfGas,
    ReservedBytesInCode,
    Revert,
    StackDepthLimit,
    WriteProtection,
)
from eth.vm.chain_context import ChainContext
from eth.vm.message import Message
from eth.vm.spoof import SpoofTransaction
from eth_abi import decode as abi_decode
from eth_utils import ValidationError, to_checksum_address

from chain.ai.replicas import LocalModels
from chain.ai.results import NO_TX, CallOracle, SidecarPool
from chain.evm_timeout import DEADLINE, EvmTimeout
from chain.execution import VMChainDB
from chain.gas import TX_GAS, intrinsic_gas
from chain.precompiles.native import ERROR_SELECTOR
from chain.state_db import access_list, is_delegation
from chain.storage.store import state_view
from chain.vm import MERGED_FORKS, ChainConfig, child_fork, fork_since, vm_classes

CALL_GAS_CAP = 50_000_000  # geth's --rpc.gascap default
CALL_TIMEOUT = 5.0  # seconds, geth's --rpc.evmtimeout default
# eth_call answers kept (CallMemo): a dapp polls the same views at every head
CALL_MEMO_ENTRIES = 4096
CALL_MEMO_BYTES = 1024  # most calldata + output an answer kept may have
PANIC_SELECTOR = bytes.fromhex("4e487b71")
PANIC_REASONS = {
    0x00: "generic panic",
    0x01: "assert(false)",
    0x11: "arithmetic underflow or overflow",
    0x12: "division or modulo by zero",
    0x21: "enum overflow",
    0x22: "invalid encoded storage byte array accessed",
    0x31: "out-of-bounds array access; popping on an empty array",
    0x32: "out-of-bounds access of an array or bytesN",
    0x41: "out of memory",
    0x51: "uninitialized function",
}


class CallError(Exception):
    """A call that could not run at all (bad nonce, insufficient funds, bad fields)."""


class ExecutionReverted(Exception):
    """The call ran and reverted; ``data`` is the revert payload."""

    def __init__(self, data: bytes) -> None:
        reason = revert_reason(data)
        super().__init__("execution reverted" + (f": {reason}" if reason else ""))
        self.data = data


class OutOfGasError(Exception):
    """Estimation found no gas limit up to the cap that lets the call succeed."""


@dataclass
class CallArgs:
    sender: bytes = b"\x00" * 20
    to: bytes = b""
    gas: int | None = None
    gas_price: int | None = None
    max_fee_per_gas: int | None = None
    max_priority_fee_per_gas: int | None = None
    value: int = 0
    data: bytes = b""
    nonce: int | None = None
    access_list: list[tuple[bytes, list[int]]] = field(default_factory=list)


class AskedOracle(CallOracle):
    """A call's oracle that notes whether the call asked it anything: an answer that
    came from a sidecar or a model (or opened a job) is not the state's alone."""

    asked = False

    def begin(self, tx_hash: bytes, results: tuple[Any, ...] = ()) -> None:
        super().begin(tx_hash, results)
        self.asked = False

    def call(self, call: Any, state: Any) -> bytes:
        self.asked = True
        return super().call(call, state)

    def async_call_index(self) -> int:
        self.asked = True
        return super().async_call_index()


class CallMemo:
    """eth_call's successful outputs by block and arguments, the most recent kept.

    The state after a block never changes (a dev-chain state edit re-seals the head
    under a new hash), and a call's context follows from that block alone, so a call
    asked again on the same block gives the same output: a dapp asks for the same
    balances and views at every head, and the answer need not be run again. Kept only
    when the call ran to its end without consulting the oracle, and small."""

    def __init__(self, entries: int = CALL_MEMO_ENTRIES) -> None:
        self.entries = entries
        self._outputs: OrderedDict[tuple, bytes] = OrderedDict()
        self._lock = threading.Lock()  # the event loop reads, the EVM threads write

    @staticmethod
    def key(parent: BlockHeaderAPI, args: CallArgs) -> tuple:
        """The block and every field of the call (a test holds it to CallArgs' fields)."""
        return (
            parent.hash,
            args.sender,
            args.to,
            args.gas,
            args.gas_price,
            args.max_fee_per_gas,
            args.max_priority_fee_per_gas,
            args.value,
            args.data,
            args.nonce,
            tuple((address, tuple(slots)) for address, slots in args.access_list),
        )

    def get(self, parent: BlockHeaderAPI, args: CallArgs) -> bytes | None:
        key = self.key(parent, args)
        with self._lock:
            output = self._outputs.get(key)
            if output is not None:
                self._outputs.move_to_end(key)
            return output

    def keep(self, parent: BlockHeaderAPI, args: CallArgs, output: bytes) -> None:
        if len(args.data) + len(output) > CALL_MEMO_BYTES:
            return
        key = self.key(parent, args)
        with self._lock:
            self._outputs[key] = output
            if len(self._outputs) > self.entries:
                self._outputs.popitem(last=False)


def revert_reason(data: bytes) -> str | None:
    """The human-readable reason in ``Error(string)`` or ``Panic(uint256)`` revert data."""
    try:
        if data[:4] == ERROR_SELECTOR:
            return abi_decode(["string"], data[4:])[0]
        if data[:4] == PANIC_SELECTOR:
            code = abi_decode(["uint256"], data[4:])[0]
            return PANIC_REASONS.get(code, f"unknown panic code: {code:#x}")
    except Exception:
        return None
    return None


class Simulator:
    """Runs calls on the state after a given block, each bounded by ``gas_cap`` gas and
    ``timeout`` seconds (:mod:`chain.evm_timeout`).

    Each thread keeps the VM of the last block it was asked about, and every call runs
    inside a snapshot that is reverted afterwards: repeated calls on the head (the common
    case) find the accounts, storage and trie nodes they read already decoded, and
    eth_call's answers are kept in :attr:`memo`. The VM's computations run the
    interpreter loop of :mod:`chain.interpreter`, which spares most of py-evm's calls
    per opcode.
    """

    def __init__(
        self,
        config: ChainConfig,
        state_get: Any,
        headers: Any,
        sidecars: SidecarPool | None,
        replicas: LocalModels | None = None,
        gas_cap: int = CALL_GAS_CAP,
        timeout: float = CALL_TIMEOUT,
        total_difficulty: Callable[[BlockHeaderAPI], int] | None = None,
    ) -> None:
        self.config = config
        # a block's total difficulty says whether its child is a proof-of-stake one
        # (None: a chain merged at genesis, where that never depends on it)
        self.total_difficulty = total_difficulty or (lambda header: 0)
        self.state_get = state_get
        self.headers = headers
        self.sidecars = sidecars
        self.replicas = replicas
        self.gas_cap = gas_cap
        self.timeout = timeout
        self.deadline = DEADLINE
        self.memo = CallMemo()
        self._local = threading.local()  # .warm: (parent hash, VM) of this thread

    def gas_for(self, parent: BlockHeaderAPI, args: CallArgs) -> int:
        """The gas a call runs with: its own or the block's, at most the cap (as geth)."""
        return min(args.gas or parent.gas_limit, self.gas_cap)

    def fork_after(self, parent: BlockHeaderAPI) -> str:
        """The fork a call on the state after ``parent`` runs with: the next block's."""
        return child_fork(self.config, parent, parent.timestamp + 1, self.total_difficulty(parent))

    def vm_class_after(self, parent: BlockHeaderAPI) -> Any:
        return vm_classes(self.config.sibyl)[self.fork_after(parent)]

    def _vm(self, parent: BlockHeaderAPI, fresh: bool = False) -> Any:
        """A VM for the block after ``parent``, with base fee 0 and a generous gas limit;
        the kept one unless ``fresh`` (py-evm's record of what was read only restarts with
        a new state)."""
        warm = getattr(self._local, "warm", None)
        if not fresh and warm is not None and warm[0] == parent.hash:
            return warm[1]
        fork = self.fork_after(parent)
        vm_class = vm_classes(self.config.sibyl)[fork]
        fields: dict[str, Any] = dict(
            timestamp=parent.timestamp + 1,
            gas_limit=max(parent.gas_limit, self.gas_cap),
            coinbase=parent.coinbase,
        )
        if fork in MERGED_FORKS:  # before the merge the fork's formula gives DIFFICULTY
            fields["difficulty"] = 0
        header = vm_class.create_header_from_parent(parent, **fields)
        base_fee = {"base_fee_per_gas": 0} if fork_since(fork, "london") else {}
        header = header.copy(state_root=parent.state_root, **base_fee)
        db, _ = state_view(self.state_get)
        vm = vm_class(
            header=header,
            chaindb=VMChainDB(db, self.headers),
            chain_context=ChainContext(self.config.chain_id),
            consensus_context=ConsensusContext(db),
        )
        vm.state.oracle = AskedOracle(self.config.chain_id, self.sidecars, self.replicas)
        vm.state.calls_from_contracts = True  # geth skips EIP-3607 for calls
        if not fresh:
            self._local.warm = (parent.hash, vm)
        return vm

    def _transaction(self, vm: Any, fork: str, args: CallArgs, gas: int) -> Any:
        """An unsigned transaction from ``args.sender`` that pays nothing for gas, of a
        type ``fork`` has: before Berlin a legacy one (without the access list, which
        such a fork cannot warm), before London one without EIP-1559 fees (geth's
        calls then ignore ``maxFeePerGas``)."""
        builder = vm.get_transaction_builder()
        fields: dict[str, Any] = dict(
            nonce=vm.state.get_nonce(args.sender),  # calls skip nonce checks, as in geth
            gas=gas,
            to=args.to,
            value=args.value,
            data=args.data,
        )
        if not fork_since(fork, "berlin"):
            unsigned = builder.create_unsigned_transaction(gas_price=0, **fields)
            return SpoofTransaction(unsigned, from_=args.sender)
        fields.update(chain_id=self.config.chain_id, access_list=args.access_list)
        fees_1559 = fork_since(fork, "london") and args.gas_price is None
        if args.max_fee_per_gas is None or not fees_1559:
            unsigned = builder.new_unsigned_access_list_transaction(gas_price=0, **fields)
        else:
            unsigned = builder.new_unsigned_dynamic_fee_transaction(
                max_priority_fee_per_gas=0, max_fee_per_gas=0, **fields
            )
        return SpoofTransaction(unsigned, from_=args.sender)

    def _message_call(self, state: Any, args: CallArgs, gas: int, fork: str) -> ComputationAPI:
        """eth_call's fast path: the message alone, as the transaction executor would send
        it (same gas, same warm accounts, same delegation), without buying gas, bumping
        the nonce or settling fees, none of which a call's result depends on. From Berlin
        on (:func:`chain.gas.intrinsic_gas`'s rules, EIP-2929's warm accounts)."""
        intrinsic = intrinsic_gas(args.data, args.access_list)
        if gas < intrinsic:
            raise CallError(f"intrinsic gas too low: gas {gas}, minimum needed {intrinsic}")
        code, code_address = state.get_code(args.to), args.to
        if fork_since(fork, "prague") and is_delegation(code):  # EIP-7702: the delegate's
            code_address = code[3:]
            state.mark_address_warm(code_address)
            code = state.get_code(code_address)
        state.mark_address_warm(args.sender)
        state.mark_address_warm(args.to)
        for address, slots in args.access_list:
            state.mark_address_warm(address)
            for slot in slots:
                state.mark_storage_warm(address, slot)
        message = Message(
            gas=gas - intrinsic,
            to=args.to,
            sender=args.sender,
            value=args.value,
            data=args.data,
            code=code,
            code_address=code_address,
            is_delegation=code_address != args.to,
        )
        context = state.get_transaction_context_class()(
            gas_price=args.gas_price or 0, origin=args.sender
        )
        if args.value:  # moving the value is apply_message's part
            return state.computation_class.apply_message(state, message, context)
        # apply_message's other steps change no output of a call: a snapshot (execution
        # reverts its own) and the touch of the recipient, which only EIP-161's clean-up
        # at a transaction's end reads; the touch, a trie write, was a fifth of an empty
        # call's cost
        return state.computation_class.apply_computation(state, message, context)

    @contextmanager
    def execution(
        self,
        parent: BlockHeaderAPI,
        args: CallArgs,
        gas: int | None = None,
        fresh: bool = False,
        exact: bool = True,
        computation_class: Callable[[type], type] | None = None,
    ) -> Iterator[tuple[ComputationAPI, Any]]:
        """Execute once and yield ``(computation, state)``; the state is reverted after.

        ``exact`` runs the whole transaction (gas bought, refunds settled), which gas
        estimation needs; otherwise calls take the message-only fast path. With
        ``computation_class`` (given the VM's, it returns the one to run: a tracer's), a
        fresh VM runs the call."""
        gas = gas if gas is not None else self.gas_for(parent, args)
        fork = self.fork_after(parent)
        vm = self._vm(parent, fresh or computation_class is not None)
        state = vm.state
        if computation_class is not None:
            state.computation_class = computation_class(state.computation_class)
        state.lock_changes()  # a fresh access list, as at the start of a transaction
        snapshot = state.snapshot()
        try:
            # geth's words, which ethers and viem recognise; a call without value (most
            # of them) cannot fail this, so it does not read the sender's account
            if args.value and args.value > (balance := state.get_balance(args.sender)):
                raise CallError(
                    f"insufficient funds for gas * price + value: address "
                    f"{to_checksum_address(args.sender)} have {balance} want {args.value}"
                )
            state.oracle.begin(NO_TX)
            if not exact and args.to and fork_since(fork, "berlin"):
                computation = self._message_call(state, args, gas, fork)
            else:
                tx = self._transaction(vm, fork, args, gas)
                try:
                    if args.gas_price:  # what GASPRICE shows; the sender is not charged
                        with state.override_transaction_context(gas_price=args.gas_price):
                            computation = state.apply_transaction(tx)
                    else:
                        computation = state.apply_transaction(tx)
                except ValidationError as exc:
                    raise CallError(str(exc)) from None
            yield computation, state
        except EvmTimeout:
            self._local.warm = None  # stopped mid-message: start the next call afresh
            raise
        finally:
            state.revert(snapshot)
            if hasattr(type(state), "transient_storage"):  # EIP-1153, from Cancun on
                state.clear_transient_storage()

    def call(self, parent: BlockHeaderAPI, args: CallArgs) -> bytes:
        """The call's output, kept in :attr:`memo` where it may be (eth_call asks that
        first, on the event loop)."""
        with (
            self.deadline.running(self.timeout),
            self.execution(parent, args, exact=False) as (computation, state),
        ):
            _raise_for(computation)
            if not state.oracle.asked:
                self.memo.keep(parent, args, computation.output)
            return computation.output

    def estimate_gas(self, parent: BlockHeaderAPI, args: CallArgs) -> int:
        """The least gas limit with which the call succeeds (geth's binary search), the
        whole search within the time limit."""
        with self.deadline.running(self.timeout):
            return self._estimate_gas(parent, args)

    def _estimate_gas(self, parent: BlockHeaderAPI, args: CallArgs) -> int:
        cap = self.gas_for(parent, args)
        if not args.data and args.to and not args.access_list:
            code = self._vm(parent).state.get_code(args.to)
            if not code and self._succeeds(parent, args, TX_GAS):
                return TX_GAS  # a plain transfer, as geth answers without searching
        with self.execution(parent, args, cap) as (computation, _):
            if computation.is_error:  # as geth: out of gas even at the cap, or why not
                if isinstance(computation.error, OutOfGas):
                    raise OutOfGasError(f"gas required exceeds allowance ({cap})")
                _raise_for(computation)
            used = cap - computation.get_gas_remaining()
            refund = computation.get_gas_refund()
        low, high = used - 1, cap
        optimistic = (used + refund + 2300) * 64 // 63
        if optimistic < high and self._succeeds(parent, args, optimistic):
            high = optimistic
        while high - low > 1 and (high - low) * 1000 > high * 15:
            middle = (low + high) // 2
            if self._succeeds(parent, args, middle):
                high = middle
            else:
                low = middle
        return high

    def _succeeds(self, parent: BlockHeaderAPI, args: CallArgs, gas: int) -> bool:
        try:
            with self.execution(parent, args, gas) as (computation, _):
                return not computation.is_error
        except CallError:
            return False

    def access_list(
        self, parent: BlockHeaderAPI, args: CallArgs
    ) -> tuple[list[tuple[bytes, list[int]]], str | None]:
        """The accounts and slots the call touches (without sender, recipient, precompiles)."""
        with (
            self.deadline.running(self.timeout),
            self.execution(parent, args, fresh=True) as (computation, state),
        ):
            # the recipient of a creation is the created account, as geth leaves it out
            recipient = computation.msg.storage_address
            skip = {args.sender, recipient, state.coinbase} | set(
                state.computation_class.get_precompiles()
            )
            # py-evm records every account the state read; the call touched those it
            # warmed (before Berlin nothing is warmed, and every account read is touched)
            warms = fork_since(self.fork_after(parent), "berlin")
            touched = access_list(state)
            entries = [
                (address, sorted(tracker.slots_queried))
                for address, tracker in sorted(touched.items())
                if tracker.slots_queried
                or (address not in skip and (not warms or state.is_address_warm(address)))
            ]
            failed = computation.is_error
            error = (str(computation.error) or "execution reverted") if failed else None
        return entries, error


# geth's words for an exceptional halt (core/vm/errors.go), which clients and tests match
HALT_MESSAGES: tuple[tuple[type[Exception], str], ...] = (
    (OutOfGas, "out of gas"),
    (InvalidJumpDestination, "invalid jump destination"),
    (InsufficientStack, "stack underflow"),
    (FullStack, "stack limit reached 1024"),
    (StackDepthLimit, "max call depth exceeded"),
    (InsufficientFunds, "insufficient balance for transfer"),
    (ContractCreationCollision, "contract address collision"),
    (WriteProtection, "write protection"),
    (OutOfBoundsRead, "return data out of bounds"),
    (ReservedBytesInCode, "invalid code: must not begin with 0xef"),
)


def halt_message(error: Exception) -> str:
    """What geth says of an exceptional halt; py-evm's own words for anything else."""
    if isinstance(error, InvalidInstruction):
        opcode = re.fullmatch(r"Invalid opcode 0x([0-9a-f]+) @ \d+", str(error))
        if opcode is None:  # py-evm's words for a jump onto a 0x5b inside PUSH data
            return "invalid jump destination"
        value = int(opcode.group(1), 16)
        if value == 0xFE:
            return "invalid opcode: INVALID"
        return f"invalid opcode: opcode {value:#x} not defined"
    for kind, message in HALT_MESSAGES:
        if isinstance(error, kind):
            return message
    return str(error) or type(error).__name__


def _raise_for(computation: ComputationAPI) -> None:
    if not computation.is_error:
        return
    if isinstance(computation.error, Revert):
        raise ExecutionReverted(computation.output)
    raise CallError(halt_message(computation.error))
