"""The adversarial corpus of async jobs: blocks whose deliveries or expiries were forged,
and the follower that rejects every one of them with its precise reason, keeping its head
(DESIGN section 6 "Async jobs", issue 14).

A producer on a test genesis (executor K2 with ``llm``, K3 without it; a second LLM
model, served by no one, that needs two attestations) makes genuine blocks: a question to
the dev LLM answered by a delivery, and a question to the quorum-2 model that expires. A
fake peer serves that chain to a follower with no sidecar, with a forged variant at the
height under attack (see tests/test_ai_forgery.py for the sync calls' corpus).
"""

import json
import os
import re

import pytest
from ai_chain import (
    DEV_GENESIS,
    Wallet,
    calldata,
    hexstr,
    wait_until,
)
from eth_keys import keys
from eth_utils import keccak
from fake_peer import REJECTED, with_transactions
from forgery import (
    DEV_KEY,
    assert_follower_imports_the_genuine_chain,
    attack,
    block_at,
    delivery_in,
    follower_of,
    peer_at_genesis,
    producer_on,
    random_signature,
)
from jobs_chain import LLM_ID, asked_job, deploy_chat, get_job, messages, settled
from nodes import CHAIN_ID, DEV_KEYS, NodeProcess

from chain.ai import jobs
from chain.ai.attested import inner_transaction
from chain.ai.delivery import DeliveryTransaction
from chain.genesis import complete_genesis, load_genesis
from sidecars.abi import LLM_ADDRESS, encode_llm_output
from sidecars.attestation import attestation_digest, sign_digest
from sidecars.upstream import upstream_model_id

K2 = keys.PrivateKey(keccak(b"sibyl tests: executor K2, llm"))
K3 = keys.PrivateKey(keccak(b"sibyl tests: executor K3, no llm"))
OUTSIDER = keys.PrivateKey(keccak(b"sibyl tests: a key no registry knows"))
QUORUM2_ID = upstream_model_id("nobody-serves-it@1")
EXPIRY_TTL = 12


def address(key: keys.PrivateKey) -> str:
    return "0x" + key.public_key.to_canonical_address().hex()


def write_genesis(path):
    genesis = json.loads(DEV_GENESIS.read_text())
    genesis["sibyl"]["executors"] += [
        {"address": address(K2), "capabilities": ["llm"], "stake": "0x0"},
        {"address": address(K3), "capabilities": ["infer"], "stake": "0x0"},
    ]
    (llm,) = [m for m in genesis["sibyl"]["models"] if m["kind"] == "llm"]
    genesis["sibyl"]["models"].append(
        {**llm, "id": hexstr(QUORUM2_ID), "name": "quorum-2", "quorum": 2}
    )
    path.write_text(json.dumps(complete_genesis(json.dumps(genesis).encode()), indent=2))
    return path


class Chain:
    """The genuine chain: job ``expired`` (the quorum-2 model, expired at its deadline)
    and, a block later, job ``answered`` (dev LLM, delivered), with their inputs."""

    def __init__(self, producer: NodeProcess) -> None:
        w3 = producer.w3()
        wallet = Wallet(w3, DEV_KEYS[0])
        chat = deploy_chat(wallet)
        lonely = deploy_chat(wallet, QUORUM2_ID)
        ask = wallet.send(
            lonely.address, calldata(lonely, "ask", messages("say hello ."), 8, EXPIRY_TTL)
        )
        self.expired = asked_job(lonely, ask)
        ask = wallet.send(chat.address, calldata(chat, "ask", messages("say hello ."), 8, 40))
        self.answered = asked_job(chat, ask)
        self.answered_created = ask.blockNumber
        url = producer.url
        wait_until(lambda: settled(url, self.answered), "the answer", timeout=90)
        wait_until(lambda: settled(url, self.expired), "the expiry", timeout=90)
        wallet.send(wallet.address, gas=21_000)  # a block after the last deadline
        self.answer = get_job(url, self.answered)
        self.expiry = get_job(url, self.expired)
        assert (self.answer["status"], self.expiry["status"]) == ("delivered", "expired")
        self.delivered_at = int(self.answer["settledBlock"], 16)
        self.deadline = int(self.expiry["deadline"], 16)
        # the attacks go up the chain (a follower never goes back): all of them fit
        assert self.answered_created < self.delivered_at < self.deadline - 2
        self.input_of = {
            self.answered: bytes.fromhex(self.answer["input"][2:]),
            self.expired: bytes.fromhex(self.expiry["input"][2:]),
        }


@pytest.fixture(scope="module")
def chain_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("jobs-forgery")


@pytest.fixture(scope="module")
def genesis_file(chain_dir):
    return write_genesis(chain_dir / "genesis.json")


@pytest.fixture(scope="module")
def producer(chain_dir, genesis_file):
    with producer_on(chain_dir / "producer", genesis_file) as node:
        yield node


@pytest.fixture(scope="module")
def genuine(producer) -> Chain:
    return Chain(producer)


@pytest.fixture(scope="module")
def peer(producer, genuine):
    with peer_at_genesis(producer) as fake:
        yield fake


@pytest.fixture(scope="module")
def follower(chain_dir, genesis_file, peer):
    with follower_of(chain_dir / "follower", genesis_file, peer) as node:
        yield node


@pytest.fixture(scope="module")
def config(genesis_file):
    return load_genesis(genesis_file).config


def signed(
    job_id: bytes, input_: bytes, output: bytes, signers: list, model_id: bytes = LLM_ID,
    chain_id: int = CHAIN_ID, context: bytes | None = None,
) -> DeliveryTransaction:  # fmt: skip
    digest = attestation_digest(
        chain_id, LLM_ADDRESS, model_id, keccak(input_), keccak(output), context or job_id
    )
    signatures = tuple(sign_digest(key, digest) for key in signers)
    return DeliveryTransaction(job_id, jobs.OK, output, signatures)


def inserted(block, position: int, *transactions):
    txs = list(block.transactions)
    txs[position:position] = transactions
    return with_transactions(block, txs)


OUTPUT = encode_llm_output("forged answer", 3, 2)


def test_follower_rejects_a_delivery_for_an_unknown_job(producer, config, genuine, peer, follower):
    block = block_at(producer, config, genuine.answered_created)
    unknown = os.urandom(32)
    forged = signed(unknown, b"anything", OUTPUT, [DEV_KEY])
    reason = attack(peer, follower, inserted(block, 0, forged))
    assert f"delivery of job 0x{unknown.hex()}: no such job" in reason


def test_follower_rejects_a_delivery_placed_after_a_user_transaction(
    producer, config, genuine, peer, follower
):
    block = block_at(producer, config, genuine.answered_created)
    (user,) = block.transactions
    forged = signed(genuine.answered, genuine.input_of[genuine.answered], OUTPUT, [DEV_KEY])
    reason = attack(peer, follower, with_transactions(block, [user, forged]))
    assert "transaction 1 is a delivery after a user transaction" in reason


@pytest.mark.parametrize(
    ("forge", "expected"),
    [
        (
            lambda g: DeliveryTransaction(g.expired, jobs.OK, OUTPUT, (random_signature(),) * 1),
            r"attestation 0: (signature does not recover|signer 0x[0-9a-f]{40} is not a reg)",
        ),
        (
            lambda g: signed(g.expired, g.input_of[g.expired], OUTPUT, [OUTSIDER], QUORUM2_ID),
            f"attestation 0: signer {address(OUTSIDER)} is not a registered executor",
        ),
        (
            lambda g: signed(g.expired, g.input_of[g.expired], OUTPUT, [K3], QUORUM2_ID),
            f"attestation 0: executor {address(K3)} is not active with the llm capability",
        ),
        (
            lambda g: signed(g.expired, g.input_of[g.expired], OUTPUT, [DEV_KEY], QUORUM2_ID),
            "1 attestations, the model needs 2",
        ),
        (
            lambda g: DeliveryTransaction(
                g.expired,
                jobs.OK,
                encode_llm_output("changed", 3, 1),
                signed(
                    g.expired, g.input_of[g.expired], OUTPUT, [DEV_KEY, K2], QUORUM2_ID
                ).signatures,
            ),  # fmt: skip
            r"attestation 0: signer 0x[0-9a-f]{40} is not a registered executor",
        ),
        (
            lambda g: signed(
                g.expired,
                g.input_of[g.expired],
                OUTPUT,
                [DEV_KEY, K2],
                QUORUM2_ID,
                context=g.answered,
            ),  # fmt: skip
            r"attestation 0: signer 0x[0-9a-f]{40} is not a registered executor",
        ),
        (
            lambda g: signed(
                g.expired, g.input_of[g.expired], OUTPUT, [DEV_KEY, K2], QUORUM2_ID, chain_id=1
            ),  # fmt: skip
            r"attestation 0: signer 0x[0-9a-f]{40} is not a registered executor",
        ),
        (
            lambda g: signed(
                g.expired, g.input_of[g.expired], OUTPUT, [DEV_KEY, DEV_KEY], QUORUM2_ID
            ),  # fmt: skip
            r"executor 0x[0-9a-f]{40} signed twice",
        ),
    ],
    ids=[
        "forged-signature",
        "unregistered-signer",
        "no-capability",
        "under-quorum",
        "output-changed",
        "other-job-id",
        "other-chain",
        "signed-twice",
    ],  # fmt: skip
)
def test_follower_rejects_a_delivery_whose_attestations_do_not_verify(
    producer, config, genuine, peer, follower, forge, expected
):
    block = block_at(producer, config, genuine.answered_created)
    reason = attack(peer, follower, inserted(block, 0, forge(genuine)))
    assert f"delivery of job 0x{genuine.expired.hex()}" in reason
    assert re.search(expected, reason), reason


def test_follower_rejects_two_deliveries_of_one_job(producer, config, genuine, peer, follower):
    block = block_at(producer, config, genuine.delivered_at)
    index, _ = delivery_in(block, genuine.answered)
    twice = inserted(block, index + 1, block.transactions[index])
    reason = attack(peer, follower, twice)
    assert f"delivery of job 0x{genuine.answered.hex()}: the job is already delivered" in reason


def test_follower_rejects_a_delivery_for_a_settled_job(producer, config, genuine, peer, follower):
    delivered = block_at(producer, config, genuine.delivered_at)
    again = delivered.transactions[delivery_in(delivered, genuine.answered)[0]]
    later = block_at(producer, config, genuine.delivered_at + 1)
    reason = attack(peer, follower, inserted(later, 0, again))
    assert f"job 0x{genuine.answered.hex()}: the job is already delivered" in reason


def test_follower_rejects_an_expiry_before_the_deadline(producer, config, genuine, peer, follower):
    block = block_at(producer, config, genuine.deadline - 1)
    early = DeliveryTransaction(genuine.expired, jobs.EXPIRED)
    reason = attack(peer, follower, inserted(block, 0, early))
    assert (
        f"delivery of job 0x{genuine.expired.hex()}: an expiry before the job's deadline block "
        f"{genuine.deadline}"
    ) in reason


def test_follower_rejects_a_block_missing_its_expiry(producer, config, genuine, peer, follower):
    block = block_at(producer, config, genuine.deadline)
    assert inner_transaction(block.transactions[0]) == DeliveryTransaction(
        genuine.expired, jobs.EXPIRED
    )
    reason = attack(peer, follower, with_transactions(block, list(block.transactions[1:])))
    assert (
        f"transaction 0 must be the expiry of job 0x{genuine.expired.hex()}, due at this block"
    ) in reason


def test_follower_rejects_a_delivery_for_an_expired_job(producer, config, genuine, peer, follower):
    late = signed(
        genuine.expired, genuine.input_of[genuine.expired], OUTPUT, [DEV_KEY, K2], QUORUM2_ID
    )
    at_deadline = block_at(producer, config, genuine.deadline)
    reason = attack(peer, follower, inserted(at_deadline, 1, late))
    assert f"job 0x{genuine.expired.hex()}: the job is already expired" in reason
    after = block_at(producer, config, genuine.deadline + 1)
    reason = attack(peer, follower, inserted(after, 0, late))
    assert f"job 0x{genuine.expired.hex()}: the job is already expired" in reason


def test_follower_imports_the_genuine_chain_after_every_forgery(producer, genuine, peer, follower):
    assert_follower_imports_the_genuine_chain(producer, peer, follower, ("hash", "stateRoot"))
    for job_id in (genuine.answered, genuine.expired):
        assert get_job(follower.url, job_id) == get_job(producer.url, job_id)
    assert any(REJECTED.search(line) for line in follower.log().splitlines())
