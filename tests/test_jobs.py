"""Async jobs end to end (DESIGN section 6 "Async jobs", issue 14), on real node
processes, real sidecar processes and web3.py.

AIChat (contracts/examples/AIChat.sol) asks the bundled dev LLM through LLM (0x…0802):
the call returns a job id at once, the producer's LLM sidecar runs the model, and the
answer arrives in a later block as a delivery transaction (0x12) that calls the
contract back from JOBS. A follower with no sidecar imports every block with the same
roots and receipts and reports the same jobs. A producer with no LLM sidecar lets jobs
expire in exactly their deadline block, with a callback of status 3 and the fee
refunded; bad requests fail the call and create no job.
"""

import asyncio
import json
import urllib.request

import aiohttp
import pytest
from ai_chain import (
    GWEI,
    TORCH_ID,
    Wallet,
    assert_follower_agrees,
    calldata,
    head,
    hexstr,
    receipts_of,
    send_together,
    shut_down,
    start_follower,
    start_producer,
    wait_until,
)
from eth_abi import decode as abi_decode
from eth_utils import keccak
from hexbytes import HexBytes
from jobs_chain import (
    FUND,
    JOBS,
    LLM_ID,
    QUESTIONS,
    asked_job,
    deploy_chat,
    get_job,
    messages,
    settled,
)
from nodes import DEV_KEYS, REPO, free_port, rpc
from web3 import Web3
from web3.logs import DISCARD

from chain.ai.jobs import SETTLED

JOBS_ADDRESS = Web3.to_checksum_address(JOBS)
SETTLED_TOPIC = HexBytes(SETTLED.to_bytes(32, "big"))


@pytest.fixture(scope="module")
def metrics_port():
    return free_port()


@pytest.fixture(scope="module")
def producer(tmp_path_factory, metrics_port):
    node = start_producer(
        tmp_path_factory.mktemp("jobs") / "producer", "--metrics-port", str(metrics_port)
    )
    yield node
    shut_down(node)


@pytest.fixture(scope="module")
def follower(tmp_path_factory, producer):
    node = start_follower(tmp_path_factory.mktemp("jobs-follower") / "data", producer.url)
    yield node
    shut_down(node)


@pytest.fixture(scope="module")
def w3(producer):
    return producer.w3()


def test_answers_arrive_by_callback_in_later_blocks_and_a_follower_agrees(producer, follower, w3):
    wallet = Wallet(w3, DEV_KEYS[0])
    chat = deploy_chat(wallet)
    questions = list(QUESTIONS)
    together = [
        wallet.sign(chat.address, calldata(chat, "ask", messages(q), 16, 20)) for q in questions[:3]
    ]
    receipts = receipts_of(w3, send_together(producer.url, together))
    assert len({r.blockNumber for r in receipts}) == 1, "three questions in one block"
    later = wallet.send(chat.address, calldata(chat, "ask", messages(questions[3]), 16, 20))
    receipts.append(later)
    job_ids = [asked_job(chat, r) for r in receipts]
    raw = [rpc(producer.url, "eth_getTransactionReceipt", [hexstr(r.transactionHash)])["result"]
           for r in receipts]  # fmt: skip
    assert [r["jobs"] for r in raw] == [[hexstr(j)] for j in job_ids]

    for job_id, receipt, question in zip(job_ids, receipts, questions, strict=True):
        job = wait_until(lambda j=job_id: settled(producer.url, j), "the answer", timeout=90)
        assert job["status"] == "delivered"
        assert int(job["settledBlock"], 16) > receipt.blockNumber
        answer = chat.functions.answers(job_id).call()
        assert answer[0] == 1 and answer[1] == QUESTIONS[question]
        delivery = rpc(producer.url, "eth_getTransactionReceipt", [job["deliveryTransaction"]])
        delivery = delivery["result"]
        assert delivery["type"] == "0x12" and delivery["from"] == JOBS
        assert delivery["status"] == "0x1"
        assert delivery["delivery"] == {
            "jobId": hexstr(job_id), "status": "0x1", "callbackSucceeded": True,
        }  # fmt: skip
        text, prompt_tokens, completion_tokens = abi_decode(
            ["string", "uint32", "uint32"], bytes.fromhex(job["output"][2:])
        )
        assert text == QUESTIONS[question] and completion_tokens > 0
        assert job["signers"] == ["0x67abda0f02673b98a03071cb5fbe04bc9e3e0307"]

    assert_follower_agrees(producer, follower)
    for job_id in job_ids:
        assert get_job(follower.url, job_id) == get_job(producer.url, job_id)
    assert rpc(producer.url, "sibyl_pendingJobs")["result"] == []


def test_eth_call_and_estimate_gas_return_the_job_id_and_gas_and_create_nothing(producer, w3):
    wallet = Wallet(w3, DEV_KEYS[1])
    chat = deploy_chat(wallet)
    tx = {"from": wallet.address, "to": chat.address,
          "data": hexstr(calldata(chat, "ask", messages("say hello ."), 8, 10))}  # fmt: skip
    (job_id,) = abi_decode(["bytes32"], w3.eth.call(tx))
    assert job_id != b"\x00" * 32
    gas = w3.eth.estimate_gas(tx)
    receipt = wallet.send(chat.address, bytes.fromhex(tx["data"][2:]), gas=gas)
    assert receipt.status == 1 and chat.functions.refused().call() == 0
    assert len(chat.events.Asked().process_receipt(receipt, errors=DISCARD)) == 1
    assert get_job(producer.url, job_id) is None  # the call's job was never made


@pytest.mark.parametrize(
    ("messages_json", "max_tokens", "model", "fund", "reason"),
    [
        ('[{"role": "user", "content": "hi"', 8, LLM_ID, FUND, "messagesJson is not valid JSON"),
        ('[{"role": "robot", "content": "hi"}]', 8, LLM_ID, FUND, "messagesJson[0] must be"),
        (messages("hi"), 65, LLM_ID, FUND, "maxTokens 65 above the model's 64"),
        (messages("hi"), 8, b"\x01" * 32, FUND, "is not registered for LLM"),
        (messages("hi"), 8, LLM_ID, 0, "is below the job's fee and callback gas"),
    ],
    ids=["malformed-json", "bad-role", "too-many-tokens", "unknown-model", "underfunded"],
)
def test_bad_requests_fail_the_call_and_create_no_job(
    producer, w3, messages_json, max_tokens, model, fund, reason
):
    wallet = Wallet(w3, DEV_KEYS[2])
    chat = deploy_chat(wallet, model, fund)
    receipt = wallet.send(chat.address, calldata(chat, "ask", messages_json, max_tokens, 10))
    assert receipt.status == 1 and chat.functions.refused().call() == 1
    (refusal,) = chat.events.AskRefused().process_receipt(receipt, errors=DISCARD)
    (text,) = abi_decode(["string"], bytes(refusal.args.reason)[4:])
    assert reason in text, text
    assert not any(log.address.lower() == JOBS for log in receipt.logs)
    raw = rpc(producer.url, "eth_getTransactionReceipt", [hexstr(receipt.transactionHash)])
    assert raw["result"]["jobs"] == []
    assert chat.functions.deposited().call() == fund


def test_a_reverting_callback_still_settles_the_job_and_its_receipt_says_so(producer, w3):
    wallet = Wallet(w3, DEV_KEYS[3])
    chat = deploy_chat(wallet)
    assert wallet.send(chat.address, calldata(chat, "setRefuseCallbacks", True)).status == 1
    receipt = wallet.send(chat.address, calldata(chat, "ask", messages("say hello ."), 8, 20))
    job_id = asked_job(chat, receipt)
    job = wait_until(lambda: settled(producer.url, job_id), "the delivery", timeout=90)
    assert job["status"] == "delivered"
    delivery = rpc(producer.url, "eth_getTransactionReceipt", [job["deliveryTransaction"]])
    delivery = delivery["result"]
    assert delivery["status"] == "0x0" and delivery["delivery"]["callbackSucceeded"] is False
    (settled_log,) = [log for log in delivery["logs"] if log["address"] == JOBS]
    assert settled_log["topics"][1] == hexstr(job_id)
    assert chat.functions.answers(job_id).call()[0] == 0  # the callback's writes reverted
    view = chat.functions.JOBS().call()
    jobs_contract = w3.eth.contract(address=view, abi=[{
        "type": "function", "name": "getJob", "stateMutability": "view",
        "inputs": [{"type": "bytes32", "name": "jobId"}],
        "outputs": [{"type": t, "name": f"f{i}"} for i, t in enumerate(
            ["address", "address", "bytes32", "uint8", "uint64", "uint64", "uint64"])],
    }])  # fmt: skip
    requester, precompile, model, status, created, deadline, settled_block = (
        jobs_contract.functions.getJob(job_id).call()
    )
    assert (requester, status, bytes(model)) == (chat.address, 1, LLM_ID)
    assert created == receipt.blockNumber < settled_block < deadline


def test_jobs_expire_in_exactly_their_deadline_block_with_a_refund_when_no_one_serves_them(
    tmp_path,
):
    node = start_producer(tmp_path / "producer-no-llm", "--sidecars", "none")
    follower = start_follower(tmp_path / "follower", node.url)
    try:
        w3 = node.w3()
        wallet = Wallet(w3, DEV_KEYS[4])
        chat = deploy_chat(wallet)
        before = chat.functions.deposited().call()
        receipt = wallet.send(chat.address, calldata(chat, "ask", messages("say hello ."), 8, 3))
        job_id = asked_job(chat, receipt)
        pending = rpc(node.url, "sibyl_pendingJobs")["result"]
        assert [j["id"] for j in pending] == [hexstr(job_id)]
        held = before - chat.functions.deposited().call()
        assert held > 0, "the fee and callback gas are reserved"
        job = wait_until(lambda: settled(node.url, job_id), "the expiry", timeout=60)
        assert job["status"] == "expired"
        assert int(job["settledBlock"], 16) == receipt.blockNumber + 3 == int(job["deadline"], 16)
        block = w3.eth.get_block(receipt.blockNumber + 3)
        assert block.transactions[0] == HexBytes(job["deliveryTransaction"])
        answer = chat.functions.answers(job_id).call()
        assert answer[0] == 3 and answer[4] == receipt.blockNumber + 3
        expiry = w3.eth.get_transaction_receipt(block.transactions[0])
        callback_cost = expiry.gasUsed * GWEI  # at the asking transaction's gas price
        gas_price = w3.eth.get_transaction(receipt.transactionHash).gasPrice
        assert chat.functions.deposited().call() == before - expiry.gasUsed * gas_price
        assert callback_cost > 0
        assert_follower_agrees(node, follower)
        assert get_job(follower.url, job_id) == job
        assert head(node.url) >= receipt.blockNumber + 3
    finally:
        shut_down(follower)
        shut_down(node)


def test_jobs_pending_when_the_producer_is_killed_are_delivered_after_restart_exactly_once(
    tmp_path,
):
    """Asked while no LLM sidecar runs, then kill -9: the restarted node (now with its
    sidecars) finds the pending jobs in state and their inputs in JobCreated logs."""
    datadir = tmp_path / "producer"
    node = start_producer(datadir, "--sidecars", "none")
    try:
        w3 = node.w3()
        wallet = Wallet(w3, DEV_KEYS[5])
        chat = deploy_chat(wallet)
        questions = list(QUESTIONS)[:3]
        asks = [wallet.sign(chat.address, calldata(chat, "ask", messages(q), 16, 60))
                for q in questions]  # fmt: skip
        receipts = receipts_of(w3, send_together(node.url, asks))
        job_ids = [asked_job(chat, r) for r in receipts]
        pending = {j["id"] for j in rpc(node.url, "sibyl_pendingJobs")["result"]}
        assert pending == {hexstr(j) for j in job_ids}
        node.kill()
        node = start_producer(datadir)
        w3 = node.w3()
        chat = w3.eth.contract(address=chat.address, abi=chat.abi)
        for job_id, question in zip(job_ids, questions, strict=True):
            job = wait_until(lambda j=job_id: settled(node.url, j), "the answer", timeout=120)
            assert job["status"] == "delivered"
            assert chat.functions.answers(job_id).call()[1] == QUESTIONS[question]
        logs = w3.eth.get_logs({"fromBlock": 0, "toBlock": "latest", "address": JOBS_ADDRESS})
        settled_jobs = [bytes(log.topics[1]) for log in logs if log.topics[0] == SETTLED_TOPIC]
        assert sorted(settled_jobs) == sorted(job_ids), "each job settles once"
        assert rpc(node.url, "sibyl_pendingJobs")["result"] == []
    finally:
        shut_down(node)


def test_settlements_reach_websocket_subscribers_metrics_and_traces(producer, w3, metrics_port):
    wallet = Wallet(w3, DEV_KEYS[6])
    chat = deploy_chat(wallet)

    async def session() -> tuple[bytes, dict]:
        async with aiohttp.ClientSession() as client, client.ws_connect(producer.ws_url) as ws:
            await ws.send_json(
                {"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe", "params": ["jobSettlements"]}
            )
            subscription = (await ws.receive_json(timeout=10))["result"]
            data = calldata(chat, "ask", messages("what color is the sky ?"), 16, 20)
            receipt = await asyncio.to_thread(wallet.send, chat.address, data)
            job_id = asked_job(chat, receipt)
            while True:
                message = await ws.receive_json(timeout=60)
                assert message["params"]["subscription"] == subscription
                if message["params"]["result"]["jobId"] == hexstr(job_id):
                    return job_id, message["params"]["result"]

    job_id, notice = asyncio.run(session())
    job = get_job(producer.url, job_id)
    assert notice == {
        "jobId": hexstr(job_id), "status": "delivered", "signers": job["signers"],
        "blockNumber": job["settledBlock"], "blockHash": notice["blockHash"],
        "transactionHash": job["deliveryTransaction"],
    }  # fmt: skip
    assert chat.functions.answers(job_id).call()[1] == "the sky is blue ."

    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics") as response:
        text = response.read().decode()
    samples = dict(
        line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#")
    )
    assert int(samples['sibyl_jobs_settled_total{status="delivered"}']) >= 1
    assert int(samples["sibyl_job_latency_blocks_sum"]) >= 1
    assert "sibyl_jobs_pending" in samples

    trace = rpc(producer.url, "debug_traceTransaction",
                [job["deliveryTransaction"], {"tracer": "callTracer"}])["result"]  # fmt: skip
    assert trace["from"] == JOBS and trace["to"] == chat.address.lower()
    selector = keccak(b"onAnswer(bytes32,uint8,bytes)")[:4]
    assert trace["input"].startswith(hexstr(selector + job_id))


def test_a_callback_that_calls_infer_is_delivered_as_an_attested_transaction(
    producer, follower, w3
):
    artifact = json.loads((REPO / "tests/fixtures/JobInferProbe.json").read_text())
    wallet = Wallet(w3, DEV_KEYS[8])
    factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    deployed = wallet.send(
        None, bytes(HexBytes(factory.constructor(LLM_ID, TORCH_ID).data_in_transaction)),
        gas=3_000_000,
    )  # fmt: skip
    probe = w3.eth.contract(address=deployed.contractAddress, abi=artifact["abi"])
    assert wallet.send(probe.address, calldata(probe, "fund"), value=FUND).status == 1
    receipt = wallet.send(probe.address, calldata(probe, "ask", messages("say hello .")))
    (created,) = rpc(producer.url, "eth_getTransactionReceipt", [hexstr(receipt.transactionHash)])[
        "result"
    ]["jobs"]
    job = wait_until(lambda: settled(producer.url, bytes.fromhex(created[2:])), "the delivery")
    assert probe.functions.lastStatus().call() == 1 and probe.functions.inferred().call()
    raw = rpc(producer.url, "debug_getRawTransaction", [job["deliveryTransaction"]])["result"]
    assert raw.startswith("0x13"), "the delivery is wrapped with its INFER result"
    delivery = rpc(producer.url, "eth_getTransactionReceipt", [job["deliveryTransaction"]])
    (call,) = delivery["result"]["spcCalls"]
    assert call["address"] == "0x0000000000000000000000000000000000000800"
    assert delivery["result"]["delivery"]["jobId"] == created
    assert_follower_agrees(producer, follower)
