"""The builder's side of async jobs: submit each new job to a sidecar, collect results.

A node with sidecars learns of jobs from the blocks it makes canonical (``JobCreated``
logs carry the full input, so it needs nothing but the chain) and, at start, from state:
each pending job is in the deadline list of a block after the head, and its input is in
the ``JobCreated`` log of the block that created it (:meth:`JobDispatcher.recover`). So a
restarted builder serves every job still pending. A node that follows another builder
keeps the same account of the jobs pending but runs none of them until it is first asked
to build (:meth:`JobDispatcher.deliveries`): a follower promoted to builder, by a
consensus client's ``forkchoiceUpdated`` with payload attributes, then submits every job
still pending to its own sidecars, without a restart and without running every job of
the chain it followed twice.

What the dispatcher holds follows the canonical chain, not what it has seen: when a
reorg moves blocks off (or back onto) the chain, each job created or settled in them is
looked up in the state of the new head (:meth:`JobDispatcher.on_reorg`). A job whose
delivery left the chain is pending again and is delivered again, once, on the new chain;
a job created only on the branch that left is forgotten.

A worker thread submits each job to a sidecar that serves its model and polls
``Result``; a result becomes a delivery transaction (status 1 with the executor's
attestation, or 2 when the model failed) that the next block built here includes. A
sidecar that forgot a job (restarted: ``JOB_STATE_UNKNOWN``) gets it again; a job no
sidecar of this node serves is left for other builders, and expires if none delivers it.
A job settled in a block (by any builder) or past its deadline is dropped. A model whose
results need several attestations runs on a sidecar of each of its executors, and the job
is delivered once a quorum of them agree (:meth:`JobDispatcher._gather`). A ZK_PROVE
job's result is delivered with no signature: its output carries the proof every node
checks (a proof this node's own check refuses stays out of its blocks, and the job
expires unless another builder delivers it).
"""

import heapq
import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from eth_abi import decode as abi_decode

from chain.ai import jobs, registry
from chain.ai.delivery import DeliveryTransaction

log = logging.getLogger("sibyl.jobs")

POLL_SECONDS = 0.2


@dataclass
class PendingJob:
    id: bytes
    precompile: bytes
    model_id: bytes
    input: bytes
    deadline: int
    submitted: bool = False
    quorum: int = 0  # read from the model registry when first dispatched
    # for a model that needs several attestations: the sidecar each executor runs it on,
    # and each executor's answer once it came
    assigned: dict[bytes, str] = field(default_factory=dict)
    answers: dict[bytes, Any] = field(default_factory=dict)


def created_jobs(receipts: Any) -> list[PendingJob]:
    """The jobs whose ``JobCreated`` logs are in ``receipts``."""
    found = []
    for receipt in receipts:
        for entry in receipt.logs:
            if entry.address == jobs.JOBS and entry.topics and entry.topics[0] == jobs.CREATED:
                precompile, deadline, data = abi_decode(["address", "uint64", "bytes"], entry.data)
                found.append(
                    PendingJob(
                        id=entry.topics[1].to_bytes(32, "big"),
                        precompile=bytes.fromhex(precompile[2:]),
                        model_id=entry.topics[3].to_bytes(32, "big"),
                        input=data,
                        deadline=deadline,
                    )
                )
    return found


def settled_jobs(receipts: Any) -> list[bytes]:
    return [
        entry.topics[1].to_bytes(32, "big")
        for receipt in receipts
        for entry in receipt.logs
        if entry.address == jobs.JOBS and entry.topics and entry.topics[0] == jobs.SETTLED
    ]


class JobDispatcher:
    """Jobs this node may deliver, their sidecar calls, and the deliveries ready."""

    def __init__(
        self,
        pool: Any,
        chain_id: int,
        quorum_of: Any = lambda model_id: 1,
        building: bool = True,
    ) -> None:
        self.pool = pool
        self.chain_id = chain_id
        self.quorum_of = quorum_of  # model id → attestations its results need
        self.pending: dict[bytes, PendingJob] = {}
        self.ready: dict[bytes, DeliveryTransaction] = {}
        # (deadline, job id) of every job in ``pending``, soonest first: a block drops
        # the jobs it expires without walking the others
        self.deadlines: list[tuple[int, bytes]] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        # set while this node builds blocks; a follower's sidecars run no job until then
        self.building = threading.Event()
        if building:
            self.building.set()
        self.worker = threading.Thread(target=self._run, name="jobs", daemon=True)

    def start(self) -> None:
        self.worker.start()

    def stop(self) -> None:
        self.stopping.set()
        if self.worker.is_alive():
            self.worker.join(5)

    def recover(self, reader: Any) -> int:
        """Learn the jobs pending at the head from state and their ``JobCreated`` logs;
        returns how many. Reads one deadline list per block of the longest ttl, and the
        receipts of each block that created one of them once."""
        head = reader.head
        state = reader.accounts(head)
        inputs = _CreatedLogs(reader)
        found: list[PendingJob] = []
        for block in range(head.block_number + 1, head.block_number + jobs.max_ttl(state) + 1):
            for job in jobs.jobs_due_at(state, block):
                created = inputs.job(job.created_block, job.id)
                if created is not None:
                    found.append(created)
        with self.lock:
            for job in found:
                self._add(job)
        if found:
            log.info("jobs recovered count=%d head=%d", len(found), head.block_number)
        return len(found)

    def on_block(self, executed: Any) -> None:
        """A block became canonical: its new jobs wait for a sidecar, its settled jobs and
        the jobs expired at it are done."""
        number = executed.header.block_number
        created = created_jobs(executed.receipts)
        settled = settled_jobs(executed.receipts)
        with self.lock:
            for job in created:
                self._add(job)
            for job_id in settled:
                self._drop(job_id)
            while self.deadlines and self.deadlines[0][0] <= number:
                self._drop(heapq.heappop(self.deadlines)[1])

    def on_reorg(self, reader: Any, moved: list[bytes]) -> None:
        """Blocks left the canonical chain or rejoined it (``moved``, stored blocks): each
        job created or settled in them is what the new head's state says it is. Pending,
        it waits for a sidecar again (its delivery may have left with its block); settled,
        expired or unknown there (created on the branch that left), it is done. The work
        follows the jobs of the moved blocks."""
        touched: set[bytes] = set()
        for block_hash in moved:
            header = reader.header(block_hash)
            if header is None:
                continue
            receipts = reader.receipts(header).receipts
            touched.update(job.id for job in created_jobs(receipts))
            touched.update(settled_jobs(receipts))
        state = reader.accounts(reader.head)
        inputs = _CreatedLogs(reader)
        again: list[PendingJob] = []
        gone: list[bytes] = []
        for job_id in sorted(touched):
            job = jobs.get_job(state, job_id)
            created = None
            if job is not None and job.status == jobs.PENDING:
                created = inputs.job(job.created_block, job_id)
            if created is None:
                gone.append(job_id)
            else:
                again.append(created)
        with self.lock:
            for job_id in gone:
                self._drop(job_id)
            for job in again:
                if job.id not in self.pending:
                    log.info("job pending again after a reorg job=0x%s", job.id.hex())
                    self._add(job)

    def _add(self, job: PendingJob) -> None:
        if job.id not in self.pending:
            self.pending[job.id] = job
            heapq.heappush(self.deadlines, (job.deadline, job.id))

    def _drop(self, job_id: bytes) -> None:
        """Forget a job (its entry in ``deadlines`` goes when its deadline comes)."""
        self.pending.pop(job_id, None)
        self.ready.pop(job_id, None)

    def deliveries(self) -> list[DeliveryTransaction]:
        """The deliveries the next block may include, oldest result first. The engine
        asks when it builds: from then on this node runs the jobs pending on its
        sidecars (a follower promoted to builder begins here)."""
        if not self.building.is_set():
            with self.lock:
                count = len(self.pending)
            log.info("this node builds now: running the jobs pending count=%d", count)
            self.building.set()
        with self.lock:
            return list(self.ready.values())

    def _run(self) -> None:
        while not self.stopping.wait(POLL_SECONDS):
            if self.building.is_set():
                self.poll()

    def poll(self) -> None:
        """One round: submit each job not yet on a sidecar, ask each submitted one for
        its result (the worker thread's loop; tests call it directly)."""
        with self.lock:
            waiting = [j for j in self.pending.values() if j.id not in self.ready]
        for job in waiting:
            if self.stopping.is_set():
                return
            try:
                self._advance(job)
            except Exception:
                log.exception("job dispatch failed job=0x%s", job.id.hex())

    def _advance(self, job: PendingJob) -> None:
        if not self.pool.serves(job.model_id):
            return  # left for a builder that serves the model
        proved = job.precompile == registry.ZK_PROVE
        job.quorum = job.quorum or (1 if proved else self.quorum_of(job.model_id))
        if job.quorum > 1:
            self._gather(job, job.quorum)
            return
        args = (job.id, job.precompile, job.model_id, job.input, self.chain_id)
        if not job.submitted:
            result = self.pool.submit(*args)
            if result.status != "ok":
                log.info("job submit failed job=0x%s reason=%s", job.id.hex(), result.error)
                return
            job.submitted = True
            log.info("job submitted job=0x%s model=0x%s", job.id.hex(), job.model_id.hex())
            return
        result = self.pool.result(*args)
        if result.status == "pending":
            return
        if result.status == "unknown":
            log.info("job forgotten by its sidecar, resubmitting job=0x%s", job.id.hex())
            job.submitted = False
            return
        if result.status == "ok":
            signatures = () if proved else (result.signature,)
            delivery = DeliveryTransaction(job.id, jobs.OK, result.output, signatures)
        else:
            log.info("job failed job=0x%s reason=%s", job.id.hex(), result.error)
            delivery = DeliveryTransaction(job.id, jobs.FAILED)
        self._ready(job, delivery)

    def _ready(self, job: PendingJob, delivery: DeliveryTransaction) -> None:
        with self.lock:
            if job.id in self.pending:
                self.ready[job.id] = delivery
        log.info("job result ready job=0x%s status=%d", job.id.hex(), delivery.status)

    def _gather(self, job: PendingJob, quorum: int) -> None:
        """Run the job on a sidecar of every executor of its model and deliver once
        ``quorum`` of them signed the same output. An executor whose sidecar is down (or
        forgot the job) is asked again, on whichever of its sidecars is up, while the
        others go on: the job waits for a quorum, not for every executor."""
        args = (job.id, job.precompile, job.model_id, job.input, self.chain_id)
        executors = self.pool.executors_for(job.model_id)
        for executor, name in executors.items():
            if executor in job.assigned or executor in job.answers:
                continue
            if self.pool.submit(*args, sidecar=name).status == "ok":
                job.assigned[executor] = name
        for executor, name in list(job.assigned.items()):
            result = self.pool.result(*args, sidecar=name)
            if result.status == "pending":
                continue
            del job.assigned[executor]
            if result.status != "unknown":
                job.answers[executor] = result
        agreeing: dict[bytes, list[bytes]] = {}
        for result in job.answers.values():
            if result.status == "ok":
                agreeing.setdefault(result.output, []).append(result.signature)
        for output, signatures in agreeing.items():
            if len(signatures) >= quorum:
                self._ready(job, DeliveryTransaction(job.id, jobs.OK, output, signatures[:quorum]))
                return
        if not job.assigned and len(job.answers) >= len(executors) and not agreeing:
            log.info("job failed on every executor job=0x%s", job.id.hex())
            self._ready(job, DeliveryTransaction(job.id, jobs.FAILED))


class _CreatedLogs:
    """The jobs created in canonical blocks, read from their ``JobCreated`` logs, each
    block's receipts once."""

    def __init__(self, reader: Any) -> None:
        self.reader = reader
        self.blocks: dict[int, dict[bytes, PendingJob]] = {}

    def job(self, number: int, job_id: bytes) -> PendingJob | None:
        if number not in self.blocks:
            header = self.reader.canonical_header(number)
            receipts = self.reader.receipts(header).receipts if header is not None else []
            self.blocks[number] = {job.id: job for job in created_jobs(receipts)}
        return self.blocks[number].get(job_id)
