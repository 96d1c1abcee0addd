"""A batch of writes applied in one pass (chain.trie.batch) gives exactly the trie
py-trie builds by setting and deleting the same keys one by one: the same root, and
every key readable from it; and the node's account database, whose storage applies its
writes that way, agrees with py-evm's on every root and read. A wrong node here would
be a wrong state root."""

import random

import pytest
from eth.db.account import AccountDB
from eth.db.atomic import AtomicDB
from trie import HexaryTrie
from trie.constants import BLANK_NODE_HASH

from chain.trie.batch import apply_writes
from chain.vm import SibylAccountDB


def pytrie_after(items: dict[bytes, bytes], writes: dict[bytes, bytes]) -> bytes:
    trie = HexaryTrie({})
    for key, value in items.items():
        trie[key] = value
    for key, value in writes.items():
        if value:
            trie[key] = value
        else:
            del trie[key]
    return trie.root_hash


def check(items: dict[bytes, bytes], writes: dict[bytes, bytes]) -> None:
    db: dict[bytes, bytes] = {}
    trie = HexaryTrie(db)
    for key, value in items.items():
        trie[key] = value
    root = apply_writes(db, trie.root_hash, writes)
    assert root == pytrie_after(items, writes)
    after = {**items, **writes}
    reader = HexaryTrie(db, root)
    for key, value in after.items():
        assert reader.get(key) == value


def random_value(rng: random.Random) -> bytes:
    return rng.randbytes(rng.choice([1, 1, 2, 5, 32, 40]))


def key_families(rng: random.Random) -> list[list[bytes]]:
    hashed = [rng.randbytes(32) for _ in range(400)]
    # 32-byte keys sharing long prefixes: deep extensions and leaves embedded in parents
    stem = rng.randbytes(28)
    close = [stem + rng.randbytes(4) for _ in range(60)] + [stem[:-1] + rng.randbytes(5)]
    # keys of any length, some prefixes of others: values held by branches
    ragged = [rng.randbytes(rng.randint(1, 4)) for _ in range(120)]
    return [hashed, close, ragged]


@pytest.mark.parametrize("seed", range(8))
def test_batches_match_pytrie_one_write_at_a_time(seed):
    rng = random.Random(seed)
    for keys in key_families(rng):
        for _ in range(12):
            present = rng.sample(keys, rng.randint(0, len(keys)))
            items = {key: random_value(rng) for key in present}
            touched = rng.sample(keys, rng.randint(1, min(len(keys), 40)))
            writes = {key: random_value(rng) if rng.random() < 0.6 else b"" for key in touched}
            check(items, writes)


def test_deleting_everything_leaves_the_empty_trie():
    rng = random.Random(9)
    items = {rng.randbytes(32): random_value(rng) for _ in range(50)}
    db: dict[bytes, bytes] = {}
    trie = HexaryTrie(db)
    for key, value in items.items():
        trie[key] = value
    assert apply_writes(db, trie.root_hash, dict.fromkeys(items, b"")) == BLANK_NODE_HASH


def test_writes_to_an_empty_trie_and_no_op_deletes():
    check({}, {b"\x01" * 32: b"\x01"})
    check({}, {b"\x01" * 32: b""})
    check({b"\x01" * 32: b"\x05"}, {b"\x02" * 32: b""})
    check({b"\x01" * 32: b"\x05"}, {b"\x01" * 32: b"\x05"})


def run_accounts(account_db_class: type, seed: int) -> list:
    """Random storage work on an account database: writes, zeroed slots, cleared
    storage, checkpoints kept and reverted, state roots taken and persisted; returns
    every root and every read along the way."""
    rng = random.Random(seed)
    accounts = account_db_class(AtomicDB())
    addresses = [bytes([i]) * 20 for i in range(1, 4)]
    for address in addresses:
        accounts.set_balance(address, 1)
    seen, checkpoints, cleared = [], [], set()
    for _ in range(400):
        address, slot = rng.choice(addresses), rng.randrange(60)
        roll = rng.random()
        if not checkpoints:
            cleared.clear()
        if roll < 0.55:
            accounts.set_storage(address, slot, rng.choice([0, 1, rng.randrange(2**256)]))
        elif roll < 0.58 and address not in cleared:
            accounts.delete_storage(address)
            if checkpoints:  # py-evm reverts across one clearing of an account, no more
                cleared.add(address)
        elif roll < 0.68:
            checkpoints.append(accounts.record())
        elif roll < 0.76 and checkpoints:
            accounts.discard(checkpoints.pop())
        elif roll < 0.82 and checkpoints:
            accounts.commit(checkpoints.pop())
        elif roll < 0.9:
            seen.append(accounts.get_storage(address, slot))
        elif checkpoints:  # roots are taken between transactions, with none open
            continue
        elif roll < 0.95:
            seen.append(accounts.make_state_root())
        else:
            accounts.persist()
            seen.append(accounts.state_root)
    return seen


@pytest.mark.parametrize("seed", range(6))
def test_the_nodes_account_database_agrees_with_pyevms(seed):
    assert run_accounts(SibylAccountDB, seed) == run_accounts(AccountDB, seed)
