"""The dev chain's predeploys, as anvil users and the OP stack have them: Multicall3 at
0xcA11…CA11 and the deterministic CREATE2 deployer at 0x4e59…956C, with their canonical
runtime code (genesis/dev.json), so viem's multicall and ``forge script`` CREATE2
deployments work with no extra step (viem and forge from npm, forge compiling with
solc-js through tests/js/forge/solc-js).
"""

import json
import os
import subprocess

import js_tools
from eth_utils import keccak
from nodes import DEV_KEYS

MULTICALL3 = "0xcA11bde05977b3631167028862bE2a173976CA11"
CREATE2_DEPLOYER = "0x4e59b44847b379578588920cA78FbF26c0B4956C"
# the code hashes published for the canonical deployments on every chain
MULTICALL3_CODE_HASH = "d5c15df687b16f2ff992fc8d767b4216323184a2bbc6ee2f9c398c318e770891"
CREATE2_DEPLOYER_CODE_HASH = "2fa86add0aed31f33a762c9d88e807c475bd51d0f52bd0955754b2608f7e4989"
FORGE = js_tools.JS / "forge"


def test_predeploys_carry_the_canonical_code(w3):
    assert keccak(w3.eth.get_code(MULTICALL3)).hex() == MULTICALL3_CODE_HASH
    assert keccak(w3.eth.get_code(CREATE2_DEPLOYER)).hex() == CREATE2_DEPLOYER_CODE_HASH


def test_viem_multicall_batches_reads_through_multicall3(node, w3):
    node_js = js_tools.node_js()
    run = subprocess.run(
        [node_js, str(js_tools.JS / "viem_multicall.mjs"), node.url],
        cwd=js_tools.JS,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, f"viem multicall failed:\n{run.stdout}{run.stderr}"
    done = json.loads(run.stdout.strip().splitlines()[-1])
    assert done["chainId"] == 19183
    assert int(done["balance"]) == w3.eth.get_balance(w3.eth.accounts[0])


def test_forge_script_deploys_with_create2_through_the_deployer(node, w3):
    forge = js_tools.foundry("forge")
    env = {**os.environ, "FOUNDRY_DISABLE_NIGHTLY_WARNING": "1"}
    run = subprocess.run(
        [
            forge,
            "script",
            "script/Create2.s.sol:Create2Script",
            "--rpc-url",
            node.url,
            "--broadcast",
            "--private-key",
            DEV_KEYS[4],
            "--json",
        ],
        cwd=FORGE,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, f"forge script failed:\n{run.stdout}{run.stderr}"
    broadcast = json.loads(
        (FORGE / "broadcast" / "Create2.s.sol" / "19183" / "run-latest.json").read_text()
    )
    (sent,) = broadcast["transactions"]
    assert sent["transaction"]["to"].lower() == CREATE2_DEPLOYER.lower()
    deployed = w3.to_checksum_address(sent["contractAddress"])
    receipt = w3.eth.get_transaction_receipt(sent["hash"])
    assert receipt.status == 1 and receipt.to == CREATE2_DEPLOYER
    count = w3.eth.call({"to": deployed, "data": keccak(text="count()")[:4]})
    assert int.from_bytes(count, "big") == 7
