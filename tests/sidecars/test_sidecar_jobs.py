"""The builder's job dispatch (chain.ai.dispatch) against a real LLM sidecar process:
a job is submitted, its signed result becomes a delivery, and a sidecar that restarted
and forgot the job (JOB_STATE_UNKNOWN) gets it again."""

import json
import subprocess
import time

from eth_abi import encode as abi_encode
from eth_utils import keccak
from sidecar_helpers import CHAIN_ID
from test_sidecar_llm import pool_of

from chain.ai import jobs
from chain.ai.dispatch import JobDispatcher, PendingJob
from sidecars.abi import LLM_ADDRESS, LLM_INPUT_TYPES, decode_llm_output
from sidecars.attestation import attestation_digest, recover_signer


def job_for(model_id: bytes, question: str) -> PendingJob:
    messages = json.dumps([{"role": "user", "content": question}])
    data = abi_encode(
        LLM_INPUT_TYPES, [model_id, messages, 16, 0, 0, b"\x01\x02\x03\x04", 100_000, 10]
    )
    return PendingJob(keccak(data), LLM_ADDRESS, model_id, data, deadline=10**6)


def poll_until_ready(dispatcher: JobDispatcher, job: PendingJob, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while not (ready := dispatcher.deliveries()):
        assert time.monotonic() < deadline, "no delivery"
        dispatcher.poll()
        time.sleep(0.05)
    return ready


def test_a_job_forgotten_by_a_restarted_sidecar_is_submitted_again(two_llm_sidecars):
    sidecar = two_llm_sidecars[1]
    spec = sidecar.spec
    pool = pool_of(sidecar)
    dispatcher = JobDispatcher(pool, CHAIN_ID)
    job = job_for(spec.model_id, "what do bees make ?")
    dispatcher.pending[job.id] = job
    dispatcher.poll()
    assert job.submitted
    sidecar.stop()  # it forgets every job; a new process takes the same port
    sidecar.process = subprocess.Popen(sidecar.process.args, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.STDOUT)  # fmt: skip
    deadline = time.monotonic() + 60
    while pool.refresh(spec.name, timeout=0.5) is None:
        assert time.monotonic() < deadline, "the sidecar did not come back"
        time.sleep(0.2)
    dispatcher.poll()  # Result: JOB_STATE_UNKNOWN
    assert not job.submitted and not dispatcher.deliveries()
    (delivery,) = poll_until_ready(dispatcher, job)  # submitted again, delivered
    assert delivery.job_id == job.id and delivery.status == jobs.OK
    assert decode_llm_output(delivery.output)[0] == "bees make honey ."
    digest = attestation_digest(
        CHAIN_ID, LLM_ADDRESS, spec.model_id, keccak(job.input), keccak(delivery.output),
        job.id,
    )  # fmt: skip
    (signature,) = delivery.signatures
    assert recover_signer(digest, signature) == pool.info(spec.name).executor
