"""The sidecar's gRPC server: run models for the node and sign what they return.

One server may serve several models, of one runtime or several: each call names its
model id, and the server routes it to that model (the dev default serves every bundled
model from one process, so that torch, which the torch, embed and LLM runtimes all
import, is loaded once).

``Execute`` runs one synchronous call: the raw precompile input goes to the model, and the
raw output comes back with an attestation over keccak256(input), keccak256(output) and the
context the node gave (DESIGN section 5). ``Submit`` queues the same work as a job that
one worker thread runs in order; ``Result`` returns it once done, signed with the job id
as its context. Jobs live in memory: a restarted sidecar answers JOB_STATE_UNKNOWN.

Health is the standard ``grpc.health.v1`` service: SERVING once every model is loaded, for
the overall server ("") and for ``sibyl.sidecar.v1.Sidecar``.
"""

import logging
import threading
from collections import OrderedDict, deque
from concurrent import futures
from dataclasses import dataclass, field

import coincurve
import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from sidecars.attestation import attestation_digest, keccak, sign_digest
from sidecars.model import Failed, Model, Refused
from sidecars.protocol import SERVICE_NAME, sidecar_pb2, sidecar_pb2_grpc

log = logging.getLogger("sidecars.server")

SERVER_WORKERS = 8
MAX_JOBS = 1024
SIBYL_VERSION = "0.1.0"


@dataclass
class _Job:
    request: sidecar_pb2.SubmitRequest
    reply: sidecar_pb2.ResultReply | None = None


class SidecarService(sidecar_pb2_grpc.SidecarServicer):
    """Serves ``models`` (distinct ids) and signs their results with one executor key."""

    def __init__(self, models: list[Model], key: coincurve.PrivateKey, executor: bytes):
        self.models = {model.model_id: model for model in models}
        if len(self.models) != len(models):
            raise ValueError("a sidecar serves each model id once")
        self.key = key
        self.executor = executor
        self.jobs: OrderedDict[bytes, _Job] = OrderedDict()
        self.jobs_lock = threading.Lock()
        self.worker = futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="job")

    def Info(self, request, context):
        models = self.models.values()
        versions = {"sibyl": SIBYL_VERSION}
        for model in models:
            versions |= model.versions
        return sidecar_pb2.InfoReply(
            runtime=",".join(dict.fromkeys(model.runtime for model in models)),
            model_ids=list(self.models),
            executor=self.executor,
            capabilities=list(
                dict.fromkeys(name for model in models for name in model.capabilities)
            ),
            versions=versions,
        )

    def Execute(self, request, context):
        status, reason, output, signature, proof = self._run(
            request.precompile, request.model_id, request.input, request.context, request.chain_id
        )
        return sidecar_pb2.ExecuteReply(
            status=status,
            reason=reason,
            output=output,
            signature=signature,
            executor=self.executor,
            proof=proof,
        )

    def Submit(self, request, context):
        if len(request.job_id) != 32:
            return sidecar_pb2.SubmitReply(
                status=sidecar_pb2.STATUS_REFUSED, reason="job id must be 32 bytes"
            )
        with self.jobs_lock:
            if request.job_id in self.jobs:
                return sidecar_pb2.SubmitReply(status=sidecar_pb2.STATUS_OK)
            if len(self.jobs) >= MAX_JOBS and not self._forget_finished_job():
                return sidecar_pb2.SubmitReply(
                    status=sidecar_pb2.STATUS_REFUSED, reason=f"job queue full ({MAX_JOBS})"
                )
            job = self.jobs[request.job_id] = _Job(request)
        self.worker.submit(self._run_job, job)
        log.info("event=job_queued job=0x%s", request.job_id.hex())
        return sidecar_pb2.SubmitReply(status=sidecar_pb2.STATUS_OK)

    def Result(self, request, context):
        with self.jobs_lock:
            job = self.jobs.get(request.job_id)
        if job is None:
            return sidecar_pb2.ResultReply(state=sidecar_pb2.JOB_STATE_UNKNOWN)
        if job.reply is None:
            return sidecar_pb2.ResultReply(state=sidecar_pb2.JOB_STATE_PENDING)
        return job.reply

    def _run_job(self, job: _Job) -> None:
        r = job.request
        status, reason, output, signature, proof = self._run(
            r.precompile, r.model_id, r.input, r.job_id, r.chain_id
        )
        job.reply = sidecar_pb2.ResultReply(
            state=sidecar_pb2.JOB_STATE_DONE,
            status=status,
            reason=reason,
            output=output,
            signature=signature,
            executor=self.executor,
            proof=proof,
        )
        log.info("event=job_done job=0x%s status=%s", r.job_id.hex(), _STATUS_NAMES[status])

    def _forget_finished_job(self) -> bool:
        for job_id, job in self.jobs.items():
            if job.reply is not None:
                del self.jobs[job_id]
                return True
        return False

    def _run(self, precompile, model_id, data, context, chain_id):
        if len(context) != 32:
            return sidecar_pb2.STATUS_REFUSED, "context must be 32 bytes", b"", b"", b""
        model = self.models.get(model_id)
        try:
            if model is None:
                raise Refused(f"model 0x{model_id.hex()} is not served here")
            output, proof = model.run_proved(precompile, model_id, data)
        except Refused as exc:
            log.info("event=refused model=0x%s reason=%r", model_id.hex(), str(exc))
            return sidecar_pb2.STATUS_REFUSED, str(exc), b"", b"", b""
        except Failed as exc:
            log.info("event=failed model=0x%s reason=%r", model_id.hex(), str(exc))
            return sidecar_pb2.STATUS_FAILED, str(exc), b"", b"", b""
        digest = attestation_digest(
            chain_id, precompile, model_id, keccak(data), keccak(output), context
        )
        return sidecar_pb2.STATUS_OK, "", output, sign_digest(self.key, digest), proof


_STATUS_NAMES = {v: k for k, v in sidecar_pb2.Status.items()}


@dataclass
class _Worker:
    wake: threading.Lock = field(default_factory=threading.Lock)
    call: tuple | None = None


class WarmThreadPool(futures.Executor):
    """Up to ``max_workers`` threads, where each call goes to the thread that went idle
    last.

    ``futures.ThreadPoolExecutor`` wakes its idle threads in turn, so calls that come one
    after another (a node's AI calls do) run on each of its threads in rotation, and each
    call finds that thread's stack, frames and gRPC state out of the CPU caches. The
    thread that just finished a call is the one whose state is still warm: with it, the
    sidecar's Execute handler of the dev MLP takes about a quarter less CPU (~225 against
    ~300 µs a call on a busy 2-core machine, bench/sidecar_dispatch.py). Threads start as
    calls need them and are daemons, as a gRPC server never shuts its pool down.
    """

    def __init__(self, max_workers: int, thread_name_prefix: str):
        self.max_workers = max_workers
        self.thread_name_prefix = thread_name_prefix
        self._idle: list[_Worker] = []  # a stack: the last to go idle on top
        self._backlog: deque[tuple] = deque()  # calls that came while every thread ran
        self._threads: list[threading.Thread] = []
        self._shutdown = False
        self._lock = threading.Lock()

    def submit(self, fn, /, *args, **kwargs) -> futures.Future:
        future = futures.Future()
        call = (future, fn, args, kwargs)
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot submit a call to a pool that was shut down")
            if self._idle:
                self._hand(self._idle.pop(), call)
            elif len(self._threads) == self.max_workers:
                self._backlog.append(call)
            else:
                name = f"{self.thread_name_prefix}_{len(self._threads)}"
                thread = threading.Thread(target=self._work, args=(call,), name=name, daemon=True)
                self._threads.append(thread)
                thread.start()
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._shutdown = True
            if cancel_futures:
                for future, *_ in self._backlog:
                    future.cancel()
                self._backlog.clear()
            while self._idle:
                self._hand(self._idle.pop(), None)
        if wait:
            for thread in self._threads:
                thread.join()

    @staticmethod
    def _hand(worker: _Worker, call: tuple | None) -> None:
        worker.call = call
        worker.wake.release()

    def _work(self, call: tuple) -> None:
        worker = _Worker()
        worker.wake.acquire()
        while call is not None:
            future, fn, args, kwargs = call
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args, **kwargs))
                except BaseException as exc:
                    future.set_exception(exc)
            del future, fn, args, kwargs, call  # hold no reference to a finished call
            with self._lock:
                if self._backlog:
                    call = self._backlog.popleft()
                    continue
                if self._shutdown:
                    return
                self._idle.append(worker)
            worker.wake.acquire()
            call, worker.call = worker.call, None


def server_thread_pool() -> WarmThreadPool:
    """The thread pool of a sidecar's gRPC server (the dispatch bench's echo uses it too)."""
    return WarmThreadPool(SERVER_WORKERS, thread_name_prefix="grpc")


def build_server(
    models: list[Model], key: coincurve.PrivateKey, executor: bytes, address: str
) -> tuple[grpc.Server, int]:
    """A server for ``models`` bound to ``address`` (host:port), not yet started.

    Returns the server and the bound port. Raises ``RuntimeError`` when the address cannot
    be bound (port taken, bad host).
    """
    server = grpc.server(
        server_thread_pool(),
        options=[("grpc.so_reuseport", 0)],
    )
    sidecar_pb2_grpc.add_SidecarServicer_to_server(SidecarService(models, key, executor), server)
    health_service = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_service, server)
    port = server.add_insecure_port(address)
    if port == 0:
        raise RuntimeError(f"cannot listen on {address}")
    for name in ("", SERVICE_NAME):
        health_service.set(name, health_pb2.HealthCheckResponse.SERVING)
    return server, port
