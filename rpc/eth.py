"""The ``eth_`` namespace: chain reads, state reads, calls, transactions, logs, filters."""

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import rlp
from eth.abc import BlockHeaderAPI
from eth.vm.forks.cancun.state import get_total_blob_gas

from chain.blobs import BLOB_TX_TYPE, blob_base_fee, next_blob_base_fee
from chain.execution import ExecutedBlock
from chain.node import Node
from chain.producer import DevProducer
from chain.simulate import CallArgs
from chain.simulate_blocks import SimOptions, SimulatedBlock, call_error, simulate
from chain.storage.codec import Signers
from chain.storage.proofs import prove
from rpc import params as p
from rpc.encoding import (
    PENDING,
    TxContext,
    base_fee,
    block_json,
    d,
    job_fields,
    log_json,
    q,
    receipt_json,
    spc_calls_json,
    tx_json,
)
from rpc.errors import LIMIT_EXCEEDED, RpcError, invalid_params, not_found
from rpc.fees import fee_history, reward_percentiles, suggested_tip
from rpc.filters import FilterLimitError, FilterManager, block_logs, may_contain
from rpc.forks import eth_config
from rpc.params import LATEST, BlockId, Param, method
from rpc.server import client_address

RECEIPT_CACHE_BLOCKS = 256


@dataclass(frozen=True)
class BlockData:
    """A decoded block and what its receipts record."""

    header: BlockHeaderAPI
    block: Any
    receipts: list[Any]
    senders: list[bytes]
    signers: Signers

    def context(self, index: int) -> TxContext:
        header = self.header
        return TxContext(
            header.hash, header.block_number, index, base_fee(header), header.timestamp
        )


class EthApi:
    def __init__(
        self, node: Node, filters: FilterManager, producer: DevProducer | None = None
    ) -> None:
        self.node = node
        self.producer = producer  # on a dev chain: sends answer once their block is in
        self.reader = node.reader
        self.filters = filters
        self.limits = node.config.rpc
        self._receipts: OrderedDict[bytes, BlockData] = OrderedDict()
        node.head_listeners.append(self._keep_committed)

    # block resolution

    def header(self, block: BlockId) -> BlockHeaderAPI | None:
        reader = self.reader
        if block.hash is not None:
            header = reader.header(block.hash)
            if header is not None and block.require_canonical and not reader.is_canonical(header):
                raise RpcError(-32000, f"hash 0x{block.hash.hex()} is not currently canonical")
            return header
        if block.number is not None:
            return reader.canonical_header(block.number)
        if block.tag == "earliest":
            return reader.canonical_header(0)
        if block.tag == "safe" and self.node.engine.safe_hash:
            return reader.header(self.node.engine.safe_hash) or reader.head
        if block.tag == "finalized" and self.node.engine.finalized_hash:
            return reader.header(self.node.engine.finalized_hash) or reader.head
        return reader.head

    def state_header(self, block: BlockId) -> BlockHeaderAPI:
        header = self.header(block)
        if header is None:
            raise not_found("header for hash not found" if block.hash else "header not found")
        return header

    def block_data(self, header: BlockHeaderAPI) -> BlockData:
        """A block with its receipts, senders and attesters, decoded once and kept a while."""
        cached = self._receipts.get(header.hash)
        if cached is None:
            receipts = self.reader.receipts(header)
            cached = BlockData(
                header,
                self.reader.block(header.hash),
                receipts.receipts,
                receipts.senders,
                receipts.signers,
            )
            self._keep(cached)
        else:
            self._receipts.move_to_end(header.hash)
        return cached

    def _keep(self, data: BlockData) -> None:
        self._receipts[data.header.hash] = data
        if len(self._receipts) > RECEIPT_CACHE_BLOCKS:
            self._receipts.popitem(last=False)

    def _keep_committed(self, executed: ExecutedBlock) -> None:
        """A block just committed, kept as it was executed: the receipts a client asks for
        next (``tx.wait()``) are served without decoding the block from the store."""
        self._keep(
            BlockData(
                executed.header,
                executed.block,
                executed.receipts,
                executed.senders,
                executed.signers,
            )
        )

    # chain

    @method()
    def eth_chainId(self) -> str:
        return q(self.node.chain_config.chain_id)

    @method()
    def eth_blockNumber(self) -> str:
        return q(self.reader.head.block_number)

    @method()
    def eth_syncing(self) -> bool:
        return False

    @method()
    def eth_coinbase(self) -> str:
        return d(self.node.config.fee_recipient)

    @method()
    def eth_mining(self) -> bool:
        return False

    @method()
    def eth_hashrate(self) -> str:
        return "0x0"

    # state

    @method(Param(p.address), Param(p.block_id, LATEST))
    def eth_getBalance(self, address: bytes, block: BlockId) -> str:
        return q(self.reader.accounts(self.state_header(block)).get_balance(address))

    @method(Param(p.address), Param(p.block_id, LATEST))
    def eth_getTransactionCount(self, address: bytes, block: BlockId) -> str:
        if block.tag == "pending":
            return q(self.node.pool.pending_nonce(address))
        return q(self.reader.accounts(self.state_header(block)).get_nonce(address))

    @method(Param(p.address), Param(p.block_id, LATEST))
    def eth_getCode(self, address: bytes, block: BlockId) -> str:
        return d(self.reader.accounts(self.state_header(block)).get_code(address))

    @method(Param(p.storage_requests), Param(p.block_id, LATEST))
    def eth_getStorageValues(
        self, requests: dict[bytes, list[int]], block: BlockId
    ) -> dict[str, list[str]]:
        """Many slots of many accounts at one block (geth's batch of eth_getStorageAt)."""
        accounts = self.reader.accounts(self.state_header(block))
        return {
            d(address): [  # geth's map keys: lower-case hex
                d(accounts.get_storage(address, slot).to_bytes(32, "big")) for slot in slots
            ]
            for address, slots in requests.items()
        }

    @method()
    def eth_config(self) -> dict[str, Any]:
        genesis = self.reader.canonical_header(0)
        return eth_config(
            self.node.chain_config, self.reader.head.timestamp, genesis.hash, genesis.timestamp
        )

    @method(Param(p.address), Param(p.storage_slot), Param(p.block_id, LATEST))
    def eth_getStorageAt(self, address: bytes, slot: int, block: BlockId) -> str:
        value = self.reader.accounts(self.state_header(block)).get_storage(address, slot)
        return d(value.to_bytes(32, "big"))

    @method(Param(p.address), Param(p.storage_keys), Param(p.block_id, LATEST))
    def eth_getProof(
        self, address: bytes, keys: list[tuple[str, bytes]], block: BlockId
    ) -> dict[str, Any]:
        if len(keys) > self.limits.max_proof_keys:  # geth's bound and words
            raise invalid_params(
                f"too many storage keys requested (max {self.limits.max_proof_keys}, "
                f"got {len(keys)})"
            )
        header = self.state_header(block)
        proven = prove(self.reader.store.state_get, header.state_root, address,
                       [key for _, key in keys])  # fmt: skip
        return {
            "address": d(address),
            "accountProof": [d(node) for node in proven.proof],
            "balance": q(proven.balance),
            "codeHash": d(proven.code_hash),
            "nonce": q(proven.nonce),
            "storageHash": d(proven.storage_root),
            "storageProof": [
                {"key": given, "value": q(slot.value), "proof": [d(node) for node in slot.proof]}
                for (given, _), slot in zip(keys, proven.storage, strict=True)
            ],
        }

    # calls

    @method(Param(p.call_object), Param(p.block_id, LATEST))
    async def eth_call(self, args: CallArgs, block: BlockId) -> str:
        header = self.state_header(block)
        simulator = self.node.simulator
        output = simulator.memo.get(header, args)  # asked before: no hop to the EVM thread
        if output is None:
            output = await self.node.run_evm(simulator.call, header, args)
        return d(output)

    @method(Param(p.call_object), Param(p.block_id, LATEST))
    async def eth_estimateGas(self, args: CallArgs, block: BlockId) -> str:
        header = self.state_header(block)
        return q(await self.node.run_evm(self.node.simulator.estimate_gas, header, args))

    @method(Param(p.call_object), Param(p.block_id, LATEST))
    async def eth_createAccessList(self, args: CallArgs, block: BlockId) -> dict[str, Any]:
        header = self.state_header(block)
        return await self.node.run_evm(self._access_list, header, args)

    @method(Param(p.simulate_options), Param(p.block_id, LATEST))
    async def eth_simulateV1(self, options: SimOptions, block: BlockId) -> list[dict[str, Any]]:
        """Calls in a chain of blocks made for the request only (chain.simulate_blocks)."""
        header = self.state_header(block)
        blocks = await self.node.run_evm(simulate, self.node.simulator, header, options)
        return [_simulated_block_json(b, options.full_transactions) for b in blocks]

    def _access_list(self, header: BlockHeaderAPI, args: CallArgs) -> dict[str, Any]:
        entries, error = self.node.simulator.access_list(header, args)
        args.access_list = entries
        result: dict[str, Any] = {
            "accessList": [
                {"address": d(a), "storageKeys": [d(s.to_bytes(32, "big")) for s in slots]}
                for a, slots in entries
            ],
            "gasUsed": q(self.node.simulator.estimate_gas(header, args)),
        }
        if error is not None:
            result["error"] = error
        return result

    # fees

    @method()
    def eth_maxPriorityFeePerGas(self) -> str:
        return q(suggested_tip(self.reader, self.block_data))

    @method()
    def eth_gasPrice(self) -> str:
        base = self.node.pool.base_fee_after(self.reader.head)
        return q(base + suggested_tip(self.reader, self.block_data))

    @method()
    def eth_blobBaseFee(self) -> str:
        return q(next_blob_base_fee(self.node.chain_config, self.reader.head))

    @method(Param(p.quantity), Param(p.block_number), Param(reward_percentiles, None))
    def eth_feeHistory(
        self, count: int, newest: BlockId, percentiles: list[float] | None
    ) -> dict[str, Any]:
        last = self.header(newest)
        if last is None:
            raise not_found()
        config = self.node.chain_config
        return fee_history(self.reader, config, self.block_data, count, last, percentiles)

    # transactions

    @method(Param(p.hex_bytes))
    async def eth_sendRawTransaction(self, raw: bytes) -> str:
        return await self.send(raw)

    async def send(self, raw: bytes, tx_hash: bytes | None = None) -> str:
        """Add ``raw`` to the pool (unless the caller did: ``tx_hash``); when automining,
        answer after its block is committed."""
        if tx_hash is None and raw[:1] == bytes([BLOB_TX_TYPE]):
            # a blob transaction's KZG proofs take tenths of a second: checked off the event loop
            decoded = await self.node.run_evm(self.node.pool.decode, raw)
            tx_hash = self.node.pool.admit(*decoded, raw)
        elif tx_hash is None:
            tx_hash = self.node.pool.add(raw)
        if self.producer is not None:
            await self.producer.included()
        return d(tx_hash)

    def _find_tx(self, tx_hash: bytes) -> tuple[BlockData, int] | None:
        location = self.reader.tx_location(tx_hash)
        if location is None:
            return None
        return self.block_data(self.reader.header(location.block_hash)), location.index

    @method(Param(p.hash32))
    def eth_getTransactionByHash(self, tx_hash: bytes) -> dict[str, Any] | None:
        found = self._find_tx(tx_hash)
        if found is not None:
            data, index = found
            return tx_json(data.block.transactions[index], data.senders[index], data.context(index))
        pooled = self.node.pool.get(tx_hash)
        if pooled is not None:
            return tx_json(pooled.tx, pooled.sender, PENDING)
        return None

    @method(Param(p.hash32))
    def eth_getTransactionReceipt(self, tx_hash: bytes) -> dict[str, Any] | None:
        found = self._find_tx(tx_hash)
        return None if found is None else self._receipt(*found)

    def _receipt(self, data: BlockData, index: int) -> dict[str, Any]:
        receipts = data.receipts
        previous = receipts[index - 1].gas_used if index else 0
        first_log = sum(len(r.logs) for r in receipts[:index])
        tx = data.block.transactions[index]
        out = receipt_json(
            tx,
            data.senders[index],
            receipts[index],
            data.context(index),
            receipts[index].gas_used - previous,
            first_log,
        )
        if tx.type_id == BLOB_TX_TYPE:  # EIP-4844's receipt fields, as geth shows them
            out["blobGasUsed"] = q(get_total_blob_gas(tx))
            out["blobGasPrice"] = q(blob_base_fee(self.node.chain_config, data.header))
        out["spcCalls"] = spc_calls_json(tx, data.signers[index])
        out.update(job_fields(tx, receipts[index]))
        return out

    @method(Param(p.block_id))
    def eth_getBlockReceipts(self, block: BlockId) -> list[dict[str, Any]] | None:
        header = self.header(block)
        if header is None:
            return None
        data = self.block_data(header)
        return [self._receipt(data, i) for i in range(len(data.block.transactions))]

    # blocks

    def _block(self, header: BlockHeaderAPI | None, full: bool) -> dict[str, Any] | None:
        if header is None:
            return None
        data = self.block_data(header)
        size = len(self.reader.raw_block(header.hash) or b"")
        return block_json(data.block, data.senders, full, size)

    @method(Param(p.block_number), Param(p.boolean, False))
    def eth_getBlockByNumber(self, block: BlockId, full: bool) -> dict[str, Any] | None:
        return self._block(self.header(block), full)

    @method(Param(p.hash32), Param(p.boolean, False))
    def eth_getBlockByHash(self, block_hash: bytes, full: bool) -> dict[str, Any] | None:
        return self._block(self.reader.header(block_hash), full)

    def _tx_count(self, header: BlockHeaderAPI | None) -> str | None:
        if header is None:
            return None
        return q(len(self.block_data(header).block.transactions))

    @method(Param(p.block_number))
    def eth_getBlockTransactionCountByNumber(self, block: BlockId) -> str | None:
        return self._tx_count(self.header(block))

    @method(Param(p.hash32))
    def eth_getBlockTransactionCountByHash(self, block_hash: bytes) -> str | None:
        return self._tx_count(self.reader.header(block_hash))

    def _tx_at(self, header: BlockHeaderAPI | None, index: int) -> dict[str, Any] | None:
        if header is None:
            return None
        data = self.block_data(header)
        if index >= len(data.block.transactions):
            return None
        return tx_json(data.block.transactions[index], data.senders[index], data.context(index))

    @method(Param(p.hash32), Param(p.quantity))
    def eth_getTransactionByBlockHashAndIndex(self, block_hash: bytes, index: int) -> Any:
        return self._tx_at(self.reader.header(block_hash), index)

    @method(Param(p.block_number), Param(p.quantity))
    def eth_getTransactionByBlockNumberAndIndex(self, block: BlockId, index: int) -> Any:
        return self._tx_at(self.header(block), index)

    @method(Param(p.hash32))
    def eth_getUncleCountByBlockHash(self, block_hash: bytes) -> str | None:
        return "0x0" if self.reader.header(block_hash) else None

    @method(Param(p.block_number))
    def eth_getUncleCountByBlockNumber(self, block: BlockId) -> str | None:
        return "0x0" if self.header(block) else None

    # logs

    def logs(self, criteria: p.LogFilter, start: int, end: int) -> list[dict[str, Any]]:
        if end - start + 1 > self.limits.max_log_range:
            raise RpcError(
                LIMIT_EXCEEDED, f"query exceeds max block range {self.limits.max_log_range}"
            )
        found: list[dict[str, Any]] = []
        for number in range(start, end + 1):
            header = self.reader.canonical_header(number)
            if header is None:
                break
            found.extend(self._header_logs(header, criteria))
            if len(found) > self.limits.max_logs:
                raise RpcError(
                    LIMIT_EXCEEDED, f"query returned more than {self.limits.max_logs} results"
                )
        return found

    def _header_logs(self, header: BlockHeaderAPI, criteria: p.LogFilter) -> list[dict[str, Any]]:
        if not header.bloom or not may_contain(header, criteria):
            return []
        data = self.block_data(header)
        return list(block_logs(header, data.block, data.receipts, criteria))

    def _range(self, criteria: p.LogFilter) -> tuple[int, int]:
        """The block range of a log query; a range past the head is refused, as geth does."""
        head = self.reader.head.block_number
        start = self._number(criteria.from_block, head)
        end = self._number(criteria.to_block, head)
        if end > head:
            raise invalid_params("block range extends beyond current head block")
        if start > end:
            raise invalid_params("invalid block range params")
        return start, end

    def _number(self, block: BlockId | None, head: int) -> int:
        if block is None or block.tag in ("latest", "pending"):
            return head
        if block.number is not None:
            return block.number
        header = self.header(block)
        return head if header is None else header.block_number

    @method(Param(p.log_filter))
    def eth_getLogs(self, criteria: p.LogFilter) -> list[dict[str, Any]]:
        if criteria.block_hash is not None:
            header = self.reader.header(criteria.block_hash)
            if header is None:
                raise not_found("unknown block")
            return self._header_logs(header, criteria)
        return self.logs(criteria, *self._range(criteria))

    # filters

    @method(Param(p.log_filter))
    def eth_newFilter(self, criteria: p.LogFilter) -> str:
        head = self.reader.head.block_number
        start = self._number(criteria.from_block, head) if criteria.from_block else head + 1
        return self._install("logs", criteria, start)

    @method()
    def eth_newBlockFilter(self) -> str:
        return self._install("blocks", None, self.reader.head.block_number + 1)

    @method()
    def eth_newPendingTransactionFilter(self) -> str:
        return self._install("pending", None, 0)

    def _install(self, kind: str, criteria: p.LogFilter | None, next_block: int) -> str:
        try:
            return self.filters.install(kind, criteria, next_block, client_address.get())
        except FilterLimitError as exc:
            raise RpcError(LIMIT_EXCEEDED, str(exc)) from None

    @method(Param(p.string))
    def eth_uninstallFilter(self, filter_id: str) -> bool:
        return self.filters.uninstall(filter_id)

    def _filter(self, filter_id: str):  # noqa: ANN202
        found = self.filters.get(filter_id)
        if found is None:
            raise RpcError(-32000, "filter not found")
        return found

    @method(Param(p.string))
    def eth_getFilterChanges(self, filter_id: str) -> list[Any]:
        found = self._filter(filter_id)
        head = self.reader.head.block_number
        if found.kind == "pending":
            changes = list(found.pending)
            found.pending.clear()
            return changes
        start, found.next_block = found.next_block, head + 1
        if found.kind == "blocks":
            return [d(self.reader.canonical_header(n).hash) for n in range(start, head + 1)]
        assert found.criteria is not None
        end = head
        if found.criteria.to_block is not None and found.criteria.to_block.number is not None:
            end = min(end, found.criteria.to_block.number)
        return self.logs(found.criteria, start, end) if start <= end else []

    @method(Param(p.string))
    def eth_getFilterLogs(self, filter_id: str) -> list[Any]:
        found = self._filter(filter_id)
        if found.kind != "logs" or found.criteria is None:
            raise RpcError(-32000, "filter not found")
        return self.eth_getLogs(found.criteria)


def _simulated_block_json(simulated: SimulatedBlock, full: bool) -> dict[str, Any]:
    """A simulated block as geth shows it: the block object, and per call its output,
    logs (numbered across the block), gas and status, with the error of a failed one."""
    executed = simulated.executed
    block, header = executed.block, executed.header
    out = block_json(block, executed.senders, full, len(rlp.encode(block)))
    calls, log_index = [], 0
    for index, (tx, result) in enumerate(zip(block.transactions, simulated.calls, strict=True)):
        context = TxContext(
            header.hash,
            header.block_number,
            index,
            getattr(header, "base_fee_per_gas", None),
            header.timestamp,
        )
        logs = []
        for entry in result.logs:
            logs.append(log_json(entry, context, tx.hash, log_index))
            log_index += 1
        call: dict[str, Any] = {
            "returnData": d(result.output),
            "logs": logs,
            "gasUsed": q(result.gas_used),
            "maxUsedGas": q(result.max_used_gas),
            "status": "0x0" if result.error is not None else "0x1",
        }
        if result.error is not None:
            code, message, data = call_error(result.error, result.revert_data)
            call["error"] = {"message": message, "code": code}
            if data is not None:
                call["error"]["data"] = d(data)
        calls.append(call)
    out["calls"] = calls
    return out
