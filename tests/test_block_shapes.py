"""Every block parses in the field's tools: a dev chain with scheduled transactions (type
0x10, sender SCHEDULER) next to user transactions, read by foundry's cast (alloy's
AnyNetwork decoding), viem, ethers and web3.py, all from their own packages.
"""

import json
import subprocess
import time

import js_tools
import pytest
from test_scheduler import Chain, selector

TOOLS = js_tools.JS / "read_blocks.mjs"


@pytest.fixture(scope="module")
def mixed(node) -> dict:
    """A block holding a scheduled transaction and a user transaction."""
    chain = Chain(node)
    probe = chain.deploy("SchedulerProbe")
    start = chain.head() + 2
    chain.schedule(probe, selector("ping()"), start, 1, 4)
    while chain.head() < start:
        time.sleep(0.1)
    user = chain.wallet.send(chain.wallet.address, gas=21_000)
    block = chain.w3.eth.get_block(user.blockNumber, True)
    types = [tx["type"] for tx in block.transactions]
    assert types == [0x10, 2], f"expected a scheduled and a user transaction, got {types}"
    return {
        "number": user.blockNumber,
        "scheduled": block.transactions[0]["hash"].to_0x_hex(),
        "user": user.transactionHash.to_0x_hex(),
    }


def cast(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [js_tools.foundry("cast"), *args], capture_output=True, text=True, timeout=120
    )


def test_cast_reads_every_block_in_full_and_every_transaction(node, mixed):
    for number in range(mixed["number"] + 1):
        shown = cast("block", "--full", "--json", str(number), "--rpc-url", node.url)
        assert shown.returncode == 0, f"cast block --full {number}:\n{shown.stderr}"
        block = json.loads(shown.stdout)
        assert int(block["number"], 16) == number
    for tx_hash, tx_type in ((mixed["scheduled"], "0x10"), (mixed["user"], "0x2")):
        shown = cast("tx", "--json", tx_hash, "--rpc-url", node.url)
        assert shown.returncode == 0, f"cast tx {tx_hash}:\n{shown.stderr}"
        assert json.loads(shown.stdout)["type"] == tx_type


def test_viem_ethers_and_web3_read_blocks_with_scheduled_transactions(node, w3, mixed):
    run = subprocess.run(
        [js_tools.node_js(), str(TOOLS), node.url, str(mixed["number"]), mixed["scheduled"]],
        cwd=js_tools.JS,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, f"viem / ethers failed:\n{run.stdout}{run.stderr}"
    seen = json.loads(run.stdout.strip().splitlines()[-1])
    assert seen["ethers"] == seen["viem"] == [[16, mixed["scheduled"]], [2, mixed["user"]]]
    block = w3.eth.get_block(mixed["number"], True)
    assert [tx["type"] for tx in block.transactions] == [0x10, 2]
    scheduled = w3.eth.get_transaction(mixed["scheduled"])
    assert scheduled["from"] == "0x0000000000000000000000000000000000000a01"


def test_cast_run_replays_a_user_transaction(node, w3):
    tx_hash = w3.eth.get_block(1)["transactions"][0].to_0x_hex()
    ran = cast("run", tx_hash, "--rpc-url", node.url)
    assert ran.returncode == 0, ran.stderr
    assert "Transaction successfully executed" in ran.stdout


@pytest.mark.xfail(
    strict=True,
    reason="cast 1.7.1 (npm) fetches the full block with alloy's Ethereum types: TxEnvelope "
    "takes types 0x0-0x4 only, so the 0x10 beside it fails BlockTransactions decoding before "
    "cast skips system transactions (docs/decisions.md)",
)
def test_cast_run_replays_a_user_transaction_beside_a_scheduled_one(node, mixed):
    ran = cast("run", mixed["user"], "--rpc-url", node.url)
    assert ran.returncode == 0, ran.stderr
