"""ethers v6 against a real dev node: the same deploy, transfer and event flow a dApp
runs (tests/js/ethers_flow.mjs), cross-checked on chain with web3.py afterwards.

ethers is installed from npm by the test itself (``npm ci`` in tests/js) the first time;
the test is skipped only where Node.js or npm is not installed.
"""

import json
import subprocess

import js_tools
import pytest

JS = js_tools.JS


@pytest.fixture(scope="module")
def node_js() -> str:
    return js_tools.node_js()


def test_ethers_deploys_transfers_and_follows_events(node_js, node, w3, token_artifact):
    flow = subprocess.run(
        [node_js, str(JS / "ethers_flow.mjs"), node.url],
        cwd=JS,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert flow.returncode == 0, f"ethers flow failed:\n{flow.stdout}{flow.stderr}"
    done = json.loads(flow.stdout.strip().splitlines()[-1])

    token = w3.eth.contract(address=done["token"], abi=token_artifact["abi"])
    assert token.functions.symbol().call() == "ETK"
    assert token.functions.balanceOf(done["remote"]).call() == 1000
    assert token.functions.balanceOf(done["recipient"]).call() == 7 + 8
    assert token.functions.allowance(done["remote"], done["deployer"]).call() == 55
    for tx_hash in [*done["transfers"], done["payment"], done["approval"]]:
        assert w3.eth.get_transaction_receipt(tx_hash).status == 1
    assert w3.eth.get_transaction(done["payment"])["from"] == done["remote"]
    transfers = token.events.Transfer().get_logs(from_block=0)
    assert [e.transactionHash.to_0x_hex() for e in transfers[1:]] == done["transfers"]


def test_ethers_waits_resolve_for_back_to_back_sends_over_http_and_websocket(node_js, node, w3):
    """With --block-time 0 a send answers once its block is committed, as anvil's
    automine does, so no tx.wait() is left waiting for a block that already came."""
    sent = subprocess.run(
        [node_js, str(JS / "automine.mjs"), node.url],
        cwd=JS,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert sent.returncode == 0, f"automine flow failed:\n{sent.stdout}{sent.stderr}"
    done = json.loads(sent.stdout.strip().splitlines()[-1])
    assert len(done["http"]) == len(done["ws"]) == 50
    for tx_hash in done["http"] + done["ws"]:
        assert w3.eth.get_transaction_receipt(tx_hash).status == 1
