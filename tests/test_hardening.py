"""Input an attacker controls cannot crash the node, and malformed files are refused with
one line: deep nesting in JSON-RPC parameters, raw transactions, block files, genesis
and config files and a peer's blocks; hex quantities as geth reads them; EIP-2681."""

import contextlib
import json
import random
import subprocess
import time
import urllib.request

import nodes
import pytest
import rlp
from eth_account import Account
from fake_peer import FakePeer
from nodes import CHAIN_ID, DEV_KEYS, REPO, rpc

GENESIS = REPO / "genesis" / "dev.json"
DEEP = 200_000


def sibyl(*args: str) -> subprocess.CompletedProcess:
    return nodes.sibyl(*args, timeout=120)


def nested_rlp(depth: int) -> bytes:
    """``depth`` RLP lists, each holding the next."""
    item = b"\xc0"
    for _ in range(depth):
        if len(item) < 56:
            item = bytes([0xC0 + len(item)]) + item
        else:
            width = (len(item).bit_length() + 7) // 8
            item = bytes([0xF7 + width]) + len(item).to_bytes(width, "big") + item
    return item


def one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def state_of(url: str) -> tuple:
    """What rejected input must not change: head, balances and nonces, the pool."""
    accounts = [Account.from_key(k).address for k in DEV_KEYS[:3]]
    return (
        rpc(url, "eth_blockNumber")["result"],
        [rpc(url, "eth_getBalance", [a, "latest"])["result"] for a in accounts],
        [rpc(url, "eth_getTransactionCount", [a, "pending"])["result"] for a in accounts],
        rpc(url, "txpool_status")["result"],
    )


# JSON-RPC


def test_deeply_nested_typed_data_is_rejected_not_a_crash(node):
    address = Account.from_key(DEV_KEYS[0]).address
    typed = "[" * DEEP + "]" * DEEP
    answer = rpc(node.url, "eth_signTypedData_v4", [address, typed], timeout=60)
    assert answer["error"]["code"] == -32602
    assert rpc(node.url, "eth_chainId")["result"] == hex(CHAIN_ID)


def test_deeply_nested_request_body_is_a_parse_error(node):
    body = '{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":' + "[" * DEEP
    body += "]" * DEEP + "}"
    request = urllib.request.Request(
        node.url, data=body.encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        answer = json.loads(response.read())
    assert answer["error"]["code"] == -32700
    assert rpc(node.url, "eth_chainId")["result"] == hex(CHAIN_ID)


def test_deeply_nested_raw_transaction_is_rejected_with_an_rlp_error(node):
    before = state_of(node.url)
    for raw in (nested_rlp(30_000), b"\x02" + nested_rlp(30_000)):
        answer = rpc(node.url, "eth_sendRawTransaction", ["0x" + raw.hex()], timeout=60)
        assert answer["error"]["code"] == -32000
        assert answer["error"]["message"].startswith("rlp: ")
    assert state_of(node.url) == before


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("0x", "typed transaction too short"),
        ("0x00", "typed transaction too short"),
        ("0x02", "typed transaction too short"),
        ("0x0000", "transaction type not supported"),
        ("0x05c0", "transaction type not supported"),
        ("0x7fc0", "transaction type not supported"),
    ],
)
def test_raw_transaction_envelopes_get_geths_messages(node, raw, message):
    answer = rpc(node.url, "eth_sendRawTransaction", [raw])
    assert answer["error"] == {"code": -32000, "message": message}


def test_raw_transaction_with_wrong_field_types_is_an_rlp_error(node):
    before = state_of(node.url)
    key = Account.from_key(DEV_KEYS[1])
    signed = key.sign_transaction(
        {
            "chainId": CHAIN_ID,
            "nonce": 0,
            "gas": 21000,
            "maxFeePerGas": 10**10,
            "maxPriorityFeePerGas": 1,
            "to": key.address,
            "value": 1,
        }  # fmt: skip
    )
    fields = rlp.decode(bytes(signed.raw_transaction)[1:])
    for position in range(len(fields)):
        for wrong in ([b"\x01"], b"\x01" * 40):
            if isinstance(fields[position], list) and not isinstance(wrong, list):
                continue
            changed = list(fields)
            changed[position] = wrong
            raw = b"\x02" + rlp.encode(changed)
            answer = rpc(node.url, "eth_sendRawTransaction", ["0x" + raw.hex()])
            assert answer["error"]["code"] in (-32000, -32602), (position, answer)
    for raw in (b"\x02" + rlp.encode(fields[:-1]), b"\x02" + rlp.encode(fields + [b""])):
        answer = rpc(node.url, "eth_sendRawTransaction", ["0x" + raw.hex()])
        assert answer["error"]["code"] == -32000, answer
    assert state_of(node.url) == before


@pytest.mark.parametrize(
    ("nonce", "message"),
    [
        (2**64 - 1, "nonce has max value"),
        (2**64, "rlp: input string too long for uint64, decoding into (types.LegacyTx).Nonce"),
    ],
)
def test_nonce_at_the_eip2681_bound_is_refused_by_the_pool(node, nonce, message):
    before = state_of(node.url)
    key = Account.from_key(DEV_KEYS[2])
    signed = key.sign_transaction(
        {
            "chainId": CHAIN_ID,
            "nonce": nonce,
            "gas": 21000,
            "gasPrice": 10**10,
            "to": key.address,
            "value": 1,
        }  # fmt: skip
    )
    answer = rpc(node.url, "eth_sendRawTransaction", ["0x" + bytes(signed.raw_transaction).hex()])
    assert answer["error"]["code"] == -32000
    assert answer["error"]["message"].startswith(message)
    assert state_of(node.url) == before


@pytest.mark.parametrize(
    "value", ["0x-1", "0x+1", "0x1_0", "0x1 ", " 0x1", "0x\u0661", "0x01", "0x", "1", "-0x1"]
)
def test_odd_quantities_are_invalid_params_in_every_method_that_takes_one(node, value):
    address = Account.from_key(DEV_KEYS[0]).address
    calls = [
        ("eth_getBalance", [address, value]),
        ("eth_getStorageAt", [address, "0x0", value]),  # its slot is a hash to geth, not a quantity
        ("eth_getBlockByNumber", [value, False]),
        ("eth_getTransactionByBlockNumberAndIndex", ["latest", value]),
        ("eth_feeHistory", [value, "latest", []]),
        ("eth_call", [{"to": address, "gas": value}, "latest"]),
        ("eth_estimateGas", [{"to": address, "value": value}]),
        ("eth_getLogs", [{"fromBlock": value}]),
        ("debug_traceCall", [{"to": address, "gasPrice": value}, "latest"]),
    ]
    for method, params in calls:
        answer = rpc(node.url, method, params)
        assert answer.get("error", {}).get("code") == -32602, (method, answer)


# files


def test_deeply_nested_genesis_is_refused_with_one_line(tmp_path):
    genesis = tmp_path / "genesis.json"
    genesis.write_text('{"config": ' + "[" * DEEP + "]" * DEEP + "}")
    line = one_line_error(
        sibyl("init", "--genesis", str(genesis), "--datadir", str(tmp_path / "d"))
    )
    assert "genesis.json" in line and "not valid JSON" in line
    assert not (tmp_path / "d").exists()


def test_deeply_nested_config_file_is_refused_with_one_line(tmp_path):
    config = tmp_path / "node.toml"
    config.write_text("x = " + "[" * DEEP + "]" * DEEP + "\n")
    line = one_line_error(sibyl("run", "--dev", "--config", str(config)))
    assert "node.toml" in line


def test_import_of_a_deeply_nested_block_file_is_refused_with_one_line(tmp_path):
    datadir = tmp_path / "d"
    assert sibyl("init", "--genesis", str(GENESIS), "--datadir", str(datadir)).returncode == 0
    for content in (nested_rlp(60_000), rlp.encode([[b"\x01"] * 3, [[b"\x01"]], []])):
        blocks = tmp_path / "blocks.rlp"
        blocks.write_bytes(content)
        line = one_line_error(sibyl("import", str(blocks), "--datadir", str(datadir)))
        assert "blocks.rlp" in line


def test_follower_rejects_a_deeply_nested_block_from_its_peer_and_keeps_running(start_node):
    producer = start_node("producer")
    peer = FakePeer(producer.url)
    deep = "0x" + nested_rlp(60_000).hex()
    real_answer = peer.answer
    head: list = ["0x1"]

    def answer(request: dict) -> dict:
        if request.get("method") == "debug_getRawBlock":
            return {"jsonrpc": "2.0", "id": request.get("id"), "result": deep}
        if request.get("method") == "eth_blockNumber":
            return {"jsonrpc": "2.0", "id": request.get("id"), "result": head[0]}
        return real_answer(request)

    peer.answer = answer
    try:
        follower = start_node("follower", "--follow", peer.url)
        deadline = time.monotonic() + 30
        while "does not decode" not in follower.log() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert "does not decode" in follower.log()
        head[0] = {"not": "a number"}
        while "not a block number" not in follower.log() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert "not a block number" in follower.log()
        assert rpc(follower.url, "eth_blockNumber")["result"] == "0x0"
        assert follower.proc.poll() is None
        assert "Traceback" not in follower.log()
    finally:
        peer.close()


def test_a_block_with_wrong_field_types_is_a_decoding_error_or_an_invalid_block(tmp_path):
    """Seeded mutations of a real block (strings and lists in integer fields, oversized
    numbers, unknown transaction types): each is refused by decoding or by import with
    a reason, never with another exception (which `sibyl import` would print as a
    traceback)."""
    from chain.config import NodeConfig
    from chain.engine import Engine
    from chain.execution import InvalidBlock
    from chain.genesis import load_genesis
    from chain.node import initialise, open_datadir
    from chain.storage import codec
    from chain.storage.reader import ChainReader

    initialise(tmp_path / "d", load_genesis(GENESIS))
    store, genesis = open_datadir(NodeConfig(datadir=tmp_path / "d"))
    try:
        reader = ChainReader(store, genesis.config)
        engine = Engine(genesis.config, store, reader)
        key = Account.from_key(DEV_KEYS[0])
        tx = key.sign_transaction(
            {
                "chainId": CHAIN_ID,
                "nonce": 0,
                "gas": 21000,
                "maxFeePerGas": 10**10,
                "maxPriorityFeePerGas": 1,
                "to": key.address,
                "value": 1,
            }  # fmt: skip
        )
        fields = rlp.decode(store.get("blocks", store.canonical_hash(0)))
        fields[0][8] = b"\x01"  # block 1, on genesis
        fields[0][7] = b""  # no difficulty
        fields[1] = [bytes(tx.raw_transaction)]
        rng = random.Random(17)
        wrong = [b"", b"\x00", b"\x01" * 40, [b"\x01"], [], [[]], b"\xff" * 8,
                 (2**64).to_bytes(9, "big"), b"\x5e\xc0", b"\xff\xc0"]  # fmt: skip

        def mutate(item):
            if isinstance(item, list) and item and rng.random() < 0.8:
                item = list(item)
                at = rng.randrange(len(item))
                item[at] = mutate(item[at])
                return item
            return rng.choice(wrong)

        for _ in range(1500):
            try:
                mutated = codec.decode_any_block(genesis.config, rlp.encode(mutate(fields)))
            except codec.DECODE_ERRORS:
                continue
            with contextlib.suppress(InvalidBlock):
                if reader.header(mutated.header.hash) is None:
                    engine.import_block(mutated)
        assert reader.head.block_number == 0
    finally:
        store.close()
