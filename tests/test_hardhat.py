"""hardhat 2 with its toolbox against a real dev node: the toolbox's sample project (Lock,
with loadFixture and time.increaseTo) and tests of hardhat-network-helpers (mine,
setBalance, impersonateAccount, takeSnapshot) pass with ``npx hardhat test --network
localhost`` (tests/js/hardhat). Contracts compile with solc-js from npm.
"""

import os
import subprocess

import js_tools

HARDHAT = js_tools.JS / "hardhat"


def test_hardhat_sample_project_and_network_helpers_pass(node):
    js_tools.node_js()
    env = {**os.environ, "SIBYL_RPC_URL": node.url, "HARDHAT_DISABLE_TELEMETRY_PROMPT": "true"}
    run = subprocess.run(
        [str(js_tools.JS / "node_modules" / ".bin" / "hardhat"), "test", "--network", "localhost"],
        cwd=HARDHAT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, f"npx hardhat test failed:\n{output}"
    assert "13 passing" in output, output
