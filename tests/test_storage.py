"""The data dir's state journal (chain.storage.store): a committed block's state is readable at
once, survives a crash before it is merged into the node table, and is never missing
for a reader while the merger moves it."""

import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import lmdb
import pytest

from chain.storage.store import (
    MERGE_BACKLOG,
    MERGE_EVERY,
    BlockWrite,
    CanonicalChange,
    Store,
    StoreError,
)


def block(number: int, state: dict[bytes, bytes]) -> BlockWrite:
    block_hash = number.to_bytes(32, "big")
    return BlockWrite(block_hash, number, b"header", b"block", b"receipts", state, [])


def commit(store: Store, number: int, state: dict[bytes, bytes]) -> None:
    store.commit(CanonicalChange(added=[block(number, state)], head=block(number, {}).hash))


def random_state(count: int = 20) -> dict[bytes, bytes]:
    return {os.urandom(32): os.urandom(80) for _ in range(count)}


def journal_records(datadir: Path) -> int:
    env = lmdb.open(str(datadir / "chain.lmdb"), max_dbs=16, readonly=True, lock=False)
    try:
        with env.begin() as txn:
            return txn.stat(env.open_db(b"journal", txn=txn, create=False))["entries"]
    finally:
        env.close()


def test_state_is_readable_before_and_after_each_merge(tmp_path):
    store = Store(tmp_path)
    written: dict[bytes, bytes] = {}
    for number in range(1, 2 * MERGE_EVERY + 5):
        state = random_state()
        commit(store, number, state)
        written.update(state)
        assert all(store.state_get(key) == value for key, value in state.items())
    store.close()
    assert journal_records(tmp_path) == 0  # a clean stop merges everything

    store = Store(tmp_path)
    assert all(store.state_get(key) == value for key, value in written.items())
    assert store.state_get(os.urandom(32)) is None
    store.close()


def test_journaled_state_survives_a_crash_before_its_merge(tmp_path):
    script = textwrap.dedent(
        f"""
        import os, sys
        from pathlib import Path
        sys.path[:0] = {sys.path!r}
        from tests.test_storage import commit
        from chain.storage.store import Store
        store = Store(Path({str(tmp_path)!r}))
        for number in range(1, 4):
            commit(store, number, {{bytes([number]) * 32: bytes([number]) * 90}})
        os._exit(0)  # no close: nothing is merged
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, cwd=Path(__file__).parents[1])
    assert journal_records(tmp_path) == 3

    store = Store(tmp_path)
    assert [store.state_get(bytes([n]) * 32) for n in range(1, 4)] == [
        bytes([n]) * 90 for n in range(1, 4)
    ]
    commit(store, 4, {b"\x04" * 32: b"four"})
    store.close()
    assert journal_records(tmp_path) == 0
    store = Store(tmp_path)
    assert store.state_get(b"\x02" * 32) == b"\x02" * 90
    assert store.state_get(b"\x04" * 32) == b"four"
    store.close()


def test_readers_never_miss_state_while_merges_run(tmp_path):
    store = Store(tmp_path)
    committed: list[bytes] = []
    missing: list[bytes] = []
    done = threading.Event()

    def read_all_the_time() -> None:
        while not done.is_set():
            for key in list(committed):
                if store.state_get(key) is None:
                    missing.append(key)

    reader = threading.Thread(target=read_all_the_time)
    reader.start()
    try:
        for number in range(1, 4 * MERGE_EVERY):
            state = random_state(5)
            commit(store, number, state)
            committed.extend(state)
    finally:
        done.set()
        reader.join()
        store.close()
    assert missing == []


def test_a_data_dir_with_state_inside_chain_lmdb_is_moved_on_open(tmp_path):
    state = random_state(300)
    old = lmdb.open(str(tmp_path / "chain.lmdb"), max_dbs=8)
    with old.begin(write=True) as txn:
        table = old.open_db(b"state", txn=txn)
        for key, value in state.items():
            txn.put(key, value, db=table)
    old.close()

    store = Store(tmp_path)
    assert all(store.state_get(key) == value for key, value in state.items())
    store.close()
    env = lmdb.open(str(tmp_path / "chain.lmdb"), max_dbs=16, readonly=True, lock=False)
    with env.begin() as txn:
        assert txn.cursor().get(b"state") is None  # the old table is gone
    env.close()


def test_a_merger_that_cannot_write_stops_commits_at_the_backlog(tmp_path):
    store = Store(tmp_path)
    store.state_env.close()  # a node table that refuses writes, as a full disk would
    store.state_env = lmdb.open(str(tmp_path / "state.lmdb"), readonly=True)
    committed = 0
    with pytest.raises(lmdb.Error):
        for number in range(1, MERGE_BACKLOG + 10):
            commit(store, number, random_state(2))
            committed = number
    assert committed == MERGE_BACKLOG  # the next commit refused, nothing of it written
    with store.env.begin() as txn:
        assert txn.stat(store.tables["journal"])["entries"] == MERGE_BACKLOG
    assert store.head_hash() == block(MERGE_BACKLOG, {}).hash


def test_one_process_at_a_time_owns_a_data_dir(tmp_path):
    store = Store(tmp_path)
    commit(store, 1, {b"\x01" * 32: b"one"})
    with pytest.raises(StoreError, match=f"in use by another process \\(pid {os.getpid()}\\)"):
        Store(tmp_path)
    assert store.state_get(b"\x01" * 32) == b"one"  # the owner is untouched
    store.close()

    store = Store(tmp_path)  # closed: free again
    assert store.head_hash() == block(1, {}).hash
    store.close()


def test_a_reader_opens_a_data_dir_beside_its_owner_and_sees_its_state(tmp_path):
    owner = Store(tmp_path)
    commit(owner, 1, {b"\x01" * 32: b"one"})  # journaled, not merged yet
    script = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        sys.path[:0] = {sys.path!r}
        import lmdb
        from tests.test_storage import commit
        from chain.storage.store import Store
        reader = Store(Path({str(tmp_path)!r}), readonly=True)
        print(reader.head_hash().hex(), reader.state_get(bytes([1]) * 32))
        try:
            commit(reader, 2, {{}})
        except lmdb.ReadonlyError:
            print("read-only")
        reader.close()
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parents[1],
    )
    assert result.stdout.split() == [block(1, {}).hash.hex(), "b'one'", "read-only"], result
    commit(owner, 2, {b"\x02" * 32: b"two"})  # the owner goes on
    owner.close()
    assert journal_records(tmp_path) == 0


def test_a_data_dir_is_free_again_once_its_owner_is_killed(tmp_path):
    owner = subprocess.Popen(
        [sys.executable, "-c", f"from pathlib import Path\nfrom chain.storage.store import Store\n"
         f"store = Store(Path({str(tmp_path)!r}))\nprint('open', flush=True)\ninput()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[1],
    )  # fmt: skip
    try:
        assert owner.stdout.readline() == "open\n"
        with pytest.raises(StoreError, match=f"pid {owner.pid}"):
            Store(tmp_path)
    finally:
        owner.kill()
        owner.wait()
    Store(tmp_path).close()
