"""The JavaScript and foundry tools the tests drive, installed from npm into tests/js.

``npm ci`` runs the first time a test needs them (tests/js/package-lock.json pins
hardhat 2 with its toolbox, viem, ethers, solc-js and foundry's anvil, cast and forge,
which npm ships as prebuilt binaries); a test is skipped only where Node.js or npm is
not installed.
"""

import shutil
import subprocess
from pathlib import Path

import pytest

JS = Path(__file__).resolve().parent / "js"


def node_js() -> str:
    """The ``node`` executable, with tests/js's packages installed."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("this test needs Node.js and npm on PATH (not installed here)")
    if not (JS / "node_modules" / ".package-lock.json").is_file():
        installed = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=JS,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert installed.returncode == 0, f"npm ci failed:\n{installed.stdout}{installed.stderr}"
    return node


def foundry(tool: str) -> str:
    """The path of foundry's ``anvil``, ``cast`` or ``forge`` as npm installed it."""
    node_js()
    binary = JS / "node_modules" / "@foundry-rs" / f"{tool}-linux-amd64" / "bin" / tool
    if not binary.is_file():
        pytest.skip(f"npm ships no {tool} binary for this platform")
    return str(binary)
