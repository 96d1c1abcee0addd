"""The ``sibyl_`` namespace: registered models and executors, this node's sidecars,
scheduled calls, async jobs, and disagreements found by re-running a sample of attested
calls (DESIGN section 9)."""

from collections.abc import Callable
from typing import Any

from eth_abi import decode as abi_decode

from chain.ai import jobs, registry
from chain.ai.attested import inner_transaction
from chain.ai.delivery import DeliveryTransaction
from chain.ai.dispatch import created_jobs
from chain.ai.results import Disagreement
from chain.node import Node
from rpc import params as p
from rpc.encoding import d, q
from rpc.errors import not_found
from rpc.params import LATEST, BlockId, Param, method
from scheduler import state as calls
from scheduler.transactions import ScheduledTransaction


def _delivery_of(reader: Any, header: Any, job_id: bytes) -> tuple[Any, int] | None:
    """The transaction of ``header``'s block that settled ``job_id``, and its index."""
    block = reader.block(header.hash)
    for index, tx in enumerate(block.transactions):
        inner = inner_transaction(tx)
        if isinstance(inner, DeliveryTransaction) and inner.job_id == job_id:
            return tx, index
    return None


def model_json(record: registry.ModelRecord) -> dict[str, Any]:
    proved = {"verifyingKeyHash": d(record.verifying_key_hash)} if record.mode == "prove" else {}
    return {
        "id": d(record.id),
        "name": record.name,
        "kind": record.kind,
        "precompile": d(record.precompile),
        "inputShape": list(record.input_shape) if record.input_shape is not None else None,
        "outputShape": list(record.output_shape)
        if record.output_shape is not None and record.kind in ("torch", "onnx", "zk")
        else None,
        "decimals": record.decimals,
        "quorum": record.quorum,
        "mode": record.mode,
        "gasBase": q(record.gas_base),
        "gasPerUnit": q(record.gas_per_unit),
        "outputLimit": q(record.output_limit),
    } | proved


def scheduled_call_json(call: calls.ScheduledCall) -> dict[str, Any]:
    return {
        "callId": q(call.id),
        "owner": d(call.owner),
        "data": d(call.data),
        "startBlock": q(call.start_block),
        "frequency": q(call.frequency),
        "numCalls": q(call.num_calls),
        "executed": q(call.executed),
        "gasLimit": q(call.gas_limit),
        "maxFeePerGas": q(call.max_fee_per_gas),
        "predicate": d(call.predicate) if any(call.predicate) else None,
        "deposit": q(call.deposit),
        "nextBlock": q(call.next_block) if call.status == calls.ACTIVE else None,
        "status": calls.STATUS_NAMES[call.status],
    }


class SibylApi:
    def __init__(
        self,
        node: Node,
        header: Callable[[BlockId], Any],
        sidecars: Callable[[], list[dict[str, Any]]],
        disagreements: list[Disagreement],
    ) -> None:
        self.node = node
        self._header = header
        self._sidecars = sidecars
        self.disagreements = disagreements

    def _state(self, block: BlockId) -> Any:
        header = self._header(block)
        if header is None:
            raise not_found()
        return self.node.reader.accounts(header)

    @method(Param(p.block_id, LATEST))
    def sibyl_models(self, block: BlockId) -> list[dict[str, Any]]:
        state = self._state(block)
        return [model_json(registry.get_model(state, i)) for i in registry.model_ids(state)]

    @method(Param(p.block_id, LATEST))
    def sibyl_executors(self, block: BlockId) -> list[dict[str, Any]]:
        state = self._state(block)
        out = []
        for address in registry.executor_addresses(state):
            record = registry.get_executor(state, address)
            out.append(
                {
                    "address": d(address),
                    "capabilities": registry.capability_names(record.capabilities),
                    "stake": q(record.stake),
                    "active": record.active,
                }
            )
        return out

    @method()
    def sibyl_sidecars(self) -> list[dict[str, Any]]:
        return self._sidecars()

    @method(Param(p.quantity))
    def sibyl_getScheduledCall(self, call_id: int) -> dict[str, Any] | None:
        call = calls.get_call(self.node.reader.accounts(self.node.reader.head), call_id)
        return None if call is None else scheduled_call_json(call)

    @method(Param(p.block_number))
    def sibyl_scheduledCalls(self, block: BlockId) -> list[dict[str, Any]]:
        """The scheduled calls of a block: those it ran (up to the head, from its
        scheduled transactions), or those due at it so far (beyond the head)."""
        reader = self.node.reader
        number = block.number
        if number is None:
            header = self._header(block)
            number = reader.head.block_number if header is None else header.block_number
        if number > reader.head.block_number:
            state = reader.accounts(reader.head)
            return [
                {"callId": q(c.id), "index": q(c.executed), "transactionHash": None}
                for c in calls.due_calls_at(state, number)
            ]
        header = reader.canonical_header(number)
        block = reader.block(header.hash)
        ran = [inner_transaction(tx) for tx in block.transactions]
        return [
            {"callId": q(tx.call_id), "index": q(tx.index), "transactionHash": d(tx.hash)}
            for tx in ran
            if isinstance(tx, ScheduledTransaction)
        ]

    @method(Param(p.hash32))
    def sibyl_getJob(self, job_id: bytes) -> dict[str, Any] | None:
        """A job as of the head: its record, and once settled the delivery transaction,
        its output and who signed it; None for an unknown job."""
        reader = self.node.reader
        job = jobs.get_job(reader.accounts(reader.head), job_id)
        return None if job is None else self.job_json(job)

    @method()
    def sibyl_pendingJobs(self) -> list[dict[str, Any]]:
        """Every job pending at the head, by deadline: found in the deadline lists of the
        blocks up to the longest ttl ahead, as a builder recovering its jobs finds them."""
        reader = self.node.reader
        head = reader.head
        state = reader.accounts(head)
        pending = []
        for block in range(head.block_number + 1, head.block_number + jobs.max_ttl(state) + 1):
            pending += [self.job_json(job) for job in jobs.jobs_due_at(state, block)]
        return pending

    def job_json(self, job: jobs.Job) -> dict[str, Any]:
        reader = self.node.reader
        out: dict[str, Any] = {
            "id": d(job.id),
            "requester": d(job.requester),
            "precompile": d(job.precompile),
            "modelId": d(job.model_id),
            "status": jobs.STATUS_NAMES[job.status],
            "createdBlock": q(job.created_block),
            "deadline": q(job.deadline),
            "settledBlock": q(job.settled_block) if job.status != jobs.PENDING else None,
            "fee": q(job.fee),
            "callbackGasLimit": q(job.callback_gas_limit),
            "deliveryTransaction": None,
            "output": None,
            "signers": [],
        }
        settled_in = reader.canonical_header(job.settled_block) if job.settled_block else None
        found = _delivery_of(reader, settled_in, job.id) if settled_in is not None else None
        if found is not None:
            tx, index = found
            out["deliveryTransaction"] = d(tx.hash)
            out["output"] = d(inner_transaction(tx).output)
            receipt = reader.receipts(settled_in).receipts[index]
            for entry in receipt.logs:
                if entry.address == jobs.JOBS and entry.topics[0] == jobs.SETTLED:
                    (_, signers) = abi_decode(["uint8", "address[]"], entry.data)
                    out["signers"] = [s.lower() for s in signers]
        header = reader.canonical_header(job.created_block)
        created = (
            {c.id: c for c in created_jobs(reader.receipts(header).receipts)} if header else {}
        )
        if job.id in created:
            out["input"] = d(created[job.id].input)
        return out

    @method()
    def sibyl_disagreements(self) -> list[dict[str, Any]]:
        return [
            {
                "transactionHash": d(item.tx_hash),
                "callIndex": item.call_index,
                "modelId": d(item.model_id),
                "attestedOutput": d(item.attested),
                "localOutput": d(item.local),
                "signers": [d(s) for s in item.signers],
            }
            for item in self.disagreements
        ]
