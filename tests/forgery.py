"""What the forgery tests share (tests/test_ai_forgery.py, test_ai_prove.py,
test_jobs_forgery.py, test_zk_prove_jobs.py): a producer's genuine block decoded as a
follower receives it, so that a test can forge a variant of it; a fake peer and a
follower with no sidecar behind it; the attack (serve the variant in place of the
genuine block, read the follower's precise reason for rejecting it); and the follower
importing the genuine chain once every forgery has been refused."""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ai_chain import (
    DEV_EXECUTOR_KEY,
    DEV_MODELS,
    head,
    shut_down,
    start_follower,
    start_producer,
    wait_until,
)
from eth_keys import keys
from fake_peer import FakePeer, rejection, with_transactions
from nodes import NodeProcess, rpc

from chain.ai.attested import AttestedTransaction, SpcResult, inner_transaction
from chain.ai.delivery import DeliveryTransaction
from chain.storage import codec
from chain.vm import ChainConfig
from sidecars import zk
from sidecars.attestation import SECP256K1_N

DEV_KEY = keys.PrivateKey(bytes.fromhex(DEV_EXECUTOR_KEY.read_text().strip().removeprefix("0x")))
ZK_MODEL = DEV_MODELS / "zk-mlp"


# the genuine blocks, and what a forger changes in them


def block_at(producer: NodeProcess, config: ChainConfig, number: int):
    """The producer's block ``number``, decoded from the encoding a follower receives."""
    raw = rpc(producer.url, "debug_getRawBlock", [hex(number)])["result"]
    return codec.decode_any_block(config, bytes.fromhex(raw[2:]))


def ai_transactions(block) -> list[int]:
    """The indexes of the block's transactions that carry AI results (0x13)."""
    return [i for i, tx in enumerate(block.transactions) if isinstance(tx, AttestedTransaction)]


def with_results(block, index: int, results: list[SpcResult]):
    """The block whose transaction ``index`` carries ``results`` instead of its own."""
    transactions = list(block.transactions)
    transactions[index] = AttestedTransaction(transactions[index].inner, tuple(results))
    return with_transactions(block, transactions)


def delivery_in(block, job_id: bytes) -> tuple[int, DeliveryTransaction]:
    """The index of the block's one delivery of ``job_id``, and the delivery."""
    ((index, delivery),) = [
        (i, inner_transaction(tx))
        for i, tx in enumerate(block.transactions)
        if isinstance(inner_transaction(tx), DeliveryTransaction)
        and inner_transaction(tx).job_id == job_id
    ]
    return index, delivery


def random_signature() -> bytes:
    """Well-formed (r, s in range, low s, v in {0, 1}) but made by nobody."""
    r = int.from_bytes(os.urandom(32), "big") % (SECP256K1_N - 1) + 1
    s = int.from_bytes(os.urandom(32), "big") % (SECP256K1_N // 2) + 1
    return r.to_bytes(32, "big") + s.to_bytes(32, "big") + b"\x00"


def changed_output(output: bytes) -> bytes:
    """The same INFER output with its first value one unit higher: still valid ABI."""
    word = 3 * 32  # head (2 words), the values' length, then the first value
    value = int.from_bytes(output[word : word + 32], "big", signed=True) + 1
    return output[:word] + value.to_bytes(32, "big", signed=True) + output[word + 32 :]


def zk_model_with_other_keys(directory: Path) -> Path:
    """The dev ZK MLP's circuit set up again in ``directory`` with another (locally
    generated) SRS: other keys, whose proofs the registered verifying key refuses."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_zk_model", DEV_MODELS / "make_zk_model.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    script.build(directory)
    assert zk.verifying_key_hash(directory) != zk.verifying_key_hash(ZK_MODEL)
    return directory


# the producer, and the follower under attack


@contextmanager
def producer_on(
    datadir: Path, genesis_file: Path, config: Path | None = None
) -> Iterator[NodeProcess]:
    """A dev producer on ``genesis_file`` whose sidecars (``config``'s, or the dev ones)
    run as local processes: it makes the genuine blocks."""
    node = start_producer(
        datadir, "--genesis", str(genesis_file), *(["--config", str(config)] if config else [])
    )
    try:
        yield node
    finally:
        shut_down(node)


@contextmanager
def peer_at_genesis(producer: NodeProcess) -> Iterator[FakePeer]:
    """A fake peer of ``producer`` whose chain ends at genesis: its follower waits there
    until a test serves it more."""
    fake = FakePeer(producer.url)
    fake.serve(0)
    try:
        yield fake
    finally:
        fake.close()


@contextmanager
def follower_of(datadir: Path, genesis_file: Path, peer: FakePeer) -> Iterator[NodeProcess]:
    """A follower with no sidecar on ``genesis_file``, importing what ``peer`` serves."""
    node = start_follower(datadir, peer.url, "--genesis", str(genesis_file))
    try:
        yield node
    finally:
        shut_down(node)


def attack(peer: FakePeer, follower: NodeProcess, block) -> str:
    """Serve ``block`` to the follower in place of the genuine one; return the reason it
    logs for rejecting it, once it has, and check it kept its head."""
    number = block.header.block_number
    peer.serve(number - 1)
    wait_until(lambda: head(follower.url) == number - 1, f"the follower to reach {number - 1}")
    peer.serve(number, block)
    reason = wait_until(
        lambda: rejection(follower, number, block.header.hash),
        f"the follower to reject forged block {number}",
    )
    assert head(follower.url) == number - 1
    return reason


def assert_follower_imports_the_genuine_chain(
    producer: NodeProcess,
    peer: FakePeer,
    follower: NodeProcess,
    fields: tuple[str, ...] = ("hash", "stateRoot", "receiptsRoot"),
) -> None:
    """Serve the producer's whole chain: the follower, having refused every forgery,
    imports each genuine block with the producer's ``fields``."""
    top = head(producer.url)
    peer.serve(top)
    wait_until(lambda: head(follower.url) == top, f"the follower to import up to {top}")
    for number in range(1, top + 1):
        ours = rpc(producer.url, "eth_getBlockByNumber", [hex(number), False])["result"]
        theirs = rpc(follower.url, "eth_getBlockByNumber", [hex(number), False])["result"]
        for key in fields:
            assert ours[key] == theirs[key], f"block {number}: {key} differs"
