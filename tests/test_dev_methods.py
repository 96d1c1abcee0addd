"""anvil's and hardhat's dev methods: one scenario, written for anvil, run against anvil
(from npm) and against ``sibyl run --dev``, with identical results; then what only a
Sibyl data dir can show (snapshots across a restart) and a node without ``--dev``
refusing the methods.

The scenario records what a test suite would observe (values read back, block numbers
and timestamps relative to where it started, whether a call failed), never hashes or
wall-clock times, which differ between any two chains.
"""

import json
import subprocess
import time
from collections.abc import Callable
from typing import Any

import js_tools
import pytest
from eth_account import Account
from eth_utils import to_checksum_address
from nodes import DEV_KEYS, NodeProcess, dev_node, free_port, rpc

from chain.cmd.run import DEV_KEYS as NODE_KEYS
from chain.cmd.run import TEST_MNEMONIC
from chain.dev import decode_dump
from genesis import DEV_GENESIS

FRESH = "0x00000000000000000000000000000000000d0e01"
OTHER = "0x00000000000000000000000000000000000d0e02"
WHALE = "0x00000000000000000000000000000000000be11e"
LOADED = "0x00000000000000000000000000000000000d0e03"

Call = Callable[..., Any]


def caller(url: str) -> Call:
    def call(method: str, *params: Any) -> Any:
        answer = rpc(url, method, list(params), timeout=30)
        if "error" in answer:
            return ("error", answer["error"]["code"])
        return answer["result"]

    return call


def state_of(call: Call, address: str) -> tuple:
    """What a test reads of an account: balance, code, nonce, slot 1."""
    return (
        call("eth_getBalance", address, "latest"),
        call("eth_getCode", address, "latest"),
        call("eth_getTransactionCount", address, "latest"),
        call("eth_getStorageAt", address, "0x1", "latest"),
    )


def hex_json(value: Any) -> str:
    return "0x" + json.dumps(value).encode().hex()


def head(call: Call) -> dict:
    return call("eth_getBlockByNumber", "latest", False)


def transfer(call: Call, key: str, to: str, value: int) -> str:
    account = Account.from_key(key)
    chain_id = int(call("eth_chainId"), 16)
    tx = {
        "chainId": chain_id,
        "nonce": int(call("eth_getTransactionCount", account.address, "pending"), 16),
        "to": to_checksum_address(to),
        "value": value,
        "gas": 21000,
        "maxFeePerGas": 100 * 10**9,
        "maxPriorityFeePerGas": 10**9,
    }
    return call(
        "eth_sendRawTransaction",
        "0x" + bytes(Account.sign_transaction(tx, key).raw_transaction).hex(),
    )


def settled_receipt(call: Call, tx_hash: str, settle: float) -> dict | None:
    """The receipt of an automined send, waited for up to ``settle`` seconds."""
    deadline = time.monotonic() + settle
    while (receipt := call("eth_getTransactionReceipt", tx_hash)) is None:
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.05)
    return receipt


def scenario(call: Call, settle: float = 0.0) -> list:
    """Every dev method, as a test suite written for anvil uses it. ``settle``: how long to
    wait for a receipt after an automined send (anvil, the reference, mines in the
    background after answering, and on a busy machine the receipt can lag its answer
    right after interval mining is switched off; Sibyl answers after inclusion: 0)."""
    seen: list = []
    start = head(call)
    number = lambda: int(call("eth_blockNumber"), 16) - int(start["number"], 16)  # noqa: E731

    seen.append(("increaseTime", call("evm_increaseTime", 3600), call("evm_increaseTime", "0x10")))
    seen.append(("automine", call("hardhat_getAutomine"), call("anvil_getAutomine")))
    first = call("evm_snapshot")
    seen.append(("snapshot ids", first, call("evm_snapshot")))

    # state edits: read back at latest, no block mined
    seen.append(("setBalance", call("anvil_setBalance", FRESH, hex(10**18))))
    seen.append(("hardhat_setBalance", call("hardhat_setBalance", OTHER, "0x2a")))
    seen.append(("setCode", call("anvil_setCode", FRESH, "0x602a60005260206000f3")))
    seen.append(("hardhat_setCode", call("hardhat_setCode", OTHER, "0x00")))
    seen.append(
        ("setNonce", call("anvil_setNonce", FRESH, "0x7"), call("hardhat_setNonce", OTHER, "0x3"))
    )
    slot = "0x" + "00" * 31 + "2a"
    seen.append(("setStorageAt", call("anvil_setStorageAt", FRESH, "0x1", slot)))
    seen.append(("hardhat_setStorageAt", call("hardhat_setStorageAt", OTHER, "0x0", slot)))
    for address in (FRESH, OTHER):
        seen.append(
            (
                "state",
                call("eth_getBalance", address, "latest"),
                call("eth_getCode", address, "latest"),
                call("eth_getTransactionCount", address, "latest"),
                call("eth_getStorageAt", address, "0x1", "latest"),
                call("eth_getStorageAt", address, "0x0", "latest"),
            )
        )
    seen.append(("call edited code", call("eth_call", {"to": FRESH}, "latest")))
    seen.append(("blocks after edits", number()))

    # state dumps: a dump loaded back after edits puts its accounts back; plain JSON loads
    dump = call("anvil_dumpState")
    seen.append(("dumpState", dump[:6]))  # 0x1f8b..: gzip
    call("anvil_setBalance", FRESH, "0x1")
    call("anvil_setStorageAt", FRESH, "0x1", "0x" + "00" * 32)
    call("anvil_setCode", FRESH, "0x")
    seen.append(("loadState", call("anvil_loadState", dump), *state_of(call, FRESH)))
    plain = {
        "block": None,
        "best_block_number": None,
        "accounts": {
            LOADED: {"nonce": 5, "balance": "0x64", "code": "0x6001", "storage": {"0x1": "0x2a"}}
        },
    }
    seen.append(("load JSON", call("anvil_loadState", hex_json(plain)), *state_of(call, LOADED)))
    plain["accounts"][LOADED]["nonce"] = 2  # the larger nonce stays
    seen.append(
        ("load lower nonce", call("anvil_loadState", hex_json(plain)), *state_of(call, LOADED))
    )
    seen.append(("load garbage", call("anvil_loadState", "0x1234")))
    seen.append(("load no accounts", call("anvil_loadState", hex_json({"block": None}))))
    seen.append(("blocks after loads", number()))

    # mining and the clock
    seen.append(("evm_mine", call("evm_mine"), number()))
    seen.append(("anvil_mine", call("anvil_mine", "0x3", "0xa"), number()))
    blocks = [
        call("eth_getBlockByNumber", hex(int(start["number"], 16) + n), False) for n in (2, 4)
    ]
    seen.append(
        ("mine interval", int(blocks[1]["timestamp"], 16) - int(blocks[0]["timestamp"], 16))
    )
    seen.append(("hardhat_mine", call("hardhat_mine", "0x2"), number()))
    target = int(head(call)["timestamp"], 16) + 1000
    seen.append(("setNextBlockTimestamp", call("evm_setNextBlockTimestamp", hex(target))))
    call("evm_mine")
    seen.append(("next timestamp", int(head(call)["timestamp"], 16) - target))
    call("evm_mine", hex(target + 50))
    seen.append(("evm_mine at", int(head(call)["timestamp"], 16) - target))
    seen.append(("timestamp in the past", call("evm_setNextBlockTimestamp", hex(target))))

    # mining modes
    seen.append(("setAutomine off", call("evm_setAutomine", False), call("anvil_getAutomine")))
    at = number()
    sent = transfer(call, DEV_KEYS[5], WHALE, 5)
    seen.append(("manual: no block", number() - at, call("eth_getTransactionReceipt", sent)))
    call("evm_mine")
    receipt = call("eth_getTransactionReceipt", sent)
    seen.append(("mined on demand", number() - at, receipt["status"]))
    seen.append(("interval", call("evm_setIntervalMining", 1), call("anvil_getAutomine")))
    at = number()
    time.sleep(3.5)
    seen.append(("interval mines", number() - at >= 2))
    seen.append(("interval off", call("evm_setIntervalMining", 0)))
    seen.append(("automine on", call("evm_setAutomine", True), call("hardhat_getAutomine")))
    sent = transfer(call, DEV_KEYS[5], WHALE, 6)  # its receipt is there when the send answers
    seen.append(("automine: mined on send", settled_receipt(call, sent, settle)["status"]))

    # impersonation
    call("anvil_setBalance", WHALE, hex(10**18))
    send = {"from": WHALE, "to": OTHER, "value": "0x5", "gas": "0x5208"}
    seen.append(("not impersonated", call("eth_sendTransaction", send)[0]))
    seen.append(("impersonate", call("anvil_impersonateAccount", WHALE)))
    tx_hash = call("eth_sendTransaction", send)
    receipt = settled_receipt(call, tx_hash, settle)
    seen.append(
        (
            "impersonated send",
            receipt["status"],
            receipt["from"],
            call("eth_getBalance", OTHER, "latest"),
        )
    )
    seen.append(
        (
            "hardhat impersonate",
            call("hardhat_impersonateAccount", FRESH),
            call("hardhat_stopImpersonatingAccount", FRESH),
        )
    )
    seen.append(
        (
            "stop",
            call("anvil_stopImpersonatingAccount", WHALE),
            call("eth_sendTransaction", send)[0],
        )
    )

    # metadata
    for name in ("anvil_metadata", "hardhat_metadata"):
        meta = call(name)
        seen.append(
            (
                name,
                sorted(meta) >= ["chainId", "clientVersion", "instanceId", "latestBlockNumber"],
                meta["latestBlockNumber"] - int(start["number"], 16),
            )
        )

    # snapshots restore state, blocks and the clock; each is used once
    second = call("evm_snapshot")
    call("anvil_setBalance", FRESH, "0x1")
    call("evm_mine")
    seen.append(
        (
            "revert to second",
            call("evm_revert", second),
            number(),
            call("eth_getBalance", FRESH, "latest"),
        )
    )
    seen.append(("revert again", call("evm_revert", second)))
    seen.append(
        (
            "revert to first",
            call("evm_revert", first),
            number(),
            call("eth_getBalance", FRESH, "latest"),
            call("eth_getCode", FRESH, "latest"),
        )
    )
    seen.append(("head restored", head(call)["hash"] == start["hash"]))

    # reset: back to a fresh chain
    call("anvil_setBalance", FRESH, "0x1")
    call("evm_mine")
    seen.append(
        (
            "reset",
            call("anvil_reset"),
            call("eth_blockNumber"),
            call("eth_getBalance", FRESH, "latest"),
        )
    )
    call("evm_mine")
    seen.append(("hardhat_reset", call("hardhat_reset"), call("eth_blockNumber")))
    return seen


@pytest.fixture(scope="module")
def anvil_url() -> str:
    anvil = js_tools.foundry("anvil")
    port = free_port()
    process = subprocess.Popen(
        [anvil, "--port", str(port), "--silent"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                rpc(url, "eth_chainId")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_dev_methods_answer_as_on_anvil(anvil_url, tmp_path):
    expected = scenario(caller(anvil_url), settle=5.0)
    node = dev_node(tmp_path / "data")
    try:
        seen = scenario(caller(node.url))
    finally:
        node.kill()
    for step, (ours, anvils) in enumerate(zip(seen, expected, strict=True)):
        assert ours == anvils, f"step {step}: sibyl {ours} != anvil {anvils}"


def test_snapshot_survives_a_restart_with_the_datadir(tmp_path):
    node = dev_node(tmp_path / "data")
    call = caller(node.url)
    start = head(call)
    snapshot = call("evm_snapshot")
    call("anvil_setBalance", FRESH, "0x1234")
    transfer(call, DEV_KEYS[6], OTHER, 7)
    node.stop()
    node = NodeProcess(node.datadir, node.args).start()
    try:
        call = caller(node.url)
        assert call("eth_getBalance", FRESH, "latest") == "0x1234"
        assert call("evm_revert", snapshot) is True
        assert head(call)["hash"] == start["hash"]
        assert call("eth_getBalance", FRESH, "latest") == "0x0"
        assert call("eth_getBalance", OTHER, "latest") == "0x0"
        # the chain goes on from the snapshot: the reverted transfer can be sent again
        transfer(call, DEV_KEYS[6], OTHER, 7)
        assert call("eth_getBalance", OTHER, "latest") == "0x7"
    finally:
        node.kill()


def test_dev_methods_are_refused_without_dev(start_node):
    node = start_node("plain", "--genesis", str(DEV_GENESIS), dev=False)
    assert rpc(node.url, "web3_clientVersion")["result"].startswith("sibyl/v")
    for method in ("evm_snapshot", "evm_mine", "anvil_setBalance", "hardhat_impersonateAccount"):
        answer = rpc(node.url, method, [FRESH, "0x1"][: 2 if "set" in method else 0])
        assert answer["error"]["code"] == -32601
        assert "only available on a dev chain" in answer["error"]["message"]
        assert method in answer["error"]["message"]


def test_automined_send_that_reverts_fails_with_its_revert_data(tmp_path):
    """As Hardhat Network answers, which hardhat-ethers counts on for a node that answers
    ``hardhat_metadata``: the transaction is mined (failed) and the send fails."""
    node = dev_node(tmp_path / "data")
    try:
        call = caller(node.url)
        sender = call("eth_accounts")[0]
        call("anvil_setCode", OTHER, "0x63deadbeef6000526004601cfd")  # revert(0xdeadbeef)
        send = {"from": sender, "to": OTHER, "gas": "0x186a0"}
        answer = rpc(node.url, "eth_sendTransaction", [send])
        assert answer["error"]["code"] == 3, answer
        assert answer["error"]["message"] == "execution reverted"
        assert answer["error"]["data"]["data"] == "0xdeadbeef"
        receipt = call("eth_getTransactionReceipt", answer["error"]["data"]["transactionHash"])
        assert receipt["status"] == "0x0"
        call("anvil_setBalance", WHALE, hex(10**18))
        call("anvil_impersonateAccount", WHALE)
        answer = rpc(node.url, "eth_sendTransaction", [send | {"from": WHALE}])
        assert answer["error"]["code"] == 3, answer  # mined, failed; it does not replay
        failed = call("eth_getTransactionReceipt", answer["error"]["data"]["transactionHash"])
        assert (failed["status"], answer["error"]["data"]["data"]) == ("0x0", "0x")
        call("evm_setAutomine", False)
        tx_hash = call("eth_sendTransaction", send)  # not mined yet: nothing to report
        call("evm_mine")
        assert call("eth_getTransactionReceipt", tx_hash)["status"] == "0x0"
    finally:
        node.kill()


def test_dev_keys_are_the_test_mnemonics_as_anvil_derives_them():
    Account.enable_unaudited_hdwallet_features()
    derived = [
        bytes(Account.from_mnemonic(TEST_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}").key).hex()
        for i in range(len(NODE_KEYS))
    ]
    assert list(NODE_KEYS) == derived == [key[2:] for key in DEV_KEYS]


def test_state_dumps_load_from_anvil_into_sibyl_and_back(anvil_url, tmp_path):
    node = dev_node(tmp_path / "data")
    try:
        sibyl, anvil = caller(node.url), caller(anvil_url)
        word = "0x" + "00" * 31 + "2a"
        for source, target, address in ((sibyl, anvil, FRESH), (anvil, sibyl, OTHER)):
            source("anvil_setBalance", address, "0x2a")
            source("anvil_setCode", address, "0x602a60005260206000f3")
            source("anvil_setNonce", address, "0x3")
            source("anvil_setStorageAt", address, "0x1", word)
            assert target("anvil_loadState", source("anvil_dumpState")) is True
            assert state_of(target, address) == state_of(source, address)
            assert state_of(target, address)[3] == word
    finally:
        node.kill()


def test_a_dump_names_what_blocks_and_edits_wrote_and_follows_snapshots(tmp_path):
    """Preimages of the keys blocks and edits write are kept in the data dir: a dump after
    a restart names the slots a contract wrote (a hashed one too); a revert drops the
    edits after its snapshot from the dump, as from the state."""
    node = dev_node(tmp_path / "data")
    try:
        call = caller(node.url)
        sender = call("eth_accounts")[0]
        high = "ab" * 32  # sstore(5, 0x2a); sstore(0xabab…ab, 7)
        init = "0x602a600555" + "6007" + "7f" + high + "55" + "00"
        tx_hash = call("eth_sendTransaction", {"from": sender, "data": init, "gas": "0x30000"})
        contract = call("eth_getTransactionReceipt", tx_hash)["contractAddress"]
        call("anvil_setBalance", FRESH, "0x7")
        node.stop()
        node = NodeProcess(node.datadir, node.args).start()
        call = caller(node.url)
        snapshot = call("evm_snapshot")
        call("anvil_setBalance", OTHER, "0x9")
        dumped = decode_dump(bytes.fromhex(call("anvil_dumpState")[2:]))
        assert dumped[bytes.fromhex(contract[2:])].storage == {5: 0x2A, int(high, 16): 7}
        assert dumped[bytes.fromhex(FRESH[2:])].balance == 7
        assert dumped[bytes.fromhex(OTHER[2:])].balance == 9
        assert call("evm_revert", snapshot) is True
        dumped = decode_dump(bytes.fromhex(call("anvil_dumpState")[2:]))
        assert bytes.fromhex(OTHER[2:]) not in dumped
        assert dumped[bytes.fromhex(FRESH[2:])].balance == 7
    finally:
        node.kill()
