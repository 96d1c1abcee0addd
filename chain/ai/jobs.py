"""JOBS (0x…0a04): async AI calls as jobs, their escrow, and the index of their deadlines.

An async precompile call (LLM, ZK_PROVE) creates a job through :func:`create_job` and
returns its id at once; the result arrives in a later block as a delivery transaction
(:mod:`chain.ai.delivery`), or the job expires at its deadline block. The job machinery
knows nothing of any one precompile: a job is a precompile, a model, an input, the
compute units its precompile priced, a callback and a deadline.

Everything lives in the storage of the JOBS account, laid out as Solidity would (see
:mod:`chain.slots`), so the state root commits to every job and every node derives the
same expiries:

  slot 0              number of pending jobs (a dev producer keeps blocks coming while
                      there are any)
  slot 1              the longest ttl a job may ask for, in blocks (from the genesis)
  slot 2              the most gas the expiries of one block may reserve (from the genesis)
  keccak(addr ‖ 3)    the balance of ``addr`` in JOBS, in wei
  keccak(id ‖ 4) + 0  requester (20 bytes) ‖ callbackSelector (4) ‖ callbackGasLimit (4) ‖
                      precompile (2: every AI precompile's address is below 0x10000) ‖
                      flags (1: bit 0, the job keeps its input at keccak(id ‖ 8)) ‖ 0
  keccak(id ‖ 4) + 1  modelId
  keccak(id ‖ 4) + 2  inputHash
  keccak(id ‖ 4) + 3  gasPrice (16 bytes) ‖ fee (16)
  keccak(id ‖ 4) + 4  reservedGas (7) ‖ createdBlock (8) ‖ deadline (8) ‖ settledBlock (8) ‖
                      status (1)
                      (each field big-endian, the first named in the high bytes)
  keccak(id ‖ 5)      the next job whose deadline is the same block (0 ends the list)
  keccak(block ‖ 6)   the first job whose deadline is ``block``
  keccak(block ‖ 7)   the gas the expiries at ``block`` may take, booked so far
  keccak(id ‖ 8)      the full input of a job whose delivery is checked against it (a
                      ZK_PROVE job: the proof's public inputs are the input's values), as a
                      byte string, while the job is pending; other jobs keep only its hash

A job's record is five words, so a delivery reads five cold slots of a trie as deep as
the jobs are many (and the input, for a job that keeps it): the record is read once and
handed along. Settling a job rewrites the last word (the transaction that settled it is
found in its settledBlock) and clears the input it kept, if any: each write rehashes a
path through that trie.

A block reads its deadline list (the jobs created with that deadline, settled or not) and
the records of the jobs it delivers: its work follows the jobs due or delivered in it,
never the jobs pending.

The JOBS account's ether is the sum of the balances and of the reservations of pending
jobs. Creating a job moves its reservation out of the requester's balance; settling it
pays the signers (on a result; for a result checked by its proof, the block's fee
recipient) and the block's fee recipient (the gas its callback used) and puts the rest
back. Interface: ``contracts/interfaces/IJobs.sol``; pricing rule in
docs/decisions.md.
"""

from dataclasses import dataclass, replace
from typing import Any

from eth.abc import ComputationAPI
from eth_abi import encode as abi_encode
from eth_utils import keccak

from chain.ai import registry
from chain.gas import floor_gas
from chain.precompiles.native import (
    READ_GAS,
    WRITE_GAS,
    Function,
    NativeContract,
    NativeRevert,
    event_topic,
)
from chain.slots import Storage, clear_slot, mapping_slot, read_blob, write_blob

JOBS = bytes.fromhex("0000000000000000000000000000000000000a04")
PENDING_COUNT_SLOT, MAX_TTL_SLOT, EXPIRY_GAS_SLOT = 0, 1, 2
BALANCE_MAP, RECORD_MAP, NEXT_MAP = 3, 4, 5
DEADLINE_MAP, DEADLINE_GAS_MAP, INPUT_MAP = 6, 7, 8

PENDING, OK, FAILED, EXPIRED = 0, 1, 2, 3
STATUS_NAMES = {PENDING: "pending", OK: "delivered", FAILED: "failed", EXPIRED: "expired"}
DEFAULT_MAX_TTL = 256
DEFAULT_EXPIRY_GAS = 20_000_000
MAX_CALLBACK_GAS = 5_000_000
# what creating a job costs the caller: its record, list link and the two deadline
# slots, the balance, and the JobCreated log (plus 8 gas a byte of its input)
JOB_GAS = 7 * WRITE_GAS
LOG_BYTE_GAS = 8

CREATED = event_topic("JobCreated(bytes32,address,bytes32,address,uint64,bytes)")
SETTLED = event_topic("JobSettled(bytes32,uint8,address[])")
CALLBACK_TYPES = ["bytes32", "uint8", "bytes"]
JOB_VIEW = ("address", "address", "bytes32", "uint8", "uint64", "uint64", "uint64")

RECORD_WORDS = 5
KEEPS_INPUT = 1  # the flag of a job whose input JOBS keeps
MAX_PRICE = 2**128 - 1  # the most gas price and fee a record holds
MAX_RESERVED_GAS = 2**56 - 1


class JobRefused(Exception):
    """A job cannot be created (underfunded requester, bad ttl, deadline block full); the
    precompile call fails with this reason and no job exists."""


@dataclass
class Job:
    id: bytes
    requester: bytes
    precompile: bytes
    model_id: bytes
    input_hash: bytes
    callback_selector: bytes
    callback_gas_limit: int
    gas_price: int  # of the requesting transaction: what the callback's gas is paid at
    fee: int  # the compute fee in wei, paid to the signers of a result
    reserved_gas: int  # the callback's gas limit plus the most its calldata can cost
    created_block: int
    deadline: int
    status: int = PENDING
    settled_block: int = 0
    keeps_input: bool = False  # JOBS keeps the full input until the job settles

    @property
    def reserved(self) -> int:
        """The wei held for the job while it is pending."""
        return self.fee + self.reserved_gas * self.gas_price


def job_id(chain_id: int, tx_hash: bytes, call_index: int) -> bytes:
    """``keccak256(chainId ‖ txHash ‖ callIndex)``, each field 32 bytes (DESIGN section 6)."""
    return keccak(chain_id.to_bytes(32, "big") + tx_hash + call_index.to_bytes(32, "big"))


def compute_fee(model: registry.ModelRecord, units: int, gas_price: int) -> int:
    """The model's schedule prices the compute of a job in gas, ``gasBase + gasPerUnit ×
    units``; the fee is that gas at the requesting transaction's gas price."""
    return (model.gas_base + model.gas_per_unit * units) * gas_price


def callback_data(job_id_: bytes, selector: bytes, status: int, output: bytes) -> bytes:
    return selector + abi_encode(CALLBACK_TYPES, [job_id_, status, output])


def callback_overhead(state_class: Any, data: bytes) -> int:
    """The gas a callback's calldata costs before the callee runs: the intrinsic gas of
    a transaction carrying it, or EIP-7623's floor where that is higher."""
    zeros = data.count(0)
    intrinsic = 21_000 + 4 * zeros + 16 * (len(data) - zeros)
    return max(intrinsic, floor_gas(state_class, data))


def reserved_gas(state_class: Any, callback_gas_limit: int, output_limit: int) -> int:
    """The callback's gas limit plus what the largest output's calldata could cost."""
    worst = callback_data(b"\xff" * 32, b"\xff" * 4, EXPIRED, b"\xff" * output_limit)
    return callback_gas_limit + callback_overhead(state_class, worst.replace(b"\x00", b"\xff"))


def expiry_gas(state_class: Any, job: "Job") -> int:
    """The most gas the job's expiry can take: its callback, with no output."""
    data = callback_data(job.id, job.callback_selector, EXPIRED, b"")
    return job.callback_gas_limit + callback_overhead(state_class, data)


# storage


def _key(value: bytes) -> bytes:
    return value.rjust(32, b"\x00")


def balance_of(state: Storage, account: bytes) -> int:
    return state.get_storage(JOBS, mapping_slot(_key(account), BALANCE_MAP))


def set_balance(state: Storage, account: bytes, amount: int) -> None:
    state.set_storage(JOBS, mapping_slot(_key(account), BALANCE_MAP), amount)


def pending_count(state: Storage) -> int:
    return state.get_storage(JOBS, PENDING_COUNT_SLOT)


def _count_pending(state: Storage, delta: int) -> None:
    state.set_storage(JOBS, PENDING_COUNT_SLOT, pending_count(state) + delta)


def max_ttl(state: Storage) -> int:
    return state.get_storage(JOBS, MAX_TTL_SLOT)


def _record_slot(id_: bytes, word: int) -> int:
    return (mapping_slot(id_, RECORD_MAP) + word) % 2**256


def get_job(state: Storage, id_: bytes) -> Job | None:
    """The job ``id_`` from its five record words, or None (its first word is never 0)."""
    head = state.get_storage(JOBS, _record_slot(id_, 0)).to_bytes(32, "big")
    if head == bytes(32):
        return None
    model_id, input_hash, prices, progress = (
        state.get_storage(JOBS, _record_slot(id_, i)).to_bytes(32, "big")
        for i in range(1, RECORD_WORDS)
    )
    return Job(
        id=id_,
        requester=head[:20],
        precompile=head[28:30].rjust(20, b"\x00"),
        model_id=model_id,
        input_hash=input_hash,
        callback_selector=head[20:24],
        callback_gas_limit=int.from_bytes(head[24:28], "big"),
        gas_price=int.from_bytes(prices[:16], "big"),
        fee=int.from_bytes(prices[16:], "big"),
        reserved_gas=int.from_bytes(progress[:7], "big"),
        created_block=int.from_bytes(progress[7:15], "big"),
        deadline=int.from_bytes(progress[15:23], "big"),
        settled_block=int.from_bytes(progress[23:31], "big"),
        status=progress[31],
        keeps_input=bool(head[30] & KEEPS_INPUT),
    )


def _put_record(state: Storage, job: Job) -> None:
    if job.precompile[:18] != bytes(18):
        raise ValueError(f"precompile 0x{job.precompile.hex()} is not below 0x10000")
    head = (
        job.requester + job.callback_selector + job.callback_gas_limit.to_bytes(4, "big")
        + job.precompile[18:] + bytes([KEEPS_INPUT if job.keeps_input else 0, 0])
    )  # fmt: skip
    prices = job.gas_price.to_bytes(16, "big") + job.fee.to_bytes(16, "big")
    for i, word in enumerate((head, job.model_id, job.input_hash, prices)):
        state.set_storage(JOBS, _record_slot(job.id, i), int.from_bytes(word, "big"))
    _put_progress(state, job)


def _put_progress(state: Storage, job: Job) -> None:
    """The record's last word: the fields fixed at creation beside status and settledBlock,
    so settling rewrites one word and reads none."""
    word = (
        job.reserved_gas.to_bytes(7, "big") + job.created_block.to_bytes(8, "big")
        + job.deadline.to_bytes(8, "big") + job.settled_block.to_bytes(8, "big")
        + bytes([job.status])
    )  # fmt: skip
    state.set_storage(JOBS, _record_slot(job.id, RECORD_WORDS - 1), int.from_bytes(word, "big"))


def job_input(state: Storage, id_: bytes) -> bytes:
    """The input a pending job keeps in state (empty for a job that keeps only its hash)."""
    return read_blob(state, JOBS, mapping_slot(id_, INPUT_MAP))


def input_gas(input_: bytes) -> int:
    """What keeping ``input_`` in state costs its job's creator: its length and words."""
    return WRITE_GAS * (1 + -(-len(input_) // 32))


def _deadline_slot(block: int) -> int:
    return mapping_slot(block.to_bytes(32, "big"), DEADLINE_MAP)


def _deadline_gas_slot(block: int) -> int:
    return mapping_slot(block.to_bytes(32, "big"), DEADLINE_GAS_MAP)


def jobs_due_at(state: Storage, block: int) -> list[Job]:
    """The jobs still pending whose deadline is ``block``, in job-id order. Settled jobs
    stay in the list (which is only ever walked) and are left out."""
    due = []
    word = state.get_storage(JOBS, _deadline_slot(block))
    while word:
        job = get_job(state, word.to_bytes(32, "big"))
        if job.status == PENDING:
            due.append(job)
        word = state.get_storage(JOBS, mapping_slot(job.id, NEXT_MAP))
    return sorted(due, key=lambda job: job.id)


def clear_deadline(state: Storage, block: int) -> None:
    """A block's deadline list, once the block runs its expiries, is not needed again."""
    clear_slot(state, JOBS, _deadline_slot(block))
    clear_slot(state, JOBS, _deadline_gas_slot(block))


# creating and settling


@dataclass(frozen=True)
class JobRequest:
    """What an async precompile asks of JOBS, whatever the precompile."""

    precompile: bytes
    model: registry.ModelRecord
    input: bytes
    units: int  # the compute units the model's schedule prices
    callback_selector: bytes
    callback_gas_limit: int
    ttl_blocks: int
    # keep the full input in state until the job settles (its delivery is checked
    # against it), not only its hash
    keep_input: bool = False


def create_job(computation: ComputationAPI, request: JobRequest, id_: bytes) -> Job:
    """Create the job ``id_`` for the contract calling the precompile of ``computation``:
    reserve its fee and callback gas, index its deadline and log ``JobCreated`` with the
    full input. Raises :class:`JobRefused` and changes nothing when it cannot be."""
    state = computation.state
    number = state.block_number
    if request.ttl_blocks == 0:
        raise JobRefused("ttlBlocks must be at least 1")
    if request.callback_gas_limit > MAX_CALLBACK_GAS:
        raise JobRefused(f"callbackGasLimit above {MAX_CALLBACK_GAS}")
    if get_job(state, id_) is not None:
        raise JobRefused(f"job 0x{id_.hex()} exists")
    deadline = number + min(request.ttl_blocks, max_ttl(state))
    gas_price = computation.transaction_context.gas_price
    requester = computation.msg.sender
    job = Job(
        id=id_,
        requester=requester,
        precompile=request.precompile,
        model_id=request.model.id,
        input_hash=keccak(request.input),
        callback_selector=request.callback_selector,
        callback_gas_limit=request.callback_gas_limit,
        gas_price=gas_price,
        fee=compute_fee(request.model, request.units, gas_price),
        reserved_gas=reserved_gas(
            type(state), request.callback_gas_limit, request.model.output_limit
        ),
        created_block=number,
        deadline=deadline,
        keeps_input=request.keep_input,
    )
    if job.gas_price > MAX_PRICE or job.fee > MAX_PRICE:
        raise JobRefused(
            f"gas price {job.gas_price} or fee {job.fee} wei is above a job's 2**128 - 1"
        )
    if job.reserved_gas > MAX_RESERVED_GAS:
        raise JobRefused(f"the callback would reserve {job.reserved_gas} gas, above 2**56")
    booked = state.get_storage(JOBS, _deadline_gas_slot(deadline))
    cap = state.get_storage(JOBS, EXPIRY_GAS_SLOT)
    expiry = expiry_gas(type(state), job)
    if booked + expiry > cap:
        raise JobRefused(
            f"the expiries of deadline block {deadline} would need more than {cap} gas; "
            "choose another ttlBlocks"
        )
    balance = balance_of(state, requester)
    if balance < job.reserved:
        raise JobRefused(
            f"balance {balance} in JOBS is below the job's fee and callback gas {job.reserved}"
        )
    set_balance(state, requester, balance - job.reserved)
    record_job(state, job, expiry)
    if request.keep_input:
        write_blob(state, JOBS, mapping_slot(id_, INPUT_MAP), request.input)
    computation.add_log_entry(
        JOBS,
        [CREATED, int.from_bytes(id_, "big"), int.from_bytes(requester, "big"),
         int.from_bytes(request.model.id, "big")],
        abi_encode(
            ["address", "uint64", "bytes"],
            ["0x" + request.precompile.hex(), deadline, request.input],
        ),
    )  # fmt: skip
    return job


def record_job(state: Storage, job: Job, expiry: int) -> None:
    """Write a new pending job: its record, progress, place in its deadline's list and
    the ``expiry`` gas it books there (its reservation is the caller's to move)."""
    booked = state.get_storage(JOBS, _deadline_gas_slot(job.deadline))
    state.set_storage(JOBS, _deadline_gas_slot(job.deadline), booked + expiry)
    head = _deadline_slot(job.deadline)
    state.set_storage(JOBS, mapping_slot(job.id, NEXT_MAP), state.get_storage(JOBS, head))
    state.set_storage(JOBS, head, int.from_bytes(job.id, "big"))
    _put_record(state, job)
    _count_pending(state, +1)


def settle(state: Any, job: Job, status: int) -> Job:
    """Mark ``job`` settled in this block (before its callback runs, so the callback
    reads it settled) and drop the input it kept; the money moves in :func:`pay`."""
    job = replace(job, status=status, settled_block=state.block_number)
    _put_progress(state, job)
    if job.keeps_input:
        write_blob(state, JOBS, mapping_slot(job.id, INPUT_MAP), b"")
    _count_pending(state, -1)
    return job


def pay(state: Any, job: Job, gas_used: int, payees: tuple[bytes, ...]) -> None:
    """Release a settled job's reservation: the gas its delivery used, at the requesting
    transaction's price, to the block's fee recipient; the fee to the ``payees`` of a
    result (its signers, or the block's fee recipient for a result its proof shows; split
    evenly, the remainder to the first); the rest back to the requester's balance."""
    gas_cost = min(gas_used, job.reserved_gas) * job.gas_price
    left = job.reserved - gas_cost
    if gas_cost:
        state.delta_balance(JOBS, -gas_cost)
        state.delta_balance(state.coinbase, gas_cost)
    if job.status == OK and payees and job.fee:
        share, remainder = divmod(job.fee, len(payees))
        for i, payee in enumerate(payees):
            amount = share + (remainder if i == 0 else 0)
            state.delta_balance(JOBS, -amount)
            state.delta_balance(payee, amount)
        left -= job.fee
    set_balance(state, job.requester, balance_of(state, job.requester) + left)


def settled_log(job: Job, signers: tuple[bytes, ...]) -> tuple[bytes, list[int], bytes]:
    data = abi_encode(["uint8", "address[]"], [job.status, ["0x" + s.hex() for s in signers]])
    return (JOBS, [SETTLED, int.from_bytes(job.id, "big")], data)


def genesis_storage(max_ttl_blocks: int, expiry_gas: int, storage: Storage) -> None:
    storage.set_storage(JOBS, MAX_TTL_SLOT, max_ttl_blocks)
    storage.set_storage(JOBS, EXPIRY_GAS_SLOT, expiry_gas)


# the native contract


class Jobs(NativeContract):
    address = JOBS
    name = "Jobs"

    def functions(self) -> list[Function]:
        return [
            Function("deposit()", (), self.deposit, writes=True, gas=WRITE_GAS),
            Function("depositFor(address)", (), self.deposit_for, writes=True, gas=WRITE_GAS),
            Function("withdraw(uint256)", (), self.withdraw, writes=True, gas=2 * WRITE_GAS),
            Function("balanceOf(address)", ("uint256",), self.balance, writes=False, gas=READ_GAS),
            Function(
                "getJob(bytes32)", JOB_VIEW, self.get_job, writes=False, gas=RECORD_WORDS * READ_GAS
            ),
        ]

    def deposit(self, computation: ComputationAPI) -> None:
        self._credit(computation, computation.msg.sender)

    def deposit_for(self, computation: ComputationAPI, account: str) -> None:
        self._credit(computation, bytes.fromhex(account[2:]))

    def _credit(self, computation: ComputationAPI, account: bytes) -> None:
        state = computation.state
        set_balance(state, account, balance_of(state, account) + computation.msg.value)

    def withdraw(self, computation: ComputationAPI, amount: int) -> None:
        state, sender = computation.state, computation.msg.sender
        if computation.msg.value:
            raise NativeRevert("withdraw(uint256) does not take value")
        balance = balance_of(state, sender)
        if amount > balance:
            raise NativeRevert(f"balance {balance} is below {amount}")
        set_balance(state, sender, balance - amount)
        state.delta_balance(JOBS, -amount)
        state.delta_balance(sender, amount)

    def balance(self, computation: ComputationAPI, account: str) -> int:
        return balance_of(computation.state, bytes.fromhex(account[2:]))

    def get_job(self, computation: ComputationAPI, id_: bytes) -> tuple:
        job = get_job(computation.state, id_)
        if job is None:
            return ("0x" + "00" * 20, "0x" + "00" * 20, b"\x00" * 32, 0, 0, 0, 0)
        return (
            "0x" + job.requester.hex(), "0x" + job.precompile.hex(), job.model_id, job.status,
            job.created_block, job.deadline, job.settled_block,
        )  # fmt: skip
