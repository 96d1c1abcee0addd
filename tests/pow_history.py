"""A proof-of-work history for tests: a plain chain's genesis and its blocks from
Frontier to London by block number, as a geth block file.

Nothing in Sibyl mines: the blocks are made here with the node's own execution
(:class:`chain.execution.BlockExecution` on py-evm's fork VMs), each header with its
fork's difficulty, each block with a transfer signed as its fork accepts (without a
chain id before EIP-155, a dynamic-fee one from London), and one block with an uncle.
Seals are not made: the genesis names no ``ethash`` engine, so none are checked (geth's
faked proof of work, the consensus tests' ``NoProof``).
"""

import json
from dataclasses import dataclass

import rlp
from eth_account import Account
from eth_utils import keccak
from nodes import REPO

from chain.execution import BlockExecution
from chain.genesis import genesis_block, parse_genesis
from chain.vm import decode_transaction, fork_since, vm_classes

CHAIN_ID = 1337
MINER = bytes.fromhex("c0" * 20)
UNCLE_MINER = bytes.fromhex("0c" * 20)
RECIPIENT = "0x" + "77" * 20
# the fork first run at each block (Frontier at 0); London at the last proof-of-work block
BLOCK_FORKS = {
    "homesteadBlock": 2, "eip150Block": 3, "eip155Block": 4, "eip158Block": 4,
    "byzantiumBlock": 5, "constantinopleBlock": 6, "petersburgBlock": 6, "istanbulBlock": 7,
    "berlinBlock": 8, "londonBlock": 9,
}  # fmt: skip
POW_BLOCKS = 10
UNCLE_AT = 6  # block 6 has a sibling, included as an uncle by block 7
GENESIS_DIFFICULTY = 0x20000
DEV = json.loads((REPO / "genesis" / "dev.json").read_text())
SYSTEM = {  # EIP-4788 and EIP-2935's contracts, EIP-7002 and EIP-7251's empty queues
    **{a: DEV["alloc"][a] for a in ("0x000f3df6d732807ef1319fb7b8bb8522d0beac02",
                                    "0x0000f90827f1c53a10cb7a02335b175320002935")},
    **{a: {"balance": "0x0", "code": "0x00"} for a in ("0x00000961ef480eb55e80d19ad83579a64c007002",
                                                       "0x0000bbddc7ce488642fb579f8b00f3a590007251")},
}  # fmt: skip
DEPOSIT = "0x00000000219ab540356cbb839cbe05303d7705fa"  # EIP-6110's, mainnet's


@dataclass(frozen=True)
class PowHistory:
    genesis: dict
    blocks: list[bytes]  # RLP of blocks 1..POW_BLOCKS
    terminal_total_difficulty: int
    forks: list[str]  # the fork of each block, genesis first


def _transfer(key: str, nonce: int, fork: str) -> bytes:
    tx: dict = {"to": RECIPIENT, "value": 1000 + nonce, "gas": 21_000, "nonce": nonce}
    if fork_since(fork, "london"):
        tx.update(chainId=CHAIN_ID, maxFeePerGas=10**10, maxPriorityFeePerGas=10**9)
    else:
        tx["gasPrice"] = 10**9
        if fork_since(fork, "spurious_dragon"):
            tx["chainId"] = CHAIN_ID
    return bytes(Account.sign_transaction(tx, key).raw_transaction)


def make_history(key: str, start: int, post_merge: dict, alloc: dict) -> PowHistory:
    """Blocks 1..POW_BLOCKS with timestamps ``start + n``; the genesis (``alloc`` beside
    the sender's account) merges after the last of them and then runs the forks that
    ``post_merge`` times (shanghaiTime...)."""
    sender = Account.from_key(key).address
    config: dict = {"chainId": CHAIN_ID, **BLOCK_FORKS}
    genesis_json = {
        "config": config,
        "timestamp": hex(start),
        "gasLimit": hex(30_000_000),
        "difficulty": hex(GENESIS_DIFFICULTY),
        "alloc": {sender: {"balance": hex(10**21)}, **alloc},
    }
    genesis = parse_genesis(json.dumps(genesis_json).encode())
    block0, write = genesis_block(genesis)
    state: dict[bytes, bytes] = dict(write.state)
    headers = {block0.header.hash: block0.header}
    chain = [block0]
    uncle = None
    total = block0.header.difficulty
    for number in range(1, POW_BLOCKS + 1):
        parent = chain[-1].header
        fork = genesis.config.pow_fork_at(number)
        uncles = [uncle] if number == UNCLE_AT + 1 else []
        executed = _mine(genesis.config, parent, fork, start + number, uncles, state, headers,
                         [_transfer(key, number - 1, fork)])  # fmt: skip
        if number == UNCLE_AT:  # a sibling of this block, by another miner
            uncle = _mine(genesis.config, parent, fork, start + number, [], state, headers,
                          [], UNCLE_MINER).header  # fmt: skip
        state.update(executed.state)
        headers[executed.hash] = executed.header
        chain.append(executed.block)
        total += executed.header.difficulty
    genesis_json["config"] = {**config, "terminalTotalDifficulty": hex(total), **post_merge}
    return PowHistory(
        genesis=genesis_json,
        blocks=[rlp.encode(block) for block in chain[1:]],
        terminal_total_difficulty=total,
        forks=[genesis.config.pow_fork_at(n) for n in range(POW_BLOCKS + 1)],
    )


def _mine(config, parent, fork, timestamp, uncles, state, headers, raw_txs, miner=MINER):
    vm_class = vm_classes(False)[fork]
    header = vm_class.create_header_from_parent(
        parent,
        timestamp=timestamp,
        coinbase=miner,
        extra_data=b"" if miner == MINER else b"uncle",
    ).copy(uncles_hash=keccak(rlp.encode(uncles)))
    lookup = {**state}
    execution = BlockExecution(config, parent, header, lookup.get, headers.get)
    for raw in raw_txs:
        execution.apply(decode_transaction(vm_class, raw))
    return execution.finish(uncles=uncles)
