"""JSON-RPC methods of the execution-apis specification and geth that tools call:
eth_config (EIP-7910), eth_getStorageValues, txpool_contentFrom, eth_signTypedData."""

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak
from nodes import CHAIN_ID, rpc

SCHEDULER = "0x0000000000000000000000000000000000000A01"
GAS_CAP_SLOT = "0x" + "0" * 63 + "1"


def test_eth_config_describes_the_running_fork(node):
    config = rpc(node.url, "eth_config")["result"]
    current = config["current"]
    assert config["next"] is None and config["last"] is None  # Prague from genesis
    assert current["chainId"] == hex(CHAIN_ID) and current["activationTime"] == 0
    assert current["blobSchedule"] == {"baseFeeUpdateFraction": 5_007_716, "max": 9, "target": 6}
    assert current["precompiles"]["BLS12_MAP_FP2_TO_G2"] == "0x" + "0" * 38 + "11"
    assert current["precompiles"]["INFER"] == "0x" + "0" * 37 + "800"
    assert current["precompiles"]["ZK_VERIFY"] == "0x" + "0" * 37 + "804"
    assert current["precompiles"]["ZK_PROVE"] == "0x" + "0" * 37 + "803"
    assert current["systemContracts"]["SCHEDULER"] == SCHEDULER.lower()
    assert current["systemContracts"]["HISTORY_STORAGE_ADDRESS"].startswith("0x0000f90827")
    assert len(current["forkId"]) == 10


def test_eth_get_storage_values_reads_many_slots_at_once(node):
    slots = [GAS_CAP_SLOT, "0x2"]
    values = rpc(node.url, "eth_getStorageValues", [{SCHEDULER: slots}, "latest"])["result"]
    single = [rpc(node.url, "eth_getStorageAt", [SCHEDULER, s, "latest"])["result"] for s in slots]
    assert values == {SCHEDULER.lower(): single} and int(single[0], 16) == 5_000_000


def test_txpool_content_from_lists_one_senders_transactions(node):
    sender = Account.create()
    answer = rpc(node.url, "txpool_contentFrom", [sender.address])["result"]
    assert answer == {"pending": {}, "queued": {}}


def test_eth_sign_typed_data_is_the_v4_method_web3_py_calls(node, accounts):
    typed = {
        "types": {
            "EIP712Domain": [{"name": "name", "type": "string"}],
            "Note": [{"name": "text", "type": "string"}],
        },
        "primaryType": "Note",
        "domain": {"name": "Sibyl"},
        "message": {"text": "hello"},
    }
    signature = rpc(node.url, "eth_signTypedData", [accounts[0].address, typed])["result"]
    message = encode_typed_data(full_message=typed)
    assert Account.recover_message(message, signature=signature) == accounts[0].address


def test_eth_sign_transaction_returns_the_raw_transaction_and_its_hash(node, accounts):
    sender = accounts[0].address
    request = {"from": sender, "to": sender, "value": "0x1", "gas": "0x5208"}
    signed = rpc(node.url, "eth_signTransaction", [request])["result"]
    raw = bytes.fromhex(signed["raw"][2:])
    assert Account.recover_transaction(raw) == sender
    assert signed["tx"]["hash"] == "0x" + keccak(raw).hex()
