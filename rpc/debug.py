"""The ``debug_`` namespace: raw consensus encodings of blocks, headers, receipts and
transactions, which followers use to import blocks from a peer, and traces of mined
transactions and blocks (:mod:`chain.trace`)."""

import asyncio
import dataclasses
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from eth.abc import BlockAPI, BlockHeaderAPI

from chain.evm_timeout import EvmTimeout
from chain.execution import InvalidTransaction
from chain.node import Node
from chain.simulate import CallArgs
from chain.trace import trace_call, trace_mined
from chain.tracers import TraceOptions, TraceTimeout, TraceTooLarge
from rpc import params as p
from rpc.encoding import d
from rpc.errors import SERVER_ERROR, RpcError, not_found
from rpc.eth import EthApi
from rpc.params import LATEST, BlockId, Param, method


class DebugApi:
    def __init__(self, node: Node, eth: EthApi) -> None:
        self.node = node
        self.eth = eth
        # Traces replay blocks: one at a time, off the event loop that serves every other
        # request (and the Engine API), each bounded by its timeout.
        self._tracing = ThreadPoolExecutor(max_workers=1, thread_name_prefix="trace")
        self.stopping = threading.Event()

    def close(self) -> None:
        """Stop a running trace (``stopping``) and wait for it: the store must outlive
        its readers."""
        self.stopping.set()
        self._tracing.shutdown(wait=True, cancel_futures=True)

    def _header(self, block: BlockId) -> BlockHeaderAPI:
        header = self.eth.header(block)
        if header is None:
            raise not_found()
        return header

    @method(Param(p.block_id))
    def debug_getRawHeader(self, block: BlockId) -> str:
        return d(self.node.reader.raw_header(self._header(block).hash) or b"")

    @method(Param(p.block_id))
    def debug_getRawBlock(self, block: BlockId) -> str:
        return d(self.node.reader.raw_block(self._header(block).hash) or b"")

    @method(Param(p.block_id))
    def debug_getRawReceipts(self, block: BlockId) -> list[str]:
        receipts = self.eth.block_data(self._header(block)).receipts
        return [d(receipt.encode()) for receipt in receipts]

    @method(Param(p.hash32))
    def debug_getRawTransaction(self, tx_hash: bytes) -> str:
        found = self.node.reader.transaction(tx_hash)
        if found is not None:
            return d(found[0].encode())
        pooled = self.node.pool.get(tx_hash)
        return d(pooled.raw) if pooled is not None else "0x"

    @method(Param(p.hash32), Param(p.trace_options, TraceOptions()))
    async def debug_traceTransaction(self, tx_hash: bytes, options: TraceOptions) -> dict:
        found = self.node.reader.transaction(tx_hash)
        if found is None:
            raise not_found("transaction not found")  # geth's words
        location = found[1]
        block = self.node.reader.block(location.block_hash)
        return (await self._trace(block, options, location.index))[0]

    @method(Param(p.block_id), Param(p.trace_options, TraceOptions()))
    async def debug_traceBlockByNumber(self, block: BlockId, options: TraceOptions) -> list:
        return await self._trace_all(self._header(block), options)

    @method(Param(p.hash32), Param(p.trace_options, TraceOptions()))
    async def debug_traceBlockByHash(self, block_hash: bytes, options: TraceOptions) -> list:
        header = self.node.reader.header(block_hash)
        if header is None:
            raise not_found(f"block 0x{block_hash.hex()} not found")
        return await self._trace_all(header, options)

    @method(Param(p.call_object), Param(p.block_id, LATEST), Param(p.trace_options, TraceOptions()))
    async def debug_traceCall(self, args: CallArgs, block: BlockId, options: TraceOptions) -> dict:
        """The call as eth_call runs it (in the context of the block after ``block``)."""
        header = self.eth.state_header(block)
        return await self._run(
            trace_call, self.node.simulator, header, args, options, self.stopping
        )

    async def _trace_all(self, header: BlockHeaderAPI, options: TraceOptions) -> list[dict]:
        if header.block_number == 0:
            raise not_found("genesis is not traceable")  # geth's words
        block = self.node.reader.block(header.hash)
        traces = await self._trace(block, options)
        return [
            {"txHash": "0x" + tx.hash.hex(), "result": trace}
            for tx, trace in zip(block.transactions, traces, strict=True)
        ]

    async def _trace(
        self, block: BlockAPI, options: TraceOptions, only: int | None = None
    ) -> list[dict[str, Any]]:
        try:
            return await self._run(trace_mined, self.node, block, options, only, self.stopping)
        except InvalidTransaction as exc:  # e.g. a replicate-mode model this node lacks
            raise RpcError(
                SERVER_ERROR, f"cannot replay block {block.header.block_number}: {exc}"
            ) from None

    def _bounded(self, options: TraceOptions) -> TraceOptions:
        """The caller's options within the node's bounds on a trace's time and memory."""
        limits = self.node.config.rpc
        return dataclasses.replace(
            options,
            timeout=min(options.timeout, limits.max_trace_timeout),
            max_bytes=limits.max_trace_bytes,
        )

    async def _run(self, trace: Any, *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        args = tuple(self._bounded(a) if isinstance(a, TraceOptions) else a for a in args)
        try:
            return await loop.run_in_executor(self._tracing, trace, *args)
        except (TraceTimeout, TraceTooLarge, EvmTimeout) as exc:
            raise RpcError(SERVER_ERROR, str(exc)) from None
