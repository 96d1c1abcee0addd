"""The state transition: a block executed on its parent's state.

The block builder and the importer share this one code path, as ethereum/execution-specs'
``apply_body`` serves both: open a :class:`BlockExecution` on the parent, apply
transactions one by one, then ``finish``. The builder chooses the transactions and the
header; the importer replays a given block and :func:`execute_block` compares every
header field it commits to with what the replay produced.

py-evm supplies the VM (interpreter, state, per-transaction rules); this module keeps the
block-level bookkeeping (gas used, bloom, blob gas, tries, requests) in plain values
instead of copying an RLP header after every transaction, which is what makes
``MiningChain.mine_all`` and ``apply_transaction`` slow.
"""

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import rlp
from eth.abc import BlockAPI, BlockHeaderAPI, ReceiptAPI, SignedTransactionAPI
from eth.consensus.context import ConsensusContext
from eth.exceptions import HeaderNotFound
from eth.vm.chain_context import ChainContext
from eth.vm.forks.cancun.state import get_total_blob_gas
from eth_utils import ValidationError, keccak

from chain import state_db
from chain.ai.attested import AttestedTransaction, inner_transaction
from chain.ai.delivery import DeliveryTransaction, InvalidDelivery, expiries_due, run_delivery
from chain.ai.results import InvalidAiResult, Oracle, ReplicaNotHere
from chain.errors import ExecutionStopped, SibylError
from chain.headers import EXCESS_BLOB_GAS, MAX_BLOB_GAS, with_fields
from chain.pow import InvalidHeader, apply_dao_fork, check_header, check_merge, check_uncles
from chain.requests import InvalidRequests, block_requests, requests_hash
from chain.storage import codec
from chain.storage.store import BlockWrite, state_view
from chain.trie.root import ordered_trie_root
from chain.vm import (
    MERGED_FORKS,
    ChainConfig,
    block_withdrawals,
    fork_since,
    make_block,
    vm_class_of,
)
from scheduler.top_of_block import due_calls, run_scheduled, scheduled_transactions
from scheduler.transactions import ScheduledTransaction

log = logging.getLogger("sibyl.execution")

HeaderLookup = Callable[[bytes], BlockHeaderAPI | None]
StateLookup = Callable[[bytes], bytes | None]


MAX_NONCE = 2**64 - 1  # EIP-2681: an account's nonce stays below it


class InvalidTransaction(Exception):
    """A transaction that cannot be included on top of the current block state."""


class InvalidBlock(Exception):
    """A block that breaks a consensus rule; the message says which one."""


@dataclass
class ExecutedBlock:
    """A block with everything its execution produced, ready to be committed."""

    block: BlockAPI
    receipts: list[ReceiptAPI]
    encoded_receipts: list[bytes]  # what the receipt root was made of, and what is stored
    encoded_transactions: list[bytes]  # what the transaction root was made of
    senders: list[bytes]
    signers: codec.Signers
    state: dict[bytes, bytes]
    requests: list[bytes] = field(default_factory=list)  # EIP-7685, type byte first
    preimages: dict[bytes, bytes] = field(default_factory=dict)  # of its written keys

    @property
    def hash(self) -> bytes:
        return self.block.header.hash

    @property
    def header(self) -> BlockHeaderAPI:
        return self.block.header

    def write(self, keep_preimages: bool = False) -> BlockWrite:
        """The block as the store commits it; with its keys' preimages on a dev chain."""
        return BlockWrite(
            hash=self.hash,
            number=self.header.block_number,
            header=codec.encode_header(self.header),
            block=codec.encode_block(self.block, self.encoded_transactions),
            receipts=codec.encode_receipts(self.encoded_receipts, self.senders, self.signers),
            state=self.state,
            tx_hashes=[tx.hash for tx in self.block.transactions],
            preimages=self.preimages if keep_preimages else {},
        )


class VMChainDB:
    """The part of py-evm's ChainDB that a VM reads: state, and headers for BLOCKHASH."""

    def __init__(self, db: Any, headers: HeaderLookup) -> None:
        self.db = db
        self._headers = headers

    def get_block_header_by_hash(self, block_hash: bytes) -> BlockHeaderAPI:
        header = self._headers(block_hash)
        if header is None:
            raise HeaderNotFound(f"no header {block_hash.hex()}")
        return header

    def exists(self, key: bytes) -> bool:
        return key in self.db


@dataclass
class _GasCounter:
    """Stands in for the header py-evm reads gas figures from while applying a transaction."""

    gas_used: int
    gas_limit: int


class BlockExecution:
    """One block being executed on top of its parent's state."""

    def __init__(
        self,
        config: ChainConfig,
        parent: BlockHeaderAPI,
        header: BlockHeaderAPI,
        state: StateLookup,
        headers: HeaderLookup,
        oracle: Oracle | None = None,
    ) -> None:
        self.config = config
        self.vm_class = vm_class_of(config, header)
        self.fork = config.fork_of(header.block_number, header.timestamp, header.difficulty)
        self.header = header
        db, self.overlay = state_view(state)
        start = header  # a new block's header (the builder's) starts as the block does
        if (header.state_root, header.gas_used, header.bloom) != (parent.state_root, 0, 0):
            start = with_fields(header, state_root=parent.state_root, gas_used=0, bloom=0)
        self.vm = self.vm_class(
            header=start,
            chaindb=VMChainDB(db, headers),
            chain_context=ChainContext(config.chain_id),
            consensus_context=ConsensusContext(db),
        )
        self.state = self.vm.state
        self.state.oracle = oracle
        self.gas = _GasCounter(0, header.gas_limit)
        self.bloom = 0
        self.blob_gas_used = 0
        self.computation: Any = None  # the last user transaction's (eth_simulateV1 reads it)
        self.requests: list[bytes] = []
        self.transactions: list[SignedTransactionAPI] = []
        self.receipts: list[ReceiptAPI] = []
        self.senders: list[bytes] = []
        self.signers: codec.Signers = []
        block_class = self.vm_class.get_block_class()
        self.vm.block_preprocessing(make_block(block_class, start))
        if header.block_number == config.dao_fork_block:
            apply_dao_fork(self.state)
        # the calls due now, which the block must start with (the overflow waits a block)
        due = due_calls(self.state, header.block_number) if config.sibyl else []
        self.due = {call.id: call for call in due}
        self.scheduled = scheduled_transactions(self.state, due, config.chain_id)
        # then the jobs whose deadline this block is: each expires here, after the calls
        self.expiries = expiries_due(self.state, header.block_number)
        self.chain_id = config.chain_id

    def apply(self, tx: SignedTransactionAPI) -> ReceiptAPI:
        """Execute ``tx`` and add it to the block, or raise and leave the state as it was."""
        if self.gas.gas_used + tx.gas > self.gas.gas_limit:
            raise InvalidTransaction(
                f"gas limit reached: block has {self.gas.gas_limit - self.gas.gas_used} "
                f"gas left, transaction needs {tx.gas}"
            )
        blob_gas = self.blob_gas_used + get_total_blob_gas(tx)
        if blob_gas > (allowance := MAX_BLOB_GAS.get(self.fork, 0)):  # geth's words
            raise InvalidTransaction(
                f"blob gas used {blob_gas} exceeds maximum allowance {allowance}"
            )
        self.state.lock_changes()
        snapshot = self.state.snapshot()
        oracle = self.state.oracle
        if oracle is not None:
            oracle.begin(tx.hash, tx.results if isinstance(tx, AttestedTransaction) else ())
        inner = inner_transaction(tx)
        if getattr(inner, "nonce", 0) >= MAX_NONCE:  # EIP-2681; py-evm only bounds it by 2**256
            raise InvalidTransaction(f"nonce has max value: nonce {inner.nonce}")
        try:
            if isinstance(inner, ScheduledTransaction):
                call = self.due.get(inner.call_id)
                if call is None:
                    raise InvalidTransaction(f"scheduled call {inner.call_id} is not due")
                receipt = run_scheduled(self.vm, inner, call, self.gas.gas_used)
            elif isinstance(inner, DeliveryTransaction):
                gas_left = self.gas.gas_limit - self.gas.gas_used
                receipt = run_delivery(self.vm, inner, self.gas.gas_used, gas_left, self.chain_id)
            else:
                computation = self.state.apply_transaction(inner)
                receipt = self.vm.make_receipt(self.gas, inner, computation, self.state)
                self.computation = computation
            recorded = oracle.finish() if oracle is not None else ()
        except (ValidationError, InvalidAiResult, ReplicaNotHere, InvalidDelivery) as exc:
            self.state.revert(snapshot)
            raise InvalidTransaction(str(exc)) from None
        except (ExecutionStopped, SibylError):  # a stop (a simulation's time limit too), or
            # the store failing: not the transaction's fault
            self.state.revert(snapshot)
            raise
        except Exception as exc:  # py-evm refusing in its own way: still a transaction
            self.state.revert(snapshot)  # that cannot be included, never a crash
            log.warning("transaction execution raised tx=0x%s error=%r", tx.hash.hex(), exc)
            raise InvalidTransaction(f"execution failed: {type(exc).__name__}: {exc}") from None
        if recorded and not isinstance(tx, AttestedTransaction):
            tx = AttestedTransaction(tx, recorded)
        self.gas.gas_used = receipt.gas_used
        self.bloom |= receipt.bloom
        self.blob_gas_used = blob_gas
        self.transactions.append(tx)
        self.receipts.append(receipt)
        self.senders.append(tx.sender)
        self.signers.append(tuple(oracle.signers) if oracle is not None else ())
        return receipt

    def finish(self, withdrawals: Sequence[Any] = (), uncles: Sequence[Any] = ()) -> ExecutedBlock:
        """Apply withdrawals (or, before the merge, the rewards of the block and its
        uncles) and system requests, commit the state, and seal the header."""
        block_class = self.vm_class.get_block_class()
        if self.fork not in MERGED_FORKS:
            self.vm._assign_block_rewards(make_block(block_class, self.header, uncles=uncles))
        if withdrawals:
            self.vm.apply_all_withdrawals(withdrawals)
        encoded_receipts = [codec.encode_receipt(receipt) for receipt in self.receipts]
        encoded_transactions = [tx.encode() for tx in self.transactions]
        fields: dict[str, Any] = dict(
            gas_used=self.gas.gas_used,
            bloom=self.bloom,
            transaction_root=ordered_trie_root(encoded_transactions),
            receipt_root=ordered_trie_root(encoded_receipts),
        )
        if fork_since(self.fork, "shanghai"):
            fields["withdrawals_root"] = ordered_trie_root([w.encode() for w in withdrawals])
        if fork_since(self.fork, "cancun"):
            fields["blob_gas_used"] = self.blob_gas_used
        if self.fork == "prague":
            self.requests = self._system_requests()
            fields["requests_hash"] = requests_hash(self.requests)
        self.state.persist()
        fields["state_root"] = self.state.state_root
        # The block is made once: rlp's copy() deep-copies every transaction.
        block = make_block(
            block_class, with_fields(self.header, **fields), self.transactions, uncles, withdrawals
        )
        return ExecutedBlock(
            block=block,
            receipts=self.receipts,
            encoded_receipts=encoded_receipts,
            encoded_transactions=encoded_transactions,
            senders=self.senders,
            signers=self.signers,
            state=self.overlay.writes,
            requests=self.requests,
            preimages=state_db.preimages(self.state),
        )

    def _system_requests(self) -> list[bytes]:
        try:
            return block_requests(
                self.vm, self.receipts, self.config.deposit_contract, self.config.sibyl
            )
        except InvalidRequests as exc:
            raise InvalidBlock(f"block {self.header.block_number}: {exc}") from None


def check_body(block: BlockAPI) -> None:
    """The block's body is the one its header commits to (transactions, uncles,
    withdrawals), checked before execution as geth's ``ValidateBody`` does. A block that
    fails here says nothing about the header: a valid block has the same hash."""
    header = block.header
    if ordered_trie_root([tx.encode() for tx in block.transactions]) != header.transaction_root:
        raise InvalidBlock(
            f"block {header.block_number}: transactions differ from the header's root"
        )
    if keccak(rlp.encode(block.uncles)) != header.uncles_hash:
        raise InvalidBlock(f"block {header.block_number}: uncles differ from the header's hash")
    withdrawals_root = getattr(header, "withdrawals_root", None)
    if withdrawals_root is not None and withdrawals_root != ordered_trie_root(
        [w.encode() for w in block_withdrawals(block)]
    ):
        raise InvalidBlock(
            f"block {header.block_number}: withdrawals differ from the header's root"
        )


def execute_block(
    config: ChainConfig,
    parent: BlockHeaderAPI,
    block: BlockAPI,
    state: StateLookup,
    headers: HeaderLookup,
    oracle: Oracle | None = None,
    parent_total_difficulty: int = 0,
    blocks: Callable[[bytes], BlockAPI | None] = lambda block_hash: None,
) -> ExecutedBlock:
    """Replay ``block`` on ``parent`` and check every header field it commits to.

    ``parent_total_difficulty`` says, on a chain that merges after genesis, whether the
    block must be a proof-of-work or a proof-of-stake one; ``blocks`` gives the bodies of
    recent ancestors, whose uncles a proof-of-work block's may not repeat."""
    header = block.header
    _check_header(config, parent, block, parent_total_difficulty, headers, blocks)
    try:
        execution = BlockExecution(config, parent, header, state, headers, oracle)
        _check_scheduled(header.block_number, execution.scheduled, block.transactions)
        _check_deliveries(
            header.block_number, len(execution.scheduled), execution.expiries, block.transactions
        )
        for index, tx in enumerate(block.transactions):
            try:
                execution.apply(tx)
            except InvalidTransaction as exc:
                raise InvalidBlock(
                    f"block {header.block_number} transaction {index} (0x{tx.hash.hex()}): {exc}"
                ) from None
        executed = execution.finish(block_withdrawals(block), block.uncles)
    except (InvalidBlock, ExecutionStopped, SibylError):
        raise
    except ValidationError as exc:  # py-evm validates what the header gives it late
        raise InvalidBlock(f"block {header.block_number}: {exc}") from None
    except Exception as exc:  # whatever py-evm raises, the block is what is wrong
        log.warning("block execution raised number=%d error=%r", header.block_number, exc)
        raise InvalidBlock(
            f"block {header.block_number}: execution failed: {type(exc).__name__}: {exc}"
        ) from None
    _compare_headers(header, executed.header)
    return executed


def _check_header(
    config: ChainConfig,
    parent: BlockHeaderAPI,
    block: BlockAPI,
    parent_total_difficulty: int,
    headers: HeaderLookup,
    blocks: Callable[[bytes], BlockAPI | None],
) -> None:
    """The header rules of the block's era (chain.pow before the merge), before it runs."""
    header = block.header
    fork = config.fork_of(header.block_number, header.timestamp, header.difficulty)
    try:
        vm_class = vm_class_of(config, header)
    except ValidationError as exc:  # a proof-of-work header on a chain born merged
        raise InvalidBlock(str(exc)) from None
    if not isinstance(block, vm_class.get_block_class()):
        raise InvalidBlock(
            f"block {header.block_number} has the layout of another fork than {fork}"
        )
    try:
        check_merge(config, header, parent_total_difficulty)
        if fork not in MERGED_FORKS:
            check_header(config, header, parent)
            check_uncles(config, block, headers, blocks)
            return
        vm_class.validate_header(header, parent)
    except (ValidationError, InvalidHeader) as exc:
        raise InvalidBlock(f"block {header.block_number}: {exc}") from None
    if block.uncles:
        raise InvalidBlock(f"block {header.block_number}: uncles are not allowed after the merge")
    if fork_since(fork, "cancun"):  # from the parent alone, not a whole header made again
        expected = EXCESS_BLOB_GAS[fork](parent)
        if expected != header.excess_blob_gas:
            raise InvalidBlock(
                f"block {header.block_number}: excess blob gas {header.excess_blob_gas}, "
                f"expected {expected}"
            )


def _check_scheduled(number: int, due: list[ScheduledTransaction], transactions: Any) -> None:
    """A block starts with exactly the scheduled calls due at it, in order, and holds no
    other scheduled transaction."""
    leading = [inner_transaction(tx) for tx in transactions[: len(due)]]
    if [tx.encode() for tx in leading] != [tx.encode() for tx in due]:
        expected = [tx.call_id for tx in due]
        found = [
            tx.call_id if isinstance(tx, ScheduledTransaction) else None
            for tx in map(inner_transaction, transactions[: len(due) + 1])
        ]
        raise InvalidBlock(
            f"block {number}: must start with the scheduled calls due {expected} "
            f"(with their current fields); its transactions are calls {found}"
        )
    for index, tx in enumerate(transactions[len(due) :], start=len(due)):
        if isinstance(inner_transaction(tx), ScheduledTransaction):
            raise InvalidBlock(
                f"block {number}: transaction {index} is a scheduled call that is not due here"
            )


def _check_deliveries(
    number: int, start: int, expiries: list[DeliveryTransaction], transactions: Any
) -> None:
    """After its scheduled calls a block holds exactly the expiries due at it, in job-id
    order, then its deliveries, then user transactions. (Whether a delivery is valid, an
    expiry of a job not due included, is checked as it runs.)"""
    inner = [inner_transaction(tx) for tx in transactions]
    for position, expiry in enumerate(expiries):
        index = start + position
        if index >= len(inner) or inner[index] != expiry:
            raise InvalidBlock(
                f"block {number}: transaction {index} must be the expiry of job "
                f"0x{expiry.job_id.hex()}, due at this block"
            )
    users_began = False
    for index in range(start + len(expiries), len(inner)):
        delivery = isinstance(inner[index], DeliveryTransaction)
        if delivery and users_began:
            raise InvalidBlock(
                f"block {number}: transaction {index} is a delivery after a user transaction; "
                "deliveries follow the scheduled calls and expiries"
            )
        users_began = users_began or not delivery


_CHECKED_FIELDS = (
    "state_root",
    "transaction_root",
    "receipt_root",
    "bloom",
    "gas_used",
    "withdrawals_root",
    "blob_gas_used",
    "requests_hash",
)


def _compare_headers(given: BlockHeaderAPI, computed: BlockHeaderAPI) -> None:
    for name in _CHECKED_FIELDS:
        if not hasattr(given, name):
            continue
        ours, theirs = getattr(computed, name), getattr(given, name)
        if ours != theirs:
            show = (lambda v: "0x" + v.hex()) if isinstance(ours, bytes) else str
            raise InvalidBlock(
                f"block {given.block_number}: {name} is {show(theirs)}, "
                f"execution gives {show(ours)}"
            )
    if computed.hash != given.hash:
        raise InvalidBlock(f"block {given.block_number}: hash mismatch after execution")
