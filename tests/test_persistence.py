"""The data dir survives restarts and crashes: a real LMDB store and real node processes."""

import random
import threading
import time
from pathlib import Path

import pytest
from eth_account import Account
from nodes import CHAIN_ID, DEV_KEYS, NodeProcess

from chain.execution import execute_block
from chain.genesis import load_genesis
from chain.storage import codec
from chain.storage.reader import ChainReader
from chain.storage.store import Store

GENESIS = Path(__file__).resolve().parent.parent / "genesis" / "dev.json"
RECIPIENT = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


def transfer(account, nonce: int, value: int = 1) -> bytes:
    tx = {
        "to": RECIPIENT,
        "value": value,
        "gas": 21000,
        "maxFeePerGas": 10**11,
        "maxPriorityFeePerGas": 10**9,
        "nonce": nonce,
        "chainId": CHAIN_ID,
    }
    return account.sign_transaction(tx).raw_transaction


def snapshot(w3, token, holders) -> dict:
    head = w3.eth.block_number
    return {
        "head": head,
        "hashes": [w3.eth.get_block(n)["hash"] for n in range(head + 1)],
        "balances": [w3.eth.get_balance(h) for h in holders],
        "token_balances": [token.functions.balanceOf(h).call() for h in holders],
        "logs": token.events.Transfer().get_logs(from_block=0),
    }


def test_restart_keeps_balances_blocks_receipts_and_logs(start_node, token_artifact):
    node = start_node()
    w3 = node.w3()
    owner, other = (Account.from_key(k) for k in DEV_KEYS[:2])
    factory = w3.eth.contract(abi=token_artifact["abi"], bytecode=token_artifact["bytecode"])
    deploy = factory.constructor("Restart", "RST", 10**21).build_transaction(
        {"from": owner.address, "nonce": 0, "chainId": CHAIN_ID}
    )
    receipt = w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(owner.sign_transaction(deploy).raw_transaction)
    )
    token = w3.eth.contract(address=receipt.contractAddress, abi=token_artifact["abi"])
    hashes = []
    for nonce in range(1, 4):
        call = token.functions.transfer(other.address, nonce).build_transaction(
            {"from": owner.address, "nonce": nonce, "chainId": CHAIN_ID}
        )
        hashes.append(w3.eth.send_raw_transaction(owner.sign_transaction(call).raw_transaction))
    receipts = [w3.eth.wait_for_transaction_receipt(h) for h in hashes]
    before = snapshot(w3, token, [owner.address, other.address])

    assert node.stop() == 0
    node.start()
    w3 = node.w3()
    token = w3.eth.contract(address=receipt.contractAddress, abi=token_artifact["abi"])
    assert snapshot(w3, token, [owner.address, other.address]) == before
    assert [w3.eth.get_transaction_receipt(h) for h in hashes] == receipts

    # and the restarted node keeps producing on top of the same chain
    w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(transfer(other, 0)))
    assert w3.eth.block_number == before["head"] + 1


def check_datadir(datadir: Path) -> int:
    """The invariants a crash must never break; returns the head number.

    The head block is complete: its body, receipts and state are stored, and replaying
    it on its parent's state gives exactly its header (state root included). Every
    canonical number up to the head resolves to a stored block of that number, none lies
    beyond the head, and every transaction index entry points at a canonical block
    holding that transaction.
    """
    config = load_genesis(GENESIS).config
    store = Store(datadir)
    try:
        reader = ChainReader(store, config)
        head = reader.head
        assert reader.has_state(head), "head state root is missing"
        if head.block_number > 0:
            parent = reader.header(head.parent_hash)
            block = reader.block(head.hash)
            replayed = execute_block(config, parent, block, store.state_get, reader.header)
            assert replayed.header == head, "replaying the head block gives another header"
            stored = reader.receipts(head)
            assert [r.encode() for r in stored.receipts] == [r.encode() for r in replayed.receipts]
            assert stored.senders == replayed.senders and stored.signers == replayed.signers
        for number in range(head.block_number + 1):
            header = reader.canonical_header(number)
            assert header is not None and header.block_number == number
            assert reader.block(header.hash) is not None
        assert store.canonical_hash(head.block_number + 1) is None
        with store.env.begin(db=store.tables["txindex"]) as txn:
            for tx_hash, location in txn.cursor():
                block_hash, index = bytes(location[:32]), int.from_bytes(location[32:], "big")
                block = reader.block(block_hash)
                assert block is not None, "tx index points at a missing block"
                assert reader.is_canonical(block.header)
                assert block.transactions[index].hash == bytes(tx_hash)
        return head.block_number
    finally:
        store.close()


def stream_transactions(node: NodeProcess, account, nonce: int, stop: threading.Event) -> None:
    """Send transfers as fast as the node takes them until told to stop or it dies."""
    w3 = node.w3()
    while not stop.is_set():
        try:
            w3.eth.send_raw_transaction(transfer(account, nonce))
            nonce += 1
        except Exception:
            return


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sigkill_mid_stream_leaves_a_complete_head(tmp_path, start_node, seed):
    rng = random.Random(seed)
    datadir = tmp_path / "data"
    node = start_node()
    senders = [Account.from_key(k) for k in DEV_KEYS[:3]]
    stop = threading.Event()
    threads = [
        threading.Thread(target=stream_transactions, args=(node, s, 0, stop), daemon=True)
        for s in senders
    ]
    for thread in threads:
        thread.start()
    w3 = node.w3()
    deadline = time.monotonic() + 60
    while w3.eth.block_number < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(rng.uniform(0.0, 1.5))
    node.kill()
    stop.set()
    for thread in threads:
        thread.join(10)

    head = check_datadir(datadir)
    assert head >= 3

    node.start()
    w3 = node.w3()
    assert w3.eth.block_number == head
    account = senders[0]
    nonce = w3.eth.get_transaction_count(account.address)
    receipt = w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(transfer(account, nonce))
    )
    assert receipt.blockNumber == head + 1


def test_raw_block_round_trips_through_the_codec(start_node):
    node = start_node()
    w3 = node.w3()
    account = Account.from_key(DEV_KEYS[0])
    w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(transfer(account, 0)))
    raw = w3.provider.make_request("debug_getRawBlock", ["latest"])["result"]
    block = codec.decode_any_block(load_genesis(GENESIS).config, bytes.fromhex(raw[2:]))
    assert block.header.hash == w3.eth.get_block("latest")["hash"]
