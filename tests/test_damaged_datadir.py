"""A data dir that exists but is damaged is refused with one line and a hint, never
reinitialised and never a crash; ``sibyl db check`` says what is wrong. Malformed
config and genesis values are refused with one line naming the key."""

import json
import math
import shutil
import subprocess
import time

import lmdb
import nodes
import pytest
import rlp
from nodes import REPO, dev_node, rpc

from chain.config import ConfigError, NodeConfig, load_config
from chain.node import open_datadir
from chain.storage import codec
from chain.storage.store import Store, StoreError

GENESIS = REPO / "genesis" / "dev.json"
TRANSFER = {"to": "0x" + "22" * 20, "value": "0x1"}


def sibyl(*args: str) -> subprocess.CompletedProcess:
    return nodes.sibyl(*args, timeout=120)


def one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr and "Fatal Python error" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def chain_copy(tmp_path_factory):
    """A data dir with a few blocks on it, stopped cleanly; each test damages a copy."""
    root = tmp_path_factory.mktemp("chain")
    node = dev_node(root / "data")
    sender = rpc(node.url, "eth_accounts")["result"][0]
    for number in range(1, 4):  # one block each
        rpc(node.url, "eth_sendTransaction", [TRANSFER | {"from": sender}])
        while rpc(node.url, "eth_blockNumber")["result"] != hex(number):
            time.sleep(0.1)
    assert node.stop() == 0
    return root / "data"


def copy(chain_copy, tmp_path):
    target = tmp_path / "data"
    shutil.copytree(chain_copy, target)
    return target


def run_dev(datadir) -> subprocess.CompletedProcess:
    return sibyl("run", "--dev", "--datadir", str(datadir), "--sidecars", "none",
                 "--http-port", str(nodes.free_port()), "--engine-port", "0")  # fmt: skip


def test_a_sound_data_dir_passes_db_check(chain_copy, tmp_path):
    result = sibyl("db", "check", "--datadir", str(copy(chain_copy, tmp_path)))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is sound: head 3" in result.stdout


def test_a_dev_node_refuses_a_data_dir_whose_chain_lmdb_was_deleted(chain_copy, tmp_path):
    datadir = copy(chain_copy, tmp_path)
    shutil.rmtree(datadir / "chain.lmdb")
    line = one_line_error(run_dev(datadir))
    assert "is damaged: chain.lmdb is missing" in line and "backup" in line
    assert not (datadir / "chain.lmdb").exists()  # nothing started over it


def refused(datadir) -> str:
    """Why a dev node's start-up refuses ``datadir`` (in this process: the same code)."""
    with pytest.raises(StoreError) as refusal:
        store, _ = open_datadir(NodeConfig(datadir=datadir, dev=True))
        store.close()
    return str(refusal.value)


def test_a_data_dir_whose_state_lmdb_was_deleted_is_refused(chain_copy, tmp_path):
    datadir = copy(chain_copy, tmp_path)
    shutil.rmtree(datadir / "state.lmdb")
    assert "is damaged: state.lmdb is missing" in refused(datadir)
    assert not (datadir / "state.lmdb").exists()


def truncate(file, keep: float | int) -> None:
    size = file.stat().st_size
    with open(file, "r+b") as handle:
        handle.truncate(int(size * keep) if isinstance(keep, float) else keep)


def test_a_truncated_database_file_is_refused_not_a_sigbus(chain_copy, tmp_path):
    datadir = copy(chain_copy, tmp_path)
    truncate(datadir / "chain.lmdb" / "data.mdb", 0.5)
    for result in (run_dev(datadir), sibyl("db", "check", "--datadir", str(datadir))):
        assert "chain.lmdb/data.mdb is truncated" in one_line_error(result)


@pytest.mark.parametrize(
    ("name", "keep"), [("state.lmdb", 0.5), ("chain.lmdb", 4096), ("state.lmdb", 0)]
)
def test_every_truncation_is_refused(chain_copy, tmp_path, name, keep):
    datadir = copy(chain_copy, tmp_path)
    truncate(datadir / name / "data.mdb", keep)
    assert f"{name}/data.mdb is truncated" in refused(datadir)


def _damage(datadir, table: str, key: bytes | None, value: bytes | None) -> None:
    env = lmdb.open(str(datadir / "chain.lmdb"), max_dbs=16)
    with env.begin(write=True) as txn:
        db = env.open_db(table.encode(), txn=txn)
        if key is None:  # the first record of the table
            key = next(iter(txn.cursor(db=db)))[0]
        if value is None:
            txn.delete(key, db=db)
        else:
            txn.put(key, value, db=db)
    env.close()


def _head(datadir) -> bytes:
    env = lmdb.open(str(datadir / "chain.lmdb"), max_dbs=16, readonly=True)
    with env.begin() as txn:
        head = txn.get(b"head", db=env.open_db(b"meta", txn=txn, create=False))
    env.close()
    return head


@pytest.mark.parametrize(
    ("damage", "said"),
    [
        (lambda d: _damage(d, "meta", b"head", b"\x01" * 32), "whose header is missing"),
        (lambda d: _damage(d, "meta", b"head", None), "no head pointer"),
        (lambda d: _damage(d, "headers", _head(d), b"\xc3\x01\x02\x03"), "does not decode"),
        (lambda d: _damage(d, "meta", b"genesis", None), "holds blocks but no genesis"),
        (lambda d: _damage(d, "canonical", (3).to_bytes(8, "big"), None), "not in the canonical"),
    ],
)
def test_a_damaged_head_or_genesis_is_refused_with_a_hint(chain_copy, tmp_path, damage, said):
    datadir = copy(chain_copy, tmp_path)
    damage(datadir)
    reason = refused(datadir)
    assert said in reason and "sibyl db check" in reason


def test_a_corrupted_journal_record_is_refused(chain_copy, tmp_path):
    datadir = copy(chain_copy, tmp_path)
    _damage(datadir, "journal", (0).to_bytes(8, "big"), b"\xff\xff not rlp")
    assert "journal record 0 does not decode" in one_line_error(run_dev(datadir))


def test_db_check_names_missing_blocks_and_state(chain_copy, tmp_path):
    datadir = copy(chain_copy, tmp_path)
    _damage(datadir, "canonical", (1).to_bytes(8, "big"), None)
    child = _head_state_child(datadir)
    env = lmdb.open(str(datadir / "state.lmdb"))
    with env.begin(write=True) as txn:
        assert txn.delete(child)
    env.close()
    result = sibyl("db", "check", "--datadir", str(datadir))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "canonical block 1 is missing from the index" in result.stdout
    assert f"state trie node 0x{child.hex()} is missing" in result.stdout
    assert "is damaged" in result.stdout


def _head_state_child(datadir) -> bytes:
    """The hash of a node the head's state trie references below its root (deleting a
    key at random could hit the root itself, which the open check reports alone)."""
    store = Store(datadir, readonly=True)
    try:
        root = codec.decode_header(store.get("headers", store.head_hash())).state_root
        branch = rlp.decode(store.state_get(root))
    finally:
        store.close()
    return next(bytes(child) for child in branch if len(child) == 32)


# config and genesis values


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[rpc]\nhttp_port = 70000\n", "rpc.http_port"),
        ("[rpc]\nengine_port = 65536\n", "rpc.engine_port"),
        ("block_time = inf\n", "block_time"),
        ("rpc_evm_timeout = nan\n", "rpc_evm_timeout"),
        ("rpc_evm_timeout = 0\n", "rpc_evm_timeout"),
        ("[rpc]\nmax_body_bytes = 0\n", "rpc.max_body_bytes"),
        ('follow = "not a url"\n', "follow"),
        ('follow = "http://host:99999"\n', "follow"),
        ("[pool]\nmax_txs = 0\n", "pool.max_txs"),
        ("[rpc]\nheader_timeout = 0\n", "rpc.header_timeout"),
    ],
)
def test_a_config_value_the_node_cannot_run_with_is_refused_by_key(tmp_path, text, key):
    config = tmp_path / "node.toml"
    config.write_text(text)
    with pytest.raises(ConfigError) as refused:
        load_config(config, {})
    assert str(refused.value).startswith(f"{config}: {key}: ")


@pytest.mark.parametrize(
    ("flag", "value"), [("http_port", 70000), ("block_time", math.inf), ("follow", "nope")]
)
def test_a_flag_value_the_node_cannot_run_with_is_refused(flag, value):
    with pytest.raises(ConfigError) as refused:
        load_config(None, {flag: value})
    assert flag in str(refused.value)


def test_a_port_out_of_range_stops_the_node_with_one_line(tmp_path):
    line = one_line_error(sibyl("run", "--dev", "--sidecars", "none", "--http-port", "70000"))
    assert "rpc.http_port: 70000 is not a port (1-65535)" in line


def test_a_genesis_timestamp_at_the_top_of_uint64_is_refused(tmp_path):
    data = json.loads(GENESIS.read_text())
    data["timestamp"] = hex(2**64 - 1)
    genesis = tmp_path / "genesis.json"
    genesis.write_text(json.dumps(data))
    result = sibyl("init", "--genesis", str(genesis), "--datadir", str(tmp_path / "d"))
    assert "timestamp" in one_line_error(result)
    assert not (tmp_path / "d").exists() or not any((tmp_path / "d").iterdir())
