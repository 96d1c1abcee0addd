"""A model whose results need two attestations, served by three executors: the builder
runs each job on a sidecar of every executor, delivers once two agree, and goes on when
one executor's sidecar is down (DESIGN section 6 "Async jobs", issue 14)."""

import json
import os
import signal
import subprocess
import sys

import pytest
from ai_chain import (
    DEV_EXECUTOR,
    DEV_EXECUTOR_KEY,
    DEV_GENESIS,
    Wallet,
    assert_follower_agrees,
    calldata,
    shut_down,
    start_follower,
    wait_until,
)
from eth_keys import keys
from eth_utils import keccak
from jobs_chain import LLM_ID, QUESTIONS, asked_job, deploy_chat, messages, settled
from nodes import DEV_KEYS, REPO, NodeProcess, free_port, rpc

from chain.genesis import complete_genesis
from sidecars.keys import write_key

K2 = keys.PrivateKey(keccak(b"sibyl tests: quorum executor K2"))
K4 = keys.PrivateKey(keccak(b"sibyl tests: quorum executor K4"))
DEV_LLM = REPO / "genesis" / "models" / "dev-llm"


def address(key: keys.PrivateKey) -> str:
    return "0x" + key.public_key.to_canonical_address().hex()


@pytest.fixture
def remote_sidecar(tmp_path):
    """K4's LLM sidecar, run by the test (the node only attaches to it), so the test can
    take it down."""
    write_key(tmp_path / "k4.key", K4)
    port = free_port()
    command = [
        sys.executable, "-m", "chain.cmd.cli", "sidecar", "serve", "--runtime", "llm",
        "--model", str(DEV_LLM), "--port", str(port), "--executor-key", str(tmp_path / "k4.key"),
    ]  # fmt: skip
    with open(tmp_path / "k4-sidecar.log", "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
    yield process, f"127.0.0.1:{port}"
    if process.poll() is None:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(10)


def test_a_quorum_of_executors_signs_each_answer_and_one_executor_down_stops_nothing(
    tmp_path, remote_sidecar
):
    genesis = json.loads(DEV_GENESIS.read_text())
    genesis["sibyl"]["executors"] += [
        {"address": address(key), "capabilities": ["llm"], "stake": "0x0"} for key in (K2, K4)
    ]
    for model in genesis["sibyl"]["models"]:
        if model["id"] == "0x" + LLM_ID.hex():
            model["quorum"] = 2
    genesis_file = tmp_path / "genesis.json"
    genesis_file.write_text(json.dumps(complete_genesis(json.dumps(genesis).encode())))
    write_key(tmp_path / "k2.key", K2)
    k4_process, k4_address = remote_sidecar
    config = tmp_path / "sibyl.toml"
    config.write_text(
        "\n".join(
            f'[[sidecars]]\nname = "{name}"\nruntime = "llm"\nmodel = "{DEV_LLM}"\n'
            f'executor_key = "{key}"\n'
            for name, key in (("llm-dev", DEV_EXECUTOR_KEY), ("llm-k2", tmp_path / "k2.key"))
        )
        + f'\n[[sidecars]]\nname = "llm-k4"\naddress = "{k4_address}"\nruntime = "llm"\n'
    )
    producer = NodeProcess(
        tmp_path / "producer",
        ["--dev", "--genesis", str(genesis_file), "--config", str(config),
         "--sidecars", "process", "--block-time", "0"],
    ).start(timeout=180)  # fmt: skip
    follower = start_follower(tmp_path / "follower", producer.url, "--genesis", str(genesis_file))
    try:
        w3 = producer.w3()
        wallet = Wallet(w3, DEV_KEYS[7])
        chat = deploy_chat(wallet)
        wait_until(
            lambda: len({s["executor"] for s in producer_sidecars(producer) if s["healthy"]}) == 3,
            "three healthy LLM executors",
            timeout=120,
        )
        signers_seen = []
        for question in ("who wrote hamlet ?", "what do bees make ?"):
            if signers_seen:  # the second question: K4's sidecar is gone
                k4_process.send_signal(signal.SIGKILL)
                k4_process.wait(10)
            receipt = wallet.send(chat.address, calldata(chat, "ask", messages(question), 16, 30))
            job_id = asked_job(chat, receipt)
            job = wait_until(lambda j=job_id: settled(producer.url, j), "the answer", timeout=120)
            assert job["status"] == "delivered"
            assert len(set(job["signers"])) == 2
            assert chat.functions.answers(job_id).call()[1] == QUESTIONS[question]
            signers_seen.append(set(job["signers"]))
        assert signers_seen[1] == {DEV_EXECUTOR, address(K2)}
        assert_follower_agrees(producer, follower)
    finally:
        shut_down(follower)
        shut_down(producer)


def producer_sidecars(producer: NodeProcess) -> list[dict]:
    return rpc(producer.url, "sibyl_sidecars")["result"]
