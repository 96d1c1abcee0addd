"""What the async-job tests share: the dev LLM's id, the AIChat example contract, and
jobs as ``sibyl_getJob`` reports them."""

import json

from ai_chain import Wallet, calldata, hexstr
from hexbytes import HexBytes
from nodes import REPO, rpc
from web3.logs import DISCARD

from chain.ai import jobs

MODELS = {m["kind"]: m for m in json.loads((REPO / "genesis/models/models.json").read_text())}
LLM_ID = bytes.fromhex(MODELS["llm"]["id"][2:])
ARTIFACT = json.loads((REPO / "contracts/build/AIChat.json").read_text())
JOBS = "0x" + jobs.JOBS.hex()
QUESTIONS = {
    "what is the capital of france ?": "paris is the capital of france .",
    "who wrote hamlet ?": "shakespeare wrote hamlet .",
    "what do bees make ?": "bees make honey .",
    "say hello .": "hello , world !",
}
FUND = 10**17


def messages(question: str) -> str:
    return json.dumps([{"role": "user", "content": question}])


def deploy_chat(wallet: Wallet, model_id: bytes = LLM_ID, fund: int = FUND):
    factory = wallet.w3.eth.contract(abi=ARTIFACT["abi"], bytecode=ARTIFACT["bytecode"])
    data = HexBytes(factory.constructor(model_id).data_in_transaction)
    receipt = wallet.send(None, bytes(data), gas=3_000_000)
    assert receipt.status == 1
    chat = wallet.w3.eth.contract(address=receipt.contractAddress, abi=ARTIFACT["abi"])
    if fund:
        assert wallet.send(chat.address, calldata(chat, "fund"), value=fund).status == 1
    return chat


def asked_job(chat, receipt) -> bytes:
    (event,) = chat.events.Asked().process_receipt(receipt, errors=DISCARD)
    return bytes(event.args.jobId)


def get_job(url: str, job_id: bytes) -> dict | None:
    return rpc(url, "sibyl_getJob", [hexstr(job_id)])["result"]


def settled(url: str, job_id: bytes) -> dict | None:
    job = get_job(url, job_id)
    return job if job and job["status"] != "pending" else None
