"""The baseline: raw py-evm on the same genesis and the same signed transactions.

A stock ``MiningChain`` with py-evm's own ``PragueVM`` (no Sibyl classes), chain id
19183, the alloc of ``genesis/dev.json`` in an in-memory ``AtomicDB``. Blocks are mined
with ``MiningChain.mine_all`` (py-evm's fastest way to make a block: it applies all
transactions, then builds the tries once). eth_keys uses coincurve when it is installed,
as it is in the venv, so sender recovery is native here as in the node.

Transactions are decoded before the clock starts (rlp decoding is not what is measured);
the node, which has to decode and validate every transaction it receives, gets no such
discount.
"""

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eth.chains.base import MiningChain
from eth.db.atomic import AtomicDB
from eth.vm.forks.prague import PragueVM
from eth.vm.spoof import SpoofTransaction

CHAIN_ID = 19183


def _hex_int(value: Any, default: int = 0) -> int:
    if value is None:
        return default
    if isinstance(value, int):
        return value
    return int(value, 16) if value.lower().startswith("0x") else int(value)


def build_chain(genesis_path: Path) -> MiningChain:
    """A py-evm MiningChain at the genesis block of ``genesis_path`` (Prague from block 0)."""
    genesis = json.loads(genesis_path.read_text())
    alloc = {
        bytes.fromhex(address[2:]): {
            "balance": _hex_int(account.get("balance")),
            "nonce": _hex_int(account.get("nonce")),
            "code": bytes.fromhex(account.get("code", "0x")[2:]),
            "storage": {
                _hex_int(slot): _hex_int(word) for slot, word in account.get("storage", {}).items()
            },
        }
        for address, account in genesis["alloc"].items()
    }
    chain_class = MiningChain.configure(
        __name__="BaselineChain", vm_configuration=((0, PragueVM),), chain_id=CHAIN_ID
    )
    params = dict(
        difficulty=0,
        gas_limit=_hex_int(genesis.get("gasLimit"), 30_000_000),
        timestamp=_hex_int(genesis.get("timestamp")),
        base_fee_per_gas=_hex_int(genesis.get("baseFeePerGas"), 10**9),
        extra_data=b"",
        nonce=b"\x00" * 8,
        mix_hash=b"\x00" * 32,
        coinbase=b"\x00" * 20,
    )
    return chain_class.from_genesis(AtomicDB(), params, alloc)


def decode(raw_txs: Sequence[bytes]) -> list[Any]:
    builder = PragueVM.get_transaction_builder()
    return [builder.decode(raw) for raw in raw_txs]


def mine_blocks(chain: MiningChain, blocks: Sequence[Sequence[bytes]]) -> dict[str, Any]:
    """``mine_all`` each block of raw transactions in turn; returns the time it took
    (wall clock, and this thread's CPU time: the latter does not count time the machine
    gave to other processes).

    Every transaction must succeed (a failed one would mean the workload differs from
    what the node ran); ``gas_used`` per block is returned so the caller can check that
    both ran the same work.
    """
    decoded = [decode(block) for block in blocks]
    seconds = cpu_seconds = 0.0
    gas_used: list[int] = []
    failures = 0
    for txs in decoded:
        # As the node (and geth's dev mode) does: the parent's gas limit, where py-evm's
        # default would drift it by 1/1024 per block and change the base fee.
        parent = chain.get_canonical_head()
        fields = dict(timestamp=parent.timestamp + 1, gas_limit=parent.gas_limit)
        begin, cpu_begin = time.perf_counter(), time.thread_time()
        result, _, computations = chain.mine_all(txs, **fields)
        seconds += time.perf_counter() - begin
        cpu_seconds += time.thread_time() - cpu_begin
        gas_used.append(result.imported_block.header.gas_used)
        failures += sum(1 for c in computations if not c.is_success)
    return {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "gas_used": gas_used,
        "failures": failures,
    }


def gas_limit_blocks(
    raw_txs: Sequence[bytes], gas: Sequence[int], gas_limit: int
) -> list[list[bytes]]:
    """The transactions cut into blocks by their gas limits (a full block each)."""
    blocks: list[list[bytes]] = [[]]
    used = 0
    for raw, tx_gas in zip(raw_txs, gas, strict=True):
        if used + tx_gas > gas_limit:
            blocks.append([])
            used = 0
        blocks[-1].append(raw)
        used += tx_gas
    return blocks


def call_throughput(
    chain: MiningChain, to: bytes, calldatas: Sequence[bytes], seconds: float
) -> dict[str, Any]:
    """In-process ``eth_call``: ``Chain.get_transaction_result`` on the head, per call a
    fresh VM and state (as a py-evm based node serves a call), for about ``seconds``."""
    head = chain.get_canonical_head()
    vm = chain.get_vm(head)
    # Expected outputs, to check the baseline answers what the node answers.
    outputs = []
    count = 0
    begin = time.perf_counter()
    deadline = begin + seconds
    while time.perf_counter() < deadline:
        data = calldatas[count % len(calldatas)]
        unsigned = vm.create_unsigned_transaction(
            nonce=0, gas_price=0, gas=50_000_000, to=to, value=0, data=data
        )
        output = chain.get_transaction_result(SpoofTransaction(unsigned, from_=b"\x00" * 20), head)
        if count < len(calldatas):
            outputs.append(output)
        count += 1
    elapsed = time.perf_counter() - begin
    return {"per_s": count / elapsed, "outputs": outputs}


def balance_throughput(
    chain: MiningChain, addresses: Sequence[bytes], seconds: float
) -> dict[str, Any]:
    """In-process balance reads on the head state: a fresh VM per read (py-evm's
    ``chain.get_vm().state.get_balance``), for about ``seconds``."""
    head = chain.get_canonical_head()
    balances = []
    count = 0
    begin = time.perf_counter()
    deadline = begin + seconds
    while time.perf_counter() < deadline:
        address = addresses[count % len(addresses)]
        balance = chain.get_vm(head).state.get_balance(address)
        if count < len(addresses):
            balances.append(balance)
        count += 1
    elapsed = time.perf_counter() - begin
    return {"per_s": count / elapsed, "balances": balances}
