"""A seeded fuzz of the public JSON-RPC (and the Engine API behind its JWT): malformed
JSON, deep nesting, odd quantities, random and mutated raw transactions, and every
method with random parameters. The node must stay alive, answer each request with a
proper error (never an internal one, -32603), log no traceback, and change nothing."""

import http.client
import json
import random
import time

import jwt
import pytest
import rlp
from eth_account import Account
from nodes import CHAIN_ID, DEV_KEYS, dev_node, rpc

from rpc import params as p
from rpc.accounts import AccountsApi
from rpc.debug import DebugApi
from rpc.engine import EngineApi
from rpc.eth import EthApi
from rpc.net import NetApi
from rpc.sibyl import SibylApi
from rpc.txpool import TxPoolApi

SEED = 1917
REQUESTS = 3000
CHANGES_STATE = {"eth_sendTransaction"}  # succeeds with the right arguments, by design


def methods_of(*classes: type) -> dict[str, tuple]:
    found = {}
    for cls in classes:
        for name in dir(cls):
            spec = getattr(getattr(cls, name), "rpc_params", None)
            if spec is not None and name not in CHANGES_STATE:
                found[name] = spec
    return found


PUBLIC = methods_of(EthApi, NetApi, DebugApi, TxPoolApi, AccountsApi, SibylApi)
ENGINE = methods_of(EngineApi)
ODD_QUANTITIES = [
    "0x-1", "0x+1", "0x1_0", "0x1 ", " 0x1", "0x\u0661", "0x01", "0x", "0X1", "1", "-1",
    "0x" + "f" * 65, hex(2**64), hex(2**63), hex(2**256), "0xg", "", "latest", "pending",
    "earliest", "safe", "finalized", 0, 1, -1, 2**64, 1.5, True, None,
]  # fmt: skip


class Fuzzer:
    def __init__(self, seed: int, known: dict[str, list]) -> None:
        self.rng = random.Random(seed)
        self.known = known  # real hashes and addresses, so some requests reach deep
        unfunded = Account.from_key(self.rng.randbytes(32))
        self.raw_txs = [
            bytes(unfunded.sign_transaction(tx).raw_transaction)
            for tx in (
                {"chainId": CHAIN_ID, "nonce": 0, "gas": 21000, "gasPrice": 10**10,
                 "to": "0x" + "11" * 20, "value": 1},
                {"chainId": CHAIN_ID, "nonce": 1, "gas": 60000, "maxFeePerGas": 10**10,
                 "maxPriorityFeePerGas": 1, "to": "0x" + "22" * 20, "data": "0x1234",
                 "accessList": [{"address": "0x" + "33" * 20,
                                 "storageKeys": ["0x" + "00" * 32]}]},
                {"chainId": CHAIN_ID, "nonce": 2, "gas": 100000, "gasPrice": 10**10,
                 "data": "0x5b600056"},
            )
        ]  # fmt: skip

    def hexdata(self, size: int | None = None) -> str:
        size = self.rng.choice([0, 1, 20, 32, 33, 100]) if size is None else size
        return "0x" + self.rng.randbytes(size).hex()

    def json_value(self, depth: int = 0) -> object:
        rng = self.rng
        choice = rng.randrange(12 if depth < 3 else 8)
        if choice == 0:
            return None
        if choice == 1:
            return rng.choice([True, False])
        if choice == 2:
            return rng.choice([0, 1, -1, 2**53, 2**64, -(2**63), 10**30])
        if choice == 3:
            return rng.choice([0.5, -1.5, 1e308])
        if choice == 4:
            return "".join(chr(rng.randrange(0x20, 0x3000)) for _ in range(rng.randrange(8)))
        if choice == 5:
            return self.hexdata()
        if choice == 6:
            return rng.choice(ODD_QUANTITIES)
        if choice == 7:
            return rng.choice(self.known["hashes"] + self.known["addresses"])
        if choice < 10:
            return [self.json_value(depth + 1) for _ in range(rng.randrange(4))]
        keys = ["from", "to", "gas", "gasPrice", "value", "data", "input", "nonce",
                "fromBlock", "toBlock", "address", "topics", "blockHash", "tracer",
                "timeout", "limit", "accessList", "maxFeePerGas", "types", "message"]  # fmt: skip
        return {rng.choice(keys): self.json_value(depth + 1) for _ in range(rng.randrange(5))}

    def argument(self, decode: object) -> object:
        """A value near what ``decode`` expects, or anything at all."""
        rng = self.rng
        if rng.random() < 0.3:
            return self.json_value()
        if decode is p.quantity:
            return rng.choice(ODD_QUANTITIES + ["0x0", "0x1", "0x10", "0x5208"])
        if decode in (p.block_id, p.block_number):
            return rng.choice(ODD_QUANTITIES + self.known["hashes"] + [{"blockHash": "0x"}])
        if decode is p.address:
            return rng.choice(self.known["addresses"] + [self.hexdata(20), self.hexdata(19)])
        if decode is p.hash32:
            return rng.choice(self.known["hashes"] + [self.hexdata(32), self.hexdata(31)])
        if decode is p.hex_bytes:
            return "0x" + self.raw_tx().hex() if rng.random() < 0.5 else self.hexdata()
        if decode is p.call_object:
            fields = {"to": self.argument(p.address), "data": self.hexdata(),
                      "gas": self.argument(p.quantity), "value": self.argument(p.quantity),
                      "from": self.argument(p.address)}  # fmt: skip
            return {k: v for k, v in fields.items() if rng.random() < 0.6}
        return self.json_value()

    def raw_tx(self) -> bytes:
        rng = self.rng
        raw = bytearray(rng.choice(self.raw_txs))
        mutation = rng.randrange(7)
        if mutation == 0:
            raw[rng.randrange(len(raw))] = rng.randrange(256)
        elif mutation == 1:
            del raw[rng.randrange(len(raw)) :]
        elif mutation == 2:
            raw[rng.randrange(len(raw)) : rng.randrange(len(raw))] = rng.randbytes(8)
        elif mutation == 3:
            typed = raw[0] <= 0x7F
            fields = rlp.decode(bytes(raw[1:] if typed else raw))
            fields[rng.randrange(len(fields))] = rng.choice(
                [b"", b"\x00", b"\x01" * 40, [b"\x01"], [[[]]], (2**64).to_bytes(9, "big")]
            )
            raw = bytearray(raw[:1] if typed else b"") + bytearray(rlp.encode(fields))
        elif mutation == 4:
            raw = bytearray(rng.randbytes(rng.randrange(1, 200)))
        elif mutation == 5:
            depth = rng.randrange(20, 3000)
            raw = bytearray(rng.choice([b"", b"\x02"])) + bytearray(_nested(depth))
        return bytes(raw)

    def request(self, methods: dict[str, tuple]) -> object:
        rng = self.rng
        name = rng.choice(sorted(methods))
        spec = methods[name]
        params = [self.argument(param.decode) for param in spec]
        params = params[: rng.randrange(len(params) + 1)] if rng.random() < 0.3 else params
        if rng.random() < 0.05:
            params = params + [self.json_value()]
        request = {"jsonrpc": "2.0", "id": rng.randrange(1000), "method": name, "params": params}
        if rng.random() < 0.05:
            request[rng.choice(["jsonrpc", "id", "method", "params"])] = self.json_value()
        return request

    def body(self) -> bytes:
        """One HTTP body: mostly a request, sometimes a batch or something malformed."""
        rng = self.rng
        kind = rng.random()
        if kind < 0.80:
            return json.dumps(self.request(PUBLIC)).encode()
        if kind < 0.86:
            batch = [self.request(PUBLIC) for _ in range(rng.randrange(1, 6))]
            return json.dumps(batch + [self.json_value()] * rng.randrange(2)).encode()
        if kind < 0.90:
            depth = rng.randrange(100, 100_000)
            inner = rng.choice(["[" * depth + "]" * depth, '"' + "[" * depth + '"'])
            return f'{{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":{inner}}}'.encode()
        if kind < 0.93:
            address = Account.from_key(DEV_KEYS[0]).address
            depth = rng.randrange(100, 200_000)
            typed = "[" * depth + "]" * depth if rng.random() < 0.5 else "{" * depth
            return json.dumps(
                {
                    "jsonrpc": "2.0",
                    "id": 1,
                    "method": "eth_signTypedData_v4",
                    "params": [address, typed],
                }  # fmt: skip
            ).encode()
        valid = json.dumps(self.request(PUBLIC)).encode()
        cut = rng.randrange(len(valid))
        return rng.choice([valid[:cut], valid[:cut] + rng.randbytes(3), rng.randbytes(40),
                           b"", b"\xff\xfe", b"null", b"[]", b"[1,2]", b"1e999999"])  # fmt: skip


def _nested(depth: int) -> bytes:
    item = b"\xc0"
    for _ in range(depth):
        if len(item) < 56:
            item = bytes([0xC0 + len(item)]) + item
        else:
            width = (len(item).bit_length() + 7) // 8
            item = bytes([0xF7 + width]) + len(item).to_bytes(width, "big") + item
    return item


def post(connection: http.client.HTTPConnection, body: bytes, headers: dict) -> list[dict]:
    connection.request(
        "POST", "/", body=body, headers={"Content-Type": "application/json"} | headers
    )
    response = connection.getresponse()
    payload = response.read()
    assert response.status in (200, 413), (response.status, body[:200])
    if not payload:
        return []
    answer = json.loads(payload)
    return answer if isinstance(answer, list) else [answer]


def snapshot(url: str) -> tuple:
    accounts = [Account.from_key(k).address for k in DEV_KEYS]
    return (
        rpc(url, "eth_getBlockByNumber", ["latest", False])["result"]["hash"],
        [rpc(url, "eth_getBalance", [a, "latest"])["result"] for a in accounts],
        [rpc(url, "eth_getTransactionCount", [a, "pending"])["result"] for a in accounts],
        rpc(url, "txpool_status")["result"],
    )


@pytest.fixture(scope="module")
def fuzzed_node(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    config = root / "node.toml"
    config.write_text("rpc_evm_timeout = 0.5\n[rpc]\nmax_trace_timeout = 0.5\n")
    node = dev_node(root / "data", "--config", str(config))
    yield node
    node.kill()


def test_fuzzed_requests_get_proper_errors_and_change_nothing(fuzzed_node):
    url = fuzzed_node.url
    sender = Account.from_key(DEV_KEYS[0]).address
    sent = rpc(url, "eth_sendTransaction", [{"from": sender, "to": sender, "value": "0x1"}])
    while rpc(url, "eth_getTransactionReceipt", [sent["result"]])["result"] is None:
        time.sleep(0.1)
    head = rpc(url, "eth_getBlockByNumber", ["latest", False])["result"]
    known = {
        "hashes": [sent["result"], head["hash"], head["parentHash"], "0x" + "00" * 32],
        "addresses": [
            sender,
            Account.from_key(DEV_KEYS[1]).address,
            "0x" + "00" * 19 + "01",
            "0x" + "00" * 18 + "0a01",
            "0x" + "00" * 18 + "0800",
        ],  # fmt: skip
    }
    before = snapshot(url)
    fuzzer = Fuzzer(SEED, known)
    public = http.client.HTTPConnection("127.0.0.1", fuzzed_node.http_port, timeout=60)
    engine = http.client.HTTPConnection("127.0.0.1", fuzzed_node.engine_port, timeout=60)
    secret = bytes.fromhex((fuzzed_node.datadir / "jwt.hex").read_text().strip())
    codes: dict[int, int] = {}
    for index in range(REQUESTS):
        if index % 10 == 9:
            token = jwt.encode({"iat": int(time.time())}, secret, algorithm="HS256")
            body = json.dumps(fuzzer.request(ENGINE)).encode()
            answers = post(engine, body, {"Authorization": f"Bearer {token}"})
        else:
            body = fuzzer.body()
            answers = post(public, body, {})
        for answer in answers:
            if isinstance(answer, dict) and "error" in answer:
                code = answer["error"]["code"]
                codes[code] = codes.get(code, 0) + 1
                assert code != -32603, (body[:300], answer)
    assert fuzzed_node.proc.poll() is None
    assert rpc(url, "eth_chainId")["result"] == hex(CHAIN_ID)
    assert snapshot(url) == before
    assert "Traceback" not in fuzzed_node.log()
    assert codes.get(-32602, 0) > REQUESTS // 10  # the fuzz reached the decoders
