"""The ``sibyl_`` namespace: registered models and executors, this node's sidecars, and
disagreements found by re-running a sample of attested calls (DESIGN section 9)."""

from collections.abc import Callable
from typing import Any

from chain.ai import registry
from chain.ai.attested import inner_transaction
from chain.ai.results import Disagreement
from chain.node import Node
from rpc import params as p
from rpc.encoding import d, q
from rpc.errors import not_found
from rpc.params import LATEST, BlockId, Param, method
from scheduler import state as calls
from scheduler.transactions import ScheduledTransaction


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
