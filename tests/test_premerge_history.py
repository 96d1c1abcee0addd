"""A plain Ethereum chain from Frontier through the merge to Prague, as geth reads its
genesis: proof-of-work blocks by block number (Frontier to London, one with an uncle),
the merge when the total difficulty reaches the terminal one, then Paris, Shanghai,
Cancun and Prague blocks by timestamp. The proof-of-work part is made by
``tests/pow_history.py`` and imported with ``sibyl import``; a dev node goes on with
proof-of-stake blocks; the whole chain, exported as geth's block file, imports into a
fresh data dir, and ``sibyl run`` serves blocks, receipts and state of every era to
web3.py."""

import json
import time

import rlp
from eth_account import Account
from eth_utils import keccak
from nodes import DEV_KEYS, NodeProcess, import_blocks, sibyl
from pow_history import (
    DEPOSIT,
    MINER,
    POW_BLOCKS,
    RECIPIENT,
    SYSTEM,
    UNCLE_AT,
    UNCLE_MINER,
    make_history,
)
from web3 import Web3

from chain.genesis import parse_genesis
from chain.storage.codec import decode_any_block

KEY = DEV_KEYS[0]
SENDER = Account.from_key(KEY)
# blocks after the proof-of-work ones: Paris, then two each of Shanghai, Cancun, Prague
POS_FORKS = ["paris"] + ["shanghai"] * 2 + ["cancun"] * 2 + ["prague"] * 2
ETHER = 10**18


def send(w3, nonce: int) -> dict:
    tx = {"to": RECIPIENT, "value": 1000 + nonce, "gas": 21_000, "nonce": nonce,
          "chainId": w3.eth.chain_id, "maxFeePerGas": 10**10,
          "maxPriorityFeePerGas": 10**9}  # fmt: skip
    tx_hash = w3.eth.send_raw_transaction(SENDER.sign_transaction(tx).raw_transaction)
    return w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30, poll_latency=0.1)


def test_a_chain_from_frontier_through_the_merge_to_prague_imports_and_is_served(tmp_path):
    # genesis ahead of the clock, so block n has timestamp start + n however long the
    # node takes to start: block 11 is Paris's, 12-13 Shanghai's, 14-15 Cancun's, 16-17 Prague's
    start = int(time.time()) + 3600
    first_pos = start + POW_BLOCKS + 1
    post_merge = {"shanghaiTime": first_pos + 1, "cancunTime": first_pos + 3,
                  "pragueTime": first_pos + 5, "depositContractAddress": DEPOSIT}  # fmt: skip
    history = make_history(KEY, start, post_merge, SYSTEM)
    genesis = tmp_path / "genesis.json"
    genesis.write_text(json.dumps(history.genesis))
    (tmp_path / "pow.rlp").write_bytes(b"".join(history.blocks))

    producer_dir = tmp_path / "producer"
    pow_import = import_blocks(genesis, tmp_path / "pow.rlp", producer_dir)
    assert pow_import.returncode == 0, pow_import.stderr
    producer = NodeProcess(producer_dir, ["--dev", "--block-time", "0", "--sidecars", "none"])
    try:
        w3 = producer.start().w3()
        assert w3.eth.block_number == POW_BLOCKS
        receipts = [send(w3, POW_BLOCKS + i) for i in range(len(POS_FORKS))]  # a block each
        exported = sibyl("export", str(tmp_path / "chain.rlp"), "--datadir", str(producer_dir))
        assert exported.returncode == 0, exported.stderr
    finally:
        producer.kill()
    assert [r["blockNumber"] for r in receipts] == list(range(POW_BLOCKS + 1, 18))

    datadir = tmp_path / "imported"
    imported = import_blocks(genesis, tmp_path / "chain.rlp", datadir)
    assert imported.returncode == 0, imported.stderr
    assert "imported 17 blocks" in imported.stdout
    served = NodeProcess(datadir, ["--sidecars", "none"]).start()
    try:
        w3 = served.w3()
        forks = history.forks + POS_FORKS
        for number in range(1, 18):
            _check_block(w3, number, forks[number], history)
        # proof-of-work rewards: 5 ether a block to Byzantium, 3 to Petersburg, 2 after;
        # the uncle of block 6 earns 7/8 of its fork's reward, its includer 1/32 more
        rewards = {"frontier": 5, "homestead": 5, "tangerine_whistle": 5,
                   "spurious_dragon": 5, "byzantium": 3}  # fmt: skip
        mined = sum(rewards.get(fork, 2) * ETHER for fork in history.forks[1:])
        at_merge = w3.eth.get_balance(_hex(MINER), POW_BLOCKS)
        fees = sum(21_000 * 10**9 for _ in range(POW_BLOCKS))  # all to the miner then
        assert at_merge == mined + 2 * ETHER // 32 + fees
        assert w3.eth.get_balance(_hex(UNCLE_MINER), UNCLE_AT + 1) == 2 * ETHER * 7 // 8
        # and nothing after the merge: only tips, which the dev node's fee recipient takes
        assert w3.eth.get_balance(_hex(MINER), "latest") == at_merge
        # fee history across the eras: blocks 1-8 have no base fee (London is at 9): 0
        history_fees = w3.eth.fee_history(17, "latest", [50])
        assert history_fees["baseFeePerGas"][:8] == [0] * 8
        assert all(fee > 0 for fee in history_fees["baseFeePerGas"][8:])
        assert len(history_fees["reward"]) == 17
    finally:
        served.kill()


def _hex(address: bytes) -> str:
    return Web3.to_checksum_address("0x" + address.hex())


def _check_block(w3, number: int, fork: str, history) -> None:
    block = w3.eth.get_block(number, full_transactions=True)
    pow_era = number <= POW_BLOCKS
    assert (block["difficulty"] > 0) == pow_era
    assert ("baseFeePerGas" in block) == (fork in ("london", *POS_FORKS))
    assert ("withdrawals" in block) == (fork in ("shanghai", "cancun", "prague"))
    assert ("parentBeaconBlockRoot" in block) == (fork in ("cancun", "prague"))
    assert ("requestsHash" in block) == (fork == "prague")
    assert len(block["uncles"]) == (1 if number == UNCLE_AT + 1 else 0)
    assert "totalDifficulty" not in block
    (tx,) = block["transactions"]
    receipt = w3.eth.get_transaction_receipt(tx["hash"])
    assert receipt["blockHash"] == block["hash"] and receipt["gasUsed"] == 21_000
    # before Byzantium a receipt holds the state root after it (EIP-658 made it a status)
    byzantium = fork not in ("frontier", "homestead", "tangerine_whistle", "spurious_dragon")
    assert ("status" in receipt) == byzantium and ("root" in receipt) == (not byzantium)
    if byzantium:
        assert receipt["status"] == 1
    assert w3.eth.get_balance(RECIPIENT, number) == sum(1000 + n for n in range(number))
    assert w3.eth.get_transaction_count(SENDER.address, number) == number
    raw = w3.provider.make_request("debug_getRawBlock", [hex(number)])["result"]
    if pow_era:  # the block's RLP is its fork's, byte for byte as it was mined
        assert bytes.fromhex(raw[2:]) == history.blocks[number - 1]


def _tampered(history, number: int, **changes) -> list[bytes]:
    """The history's blocks with block ``number`` changed (its header's fields, or its
    uncles and the header's hash of them)."""
    genesis = parse_genesis(json.dumps(history.genesis).encode())
    block = decode_any_block(genesis.config, history.blocks[number - 1])
    uncles = changes.pop("uncles", None)
    if uncles is not None:
        changes["uncles_hash"] = keccak(rlp.encode(uncles))
        block = block.copy(uncles=uncles)
    block = block.copy(header=block.header.copy(**changes))
    return [*history.blocks[: number - 1], rlp.encode(block)]


def test_import_refuses_proof_of_work_blocks_that_geth_refuses(tmp_path):
    history = make_history(KEY, int(time.time()) - 100, {}, {})
    genesis = parse_genesis(json.dumps(history.genesis).encode())
    ancestor = decode_any_block(genesis.config, history.blocks[4]).header  # block 5
    last = decode_any_block(genesis.config, history.blocks[-1]).header
    merged_at_9 = history.terminal_total_difficulty - last.difficulty
    cases = {
        "difficulty": (
            history.genesis,
            _tampered(history, 3, difficulty=ancestor.difficulty + 1),
            "block 3: difficulty",
        ),
        "ancestor uncle": (
            history.genesis,
            _tampered(history, UNCLE_AT + 1, uncles=[ancestor]),
            f"block {UNCLE_AT + 1}: uncle 0 0x{ancestor.hash.hex()}: is an ancestor",
        ),
        "pow after the merge": (  # block 10 is a proof-of-work block on a merged parent
            {**history.genesis, "config": {**history.genesis["config"],
             "terminalTotalDifficulty": hex(merged_at_9)}},
            history.blocks,
            f"block {POW_BLOCKS}: difficulty {last.difficulty} after the merge",
        ),
    }  # fmt: skip
    for name, (genesis_json, blocks, reason) in cases.items():
        path, datadir = tmp_path / f"{name}.json", tmp_path / name
        path.write_text(json.dumps(genesis_json))
        (tmp_path / f"{name}.rlp").write_bytes(b"".join(blocks))
        refused = import_blocks(path, tmp_path / f"{name}.rlp", datadir)
        assert refused.returncode != 0 and reason in refused.stderr, (name, refused.stderr)
        assert "Traceback" not in refused.stderr
