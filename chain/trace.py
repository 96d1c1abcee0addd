"""``debug_traceTransaction``, ``debug_traceBlockBy*`` and ``debug_traceCall``: replay
stored transactions, or run a call, and report what the EVM did through one of the
tracers of :mod:`chain.tracers`.

A call is traced as ``eth_call`` runs it (:mod:`chain.simulate`). A transaction is
replayed on its parent's state after the transactions before it in its block, as on
import: AI calls take their results from the block's attestations, so tracing never
runs a model.
"""

import threading
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from eth.abc import BlockAPI, BlockHeaderAPI

from chain.ai.results import Oracle, VerifyOracle
from chain.execution import BlockExecution, HeaderLookup, StateLookup
from chain.simulate import CallArgs, Simulator
from chain.tracers import TraceOptions, make_tracer, traced_computation
from chain.vm import ChainConfig

if TYPE_CHECKING:  # the node holds what a replay reads; it never imports this module
    from chain.node import Node


def trace_block(
    config: ChainConfig,
    parent: BlockHeaderAPI,
    block: BlockAPI,
    state: StateLookup,
    headers: HeaderLookup,
    oracle: Oracle,
    options: TraceOptions,
    only: int | None = None,
    abort: threading.Event | None = None,
) -> list[dict[str, Any]]:
    """The traces of ``block``'s transactions, replayed on ``parent``'s state; with
    ``only``, the trace of that transaction alone (the ones before it run untraced).
    Setting ``abort`` stops the trace, as its timeout does."""
    execution = BlockExecution(config, parent, block.header, state, headers, oracle)
    untraced = execution.state.computation_class
    end = len(block.transactions) if only is None else only + 1
    traces = []
    for index, tx in enumerate(block.transactions[:end]):
        if only is not None and index < only:
            execution.apply(tx)
            continue
        tracer = make_tracer(options, tx, abort)
        execution.state.computation_class = traced_computation(untraced, tracer)
        gas_before = execution.gas.gas_used
        receipt = execution.apply(tx)
        traces.append(tracer.result(receipt.gas_used - gas_before))
    return traces


def trace_mined(
    node: "Node",
    block: BlockAPI,
    options: TraceOptions,
    only: int | None = None,
    abort: threading.Event | None = None,
) -> list[dict[str, Any]]:
    """:func:`trace_block` for a block of the node's chain: replayed on its parent's
    stored state, its AI calls answered by the results the block records (checked as an
    importer checks them), so a node without sidecars traces them too."""
    parent = node.reader.header(block.header.parent_hash)
    oracle = VerifyOracle(node.chain_config.chain_id, None, node.engine.replicas)
    return trace_block(
        node.chain_config, parent, block, node.store.state_get, node.reader.header,
        oracle, options, only, abort,
    )  # fmt: skip


def trace_call(
    simulator: Simulator,
    parent: BlockHeaderAPI,
    args: CallArgs,
    options: TraceOptions,
    abort: threading.Event | None = None,
) -> dict[str, Any]:
    """The trace of ``args`` run as ``eth_call`` runs it on the state after ``parent``."""
    gas = simulator.gas_for(parent, args)
    call = SimpleNamespace(sender=args.sender, to=args.to, data=args.data, gas=gas,
                           value=args.value)  # fmt: skip
    tracer = make_tracer(options, call, abort)
    with simulator.execution(
        parent, args, gas, computation_class=lambda base: traced_computation(base, tracer)
    ) as (computation, _):
        # what a transaction would be charged: the VM's own rule (refund cap, floor)
        vm_class = simulator.vm_class_after(parent)
        used = vm_class.finalize_gas_used(call, computation)
    return tracer.result(used)
