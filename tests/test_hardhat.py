"""hardhat 2 with its toolbox against a real dev node: the toolbox's sample project (Lock,
with loadFixture and time.increaseTo, copied unchanged from hardhat's own package) and
tests of hardhat-network-helpers (mine, setBalance, impersonateAccount, takeSnapshot)
pass with ``npx hardhat test --network localhost`` (tests/js/hardhat). Contracts compile
with solc-js from npm.
"""

import os
import shutil
import subprocess

import js_tools

HARDHAT = js_tools.JS / "hardhat"
SAMPLE = js_tools.JS / "node_modules" / "hardhat" / "sample-projects" / "javascript"


def copy_sample_project() -> None:
    """The sample's contract and test, as ``npx hardhat init`` would lay them out."""
    shutil.copytree(SAMPLE / "contracts", HARDHAT / "contracts", dirs_exist_ok=True)
    shutil.copy(SAMPLE / "test" / "Lock.js", HARDHAT / "test" / "Lock.js")


def test_hardhat_sample_project_and_network_helpers_pass(node):
    js_tools.node_js()
    copy_sample_project()
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
