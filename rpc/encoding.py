"""The JSON shapes of blocks, transactions, receipts and logs (as geth returns them).

Quantities are ``0x``-prefixed hex without leading zeros, data is ``0x``-prefixed hex,
addresses are lower case (clients checksum them themselves).
"""

from dataclasses import dataclass
from typing import Any

from eth._utils.address import generate_contract_address
from eth.abc import BlockAPI, BlockHeaderAPI, ReceiptAPI, SignedTransactionAPI

from chain.ai.attested import AttestedTransaction, inner_transaction
from chain.ai.delivery import DeliveryTransaction
from chain.ai.jobs import CREATED, JOBS

SUCCESS = b"\x01"


def q(value: int) -> str:
    return hex(value)


def d(value: bytes) -> str:
    return "0x" + value.hex()


def addr(value: bytes) -> str | None:
    return "0x" + value.hex() if value else None


def topic(value: int) -> str:
    return "0x" + value.to_bytes(32, "big").hex()


def base_fee(header: BlockHeaderAPI) -> int | None:
    """The header's EIP-1559 base fee; None before London."""
    return getattr(header, "base_fee_per_gas", None)


def header_json(header: BlockHeaderAPI, size: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "number": q(header.block_number),
        "hash": d(header.hash),
        "parentHash": d(header.parent_hash),
        "nonce": d(header.nonce),
        "sha3Uncles": d(header.uncles_hash),
        "logsBloom": d(header.bloom.to_bytes(256, "big")),
        "transactionsRoot": d(header.transaction_root),
        "stateRoot": d(header.state_root),
        "receiptsRoot": d(header.receipt_root),
        "miner": d(header.coinbase),
        "difficulty": q(header.difficulty),  # post-merge geth has no totalDifficulty
        "extraData": d(header.extra_data),
        "gasLimit": q(header.gas_limit),
        "gasUsed": q(header.gas_used),
        "timestamp": q(header.timestamp),
        "mixHash": d(header.mix_hash),
    }
    if hasattr(header, "base_fee_per_gas"):  # London on
        out["baseFeePerGas"] = q(header.base_fee_per_gas)
    if hasattr(header, "withdrawals_root"):  # Shanghai on
        out["withdrawalsRoot"] = d(header.withdrawals_root)
    if size is not None:
        out["size"] = q(size)
    if hasattr(header, "blob_gas_used"):
        out["blobGasUsed"] = q(header.blob_gas_used)
        out["excessBlobGas"] = q(header.excess_blob_gas)
        out["parentBeaconBlockRoot"] = d(header.parent_beacon_block_root)
    if hasattr(header, "requests_hash"):
        out["requestsHash"] = d(header.requests_hash)
    return out


@dataclass(frozen=True)
class TxContext:
    """Where a transaction was mined; None fields for a pending transaction."""

    block_hash: bytes | None = None
    block_number: int | None = None
    index: int | None = None
    base_fee: int | None = None
    timestamp: int | None = None


PENDING = TxContext()


def effective_gas_price(tx: SignedTransactionAPI, base_fee: int | None) -> int:
    if tx.type_id in (None, 0, 1) or base_fee is None:
        return tx.gas_price if tx.type_id in (None, 0, 1) else tx.max_fee_per_gas
    return min(tx.max_fee_per_gas, base_fee + tx.max_priority_fee_per_gas)


def _access_list(tx: SignedTransactionAPI) -> list[dict[str, Any]]:
    return [
        {
            "address": d(address),
            "storageKeys": ["0x" + slot.to_bytes(32, "big").hex() for slot in slots],
        }
        for address, slots in tx.access_list
    ]


def tx_json(tx: SignedTransactionAPI, sender: bytes, ctx: TxContext) -> dict[str, Any]:
    type_id = tx.type_id or 0
    out: dict[str, Any] = {
        "blockHash": d(ctx.block_hash) if ctx.block_hash else None,
        "blockNumber": q(ctx.block_number) if ctx.block_number is not None else None,
        "from": d(sender),
        "gas": q(tx.gas),
        "gasPrice": q(effective_gas_price(tx, ctx.base_fee)),
        "hash": d(tx.hash),
        "input": d(tx.data),
        "nonce": q(tx.nonce),
        "to": addr(tx.to),
        "transactionIndex": q(ctx.index) if ctx.index is not None else None,
        "value": q(tx.value),
        "type": q(type_id),
        "r": q(tx.r),
        "s": q(tx.s),
    }
    if ctx.timestamp is not None:
        out["blockTimestamp"] = q(ctx.timestamp)
    if type_id == 0:
        out["v"] = q(tx.v)
        if tx.chain_id is not None:
            out["chainId"] = q(tx.chain_id)
        return out
    out["chainId"] = q(tx.chain_id)
    out["v"] = q(tx.y_parity)
    out["yParity"] = q(tx.y_parity)
    out["accessList"] = _access_list(tx)
    if type_id >= 2:
        out["maxFeePerGas"] = q(tx.max_fee_per_gas)
        out["maxPriorityFeePerGas"] = q(tx.max_priority_fee_per_gas)
    if type_id == 3:
        out["maxFeePerBlobGas"] = q(tx.max_fee_per_blob_gas)
        out["blobVersionedHashes"] = [d(h) for h in tx.blob_versioned_hashes]
    if type_id == 4:
        out["authorizationList"] = [
            {
                "chainId": q(auth.chain_id),
                "address": d(auth.address),
                "nonce": q(auth.nonce),
                "yParity": q(auth.y_parity),
                "r": q(auth.r),
                "s": q(auth.s),
            }
            for auth in tx.authorization_list
        ]
    return out


def log_json(
    log: Any, ctx: TxContext, tx_hash: bytes, log_index: int, removed: bool = False
) -> dict[str, Any]:
    address, topics, data = log.address, log.topics, log.data
    return {
        "address": d(address),
        "topics": [topic(t) for t in topics],
        "data": d(data),
        "blockNumber": q(ctx.block_number),
        "blockHash": d(ctx.block_hash),
        "blockTimestamp": q(ctx.timestamp),
        "transactionHash": d(tx_hash),
        "transactionIndex": q(ctx.index),
        "logIndex": q(log_index),
        "removed": removed,
    }


def receipt_json(
    tx: SignedTransactionAPI,
    sender: bytes,
    receipt: ReceiptAPI,
    ctx: TxContext,
    gas_used: int,
    first_log_index: int,
) -> dict[str, Any]:
    contract = generate_contract_address(sender, tx.nonce) if tx.to == b"" else None
    out = {
        "transactionHash": d(tx.hash),
        "transactionIndex": q(ctx.index),
        "blockHash": d(ctx.block_hash),
        "blockNumber": q(ctx.block_number),
        "from": d(sender),
        "to": addr(tx.to),
        "cumulativeGasUsed": q(receipt.gas_used),
        "gasUsed": q(gas_used),
        "contractAddress": addr(contract) if contract else None,
        "logs": [
            log_json(log, ctx, tx.hash, first_log_index + i) for i, log in enumerate(receipt.logs)
        ],
        "logsBloom": d(receipt.bloom.to_bytes(256, "big")),
        "type": q(tx.type_id or 0),
        "effectiveGasPrice": q(effective_gas_price(tx, ctx.base_fee)),
    }
    if len(receipt.state_root) == 32:  # before Byzantium (EIP-658): the state root after it
        out["root"] = d(receipt.state_root)
    else:
        out["status"] = "0x1" if receipt.state_root == SUCCESS else "0x0"
    return out


def spc_calls_json(tx: Any, signers: tuple[tuple[bytes, ...], ...]) -> list[dict[str, Any]]:
    """The AI calls of an attested transaction, in call order, with who attested each."""
    results = tx.results if isinstance(tx, AttestedTransaction) else ()
    return [
        {
            "address": d(result.precompile),
            "inputHash": d(result.input_hash),
            "status": q(result.status),
            "output": d(result.output),
            "signers": [d(s) for s in (signers[i] if i < len(signers) else ())],
        }
        for i, result in enumerate(results)
    ]


def job_fields(tx: Any, receipt: ReceiptAPI) -> dict[str, Any]:
    """A receipt's job fields: ``jobs``, the ids of the jobs the transaction created, and
    for a delivery (0x12) ``delivery``: the job it settled, the status it delivered and
    whether the callback succeeded (the receipt's status is the callback's)."""
    created = [
        d(entry.topics[1].to_bytes(32, "big"))
        for entry in receipt.logs
        if entry.address == JOBS and entry.topics and entry.topics[0] == CREATED
    ]
    out: dict[str, Any] = {"jobs": created}
    inner = inner_transaction(tx)
    if isinstance(inner, DeliveryTransaction):
        out["delivery"] = {
            "jobId": d(inner.job_id),
            "status": q(inner.status),
            "callbackSucceeded": receipt.state_root == SUCCESS,
        }
    return out


def block_json(block: BlockAPI, senders: list[bytes], full: bool, size: int) -> dict[str, Any]:
    header = block.header
    out = header_json(header, size)
    if full:
        out["transactions"] = [
            tx_json(
                tx,
                sender,
                TxContext(header.hash, header.block_number, i, base_fee(header), header.timestamp),
            )
            for i, (tx, sender) in enumerate(zip(block.transactions, senders, strict=True))
        ]
    else:
        out["transactions"] = [d(tx.hash) for tx in block.transactions]
    out["uncles"] = [d(uncle.hash) for uncle in block.uncles]
    if hasattr(header, "withdrawals_root"):
        out["withdrawals"] = [withdrawal_json(w) for w in block.withdrawals]
    return out


def withdrawal_json(w: Any) -> dict[str, str]:
    """A withdrawal as blocks and Engine API payloads show it."""
    return {
        "index": q(w.index),
        "validatorIndex": q(w.validator_index),
        "address": d(w.address),
        "amount": q(w.amount),
    }
