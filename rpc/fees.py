"""Gas price suggestions and fee history (eth_gasPrice, eth_maxPriorityFeePerGas,
eth_feeHistory), as geth gives them: the suggested tip is the 60th percentile of the
tips paid in the last blocks that used gas (1 gwei when none did); a block's rewards are
the tips paid at given percentiles of its gas."""

from collections.abc import Callable
from typing import Any

from eth.abc import BlockHeaderAPI
from eth.vm.forks.london.headers import calculate_expected_base_fee_per_gas
from lru import LRU

from chain.blobs import blob_base_fee, blob_gas_used_ratio, next_blob_base_fee
from chain.storage.reader import ChainReader
from chain.vm import ChainConfig
from rpc import params as p
from rpc.encoding import base_fee, q

DEFAULT_TIP = 1_000_000_000  # 1 gwei, what geth suggests when recent blocks say nothing
TIP_SAMPLE_BLOCKS = 20
MAX_FEE_HISTORY = 1024

# a header's block with its receipts (``.block``, ``.receipts``): EthApi.block_data
BlockData = Callable[[BlockHeaderAPI], Any]


def suggested_tip(reader: ChainReader, block_data: BlockData) -> int:
    tips: list[int] = []
    header = reader.head
    for _ in range(TIP_SAMPLE_BLOCKS):  # the head and its ancestors, genesis left out
        if header is None or header.block_number == 0:
            break
        if header.gas_used:
            tips.extend(_block_tips(header, block_data))
        header = reader.header(header.parent_hash)
    if not tips:
        return DEFAULT_TIP
    tips.sort()
    return max(tips[len(tips) * 60 // 100], 1)


# The tips of each block by its hash: a block's never change, and each new head adds one
# block to the sample, so a suggestion reads one block's transactions rather than twenty
# (a dev account's eth_sendTransaction asks for one on every send: 90 µs of each).
_BLOCK_TIPS: LRU = LRU(4 * TIP_SAMPLE_BLOCKS)


def _block_tips(header: BlockHeaderAPI, block_data: BlockData) -> tuple[int, ...]:
    tips = _BLOCK_TIPS.get(header.hash)
    if tips is None:
        fee = base_fee(header) or 0
        tips = tuple(_tip(tx, fee) for tx in block_data(header).block.transactions)
        _BLOCK_TIPS[header.hash] = tips
    return tips


def fee_history(
    reader: ChainReader,
    config: ChainConfig,
    block_data: BlockData,
    count: int,
    last: BlockHeaderAPI,
    percentiles: list[float] | None,
) -> dict[str, Any]:
    """eth_feeHistory's answer for the ``count`` blocks (at most MAX_FEE_HISTORY) up to
    ``last``, and the base fees of the block after it."""
    count = min(count, MAX_FEE_HISTORY)
    first = max(last.block_number - count + 1, 0)
    headers = [reader.canonical_header(n) for n in range(first, last.block_number + 1)]
    if count == 0:
        headers = []
    result: dict[str, Any] = {
        "oldestBlock": q(first if headers else last.block_number),
        "baseFeePerGas": [q(base_fee(h) or 0) for h in headers]
        + ([q(calculate_expected_base_fee_per_gas(last))] if headers else []),
        "gasUsedRatio": [h.gas_used / h.gas_limit for h in headers],
        "baseFeePerBlobGas": [q(blob_base_fee(config, h)) for h in headers]
        + ([q(next_blob_base_fee(config, last))] if headers else []),
        "blobGasUsedRatio": [blob_gas_used_ratio(config, h) for h in headers],
    }
    if percentiles is not None:
        result["reward"] = [_rewards(h, block_data, percentiles) for h in headers]
    return result


def _rewards(header: BlockHeaderAPI, block_data: BlockData, percentiles: list[float]) -> list[str]:
    if not header.gas_used:
        return ["0x0"] * len(percentiles)
    data = block_data(header)
    block, receipts = data.block, data.receipts
    used, previous = [], 0
    for tx, receipt in zip(block.transactions, receipts, strict=True):
        used.append((_tip(tx, base_fee(header) or 0), receipt.gas_used - previous))
        previous = receipt.gas_used
    used.sort()
    rewards, index, total = [], 0, used[0][1]
    for percentile in percentiles:
        threshold = header.gas_used * percentile / 100
        while total < threshold and index < len(used) - 1:
            index += 1
            total += used[index][1]
        rewards.append(q(used[index][0]))
    return rewards


def _tip(tx: Any, base_fee: int) -> int:
    if tx.type_id in (None, 0, 1):
        return tx.gas_price - base_fee
    return min(tx.max_priority_fee_per_gas, tx.max_fee_per_gas - base_fee)


def reward_percentiles(value: Any) -> list[float]:
    """eth_feeHistory's percentiles parameter: ascending numbers from 0 to 100."""
    if not isinstance(value, list) or not all(isinstance(v, int | float) for v in value):
        raise p.ParamError("reward percentiles must be an array of numbers")
    if any(not 0 <= v <= 100 for v in value) or value != sorted(value):
        raise p.ParamError("reward percentiles must be ascending values between 0 and 100")
    return [float(v) for v in value]
