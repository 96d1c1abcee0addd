"""Blocks leave a node and are verified elsewhere: a follower process, and export/import."""

import subprocess
import time

import nodes
import rlp
from eth_account import Account
from nodes import CHAIN_ID, DEV_KEYS, REPO

from chain.genesis import load_genesis
from chain.storage import codec

GENESIS = REPO / "genesis" / "dev.json"


def send_transfers(w3, count: int) -> list:
    senders = [Account.from_key(k) for k in DEV_KEYS[:2]]
    hashes = []
    for i in range(count):
        sender = senders[i % 2]
        tx = {
            "to": "0x90F79bf6EB2c4f870365E785982E1f101E93b906",
            "value": i + 1,
            "gas": 21000,
            "maxFeePerGas": 10**11,
            "maxPriorityFeePerGas": 10**9,
            "nonce": w3.eth.get_transaction_count(sender.address, "pending"),
            "chainId": CHAIN_ID,
        }
        hashes.append(w3.eth.send_raw_transaction(sender.sign_transaction(tx).raw_transaction))
    return [w3.eth.wait_for_transaction_receipt(h) for h in hashes]


def wait_for_head(w3, number: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while w3.eth.block_number < number:
        assert time.monotonic() < deadline, f"follower stuck at {w3.eth.block_number}"
        time.sleep(0.1)


def sibyl(*args: str) -> subprocess.CompletedProcess:
    return nodes.sibyl(*args, timeout=60)


def init(datadir) -> None:
    result = sibyl("init", "--genesis", str(GENESIS), "--datadir", str(datadir))
    assert result.returncode == 0, result.stderr


def test_follower_imports_every_block_with_identical_roots_and_receipts(start_node):
    producer = start_node("producer")
    w3 = producer.w3()
    receipts = send_transfers(w3, 6)
    follower = start_node("follower", "--follow", producer.url)
    f3 = follower.w3()
    head = w3.eth.block_number
    wait_for_head(f3, head)
    for number in range(head + 1):
        ours, theirs = w3.eth.get_block(number), f3.eth.get_block(number)
        assert ours["hash"] == theirs["hash"] and ours["stateRoot"] == theirs["stateRoot"]
    for receipt in receipts:
        assert f3.eth.get_transaction_receipt(receipt.transactionHash) == receipt

    # blocks made after the follower started arrive too
    more = send_transfers(w3, 2)
    wait_for_head(f3, more[-1].blockNumber)
    assert f3.eth.get_block("latest")["hash"] == w3.eth.get_block("latest")["hash"]


def test_export_then_import_reproduces_the_chain(tmp_path, start_node):
    node = start_node("a")
    send_transfers(node.w3(), 4)
    head = node.w3().eth.get_block("latest")
    assert node.stop() == 0

    exported = tmp_path / "chain.rlp"
    result = sibyl("export", str(exported), "--datadir", str(tmp_path / "a"))
    assert result.returncode == 0, result.stderr
    assert len(codec.split_rlp_items(exported.read_bytes())) == head["number"]

    result = nodes.import_blocks(GENESIS, exported, tmp_path / "b")
    assert result.returncode == 0, result.stderr
    assert f"imported {head['number']} blocks" in result.stdout

    copy = start_node("b", dev=False)
    assert copy.w3().eth.get_block("latest")["hash"] == head["hash"]


def test_import_rejects_a_tampered_block_and_keeps_the_blocks_before_it(tmp_path, start_node):
    node = start_node("a")
    send_transfers(node.w3(), 3)
    node.stop()
    exported = tmp_path / "chain.rlp"
    assert sibyl("export", str(exported), "--datadir", str(tmp_path / "a")).returncode == 0
    blocks = codec.split_rlp_items(exported.read_bytes())
    config = load_genesis(GENESIS).config

    # the last block claims a different state root (its hash changes with it)
    last = codec.decode_any_block(config, blocks[-1])
    forged = last.copy(header=last.header.copy(state_root=b"\x11" * 32))
    tampered = tmp_path / "tampered.rlp"
    tampered.write_bytes(b"".join(blocks[:-1]) + rlp.encode(forged))

    result = nodes.import_blocks(GENESIS, tampered, tmp_path / "b")
    assert result.returncode != 0
    assert "invalid block" in result.stderr and "state_root" in result.stderr
    assert "Traceback" not in result.stderr

    copy = start_node("b", dev=False)
    assert copy.w3().eth.block_number == len(blocks) - 1


def test_a_data_dir_in_use_by_a_node_is_refused_to_import_and_a_second_node_not_to_export(
    tmp_path, start_node
):
    node = start_node("a")
    send_transfers(node.w3(), 1)
    head = node.w3().eth.get_block("latest")
    exported = tmp_path / "chain.rlp"
    exported.write_bytes(b"")
    second = nodes.NodeProcess(tmp_path / "a", ["--dev", "--sidecars", "none"])
    for command in (
        ["import", str(exported), "--datadir", str(tmp_path / "a")],
        ["run", *second.args, "--datadir", str(tmp_path / "a"),
         "--http-port", str(second.http_port), "--engine-port", str(second.engine_port)],
    ):  # fmt: skip
        result = sibyl(*command)
        assert result.returncode != 0
        assert f"in use by another process (pid {node.proc.pid})" in result.stderr
        assert "Traceback" not in result.stderr
    assert node.w3().eth.get_block("latest") == head  # the running node saw nothing

    # reading beside it is fine: export opens the data dir read-only
    result = sibyl("export", str(exported), "--datadir", str(tmp_path / "a"))
    assert result.returncode == 0, result.stderr
    assert len(codec.split_rlp_items(exported.read_bytes())) == head["number"]


def test_import_refuses_a_file_that_is_not_rlp(tmp_path):
    garbage = tmp_path / "garbage.rlp"
    garbage.write_bytes(b"\xff\x00 not rlp at all")
    result = nodes.import_blocks(GENESIS, garbage, tmp_path / "b")
    assert result.returncode != 0
    assert result.stderr.startswith("error:") and "Traceback" not in result.stderr


def test_node_refuses_a_data_dir_of_another_chain(tmp_path):
    other = tmp_path / "other.json"
    other.write_text(GENESIS.read_text().replace('"chainId": 19183', '"chainId": 777'))
    init(tmp_path / "d")
    result = sibyl("run", "--datadir", str(tmp_path / "d"), "--genesis", str(other))
    assert result.returncode != 0
    assert "holds another chain" in result.stderr


def test_init_reports_a_broken_genesis_by_key(tmp_path):
    broken = tmp_path / "genesis.json"
    broken.write_text(GENESIS.read_text().replace('"gasLimit": "0x1c9c380"', '"gasLimit": "lots"'))
    result = sibyl("init", "--genesis", str(broken), "--datadir", str(tmp_path / "d"))
    assert result.returncode != 0
    assert "gasLimit" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "d").exists() or not any((tmp_path / "d").iterdir())
