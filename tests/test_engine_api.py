"""A consensus client drives a non-dev node through the JWT-authenticated Engine API."""

import json
import time
import urllib.error
import urllib.request

import jwt
import pytest
from eth_account import Account
from nodes import CHAIN_ID, DEV_KEYS, REPO
from web3.exceptions import TransactionNotFound

SECRET = bytes(range(32))


@pytest.fixture
def engine_node(tmp_path, start_node):
    secret_file = tmp_path / "jwt.hex"
    secret_file.write_text(SECRET.hex())
    genesis = REPO / "genesis" / "dev.json"
    return start_node(
        "data", "--genesis", str(genesis), "--jwt-secret", str(secret_file), dev=False
    )


def engine(node, method: str, params: list, token: str | None = None) -> dict:
    token = token or jwt.encode({"iat": int(time.time())}, SECRET, algorithm="HS256")
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{node.engine_port}",
        data=body,
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def build_block(node, head: str, timestamp: int) -> dict:
    attributes = {
        "timestamp": hex(timestamp),
        "prevRandao": "0x" + "42" * 32,
        "suggestedFeeRecipient": "0x" + "fe" * 20,
        "withdrawals": [],
        "parentBeaconBlockRoot": "0x" + "00" * 32,
    }
    state = {"headBlockHash": head, "safeBlockHash": head, "finalizedBlockHash": head}
    updated = engine(node, "engine_forkchoiceUpdatedV3", [state, attributes])["result"]
    assert updated["payloadStatus"]["status"] == "VALID"
    return engine(node, "engine_getPayloadV4", [updated["payloadId"]])["result"]


def test_consensus_client_builds_imports_and_selects_a_block(engine_node):
    w3 = engine_node.w3()
    genesis = w3.eth.get_block(0)
    sender = Account.from_key(DEV_KEYS[0])
    tx = sender.sign_transaction(
        {
            "to": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
            "value": 5,
            "gas": 21000,
            "maxFeePerGas": 10**10,
            "maxPriorityFeePerGas": 2 * 10**9,
            "nonce": 0,
            "chainId": CHAIN_ID,
        }
    )
    tx_hash = w3.eth.send_raw_transaction(tx.raw_transaction)
    assert w3.eth.block_number == 0  # no block until the consensus client asks for one

    capabilities = engine(engine_node, "engine_exchangeCapabilities", [[]])["result"]
    assert "engine_newPayloadV4" in capabilities and "engine_forkchoiceUpdatedV3" in capabilities
    transition = {"terminalTotalDifficulty": "0x0", "terminalBlockHash": "0x" + "00" * 32,
                  "terminalBlockNumber": "0x0"}  # fmt: skip
    assert engine(engine_node, "engine_exchangeTransitionConfigurationV1", [transition]) == {
        "jsonrpc": "2.0",
        "id": 1,
        "result": transition,
    }  # what lodestar asks every 30 slots, answered as geth does

    built = build_block(engine_node, genesis["hash"].to_0x_hex(), genesis["timestamp"] + 12)
    payload = built["executionPayload"]
    assert payload["transactions"] == [tx.raw_transaction.to_0x_hex()]
    assert int(built["blockValue"], 16) == 21000 * 2 * 10**9

    status = engine(engine_node, "engine_newPayloadV4", [payload, [], "0x" + "00" * 32, []])
    assert status.get("result", {}).get("status") == "VALID", status
    assert w3.eth.block_number == 0  # valid, but not canonical before forkchoiceUpdated

    head = payload["blockHash"]
    finalized = genesis["hash"].to_0x_hex()
    state = {"headBlockHash": head, "safeBlockHash": head, "finalizedBlockHash": finalized}
    updated = engine(engine_node, "engine_forkchoiceUpdatedV3", [state, None])["result"]
    assert updated["payloadStatus"]["status"] == "VALID" and updated["payloadId"] is None
    assert w3.eth.block_number == 1
    assert w3.eth.get_transaction_receipt(tx_hash).status == 1
    assert w3.eth.get_block("latest")["miner"].lower() == "0x" + "fe" * 20


def test_forged_payload_is_invalid_and_changes_nothing(engine_node):
    w3 = engine_node.w3()
    genesis = w3.eth.get_block(0)
    payload = build_block(engine_node, genesis["hash"].to_0x_hex(), genesis["timestamp"] + 12)[
        "executionPayload"
    ]
    payload["stateRoot"] = "0x" + "11" * 32
    status = engine(engine_node, "engine_newPayloadV4", [payload, [], "0x" + "00" * 32, []])
    assert status["result"]["status"] == "INVALID"
    assert status["result"]["validationError"] == "blockhash mismatch"
    assert w3.eth.block_number == 0


def test_engine_api_requires_a_fresh_jwt(engine_node):
    stale = jwt.encode({"iat": int(time.time()) - 3600}, SECRET, algorithm="HS256")
    wrong = jwt.encode({"iat": int(time.time())}, b"\x01" * 32, algorithm="HS256")
    for token in (stale, wrong, "not-a-token"):
        with pytest.raises(urllib.error.HTTPError) as failure:
            engine(engine_node, "engine_exchangeCapabilities", [[]], token=token)
        assert failure.value.code == 401


def test_engine_api_accepts_clocks_within_sixty_seconds_either_way(engine_node):
    now = int(time.time())
    for iat in (now + 2, now + 55, now - 55):
        token = jwt.encode({"iat": iat}, SECRET, algorithm="HS256")
        assert "result" in engine(engine_node, "engine_exchangeCapabilities", [[]], token=token)
    for iat in (now + 120, now - 120):
        token = jwt.encode({"iat": iat}, SECRET, algorithm="HS256")
        with pytest.raises(urllib.error.HTTPError) as failure:
            engine(engine_node, "engine_exchangeCapabilities", [[]], token=token)
        assert failure.value.code == 401


def test_engine_api_refuses_an_iat_that_is_not_an_integer(engine_node):
    now = int(time.time())
    for iat in (str(now), float(now) + 0.5, True):
        token = jwt.encode({"iat": iat}, SECRET, algorithm="HS256")
        with pytest.raises(urllib.error.HTTPError) as failure:
            engine(engine_node, "engine_exchangeCapabilities", [[]], token=token)
        assert failure.value.code == 401


def test_unknown_payload_id_is_reported(engine_node):
    reply = engine(engine_node, "engine_getPayloadV4", ["0x0000000000000001"])
    assert reply["error"]["code"] == -38001


def test_forkchoice_moves_the_head_between_branches(engine_node):
    w3 = engine_node.w3()
    genesis = w3.eth.get_block(0)
    sender = Account.from_key(DEV_KEYS[1])
    tx = sender.sign_transaction(
        {
            "to": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
            "value": 7,
            "gas": 21000,
            "maxFeePerGas": 10**10,
            "maxPriorityFeePerGas": 10**9,
            "nonce": 0,
            "chainId": CHAIN_ID,
        }
    )
    tx_hash = w3.eth.send_raw_transaction(tx.raw_transaction)
    root = genesis["hash"].to_0x_hex()

    def select(head: str) -> None:
        state = {"headBlockHash": head, "safeBlockHash": head, "finalizedBlockHash": root}
        reply = engine(engine_node, "engine_forkchoiceUpdatedV3", [state, None])["result"]
        assert reply["payloadStatus"]["status"] == "VALID"

    # branch A holds the transaction
    a1 = build_block(engine_node, root, genesis["timestamp"] + 12)["executionPayload"]
    assert a1["transactions"] == [tx.raw_transaction.to_0x_hex()]
    assert (
        engine(engine_node, "engine_newPayloadV4", [a1, [], "0x" + "00" * 32, []])["result"][
            "status"
        ]
        == "VALID"
    )
    select(a1["blockHash"])
    assert w3.eth.get_transaction_receipt(tx_hash).blockHash.to_0x_hex() == a1["blockHash"]

    # the head moves back to genesis: the transaction is no longer mined, and waits in
    # the pool again (as geth takes back what a reorg drops)
    select(root)
    assert w3.eth.block_number == 0
    assert w3.eth.get_transaction(tx_hash)["blockNumber"] is None
    with pytest.raises(TransactionNotFound):
        w3.eth.get_transaction_receipt(tx_hash)

    # branch B, another block on genesis, includes it again
    b1 = build_block(engine_node, root, genesis["timestamp"] + 13)["executionPayload"]
    assert b1["blockHash"] != a1["blockHash"]
    assert b1["transactions"] == [tx.raw_transaction.to_0x_hex()]
    assert (
        engine(engine_node, "engine_newPayloadV4", [b1, [], "0x" + "00" * 32, []])["result"][
            "status"
        ]
        == "VALID"
    )
    select(b1["blockHash"])
    assert w3.eth.get_transaction_receipt(tx_hash).blockHash.to_0x_hex() == b1["blockHash"]

    # and back to branch A
    select(a1["blockHash"])
    assert w3.eth.get_block("latest")["hash"].to_0x_hex() == a1["blockHash"]
    assert w3.eth.get_transaction_receipt(tx_hash).blockNumber == 1


def test_engine_api_v1_builds_and_imports_paris_payloads(tmp_path, start_node):
    """A chain merged at genesis that stays at Paris: a consensus client of that era
    builds with engine_forkchoiceUpdatedV1/engine_getPayloadV1 and imports with
    engine_newPayloadV1, payloads without withdrawals (ExecutionPayloadV1)."""
    sender = Account.from_key(DEV_KEYS[0])
    forks = ["homestead", "eip150", "eip155", "eip158", "byzantium", "constantinople",
             "petersburg", "istanbul", "berlin", "london"]  # fmt: skip
    start = int(time.time()) - 60
    genesis = {
        "config": {
            "chainId": CHAIN_ID,
            **{f"{fork}Block": 0 for fork in forks},
            "terminalTotalDifficulty": 0,
        },  # fmt: skip
        "timestamp": hex(start),
        "gasLimit": hex(30_000_000),
        "difficulty": "0x0",
        "alloc": {sender.address: {"balance": hex(10**21)}},
    }
    (tmp_path / "paris.json").write_text(json.dumps(genesis))
    (tmp_path / "jwt.hex").write_text(SECRET.hex())
    node = start_node("paris", "--genesis", str(tmp_path / "paris.json"),
                      "--jwt-secret", str(tmp_path / "jwt.hex"), dev=False)  # fmt: skip
    w3 = node.w3()
    tx = sender.sign_transaction({"to": "0x" + "77" * 20, "value": 5, "gas": 21000, "nonce": 0,
                                  "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9,
                                  "chainId": CHAIN_ID})  # fmt: skip
    tx_hash = w3.eth.send_raw_transaction(tx.raw_transaction)
    head = w3.eth.get_block(0)["hash"].to_0x_hex()
    state = {"headBlockHash": head, "safeBlockHash": head, "finalizedBlockHash": head}
    attributes = {"timestamp": hex(start + 12), "prevRandao": "0x" + "42" * 32,
                  "suggestedFeeRecipient": "0x" + "fe" * 20}  # fmt: skip

    refused = engine(node, "engine_forkchoiceUpdatedV1", [state, {**attributes, "withdrawals": []}])
    assert refused["error"]["code"] == -32602
    assert "withdrawals not supported in V1" in refused["error"]["message"]
    refused = engine(node, "engine_forkchoiceUpdatedV2", [state, {**attributes, "withdrawals": []}])
    assert "non-nil withdrawals pre-shanghai" in refused["error"]["message"]

    updated = engine(node, "engine_forkchoiceUpdatedV1", [state, attributes])["result"]
    assert updated["payloadStatus"]["status"] == "VALID"
    payload = engine(node, "engine_getPayloadV1", [updated["payloadId"]])["result"]
    assert "withdrawals" not in payload and "blockValue" not in payload
    assert payload["blockNumber"] == "0x1" and payload["transactions"] == [
        tx.raw_transaction.to_0x_hex()
    ]
    wrong = engine(node, "engine_newPayloadV1", [{**payload, "withdrawals": []}])
    assert "withdrawals not supported in V1" in wrong["error"]["message"]
    assert engine(node, "engine_newPayloadV1", [payload])["result"]["status"] == "VALID"
    new_head = payload["blockHash"]
    moved = engine(node, "engine_forkchoiceUpdatedV1",
                   [{"headBlockHash": new_head, "safeBlockHash": new_head,
                     "finalizedBlockHash": head}, None])["result"]  # fmt: skip
    assert moved["payloadStatus"]["status"] == "VALID" and moved["payloadId"] is None
    block = w3.eth.get_block("latest")
    assert block["number"] == 1 and block["hash"].to_0x_hex() == new_head
    assert "withdrawals" not in block and block["difficulty"] == 0
    assert w3.eth.get_transaction_receipt(tx_hash)["status"] == 1
