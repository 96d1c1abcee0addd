"""Bad input over JSON-RPC: each request gets its proper error object (EIP-1474 codes,
geth's messages), the node keeps serving, and nothing is written: the head, every dev
account's balance and nonces, and the pool are the same before and after."""

import asyncio
import http.client
import json
from contextlib import contextmanager
from urllib.parse import urlsplit

import aiohttp
import pytest
import rlp
from eth_account import Account
from eth_keys import keys
from eth_utils import keccak
from nodes import CHAIN_ID, DEV_KEYS, rpc

GWEI = 10**9
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
UNKNOWN_HASH = "0x" + "ab" * 32
MESSAGE_TIMEOUT = 30  # only bounds a hang; nothing is asserted about time


# helpers


def post(url: str, body: bytes, headers: dict | None = None, method: str = "POST"):
    """One HTTP exchange; returns (status, headers, decoded JSON body or None)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        connection.request(
            method, "/", body=body, headers={"Content-Type": "application/json", **(headers or {})}
        )
        response = connection.getresponse()
        payload = response.read()
        return response.status, response.headers, json.loads(payload) if payload else None
    finally:
        connection.close()


def call(url: str, method: str, params) -> dict:
    """A JSON-RPC request whose params may be anything, even not a list."""
    body = {"jsonrpc": "2.0", "id": 7, "method": method, "params": params}
    status, _, answer = post(url, json.dumps(body).encode())
    assert status == 200
    assert answer["jsonrpc"] == "2.0" and answer["id"] == 7
    return answer


def error_of(url: str, method: str, params) -> dict:
    answer = call(url, method, params)
    assert "result" not in answer, answer
    return answer["error"]


def chain_state(url: str) -> dict:
    head = rpc(url, "eth_getBlockByNumber", ["latest", False])["result"]
    accounts = []
    for key in DEV_KEYS:
        address = Account.from_key(key).address
        accounts.append(
            [
                rpc(url, method, [address, tag])["result"]
                for method, tag in (
                    ("eth_getBalance", "latest"),
                    ("eth_getTransactionCount", "latest"),
                    ("eth_getTransactionCount", "pending"),
                )
            ]
        )
    return {
        "head": (head["number"], head["hash"]),
        "accounts": accounts,
        "pool": rpc(url, "txpool_content")["result"],
    }


@contextmanager
def nothing_written(node):
    """The node still answers afterwards and its chain, state and pool are unchanged."""
    before = chain_state(node.url)
    yield
    assert rpc(node.url, "eth_chainId")["result"] == hex(CHAIN_ID)
    assert chain_state(node.url) == before


def sign_typed(account, type_id: int, fields: list) -> str:
    """A typed transaction signed by hand, for shapes wallets refuse to produce."""
    digest = keccak(bytes([type_id]) + rlp.encode(fields))
    signature = keys.PrivateKey(bytes(account.key)).sign_msg_hash(digest)
    return (
        "0x"
        + (bytes([type_id]) + rlp.encode([*fields, signature.v, signature.r, signature.s])).hex()
    )


def transfer(w3, account, **overrides) -> dict:
    tx = {
        "chainId": CHAIN_ID,
        "nonce": w3.eth.get_transaction_count(account.address, "pending"),
        "to": Account.from_key(DEV_KEYS[9]).address,
        "value": 1,
        "gas": 21000,
        "maxFeePerGas": 10 * GWEI,
        "maxPriorityFeePerGas": GWEI,
    }
    tx.update(overrides)
    return tx


def signed(account, tx: dict) -> str:
    return "0x" + bytes(account.sign_transaction(tx).raw_transaction).hex()


# fixtures


@pytest.fixture(scope="module")
def sender(w3, accounts):
    """An account that has sent a mined transaction, so nonce 0 is used up."""
    account = accounts[1]
    tx_hash = w3.eth.send_raw_transaction(signed(account, transfer(w3, account)))
    w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)
    return account


# malformed requests


@pytest.mark.parametrize(
    "body", [b"not json", b'{"jsonrpc":"2.0","id":1,"method":', b"", b"\xff\xfe{}", b"[1,"]
)
def test_malformed_json_is_a_parse_error(node, body):
    with nothing_written(node):
        status, _, answer = post(node.url, body)
    assert status == 200
    assert answer == {
        "jsonrpc": "2.0",
        "id": None,
        "error": {"code": -32700, "message": "parse error"},
    }


@pytest.mark.parametrize(
    "request_object",
    [
        5,
        "eth_chainId",
        {"jsonrpc": "2.0", "id": 1},
        {"jsonrpc": "2.0", "id": 1, "method": 5},
        {"jsonrpc": "1.0", "id": 1, "method": "eth_chainId"},
        {"id": 1, "method": "eth_chainId"},
        {"jsonrpc": "2.0", "id": {"nested": 1}, "method": "eth_chainId"},
    ],
)
def test_request_that_is_not_a_valid_call_is_invalid_request(node, request_object):
    with nothing_written(node):
        status, _, answer = post(node.url, json.dumps(request_object).encode())
    assert status == 200
    assert answer["error"]["code"] == -32600
    expected_id = request_object.get("id") if isinstance(request_object, dict) else None
    assert answer["id"] == (expected_id if not isinstance(expected_id, dict) else None)


def test_unknown_method_is_named_in_the_error(node):
    with nothing_written(node):
        error = error_of(node.url, "eth_noSuchThing", [])
    assert error == {
        "code": -32601,
        "message": "the method eth_noSuchThing does not exist/is not available",
    }


def test_subscriptions_need_a_websocket(node):
    with nothing_written(node):
        error = error_of(node.url, "eth_subscribe", ["newHeads"])
    assert error["code"] == -32601


ADDRESS = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
BAD_PARAMS = [
    (
        "eth_getBalance",
        [123],
        "invalid argument 0: json: cannot unmarshal non-string into Go value of type "
        "common.Address",
    ),
    (
        "eth_getBalance",
        ["0x12"],
        "invalid argument 0: hex string has length 2, want 40 for common.Address",
    ),
    ("eth_getBalance", [ADDRESS, "banana"], "invalid argument 1: "),
    ("eth_getBalance", [], "missing value for required argument 0"),
    ("eth_getBalance", [ADDRESS, "latest", 1], "too many arguments, want at most 2"),
    ("eth_getBalance", {"address": ADDRESS}, "non-array args"),
    (
        "eth_getBlockByNumber",
        ["0x1", "yes"],
        "invalid argument 1: json: cannot unmarshal string into Go value of type bool",
    ),
    ("eth_getBlockByNumber", ["1", False], "invalid argument 0: hex string without 0x prefix"),
    (
        "eth_getTransactionByHash",
        ["0x1234"],
        "invalid argument 0: hex string has length 4, want 64 for common.Hash",
    ),
    ("eth_getStorageAt", [ADDRESS, "0xzz", "latest"], "invalid argument 1: "),
    ("eth_getStorageAt", [ADDRESS, "0x00 00 01", "latest"], "invalid argument 1: "),  # as geth
    ("eth_getProof", [ADDRESS, ["0x-1"], "latest"], "invalid argument 1: "),
    ("eth_call", [{"to": 5}], "invalid argument 0: "),
    (
        "eth_call",
        ["0x00"],
        "invalid argument 0: json: cannot unmarshal string into Go value of type TransactionArgs",
    ),
    ("eth_sendRawTransaction", ["f86c"], "invalid argument 0: hex string without 0x prefix"),
    ("eth_sendRawTransaction", ["0xabc"], "invalid argument 0: hex string of odd length"),
    (
        "eth_getLogs",
        [{"blockHash": UNKNOWN_HASH, "fromBlock": "0x1"}],
        "invalid argument 0: cannot specify both BlockHash and FromBlock/ToBlock, "
        "choose one or the other",
    ),
    ("eth_feeHistory", ["0x2", "latest", [90, 10]], "invalid argument 2: "),
]


@pytest.mark.parametrize("method, params, message", BAD_PARAMS)
def test_wrong_parameters_are_invalid_params(node, method, params, message):
    with nothing_written(node):
        error = error_of(node.url, method, params)
    assert error["code"] == -32602
    assert error["message"].startswith(message), error


# limits


def test_oversized_body_is_refused_with_413(node):
    request = b'{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}'
    limit = 5 * 1024 * 1024
    with nothing_written(node):
        status, _, answer = post(node.url, request + b" " * (limit - len(request)))
        assert (status, answer["result"]) == (200, hex(CHAIN_ID))  # at the limit: served

        status, headers, answer = post(node.url, request + b" " * limit)
        assert status == 413
        assert headers["Content-Type"].startswith("application/json")
        assert answer["id"] is None and answer["error"]["code"] == -32005
        assert "too large" in answer["error"]["message"]

        status, _, answer = post_chunked(node.url, request + b" " * limit)
        assert status == 413 and answer["error"]["code"] == -32005


def post_chunked(url: str, body: bytes):
    """A body without Content-Length, as a streaming client sends it."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        chunks = (body[i : i + 65536] for i in range(0, len(body), 65536))
        connection.request(
            "POST",
            "/",
            body=chunks,
            headers={"Content-Type": "application/json"},
            encode_chunked=True,
        )
        response = connection.getresponse()
        return response.status, response.headers, json.loads(response.read())
    finally:
        connection.close()


def test_batch_over_the_limit_is_refused_whole(node):
    entry = {"jsonrpc": "2.0", "method": "eth_blockNumber"}
    with nothing_written(node):
        status, _, answers = post(
            node.url, json.dumps([{**entry, "id": i} for i in range(1000)]).encode()
        )
        assert status == 200 and [a["id"] for a in answers] == list(range(1000))

        status, _, answer = post(
            node.url, json.dumps([{**entry, "id": i} for i in range(1001)]).encode()
        )
    assert status == 200
    assert answer["id"] is None
    assert answer["error"] == {"code": -32005, "message": "batch too large: limit 1000"}


def test_empty_batch_is_invalid_request(node):
    with nothing_written(node):
        status, _, answer = post(node.url, b"[]")
    assert status == 200
    assert answer == {
        "jsonrpc": "2.0",
        "id": None,
        "error": {"code": -32600, "message": "empty batch"},
    }


def test_bad_entries_in_a_batch_do_not_spoil_the_others(node):
    body = [5, {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}, {"jsonrpc": "2.0", "id": 2}]
    with nothing_written(node):
        status, _, answers = post(node.url, json.dumps(body).encode())
    assert status == 200
    assert [a.get("error", {}).get("code") for a in answers] == [-32600, None, -32600]
    assert answers[1] == {"jsonrpc": "2.0", "id": 1, "result": hex(CHAIN_ID)}


async def exchange(ws, request):
    """Send a request (or batch) and return its answer, passing over notifications."""
    await ws.send_json(request)
    while True:
        answer = await asyncio.wait_for(ws.receive_json(), MESSAGE_TIMEOUT)
        if isinstance(answer, list) or answer.get("method") != "eth_subscription":
            return answer


def test_too_many_subscriptions_on_one_websocket_are_refused(node):
    limit = 1000
    subscribe = {"jsonrpc": "2.0", "method": "eth_subscribe", "params": ["newHeads"]}

    async def session():
        async with (
            aiohttp.ClientSession() as client,
            client.ws_connect(node.ws_url) as ws,
            client.ws_connect(node.ws_url) as other,
        ):
            accepted = await exchange(ws, [{**subscribe, "id": i} for i in range(limit)])
            refused = await exchange(ws, {**subscribe, "id": "one more"})
            elsewhere = await exchange(other, {**subscribe, "id": "elsewhere"})
            unsubscribe = {"jsonrpc": "2.0", "id": "free", "method": "eth_unsubscribe"}
            freed = await exchange(ws, {**unsubscribe, "params": [accepted[0]["result"]]})
            again = await exchange(ws, {**subscribe, "id": "again"})
            return accepted, refused, elsewhere, freed, again

    with nothing_written(node):
        accepted, refused, elsewhere, freed, again = asyncio.run(session())
    assert len({a["result"] for a in accepted}) == limit
    assert refused["id"] == "one more"
    assert refused["error"] == {"code": -32005, "message": f"too many subscriptions: limit {limit}"}
    assert "result" in elsewhere  # the limit is per connection
    assert freed["result"] is True
    assert again["result"].startswith("0x")


def test_websocket_keeps_serving_after_bad_messages(node):
    async def session():
        async with aiohttp.ClientSession() as client, client.ws_connect(node.ws_url) as ws:
            answers = []
            for message in (
                "not json",
                json.dumps(
                    {"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe", "params": ["nope"]}
                ),
                json.dumps(
                    {
                        "jsonrpc": "2.0",
                        "id": 2,
                        "method": "eth_subscribe",
                        "params": ["logs", {"topics": 5}],
                    }
                ),
                json.dumps({"jsonrpc": "2.0", "id": 3, "method": "eth_nope"}),
                json.dumps({"jsonrpc": "2.0", "id": 4, "method": "eth_chainId"}),
            ):
                await ws.send_str(message)
                answers.append(await asyncio.wait_for(ws.receive_json(), MESSAGE_TIMEOUT))
            return answers

    with nothing_written(node):
        parse, kind, criteria, unknown, chain_id = asyncio.run(session())
    assert parse["error"]["code"] == -32700
    assert kind["error"] == {"code": -32601, "message": 'no "nope" subscription in eth namespace'}
    assert criteria["error"]["code"] == -32602
    assert unknown["error"]["code"] == -32601
    assert chain_id["result"] == hex(CHAIN_ID)


def test_cors_preflight_allows_a_browser_dapp(node):
    origin = "http://localhost:5173"
    with nothing_written(node):
        status, headers, _ = post(
            node.url,
            b"",
            {
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type",
            },
            method="OPTIONS",
        )
        assert 200 <= status < 300
        assert headers["Access-Control-Allow-Origin"] == origin
        assert "POST" in headers["Access-Control-Allow-Methods"]
        assert "content-type" in headers["Access-Control-Allow-Headers"].lower()

        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}).encode()
        status, headers, answer = post(node.url, body, {"Origin": origin})
    assert status == 200 and answer["result"] == hex(CHAIN_ID)
    assert headers["Access-Control-Allow-Origin"] == origin


# transactions the pool refuses


def test_invalid_rlp_is_refused(node, w3, accounts):
    good = bytes.fromhex(signed(accounts[2], transfer(w3, accounts[2]))[2:])
    cases = {
        "0x": "typed transaction too short",
        "0xf86c0a85": "rlp:",
        "0x02c0": "rlp:",
        "0x02" + "ff" * 40: "rlp:",
        "0x" + (good + b"\x00").hex(): "rlp:",
        "0x" + good[:-1].hex(): "rlp:",
    }
    with nothing_written(node):
        for raw, message in cases.items():
            error = error_of(node.url, "eth_sendRawTransaction", [raw])
            assert error["code"] == -32000, raw
            assert error["message"].startswith(message), (raw, error)


def wrong_chain_id(w3, account):
    return signed(account, transfer(w3, account, chainId=1))


def zero_r_signature(w3, account):
    raw = bytes.fromhex(signed(account, transfer(w3, account))[2:])
    fields = rlp.decode(raw[1:])
    return "0x02" + rlp.encode([*fields[:-2], b"", fields[-1]]).hex()


def high_s_signature(w3, account):
    """The malleable twin of a valid signature: (r, n - s) with the other y parity
    recovers the same sender, but EIP-2 forbids it."""
    raw = bytes.fromhex(signed(account, transfer(w3, account))[2:])
    *body, y_parity, r, s = rlp.decode(raw[1:])
    twin_s = (SECP256K1_N - int.from_bytes(s)).to_bytes(32, "big")
    flipped = b"" if y_parity == b"\x01" else b"\x01"
    return "0x02" + rlp.encode([*body, flipped, r, twin_s]).hex()


def nonce_too_low(w3, account):
    return signed(account, transfer(w3, account, nonce=0))


def fee_cap_below_base_fee(w3, account):
    return signed(account, transfer(w3, account, maxFeePerGas=1, maxPriorityFeePerGas=1))


def tip_above_fee_cap(w3, account):
    return signed(
        account, transfer(w3, account, maxFeePerGas=2 * GWEI, maxPriorityFeePerGas=3 * GWEI)
    )


def intrinsic_gas_too_low(w3, account):
    return signed(account, transfer(w3, account, gas=20_999))


def above_block_gas_limit(w3, account):
    return signed(account, transfer(w3, account, gas=10**9, maxFeePerGas=GWEI))


def insufficient_funds(w3, account):
    pauper = Account.create()
    return signed(pauper, transfer(w3, pauper))


def value_beyond_balance(w3, account):
    return signed(account, transfer(w3, account, value=10**30))


def blob_transaction(w3, account):
    tx = transfer(w3, account)
    fields = [
        CHAIN_ID,
        tx["nonce"],
        GWEI,
        10 * GWEI,
        21000,
        bytes.fromhex(tx["to"][2:]),
        1,
        b"",
        [],
        GWEI,
        [b"\x01" + bytes(31)],
    ]
    return sign_typed(account, 3, fields)


def empty_authorization_list(w3, account):
    tx = transfer(w3, account)
    fields = [
        CHAIN_ID,
        tx["nonce"],
        GWEI,
        10 * GWEI,
        60_000,
        bytes.fromhex(tx["to"][2:]),
        0,
        b"",
        [],
        [],
    ]
    return sign_typed(account, 4, fields)


REFUSED = [
    (wrong_chain_id, "invalid chain id for signer"),
    (zero_r_signature, "invalid sender"),
    (high_s_signature, "invalid sender"),
    (nonce_too_low, "nonce too low"),
    (fee_cap_below_base_fee, "max fee per gas less than block base fee"),
    (tip_above_fee_cap, "max priority fee per gas higher than max fee per gas"),
    (intrinsic_gas_too_low, "intrinsic gas too low"),
    (above_block_gas_limit, "exceeds block gas limit"),
    (insufficient_funds, "insufficient funds for gas * price + value"),
    (value_beyond_balance, "insufficient funds for gas * price + value"),
    (blob_transaction, "missing sidecar in blob transaction"),  # the canonical form
    (empty_authorization_list, "set code tx must have at least one authorization tuple"),
]


@pytest.mark.parametrize("make, message", REFUSED, ids=[make.__name__ for make, _ in REFUSED])
def test_pool_refuses_invalid_transaction(node, w3, sender, make, message):
    raw = make(w3, sender)
    with nothing_written(node):
        error = error_of(node.url, "eth_sendRawTransaction", [raw])
    assert error["code"] == -32000
    assert error["message"].startswith(message), error


def test_replacement_needs_a_fee_bump_and_duplicates_are_known(node, w3, accounts):
    account = accounts[3]
    future = transfer(w3, account)
    future["nonce"] += 5  # queued behind a gap, so it stays in the pool
    original = signed(account, future)
    assert "result" in rpc(node.url, "eth_sendRawTransaction", [original])

    bumped_5_percent = signed(
        account,
        {**future, "maxFeePerGas": 105 * GWEI // 10, "maxPriorityFeePerGas": 105 * GWEI // 100},
    )
    with nothing_written(node):
        duplicate = error_of(node.url, "eth_sendRawTransaction", [original])
        underpriced = error_of(node.url, "eth_sendRawTransaction", [bumped_5_percent])
    assert duplicate == {"code": -32000, "message": "already known"}
    assert underpriced == {"code": -32000, "message": "replacement transaction underpriced"}


# reads of blocks that do not exist


STATE_READS = [
    ("eth_getBalance", [ADDRESS]),
    ("eth_getTransactionCount", [ADDRESS]),
    ("eth_getCode", [ADDRESS]),
    ("eth_getStorageAt", [ADDRESS, "0x0"]),
    ("eth_call", [{"to": ADDRESS}]),
    ("eth_estimateGas", [{"to": ADDRESS}]),
    ("eth_createAccessList", [{"to": ADDRESS}]),
]


@pytest.mark.parametrize("method, params", STATE_READS, ids=[m for m, _ in STATE_READS])
def test_state_read_of_unknown_block_is_header_not_found(node, method, params):
    with nothing_written(node):
        by_number = error_of(node.url, method, [*params, "0xffffff"])
        by_hash = error_of(node.url, method, [*params, {"blockHash": UNKNOWN_HASH}])
    assert by_number == {"code": -32000, "message": "header not found"}
    assert by_hash == {"code": -32000, "message": "header for hash not found"}


def test_log_queries_outside_the_chain_are_refused(node, w3):
    head = w3.eth.block_number
    assert head >= 1
    cases = [
        ({"fromBlock": hex(head), "toBlock": hex(head - 1)}, -32602, "invalid block range params"),
        ({"fromBlock": hex(head + 5), "toBlock": "latest"}, -32602, "invalid block range params"),
        (
            {"fromBlock": "0x0", "toBlock": hex(head + 5)},
            -32602,
            "block range extends beyond current head block",
        ),
        (
            {"fromBlock": hex(head + 5), "toBlock": hex(head + 9)},
            -32602,
            "block range extends beyond current head block",
        ),
        ({"blockHash": UNKNOWN_HASH}, -32000, "unknown block"),
    ]
    with nothing_written(node):
        for criteria, code, message in cases:
            assert error_of(node.url, "eth_getLogs", [criteria]) == {
                "code": code,
                "message": message,
            }, criteria
        assert (
            call(node.url, "eth_getLogs", [{"fromBlock": hex(head), "toBlock": "latest"}])["result"]
            is not None
        )


def test_polling_an_unknown_filter_is_filter_not_found(node):
    with nothing_written(node):
        for method in ("eth_getFilterChanges", "eth_getFilterLogs"):
            error = error_of(node.url, method, ["0x" + "00" * 16])
            assert error == {"code": -32000, "message": "filter not found"}
        assert call(node.url, "eth_uninstallFilter", ["0x" + "00" * 16])["result"] is False


@pytest.mark.parametrize("method", ["eth_call", "eth_estimateGas"])
def test_call_sending_more_than_the_balance_says_insufficient_funds(node, method):
    pauper = Account.create().address
    with nothing_written(node):
        error = error_of(node.url, method, [{"from": pauper, "to": ADDRESS, "value": "0x1"}])
    assert error["code"] == -32000
    assert "insufficient funds" in error["message"], error


HALTS = [  # code run by eth_call as a contract creation, and geth's words for its halt
    ("fe", "invalid opcode: INVALID"),
    ("0c", "invalid opcode: opcode 0xc not defined"),
    ("600356", "invalid jump destination"),  # PUSH1 3 JUMP: byte 3 is no JUMPDEST
    ("600456615b00", "invalid jump destination"),  # onto a 0x5b inside PUSH2's data
    ("01", "stack underflow"),
    ("5b600056", "out of gas"),  # JUMPDEST PUSH1 0 JUMP: a loop
]


@pytest.mark.parametrize("code, message", HALTS, ids=[m + " " + c for c, m in HALTS])
def test_exceptional_halts_are_named_as_geth_names_them(node, code, message):
    """A call that halts without REVERT says why in geth's words, which clients match;
    estimation too, unless the call ran out of gas even at the cap."""
    call = {"data": "0x" + code, "gas": "0x30000"}
    with nothing_written(node):
        error = error_of(node.url, "eth_call", [call])
        estimate = error_of(node.url, "eth_estimateGas", [call])
    assert error == {"code": -32000, "message": message}
    if message == "out of gas":
        message = f"gas required exceeds allowance ({0x30000})"
    assert estimate == {"code": -32000, "message": message}
