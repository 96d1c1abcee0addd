"""Any builder finishes a job (DESIGN section 6 "Async jobs", issue 14), on real node
processes, real sidecar processes and web3.py.

A producer with no LLM sidecar creates jobs; a follower that has the LLM sidecar imports
its blocks and runs none of the jobs. The producer stops, a consensus client asks the
follower to build (engine_forkchoiceUpdated with payload attributes), and the follower,
without a restart, runs the pending jobs on its sidecar and delivers each of them once.
Then a reorg replaces the block that carried a delivery with one that does not: the job
is pending again on the canonical chain, and the builder delivers it again, once.
"""

import time

import pytest
from ai_chain import (
    Wallet,
    calldata,
    head,
    hexstr,
    receipts_of,
    send_together,
    shut_down,
    start_producer,
    wait_until,
)
from hexbytes import HexBytes
from jobs_chain import JOBS, QUESTIONS, asked_job, deploy_chat, get_job, messages
from nodes import DEV_KEYS, NodeProcess, rpc
from test_engine_api import SECRET, build_block, engine
from web3 import Web3

from chain.ai.delivery import DELIVERY_TX_TYPE
from chain.ai.jobs import SETTLED

JOBS_ADDRESS = Web3.to_checksum_address(JOBS)
SETTLED_TOPIC = HexBytes(SETTLED.to_bytes(32, "big"))


@pytest.fixture
def jwt_file(tmp_path):
    path = tmp_path / "jwt.hex"
    path.write_text(SECRET.hex())
    return path


def next_block(node: NodeProcess, parent: dict, seconds: int = 1) -> dict:
    """What a consensus client does each slot: build a payload on ``parent``, validate
    it, and make it the head; returns the payload."""
    timestamp = max(parent["timestamp"] + seconds, int(time.time()))
    payload = build_block(node, parent["hash"].to_0x_hex(), timestamp)["executionPayload"]
    status = engine(node, "engine_newPayloadV4", [payload, [], "0x" + "00" * 32, []])
    assert status["result"]["status"] == "VALID", status
    select(node, payload["blockHash"])
    return payload


def select(node: NodeProcess, block_hash: str) -> None:
    state = {"headBlockHash": block_hash, "safeBlockHash": block_hash,
             "finalizedBlockHash": block_hash}  # fmt: skip
    reply = engine(node, "engine_forkchoiceUpdatedV3", [state, None])["result"]
    assert reply["payloadStatus"]["status"] == "VALID", reply


def build_until(node: NodeProcess, done, what: str, timeout: float = 120) -> None:
    """Build a block every half second until ``done()``."""
    w3 = node.w3()
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        next_block(node, w3.eth.get_block("latest"))
        time.sleep(0.5)


def settlements(w3: Web3, job_id: bytes) -> list:
    """The JobSettled logs of ``job_id`` on the canonical chain."""
    logs = w3.eth.get_logs({"fromBlock": 0, "toBlock": "latest", "address": JOBS_ADDRESS,
                            "topics": [SETTLED_TOPIC, hexstr(job_id)]})  # fmt: skip
    return list(logs)


def delivered(url: str, job_id: bytes) -> bool:
    job = get_job(url, job_id)
    return job is not None and job["status"] == "delivered"


def promoted_follower(tmp_path, jwt_file, questions: list[str]):
    """A producer with no LLM sidecar asks ``questions`` through AIChat; a follower with
    the LLM sidecar imports the blocks; the producer stops. Returns the follower (which
    no one has asked to build yet), the chat contract on it, and the job ids."""
    producer = start_producer(tmp_path / "producer", "--sidecars", "none")
    try:
        follower = NodeProcess(
            tmp_path / "follower",
            ["--dev", "--follow", producer.url, "--sidecars", "process",
             "--jwt-secret", str(jwt_file)],
        ).start(timeout=180)  # fmt: skip
        wallet = Wallet(producer.w3(), DEV_KEYS[7])
        chat = deploy_chat(wallet)
        asks = [wallet.sign(chat.address, calldata(chat, "ask", messages(q), 16, 200))
                for q in questions]  # fmt: skip
        receipts = receipts_of(producer.w3(), send_together(producer.url, asks))
        job_ids = [asked_job(chat, r) for r in receipts]
        top = head(producer.url)
        wait_until(lambda: head(follower.url) >= top, "the follower to import the asks")
    finally:
        shut_down(producer)  # its chain ends with the jobs pending, and no one builds
    chat = follower.w3().eth.contract(address=chat.address, abi=chat.abi)
    return follower, chat, job_ids


def test_a_follower_promoted_to_builder_delivers_the_jobs_pending_exactly_once(tmp_path, jwt_file):
    questions = list(QUESTIONS)[:3]
    follower, chat, job_ids = promoted_follower(tmp_path, jwt_file, questions)
    try:
        pending = {j["id"] for j in rpc(follower.url, "sibyl_pendingJobs")["result"]}
        assert pending == {hexstr(j) for j in job_ids}
        assert "job submitted" not in follower.log()  # a follower runs no job

        build_until(
            follower,
            lambda: all(delivered(follower.url, j) for j in job_ids),
            "the promoted follower to deliver the answers",
        )
        w3 = follower.w3()
        for job_id, question in zip(job_ids, questions, strict=True):
            assert chat.functions.answers(job_id).call()[1] == QUESTIONS[question]
            assert len(settlements(w3, job_id)) == 1, "each job settles once"
        assert rpc(follower.url, "sibyl_pendingJobs")["result"] == []
        for _ in range(3):  # and later blocks deliver none of them again
            next_block(follower, w3.eth.get_block("latest"))
        assert all(len(settlements(w3, j)) == 1 for j in job_ids)
    finally:
        shut_down(follower)


def test_a_delivery_reorged_out_is_delivered_again_once_on_the_new_chain(tmp_path, jwt_file):
    """Block D delivers job J; the consensus client then picks D', a sibling of D built
    without the delivery. J is pending again at D', and the builder delivers it again."""
    question = "who wrote hamlet ?"
    node, chat, (job_id,) = promoted_follower(tmp_path, jwt_file, [question])
    try:
        w3 = node.w3()
        build_until(node, lambda: delivered(node.url, job_id), "the first delivery")
        (first,) = settlements(w3, job_id)
        carrier = w3.eth.get_block(first.blockHash)
        parent = w3.eth.get_block(carrier.parentHash)

        # the consensus client reorgs: D' on D's parent, then the chain goes on from D'
        sibling = next_block(node, parent, seconds=2)
        assert sibling["blockHash"] != carrier.hash.to_0x_hex()
        assert not any(HexBytes(tx)[0] == DELIVERY_TX_TYPE for tx in sibling["transactions"])
        assert settlements(w3, job_id) == []
        assert get_job(node.url, job_id)["status"] == "pending"
        build_until(node, lambda: delivered(node.url, job_id), "the job delivered again")
        (again,) = settlements(w3, job_id)
        assert again.blockNumber > int(sibling["blockNumber"], 16)
        assert chat.functions.answers(job_id).call()[1] == QUESTIONS[question]
        for _ in range(3):
            next_block(node, w3.eth.get_block("latest"))
        assert len(settlements(w3, job_id)) == 1, "delivered once on the canonical chain"
        assert "job pending again after a reorg" in node.log()
    finally:
        shut_down(node)
