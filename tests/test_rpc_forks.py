"""Calls, gas estimates and access lists on a block of each supported fork: a node
serving a Shanghai, a Cancun or a Prague block answers each as geth does."""

import json

import pytest
from nodes import rpc

READER = "0x" + "c0" * 20
CALLER = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
# returns storage slot 1 (which holds 7)
READER_CODE = "0x60015460005260206000f3"
FORKS = {
    "shanghai": {"shanghaiTime": 0},
    "cancun": {"shanghaiTime": 0, "cancunTime": 0},
    "prague": {"shanghaiTime": 0, "cancunTime": 0, "pragueTime": 0},
}


FIELDS = {  # what a block object carries, by fork (execution-apis' Block schema)
    "shanghai": {"withdrawalsRoot"},
    "cancun": {"withdrawalsRoot", "blobGasUsed", "excessBlobGas", "parentBeaconBlockRoot"},
    "prague": {"withdrawalsRoot", "blobGasUsed", "excessBlobGas", "parentBeaconBlockRoot",
               "requestsHash"},
}  # fmt: skip
OPTIONAL = {"blobGasUsed", "excessBlobGas", "parentBeaconBlockRoot", "requestsHash"}


@pytest.fixture(params=sorted(FORKS))
def fork_node(request, tmp_path, start_node):
    genesis = {
        "config": {"chainId": 1337, "terminalTotalDifficulty": 0, **FORKS[request.param]},
        "gasLimit": "0x1c9c380",
        "alloc": {
            CALLER: {"balance": hex(10**21)},
            READER: {"balance": "0x0", "code": READER_CODE, "storage": {"0x01": "0x07"}},
        },
    }
    path = tmp_path / "genesis.json"
    path.write_text(json.dumps(genesis))
    return request.param, start_node(request.param, "--genesis", str(path), dev=False).url


def test_call_estimate_access_list_and_storage_work_on_a_block_of_every_fork(fork_node):
    fork, fork_node = fork_node
    block = rpc(fork_node, "eth_getBlockByNumber", ["0x0", False])["result"]
    assert "totalDifficulty" not in block  # as post-merge geth
    assert set(block) & (OPTIONAL | {"withdrawalsRoot"}) == FIELDS[fork]
    call = {"from": CALLER, "to": READER}
    assert rpc(fork_node, "eth_call", [call, "latest"])["result"] == "0x" + "0" * 63 + "7"
    estimate = rpc(fork_node, "eth_estimateGas", [call, "latest"])
    used = 21_000 + 2_100 + 5 * 3 + 3  # a cold SLOAD, five pushes, MSTORE and its memory
    assert used <= int(estimate["result"], 16) <= used * 1.015  # geth's search tolerance
    access = rpc(fork_node, "eth_createAccessList", [call, "latest"])["result"]
    assert access["accessList"] == [
        {"address": READER, "storageKeys": ["0x" + "0" * 63 + "1"]}
    ]  # storage keys as viem, ethers and the specification send them: 32-byte zero-padded
    for key in ("0x1", "0x" + "0" * 63 + "1", "0x01"):
        value = rpc(fork_node, "eth_getStorageAt", [READER, key, "latest"])["result"]
        assert value == "0x" + "0" * 63 + "7"
