"""eth_call, eth_estimateGas and eth_createAccessList answered by worker processes
(``call_workers``) give exactly what the node itself answers, and survive a worker's
death."""

import os
import signal
import subprocess
from pathlib import Path

import pytest
from eth_account import Account
from nodes import CHAIN_ID, DEV_KEYS, NodeProcess, rpc
from web3.exceptions import ContractLogicError


@pytest.fixture(scope="module")
def chain(tmp_path_factory, token_artifact):
    root = tmp_path_factory.mktemp("workers")
    config = root / "node.toml"
    config.write_text("call_workers = 2\n")
    node = NodeProcess(
        root / "data", ["--dev", "--sidecars", "none", "--config", str(config)]
    ).start()
    w3 = node.w3()
    owner = Account.from_key(DEV_KEYS[0])
    factory = w3.eth.contract(abi=token_artifact["abi"], bytecode=token_artifact["bytecode"])
    deploy = factory.constructor("Workers", "WRK", 10**21).build_transaction(
        {"from": owner.address, "nonce": 0, "chainId": CHAIN_ID}
    )
    receipt = w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(owner.sign_transaction(deploy).raw_transaction)
    )
    token = w3.eth.contract(address=receipt.contractAddress, abi=token_artifact["abi"])
    yield node, token, owner
    node.kill()


def test_calls_on_workers_answer_like_the_node(chain):
    node, token, owner = chain
    assert token.functions.balanceOf(owner.address).call() == 10**21
    assert token.functions.transfer(owner.address, 1).estimate_gas({"from": owner.address}) > 21000
    with pytest.raises(ContractLogicError, match="transfer amount exceeds balance"):
        token.functions.transfer(owner.address, 1).call({"from": Account.create().address})
    access = node.w3().eth.create_access_list(
        {"from": owner.address, "to": token.address,
         "data": token.encode_abi("transfer", [Account.create().address, 5])}
    )  # fmt: skip
    assert [entry["address"] for entry in access["accessList"]] == [token.address]


def test_a_dead_worker_is_replaced_and_calls_go_on(chain):
    node, token, owner = chain
    children = subprocess.run(
        ["pgrep", "-P", str(node.proc.pid)], capture_output=True, text=True
    ).stdout.split()
    workers = [
        pid for pid in children if "spawn_main" in Path(f"/proc/{pid}/cmdline").read_text()
    ]
    assert workers, "no call worker processes"
    os.kill(int(workers[0]), signal.SIGKILL)
    for _ in range(5):  # the call that meets the broken pool runs in the node itself
        assert token.functions.balanceOf(owner.address).call() == 10**21
    assert rpc(node.url, "eth_blockNumber")["result"] == hex(node.w3().eth.block_number)
