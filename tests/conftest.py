"""Shared fixtures: a real dev node process, web3.py clients, the compiled fixtures."""

import json
from pathlib import Path

import pytest
from eth_account import Account
from nodes import DEV_KEYS, REPO, NodeProcess, dev_node

from chain.genesis import genesis_block, load_genesis
from chain.simulate import Simulator
from chain.startup import prepare_process

FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="session", autouse=True)
def process_choices() -> None:
    """In-process tests run the node's code as the node runs it (chain.startup)."""
    prepare_process()


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> NodeProcess:
    """One dev node per test module (starting a node takes seconds)."""
    process = dev_node(tmp_path_factory.mktemp("node") / "data")
    yield process
    process.kill()


@pytest.fixture
def start_node(tmp_path: Path):
    """Start real node processes for one test; every one is killed when the test ends."""
    started: list[NodeProcess] = []

    def start(name: str = "data", *args: str, dev: bool = True) -> NodeProcess:
        if dev:
            process = dev_node(tmp_path / name, *args)
        else:
            process = NodeProcess(tmp_path / name, ["--sidecars", "none", *args]).start()
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()


@pytest.fixture(scope="module")
def w3(node: NodeProcess):
    return node.w3()


@pytest.fixture(scope="session")
def accounts() -> list:
    return [Account.from_key(key) for key in DEV_KEYS]


@pytest.fixture(scope="session")
def token_artifact() -> dict:
    return json.loads((FIXTURES / "Token.json").read_text())


@pytest.fixture(scope="module")
def dev_genesis() -> tuple:
    """A simulator on the dev chain's genesis block, and that block's header: calls run
    in-process, with no node."""
    genesis = load_genesis(REPO / "genesis" / "dev.json")
    block, write = genesis_block(genesis)
    simulator = Simulator(genesis.config, write.state.get, {block.hash: block.header}.get, None)
    return simulator, block.header
