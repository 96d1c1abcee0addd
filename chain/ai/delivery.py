"""Delivery transactions (type 0x12): a job's result, or its expiry, and its callback.

``0x12 ‖ rlp([jobId, status, output, [signature, ...]])``, with no signature of its own:
the sender is JOBS. Status 1 (OK) carries the output and the executors' attestations
(context = the job id, DESIGN section 5); status 2 (FAILED) carries neither; status 3
(EXPIRED) is made by every node alike from the deadline index, for each job still pending
at its deadline block (:func:`expiries_due`). A block holds, after its scheduled
transactions, exactly the expiries due at it (in job-id order), then any deliveries; an
importing node rebuilds the expiries and checks every delivery (:func:`check_delivery`)
without any sidecar: the job is pending and before its deadline, and a quorum of
registered executors with the capability signed this output for this job on this chain,
or, for a ZK_PROVE job, the proof in the output shows that the job's prove-mode model
maps the job's input (kept in JOBS state while the job is pending) to the output's
values: then whoever delivered it, no signature is needed, and the fee goes to the
block's fee recipient.

:func:`run_delivery` settles the job, then calls the requester's
``callbackSelector(bytes32 jobId, uint8 status, bytes output)`` from JOBS with the job's
callback gas limit, as a transaction of JOBS (so the callee sees ``msg.sender == JOBS``).
A callback that reverts or runs out of gas leaves the job settled: the receipt's status
says how the callback went, its ``JobSettled`` log that the job ended. A delivery whose
callback calls AI precompiles enters the block wrapped in an attested transaction (0x13).
"""

from dataclasses import dataclass
from typing import Any

import rlp
from eth.rlp.logs import Log
from eth.rlp.receipts import Receipt
from eth.vm.forks.berlin.receipts import TypedReceipt
from eth_utils import keccak

from chain.ai import jobs, registry
from chain.ai.attested import SIGNATURE_LENGTH
from chain.ai.results import InvalidAiResult, proved_values_problem, verified_signers
from chain.envelope import Envelope, envelope_fields
from sidecars.abi import AbiError, decode_prove_input, decode_prove_output
from sidecars.attestation import attestation_digest

DELIVERY_TX_TYPE = 0x12
MAX_SIGNATURES = 64


class MalformedDelivery(ValueError):
    """Bytes that claim to be a delivery transaction and are not one."""


class InvalidDelivery(Exception):
    """A delivery that must not be in the block; the message says why."""


class DeliveryReceipt(TypedReceipt):
    """The receipt of a delivery transaction: ``0x12 ‖ rlp(receipt)``."""

    codecs = {DELIVERY_TX_TYPE: Receipt}


class _FromJobs:
    """What py-evm and the RPC read of a transaction JOBS sends: no value, no fee of its
    own, no signature, no access or authorization list, no blobs."""

    type_id = DELIVERY_TX_TYPE
    sender = jobs.JOBS
    value = 0
    gas_price = max_fee_per_gas = max_priority_fee_per_gas = 0
    access_list: tuple = ()
    authorization_list: tuple = ()
    blob_versioned_hashes: tuple = ()
    max_fee_per_blob_gas = 0
    y_parity = v = r = s = 0

    def get_sender(self) -> bytes:
        return jobs.JOBS


class DeliveryTransaction(_FromJobs, Envelope):
    """A job's result (or expiry), as a transaction of the block."""

    to = jobs.JOBS
    chain_id = 0
    nonce = 0
    gas = 0  # the callback's gas is the job's, checked against the block when it runs

    def __init__(
        self, job_id: bytes, status: int, output: bytes = b"", signatures: tuple = ()
    ) -> None:
        self.job_id = job_id
        self.status = status
        self.output = output
        self.signatures = tuple(signatures)

    @property
    def data(self) -> bytes:
        """What RPC shows as the input: the delivery's own fields, RLP-encoded."""
        return self.encode()[1:]

    def encode(self) -> bytes:
        fields = [self.job_id, self.status, self.output, list(self.signatures)]
        return bytes([DELIVERY_TX_TYPE]) + rlp.encode(fields)

    @classmethod
    def decode(cls, encoded: bytes, decode_inner: Any = None) -> "DeliveryTransaction":
        items = envelope_fields(encoded, "delivery transaction", MalformedDelivery)
        if len(items) != 4:
            raise MalformedDelivery("delivery transaction: must hold [jobId, status, output, sigs]")
        job_id, status, output, signatures = items
        if not isinstance(job_id, bytes) or len(job_id) != 32:
            raise MalformedDelivery("delivery transaction: job id must be 32 bytes")
        if status not in (b"\x01", b"\x02", b"\x03"):
            raise MalformedDelivery("delivery transaction: status must be 1, 2 or 3")
        if not isinstance(output, bytes) or not isinstance(signatures, list):
            raise MalformedDelivery("delivery transaction: output or signatures malformed")
        if len(signatures) > MAX_SIGNATURES or any(
            not isinstance(s, bytes) or len(s) != SIGNATURE_LENGTH for s in signatures
        ):
            raise MalformedDelivery("delivery transaction: signatures must be 65 bytes each")
        code = status[0]
        if code != jobs.OK and (output or signatures):
            raise MalformedDelivery(
                "delivery transaction: a failure or expiry carries no output or signature"
            )
        transaction = cls(job_id, code, output, tuple(signatures))
        if transaction.encode() != bytes(encoded):
            raise MalformedDelivery("delivery transaction: not in canonical RLP")
        return transaction

    @property
    def hash(self) -> bytes:
        return keccak(self.encode())


class JobCallback(_FromJobs):
    """The callback of a delivery, as py-evm's transaction executor runs it: sent by JOBS
    to the requester with the job's gas limit plus what its calldata costs. It buys no gas
    (its price is zero: :func:`chain.ai.jobs.pay` charges the job instead)."""

    def __init__(self, nonce: int, to: bytes, data: bytes, gas_limit: int, overhead: int):
        self.nonce = nonce
        self.to = to
        self.data = data
        self.intrinsic_gas = overhead
        self.gas = gas_limit + overhead

    def get_intrinsic_gas(self) -> int:
        return self.intrinsic_gas

    def validate(self) -> None:
        """Nothing to check: every field follows from the job's record."""

    def check_signature_validity(self) -> None:
        """Authorised by the job's record, not by a key."""

    def make_receipt(self, status: bytes, gas_used: int, log_entries: Any) -> DeliveryReceipt:
        logs = [Log(address, topics, data) for address, topics, data in log_entries]
        return DeliveryReceipt(DELIVERY_TX_TYPE, Receipt(status, gas_used, logs))


def expiries_due(state: Any, number: int) -> list[DeliveryTransaction]:
    """The expiry deliveries block ``number`` must hold, in job-id order; clears the
    block's deadline list (as the scheduler clears its due list)."""
    due = [DeliveryTransaction(job.id, jobs.EXPIRED) for job in jobs.jobs_due_at(state, number)]
    jobs.clear_deadline(state, number)
    return due


@dataclass(frozen=True)
class CheckedDelivery:
    job: jobs.Job
    signers: tuple[bytes, ...]  # the executors who signed the result (none for a proof)
    proved: bool = False  # the result was accepted on its proof


def check_delivery(state: Any, tx: DeliveryTransaction, chain_id: int) -> CheckedDelivery:
    """The job ``tx`` settles and how its result was shown valid, or InvalidDelivery."""
    where = f"delivery of job 0x{tx.job_id.hex()}"
    job = jobs.get_job(state, tx.job_id)
    number = state.block_number
    if job is None:
        raise InvalidDelivery(f"{where}: no such job")
    if job.status != jobs.PENDING:
        raise InvalidDelivery(
            f"{where}: the job is already {jobs.STATUS_NAMES[job.status]} "
            f"(block {job.settled_block})"
        )
    if tx.status == jobs.EXPIRED:
        if number != job.deadline:
            raise InvalidDelivery(
                f"{where}: an expiry before the job's deadline block {job.deadline}"
            )
        return CheckedDelivery(job, ())
    if number >= job.deadline:
        raise InvalidDelivery(f"{where}: the job expired at block {job.deadline}")
    if tx.status == jobs.FAILED:
        return CheckedDelivery(job, ())
    model = registry.get_model(state, job.model_id)
    if model is None:
        raise InvalidDelivery(f"{where}: model 0x{job.model_id.hex()} is no longer registered")
    if len(tx.output) > model.output_limit:
        raise InvalidDelivery(f"{where}: output exceeds the model's limit")
    if job.precompile == registry.ZK_PROVE:
        check_proof(state, job, model, tx, where)
        return CheckedDelivery(job, (), proved=True)
    digest = attestation_digest(
        chain_id, job.precompile, job.model_id, job.input_hash, keccak(tx.output), job.id
    )
    try:
        signers = verified_signers(
            state, digest, tx.signatures, job.precompile, model.quorum, where
        )
    except InvalidAiResult as exc:
        raise InvalidDelivery(str(exc)) from None
    return CheckedDelivery(job, signers)


def check_proof(
    state: Any, job: jobs.Job, model: registry.ModelRecord, tx: DeliveryTransaction, where: str
) -> None:
    """A ZK_PROVE result is valid on its proof alone: the output is ``abi.encode(values,
    shape, proof)`` and the proof shows, with the verifying key the registry names, that
    the model maps the values of the job's input (from JOBS state) to these values."""
    if model.mode != "prove":
        raise InvalidDelivery(f"{where}: model 0x{model.id.hex()} is no longer in prove mode")
    try:
        values, shape, proof = decode_prove_output(tx.output)
    except AbiError as exc:
        raise InvalidDelivery(f"{where}: {exc}") from None
    if not proof:
        raise InvalidDelivery(f"{where}: the model is in prove mode and the result has no proof")
    if tx.signatures:
        raise InvalidDelivery(f"{where}: a prove-mode result carries a proof, not signatures")
    kept = jobs.job_input(state, job.id)
    if keccak(kept) != job.input_hash:  # JOBS keeps every ZK_PROVE job's input
        raise InvalidDelivery(f"{where}: the job's input is not in JOBS state")
    request = decode_prove_input(kept)  # ZK_PROVE checked it when it made the job
    replicas = getattr(getattr(state, "oracle", None), "replicas", None)
    problem = proved_values_problem(
        replicas, model, request.values, request.decimals, values, shape, proof
    )
    if problem:
        raise InvalidDelivery(f"{where}: {problem}")


@dataclass
class _NoGasYet:
    """The header py-evm reads a receipt's cumulative gas from, at zero: we add it up."""

    gas_used: int = 0


def run_delivery(
    vm: Any, tx: DeliveryTransaction, cumulative_gas: int, gas_left: int, chain_id: int
) -> DeliveryReceipt:
    """Check ``tx``, settle its job, run the callback and pay; raises InvalidDelivery
    (changing nothing) when the delivery is not valid here or its callback cannot fit in
    the ``gas_left`` of the block."""
    state = vm.state
    checked = check_delivery(state, tx, chain_id)
    job, signers = checked.job, checked.signers
    data = jobs.callback_data(job.id, job.callback_selector, tx.status, tx.output)
    overhead = jobs.callback_overhead(type(state), data)
    callback = JobCallback(
        state.get_nonce(jobs.JOBS), job.requester, data, job.callback_gas_limit, overhead
    )
    if callback.gas > gas_left:
        raise InvalidDelivery(
            f"delivery of job 0x{job.id.hex()}: its callback needs {callback.gas} gas, the "
            f"block has {gas_left} left"
        )
    job = jobs.settle(state, job, tx.status)
    computation = state.apply_transaction(callback)
    own = vm.make_receipt(_NoGasYet(), callback, computation, state)
    jobs.pay(state, job, own.gas_used, (state.coinbase,) if checked.proved else signers)
    logs = [*computation.get_log_entries(), jobs.settled_log(job, signers)]
    return callback.make_receipt(own.state_root, cumulative_gas + own.gas_used, logs)
