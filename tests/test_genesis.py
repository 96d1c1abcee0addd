"""Portable genesis files (DESIGN section 3): block 0 follows from the file alone.

A Sibyl genesis carries its system contracts' accounts in ``alloc`` (written by
``sibyl genesis complete``), so another implementation given the same file computes the
same genesis block; a genesis without a ``sibyl`` section is a plain Ethereum chain.
"""

import json
from pathlib import Path

import pytest
from eth.chains.base import MiningChain
from eth.db.atomic import AtomicDB
from eth.vm.forks.prague import PragueVM
from nodes import REPO, rpc, sibyl

from chain.fork_schedule import BLOCK_FORKS
from chain.genesis import complete_genesis, genesis_block, load_genesis, parse_genesis
from chain.genesis_values import GenesisError

DEV_GENESIS = REPO / "genesis" / "dev.json"
SYSTEM_ACCOUNTS = ["0x" + "0" * 37 + suffix for suffix in ("a01", "a02", "a03")]
# A P256VERIFY input that verifies (RIP-7212's first test vector).
P256_INPUT = (
    "0x4cee90eb86eaa050036147a12d49004b6b9c72bd725d39d4785011fe190f0b4d"
    "a73bd4903f0ce3b639bbbf6e8e80d16931ff4bcf5993d58468e8fb19086e8cac"
    "36dbcd03009df8c59286b162af3bd7fcc0450c9aa81be5d10d312af6c66b1d60"
    "4aebd3099c618202fcfe16ae7770b0c49ab5eadf74b754204a3bb6060e44eff3"
    "7618b065f9832de4ca6ca971a7a1adc826d0f7c00181a5fb2ddf79ae00b4e10e"
)


def dev_without_system_accounts() -> dict:
    genesis = json.loads(DEV_GENESIS.read_text())
    for address in SYSTEM_ACCOUNTS:
        del genesis["alloc"][address]
    return genesis


def test_init_refuses_a_sibyl_genesis_whose_alloc_lacks_the_system_accounts(tmp_path):
    path = tmp_path / "genesis.json"
    path.write_text(json.dumps(dev_without_system_accounts()))
    result = sibyl("init", "--genesis", str(path), "--datadir", str(tmp_path / "d"))
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "alloc[0x0000000000000000000000000000000000000a01]: missing" in result.stderr
    assert "sibyl genesis complete" in result.stderr
    assert not (tmp_path / "d").exists() or not any((tmp_path / "d").iterdir())


def test_init_refuses_a_sibyl_section_that_disagrees_with_the_alloc(tmp_path):
    genesis = json.loads(DEV_GENESIS.read_text())
    genesis["sibyl"]["scheduler"] = {"maxGasPerBlock": "0x100"}
    path = tmp_path / "genesis.json"
    path.write_text(json.dumps(genesis))
    result = sibyl("init", "--genesis", str(path), "--datadir", str(tmp_path / "d"))
    assert result.returncode != 0
    assert "0a01].storage: differs" in result.stderr and "sibyl genesis complete" in result.stderr


def test_genesis_complete_writes_a_genesis_that_init_accepts(tmp_path):
    path = tmp_path / "genesis.json"
    path.write_text(json.dumps(dev_without_system_accounts()))
    written = sibyl("genesis", "complete", str(path))
    assert written.returncode == 0, written.stderr
    result = sibyl("init", "--genesis", str(path), "--datadir", str(tmp_path / "d"))
    assert result.returncode == 0, result.stderr
    expected = genesis_block(load_genesis(DEV_GENESIS))[0].header.hash.hex()
    assert f"genesis=0x{expected}" in written.stdout and f"genesis=0x{expected}" in result.stdout


def test_the_bundled_dev_genesis_is_what_the_generator_writes():
    """genesis/dev.json is regenerated with `sibyl genesis complete genesis/dev.json`."""
    assert complete_genesis(DEV_GENESIS.read_bytes()) == json.loads(DEV_GENESIS.read_text())


def py_evm_genesis_hash(path: Path) -> bytes:
    """Block 0 as py-evm's own genesis code builds it from the file's fields and alloc."""
    data = json.loads(path.read_text())
    number = lambda value: int(value, 16)  # noqa: E731
    state = {
        bytes.fromhex(address[2:]): {
            "balance": number(account.get("balance", "0x0")),
            "nonce": number(account.get("nonce", "0x0")),
            "code": bytes.fromhex(account.get("code", "0x")[2:]),
            "storage": {number(k): number(v) for k, v in account.get("storage", {}).items()},
        }
        for address, account in data["alloc"].items()
    }
    params = {
        "difficulty": number(data["difficulty"]),
        "gas_limit": number(data["gasLimit"]),
        "timestamp": number(data["timestamp"]),
        "extra_data": bytes.fromhex(data["extraData"][2:]),
        "mix_hash": bytes.fromhex(data["mixHash"][2:]),
        "coinbase": bytes.fromhex(data["coinbase"][2:]),
        "nonce": number(data["nonce"]).to_bytes(8, "big"),
        "base_fee_per_gas": number(data["baseFeePerGas"]),
        # geth's genesis has a zero parent beacon root; py-evm's default is the empty trie's
        "parent_beacon_block_root": b"\x00" * 32,
    }
    chain_class = MiningChain.configure(
        vm_configuration=((0, PragueVM),), chain_id=data["config"]["chainId"]
    )
    chain = chain_class.from_genesis(AtomicDB(), params, state)
    return chain.get_canonical_head().hash


def test_dev_genesis_hash_agrees_with_py_evms_own_genesis_code():
    ours = genesis_block(load_genesis(DEV_GENESIS))[0].header.hash
    assert ours == py_evm_genesis_hash(DEV_GENESIS)


def plain_genesis(path: Path) -> Path:
    """The dev genesis as a plain Ethereum chain: no sibyl section, no system accounts."""
    genesis = dev_without_system_accounts()
    del genesis["sibyl"]
    path.write_text(json.dumps(genesis))
    return path


def test_a_genesis_without_a_sibyl_section_is_a_plain_ethereum_chain(tmp_path, start_node):
    path = plain_genesis(tmp_path / "plain.json")
    assert genesis_block(load_genesis(path))[0].header.hash == py_evm_genesis_hash(path)
    plain = start_node("plain", "--genesis", str(path), dev=False).url
    dev = start_node("dev").url
    call = [{"to": "0x" + "0" * 37 + "100", "data": P256_INPUT}, "latest"]
    assert rpc(dev, "eth_call", call)["result"] == "0x" + "0" * 63 + "1"
    # P256VERIFY is Osaka's on Ethereum: on a Prague chain 0x100 is an empty account
    assert rpc(plain, "eth_call", call)["result"] == "0x"
    for address in SYSTEM_ACCOUNTS:
        assert rpc(plain, "eth_getCode", [address, "latest"])["result"] == "0x"
    scheduler = [{"to": SYSTEM_ACCOUNTS[0], "data": "0x5c8b6e1b"}, "latest"]
    assert rpc(plain, "eth_call", scheduler)["result"] == "0x"


@pytest.mark.parametrize(
    "config, reason",
    [
        ({"blobSchedule": {"prague": {"target": 3, "max": 6, "baseFeeUpdateFraction": 1}}},
         "config.blobSchedule.prague: Sibyl runs the fork's own blob parameters"),
    ],
)  # fmt: skip
def test_a_genesis_sibyl_cannot_run_is_refused_with_its_reason(config, reason):
    genesis = {"config": {"chainId": 1, "shanghaiTime": 0, **config}, "alloc": {}}
    with pytest.raises(GenesisError, match=reason):
        parse_genesis(json.dumps(genesis).encode())


@pytest.mark.parametrize(
    "config, reason",
    [
        ({"terminalTotalDifficulty": 100}, "terminalTotalDifficulty: 100 is above the genesis"),
        ({"londonBlock": 5}, "config.londonBlock: a fork after genesis by block number"),
    ],
)  # fmt: skip
def test_a_sibyl_genesis_must_start_merged(config, reason):
    genesis = json.loads(DEV_GENESIS.read_text())
    genesis["config"].update(config)
    with pytest.raises(GenesisError, match=reason):
        parse_genesis(json.dumps(genesis).encode())


def test_a_plain_genesis_schedules_proof_of_work_forks_by_block_and_the_merge_by_difficulty():
    config = {"chainId": 1, "homesteadBlock": 0, "eip150Block": 0, "eip155Block": 3,
              "eip158Block": 3, "byzantiumBlock": 3, "londonBlock": 7,
              "terminalTotalDifficulty": "0x60000", "shanghaiTime": 100,
              "daoForkBlock": 2, "daoForkSupport": True}  # fmt: skip
    genesis = parse_genesis(json.dumps({"config": config, "difficulty": "0x20000"}).encode())
    chain = genesis.config
    forks = [chain.fork_of(n, n * 10, 0x20000) for n in (0, 2, 3, 6, 7)]
    assert forks == ["tangerine_whistle", "tangerine_whistle", "byzantium", "byzantium", "london"]
    assert chain.fork_of(9, 90, 0) == "paris" and chain.fork_of(10, 100, 0) == "shanghai"
    assert chain.dao_fork_block == 2 and not chain.ethash
    assert not hasattr(genesis_block(genesis)[0].header, "base_fee_per_gas")  # pre-London
    never = parse_genesis(json.dumps({"config": {"chainId": 1}}).encode()).config
    assert never.terminal_total_difficulty is None and never.fork_of(5, 5, 0) == "frontier"
    backwards = {"chainId": 1, "byzantiumBlock": 5, "londonBlock": 4}
    with pytest.raises(GenesisError, match="config.londonBlock: 4 is before an earlier fork"):
        parse_genesis(json.dumps({"config": backwards}).encode())


def test_a_geth_genesis_with_its_merged_fork_fields_is_accepted():
    """What geth's own genesis files carry: every block fork at 0, a blob schedule, a null
    base fee and a deposit contract."""
    config = {
        "chainId": 1, **{name: 0 for name in BLOCK_FORKS}, "terminalTotalDifficulty": 0,
        "shanghaiTime": 0, "cancunTime": 0, "pragueTime": 0,
        "depositContractAddress": "0x00000000219ab540356cbb839cbe05303d7705fa",
        "blobSchedule": {"cancun": {"target": 3, "max": 6, "baseFeeUpdateFraction": 3338477},
                         "prague": {"target": 6, "max": 9, "baseFeeUpdateFraction": 5007716}},
    }  # fmt: skip
    raw = json.dumps({"config": config, "baseFeePerGas": None, "excessBlobGas": "0x60000",
                      "alloc": {}}).encode()  # fmt: skip
    genesis = parse_genesis(raw)
    assert genesis.base_fee == 10**9 and genesis.config.deposit_contract is not None
    assert genesis_block(genesis)[0].header.excess_blob_gas == 0x60000
