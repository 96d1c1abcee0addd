"""A plain Ethereum chain through Shanghai, Cancun and Prague by timestamp, as geth
reads such a genesis: made by a dev node, exported as geth's RLP block file, imported
into a fresh data dir with ``sibyl import``, and served by ``sibyl run``, which answers
blocks, receipts and state of every era over JSON-RPC."""

import json
import time

from eth_account import Account
from nodes import DEV_KEYS, REPO, NodeProcess, import_blocks, rpc, sibyl

SENDER = Account.from_key(DEV_KEYS[0])
RECIPIENT = "0x" + "77" * 20
ERA_SECONDS = 3  # blocks: one a second of block time
DEV = json.loads((REPO / "genesis" / "dev.json").read_text())
PREDEPLOYS = (
    "0x000f3df6d732807ef1319fb7b8bb8522d0beac02",
    "0x0000f90827f1c53a10cb7a02335b175320002935",
)
# EIP-7002 and EIP-7251 queues that are always empty (a plain Prague chain must have both)
REQUEST_CONTRACTS = ("0x00000961ef480eb55e80d19ad83579a64c007002",
                     "0x0000bbddc7ce488642fb579f8b00f3a590007251")  # fmt: skip
CHAIN_ID = 31337


def genesis(start: int) -> dict:
    alloc = {SENDER.address: {"balance": hex(10**21)}}
    alloc.update({address: DEV["alloc"][address] for address in PREDEPLOYS})
    alloc.update({address: {"balance": "0x0", "code": "0x00"} for address in REQUEST_CONTRACTS})
    config = {"chainId": CHAIN_ID, "terminalTotalDifficulty": 0, "shanghaiTime": 0,
              "cancunTime": start + ERA_SECONDS, "pragueTime": start + 2 * ERA_SECONDS}  # fmt: skip
    return {"config": config, "timestamp": hex(start), "gasLimit": "0x1c9c380",
            "baseFeePerGas": None, "alloc": alloc}  # fmt: skip


def send(url: str, nonce: int) -> dict:
    tx = {"to": RECIPIENT, "value": 1000 + nonce, "gas": 21_000, "nonce": nonce,
          "chainId": CHAIN_ID, "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9}  # fmt: skip
    raw = SENDER.sign_transaction(tx).raw_transaction.to_0x_hex()
    tx_hash = rpc(url, "eth_sendRawTransaction", [raw])["result"]
    for _ in range(100):
        receipt = rpc(url, "eth_getTransactionReceipt", [tx_hash])["result"]
        if receipt:
            return receipt
        time.sleep(0.1)
    raise AssertionError(f"transaction {tx_hash} was not mined")


def test_a_chain_through_shanghai_cancun_and_prague_imports_and_is_served(tmp_path):
    # genesis ahead of the clock, so block n has timestamp start + n: blocks 1-2 are
    # Shanghai's, 3-5 Cancun's, 6-7 Prague's, however long the node takes to start
    start = int(time.time()) + 3600
    path = tmp_path / "genesis.json"
    path.write_text(json.dumps(genesis(start)))
    producer = NodeProcess(tmp_path / "producer", ["--dev", "--genesis", str(path),
                                                    "--sidecars", "none"]).start()  # fmt: skip
    try:
        receipts = [send(producer.url, nonce) for nonce in range(7)]  # a block each
        exported = sibyl("export", str(tmp_path / "chain.rlp"), "--datadir", str(producer.datadir))
        assert exported.returncode == 0, exported.stderr
    finally:
        producer.kill()

    datadir = tmp_path / "imported"
    imported = import_blocks(path, tmp_path / "chain.rlp", datadir)
    assert imported.returncode == 0, imported.stderr
    served = NodeProcess(datadir, ["--sidecars", "none"]).start()
    try:
        forks = ["shanghai"] * 2 + ["cancun"] * 3 + ["prague"] * 2
        for nonce, (receipt, fork) in enumerate(zip(receipts, forks, strict=True)):
            number = receipt["blockNumber"]
            assert int(number, 16) == nonce + 1
            block = rpc(served.url, "eth_getBlockByNumber", [number, False])["result"]
            assert block["hash"] == receipt["blockHash"] and "totalDifficulty" not in block
            assert ("parentBeaconBlockRoot" in block) == (fork != "shanghai")
            assert ("requestsHash" in block) == (fork == "prague")
            again = rpc(served.url, "eth_getTransactionReceipt", [receipt["transactionHash"]])
            assert again["result"] == receipt
            balance = rpc(served.url, "eth_getBalance", [RECIPIENT, number])["result"]
            assert int(balance, 16) == sum(1000 + n for n in range(nonce + 1))
    finally:
        served.kill()
