"""What the AI precompile tests share: the bundled models' ids, the example contract,
precompile inputs as a contract encodes them, a wallet that signs and sends
transactions, and nodes with sidecars (started, compared, stopped)."""

import json
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from eth_abi import encode as abi_encode
from eth_account import Account
from hexbytes import HexBytes
from nodes import CHAIN_ID, REPO, NodeProcess, rpc
from web3 import Web3

from sidecars.abi import EMBED_ADDRESS, INFER_ADDRESS

GWEI = 10**9
DECIMALS = 6  # AIConsumer.DECIMALS
MODELS = {m["kind"]: m for m in json.loads((REPO / "genesis/models/models.json").read_text())}
TORCH_ID = bytes.fromhex(MODELS["torch"]["id"][2:])
ONNX_ID = bytes.fromhex(MODELS["onnx"]["id"][2:])
EMBED_ID = bytes.fromhex(MODELS["embed"]["id"][2:])
ZK_ID = bytes.fromhex(MODELS["zk"]["id"][2:])
DEV_MODELS = REPO / "genesis" / "models"
DEV_GENESIS = REPO / "genesis" / "dev.json"
DEV_EXECUTOR = "0x67abda0f02673b98a03071cb5fbe04bc9e3e0307"
DEV_EXECUTOR_KEY = REPO / "genesis" / "dev-executor.key"
INFER = "0x" + INFER_ADDRESS.hex()
EMBED = "0x" + EMBED_ADDRESS.hex()
EXECUTOR_REGISTRY = "0x0000000000000000000000000000000000000a02"
MODEL_REGISTRY = "0x0000000000000000000000000000000000000a03"
ARTIFACT = REPO / "contracts" / "build" / "AIConsumer.json"
SHAPE = [1, 4]


def ai_consumer_artifact() -> dict:
    """contracts/build/AIConsumer.json (rebuild: see contracts/compile.js)."""
    return json.loads(ARTIFACT.read_text())


def infer_input(model_id: bytes, values: list[int], shape: list[int] = SHAPE) -> bytes:
    """The INFER input ``abi.encode(modelId, values, shape, decimals)``, as SibylAI.infer."""
    return abi_encode(["bytes32", "int256[]", "uint32[]", "uint8"], [model_id, values, shape, 6])


def embed_input(model_id: bytes, text: str) -> bytes:
    """The EMBED input ``abi.encode(modelId, text, decimals)``, as SibylAI.embed."""
    return abi_encode(["bytes32", "string", "uint8"], [model_id, text, DECIMALS])


def hexstr(value: bytes) -> str:
    return "0x" + bytes(value).hex()


def wait_until(condition: Callable[[], Any], what: str, timeout: float = 60) -> Any:
    """Poll ``condition`` until it returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.1)


class Wallet:
    """One account that signs EIP-1559 transactions with nonces it counts itself, so
    several can be sent before any is mined."""

    def __init__(self, w3: Web3, key: str) -> None:
        self.w3 = w3
        self.account = Account.from_key(key)
        self.address = self.account.address
        self.nonce = w3.eth.get_transaction_count(self.address, "pending")

    def sign(
        self, to: str | None, data: bytes = b"", gas: int = 1_000_000, value: int = 0
    ) -> bytes:
        tx = {
            "chainId": CHAIN_ID,
            "nonce": self.nonce,
            "gas": gas,
            "maxFeePerGas": 100 * GWEI,
            "maxPriorityFeePerGas": GWEI,
            "value": value,
            "data": data,
        }
        if to is not None:
            tx["to"] = Web3.to_checksum_address(to)
        self.nonce += 1
        return bytes(self.account.sign_transaction(tx).raw_transaction)

    def send(self, to: str | None, data: bytes = b"", gas: int = 1_000_000, value: int = 0):
        """Send one transaction and return its receipt."""
        tx_hash = self.w3.eth.send_raw_transaction(self.sign(to, data, gas, value))
        return self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60)


def send_together(url: str, raws: list[bytes]) -> list[str]:
    """Send raw transactions in one JSON-RPC batch, so that they reach the pool before the
    dev producer wakes up and share a block; returns their hashes."""
    body = [
        {"jsonrpc": "2.0", "id": i, "method": "eth_sendRawTransaction", "params": [hexstr(raw)]}
        for i, raw in enumerate(raws)
    ]
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        replies = sorted(json.loads(response.read()), key=lambda reply: reply["id"])
    assert all("result" in reply for reply in replies), replies
    return [reply["result"] for reply in replies]


def receipts_of(w3: Web3, hashes: list[str]) -> list:
    return [w3.eth.wait_for_transaction_receipt(HexBytes(h), timeout=60) for h in hashes]


def deploy_consumer(wallet: Wallet, model_id: bytes, embedder_id: bytes = EMBED_ID):
    """Deploy AIConsumer(model, embedder); returns the web3 contract."""
    artifact = ai_consumer_artifact()
    factory = wallet.w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    data = HexBytes(factory.constructor(model_id, embedder_id).data_in_transaction)
    receipt = wallet.send(None, bytes(data), gas=3_000_000)
    assert receipt.status == 1
    return wallet.w3.eth.contract(address=receipt.contractAddress, abi=artifact["abi"])


def calldata(contract, function: str, *args: Any) -> bytes:
    return bytes(HexBytes(contract.encode_abi(function, list(args))))


# nodes


def start_producer(datadir: Path, *args: str) -> NodeProcess:
    """A dev producer whose sidecars run as local processes (~15 s: model imports)."""
    return NodeProcess(
        datadir, ["--dev", "--block-time", "0", "--sidecars", "process", *args]
    ).start(timeout=180)


def start_follower(datadir: Path, peer_url: str, *args: str) -> NodeProcess:
    """A node with no sidecar that imports and verifies the blocks of ``peer_url``."""
    return NodeProcess(
        datadir, ["--dev", "--follow", peer_url, "--sidecars", "none", *args]
    ).start()


def shut_down(node: NodeProcess) -> None:
    """SIGTERM, so the node stops its sidecar processes too; SIGKILL if it hangs."""
    if node.proc is None or node.proc.poll() is not None:
        return
    try:
        node.stop(timeout=30)
    except Exception:
        node.kill()


def head(url: str) -> int:
    return int(rpc(url, "eth_blockNumber")["result"], 16)


def assert_follower_agrees(producer: NodeProcess, follower: NodeProcess) -> int:
    """Wait until the follower reaches the producer's head, then compare every block's
    hash and roots and every receipt (spcCalls included); returns the head."""
    top = head(producer.url)
    wait_until(lambda: head(follower.url) >= top, f"the follower to import block {top}")
    for number in range(top + 1):
        ours = rpc(producer.url, "eth_getBlockByNumber", [hex(number), False])["result"]
        theirs = rpc(follower.url, "eth_getBlockByNumber", [hex(number), False])["result"]
        for key in ("hash", "stateRoot", "transactionsRoot", "receiptsRoot", "gasUsed"):
            assert ours[key] == theirs[key], f"block {number}: {key} differs"
        for tx_hash in ours["transactions"]:
            mine = rpc(producer.url, "eth_getTransactionReceipt", [tx_hash])["result"]
            copy = rpc(follower.url, "eth_getTransactionReceipt", [tx_hash])["result"]
            assert mine == copy, f"receipt of {tx_hash} differs"
    return top
