"""The node's client to its sidecars: a synchronous, thread-safe pool the precompiles call.

An AI precompile runs inside the EVM on the block builder's thread, so a call here must
always return, quickly and never with an exception: a sidecar that is slow, dead or
misbehaving turns into a failed call (DESIGN section 4: the contract sees
``success == false``), and the block goes on. To that end:

* every call has a deadline, and each sidecar takes a bounded number of calls at once;
* ``Info`` and health checks are retried (they are idempotent); ``Execute`` and ``Submit``
  never are, because the builder must not run an AI call twice behind the user's back;
* a circuit breaker per sidecar opens after consecutive transport failures, so that while
  a sidecar is down calls fail at once instead of waiting for their deadline, and lets one
  probe call through after a cool-down (half-open);
* every reply is checked: the signature must recover to the executor the sidecar
  reported in ``Info``, the output must stay under a size limit, and anything
  undecodable or inconsistent is a failed call with the reason in ``CallResult.error``.

Calls are routed by model id to a sidecar whose ``Info`` lists that model.
"""

import logging
import queue
import threading
import time
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from sidecars.attestation import InvalidAttestation, attestation_digest, keccak, recover_signer
from sidecars.protocol import SERVICE_NAME, sidecar_pb2, sidecar_pb2_grpc

log = logging.getLogger("sidecars.client")

DEFAULT_DEADLINE = 10.0
MAX_REASON_CHARS = 300
IDEMPOTENT_ATTEMPTS = 3
IDEMPOTENT_BACKOFF = 0.1


@dataclass(frozen=True, slots=True)
class CallResult:
    """The outcome of one sidecar call.

    ``status`` is "ok" (``output`` is valid and ``signature`` by ``executor`` attests it),
    "failed" (``error`` says why), or, from :meth:`SidecarPool.result` only, "pending"
    or "unknown" (the sidecar forgot the job, or did not answer).
    """

    status: str
    output: bytes = b""
    signature: bytes = b""
    executor: bytes = b""
    error: str = ""
    proof: bytes = b""  # a ZK model's proof of the output (sidecars.zk)


@dataclass(frozen=True)
class SidecarInfo:
    """What a sidecar reported in ``Info``."""

    runtime: str
    model_ids: tuple[bytes, ...]
    executor: bytes
    capabilities: tuple[str, ...]
    versions: dict[str, str]


class CircuitBreaker:
    """Closed → open after ``threshold`` consecutive failures → half-open after
    ``cool_down`` seconds, when a single probe call decides between closed and open."""

    def __init__(self, threshold: int, cool_down: float):
        self.threshold = threshold
        self.cool_down = cool_down
        self.state = "closed"
        self.failures = 0
        self.opened_at = 0.0
        self.lock = threading.Lock()

    def allow(self) -> bool:
        """May a call go now? While not closed, one probe per cool-down goes through.

        A closed breaker is read without the lock (every call asks): a call that reads
        "closed" just as another thread opens it goes through, as it would have a moment
        earlier."""
        if self.state == "closed":
            return True
        with self.lock:
            if self.state == "closed":
                return True
            now = time.monotonic()
            if now - self.opened_at >= self.cool_down:
                self.state = "half-open"
                self.opened_at = now
                return True
            return False

    def record_success(self) -> None:
        if self.state == "closed" and not self.failures:
            return  # nothing to reset: the common case takes no lock
        with self.lock:
            self.state = "closed"
            self.failures = 0

    def record_failure(self) -> bool:
        """Count a failure; True when this one opened the breaker."""
        with self.lock:
            self.failures += 1
            if self.state == "half-open" or (
                self.state == "closed" and self.failures >= self.threshold
            ):
                self.state = "open"
                self.opened_at = time.monotonic()
                return True
            return False


@dataclass
class _Counters:
    calls: int = 0
    failures: int = 0
    timeouts: int = 0
    breaker_opens: int = 0
    rejected: int = 0
    latency_seconds_sum: float = 0.0


@dataclass
class _Sidecar:
    name: str
    endpoint: str
    channel: grpc.Channel
    stub: sidecar_pb2_grpc.SidecarStub
    health: health_pb2_grpc.HealthStub
    slots: queue.SimpleQueue  # one token per call that may be in flight
    breaker: CircuitBreaker
    info: SidecarInfo | None = None
    counters: _Counters = field(default_factory=_Counters)
    counters_lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, name: str) -> None:
        with self.counters_lock:
            setattr(self.counters, name, getattr(self.counters, name) + 1)

    def count_call(self, seconds: float, failed: bool) -> None:
        with self.counters_lock:
            self.counters.calls += 1
            self.counters.failures += failed
            self.counters.latency_seconds_sum += seconds


class _CallFailed(Exception):
    """A call failed; ``transport`` is True when the sidecar itself is at fault."""

    def __init__(self, reason: str, transport: bool, timeout: bool = False):
        super().__init__(reason)
        self.transport = transport
        self.timeout = timeout


class SidecarPool:
    """Sidecars by name, calls routed by model id. Safe to use from many threads."""

    def __init__(
        self,
        deadline: float = DEFAULT_DEADLINE,
        max_concurrency: int = 4,
        max_output_bytes: int = 1 << 20,
        failure_threshold: int = 3,
        cool_down: float = 2.0,
    ):
        self.deadline = deadline
        self.max_concurrency = max_concurrency
        self.max_output_bytes = max_output_bytes
        self.failure_threshold = failure_threshold
        self.cool_down = cool_down
        self._sidecars: dict[str, _Sidecar] = {}
        self._jobs: dict[bytes, str] = {}
        # model id -> the sidecars serving it, in the order they were added: rebuilt
        # whole (under the lock) when a sidecar comes, goes or reports its models, and
        # read without the lock by every call
        self._routes: dict[bytes, tuple[_Sidecar, ...]] = {}
        self._lock = threading.Lock()

    # -- membership ------------------------------------------------------------------

    def add(self, name: str, endpoint: str) -> None:
        """Connect to the sidecar at ``endpoint`` (host:port); call :meth:`refresh` to
        learn its models once it is up."""
        channel = grpc.insecure_channel(endpoint, options=self.channel_options())
        slots = queue.SimpleQueue()
        for _ in range(self.max_concurrency):
            slots.put(None)
        sidecar = _Sidecar(
            name=name,
            endpoint=endpoint,
            channel=channel,
            stub=sidecar_pb2_grpc.SidecarStub(channel),
            health=health_pb2_grpc.HealthStub(channel),
            slots=slots,
            breaker=CircuitBreaker(self.failure_threshold, self.cool_down),
        )
        with self._lock:
            old = self._sidecars.pop(name, None)
            self._sidecars[name] = sidecar
            self._reroute()
        if old is not None:
            old.channel.close()

    def channel_options(self) -> list[tuple[str, int]]:
        """gRPC channel options: replies capped near the output limit, and reconnects
        within a second of a sidecar coming back."""
        return [
            ("grpc.max_receive_message_length", self.max_output_bytes + 64 * 1024),
            ("grpc.initial_reconnect_backoff_ms", 100),
            ("grpc.min_reconnect_backoff_ms", 100),
            ("grpc.max_reconnect_backoff_ms", 1000),
            ("grpc.enable_http_proxy", 0),
        ]

    def remove(self, name: str) -> None:
        with self._lock:
            sidecar = self._sidecars.pop(name, None)
            self._reroute()
        if sidecar is not None:
            sidecar.channel.close()

    def close(self) -> None:
        for name in self.names():
            self.remove(name)

    def names(self) -> list[str]:
        with self._lock:
            return list(self._sidecars)

    def refresh(self, name: str, timeout: float = 2.0) -> SidecarInfo | None:
        """Ask the sidecar for its ``Info`` (with retries); on success the sidecar takes
        calls for its models again and its breaker closes. None when it does not answer
        or its answer is malformed."""
        sidecar = self._get(name)
        try:
            reply = self._idempotent(
                lambda: sidecar.stub.Info(sidecar_pb2.InfoRequest(), timeout=timeout)
            )
        except grpc.RpcError as exc:
            log.info("event=info_failed sidecar=%s error=%r", name, _rpc_error(exc))
            return None
        if len(reply.executor) != 20 or any(len(m) != 32 for m in reply.model_ids):
            log.warning("event=info_malformed sidecar=%s", name)
            return None
        info = SidecarInfo(
            runtime=reply.runtime,
            model_ids=tuple(bytes(m) for m in reply.model_ids),
            executor=bytes(reply.executor),
            capabilities=tuple(reply.capabilities),
            versions=dict(reply.versions),
        )
        with self._lock:
            sidecar.info = info
            self._reroute()
        sidecar.breaker.record_success()
        return info

    def info(self, name: str) -> SidecarInfo | None:
        """What the sidecar last reported in ``Info``; None before that or if unknown."""
        with self._lock:
            sidecar = self._sidecars.get(name)
        return sidecar.info if sidecar is not None else None

    def health(self, name: str, timeout: float = 1.0) -> bool:
        """True when the sidecar's grpc.health.v1 check says SERVING (with retries)."""
        sidecar = self._get(name)
        request = health_pb2.HealthCheckRequest(service=SERVICE_NAME)
        try:
            reply = self._idempotent(lambda: sidecar.health.Check(request, timeout=timeout))
        except grpc.RpcError:
            return False
        return reply.status == health_pb2.HealthCheckResponse.SERVING

    def counters(self) -> dict[str, dict[str, float | int | str]]:
        """Per sidecar: calls, failures, timeouts, breaker_opens, rejected (failed fast by
        an open breaker), latency_seconds_sum, and the breaker's state."""
        with self._lock:
            sidecars = list(self._sidecars.values())
        result = {}
        for s in sidecars:
            with s.counters_lock:
                result[s.name] = {**vars(s.counters), "breaker": s.breaker.state}
        return result

    # -- calls -----------------------------------------------------------------------

    def execute(
        self,
        precompile: bytes,
        model_id: bytes,
        data: bytes,
        context: bytes,
        chain_id: int,
        deadline: float | None = None,
    ) -> CallResult:
        """Run one synchronous AI call on a sidecar serving ``model_id``; never retried."""
        return self._execute_on(None, precompile, model_id, data, context, chain_id, deadline)

    def _execute_on(
        self,
        only: str | None,
        precompile: bytes,
        model_id: bytes,
        data: bytes,
        context: bytes,
        chain_id: int,
        deadline: float | None,
    ) -> CallResult:
        request = sidecar_pb2.ExecuteRequest(
            precompile=precompile,
            model_id=model_id,
            input=data,
            context=context,
            chain_id=chain_id,
        )
        return self._call(
            model_id,
            deadline,
            lambda s, timeout: s.stub.Execute(request, timeout=timeout),
            lambda s, reply: self._check_result(
                s, reply, precompile, model_id, data, context, chain_id
            ),
            only=only,
        )

    def execute_each(
        self,
        precompile: bytes,
        model_id: bytes,
        data: bytes,
        context: bytes,
        chain_id: int,
        deadline: float | None = None,
    ) -> list[CallResult]:
        """Run the call once on a sidecar of every distinct executor serving ``model_id``,
        for models whose results need a quorum of attestations."""
        return [
            self._execute_on(name, precompile, model_id, data, context, chain_id, deadline)
            for name in self.executors_for(model_id).values()
        ]

    def executors_for(self, model_id: bytes) -> dict[bytes, str]:
        """One sidecar per distinct executor serving ``model_id`` (executor → name), for
        jobs whose results need a quorum of attestations."""
        executors: dict[bytes, str] = {}
        for sidecar in self._route(model_id, None):
            executors.setdefault(sidecar.info.executor, sidecar.name)
        return executors

    def serves(self, model_id: bytes) -> bool:
        """Whether any sidecar in the pool has reported serving ``model_id``."""
        return bool(self._route(model_id, None))

    def submit(
        self,
        job_id: bytes,
        precompile: bytes,
        model_id: bytes,
        data: bytes,
        chain_id: int,
        deadline: float | None = None,
        sidecar: str | None = None,
    ) -> CallResult:
        """Queue an asynchronous job (on ``sidecar``, or any serving the model); "ok"
        means queued. Never retried."""
        request = sidecar_pb2.SubmitRequest(
            job_id=job_id,
            precompile=precompile,
            model_id=model_id,
            input=data,
            chain_id=chain_id,
        )

        def check(sidecar: _Sidecar, reply) -> CallResult:
            if reply.status == sidecar_pb2.STATUS_OK:
                with self._lock:
                    self._jobs[job_id] = sidecar.name
                return CallResult("ok", executor=sidecar.info.executor)
            return self._refusal(sidecar, reply.status, reply.reason)

        return self._call(
            model_id,
            deadline,
            lambda s, timeout: s.stub.Submit(request, timeout=timeout),
            check,
            only=sidecar,
        )

    def result(
        self,
        job_id: bytes,
        precompile: bytes,
        model_id: bytes,
        data: bytes,
        chain_id: int,
        deadline: float | None = None,
        sidecar: str | None = None,
    ) -> CallResult:
        """The result of a job submitted (to ``sidecar``, or wherever :meth:`submit` put
        it): "pending", or "ok"/"failed" once done, or
        "unknown" when the sidecar has forgotten it (restarted) or did not answer, and it
        must be submitted again (to any sidecar of the model).

        The request's fields are given again so that the attestation (context = job id)
        can be checked against them.
        """
        with self._lock:
            name = sidecar or self._jobs.get(job_id)
        if name is None:
            return CallResult("unknown", error=f"job 0x{job_id.hex()} was not submitted here")
        request = sidecar_pb2.ResultRequest(job_id=job_id)

        def check(sidecar: _Sidecar, reply) -> CallResult:
            if reply.state == sidecar_pb2.JOB_STATE_PENDING:
                return CallResult("pending")
            if reply.state == sidecar_pb2.JOB_STATE_UNKNOWN:
                result = CallResult("unknown", error=f"sidecar {sidecar.name} forgot the job")
            elif reply.state != sidecar_pb2.JOB_STATE_DONE:
                result = CallResult("failed", error=f"sidecar {sidecar.name} lost the job")
            else:
                result = self._check_result(
                    sidecar, reply, precompile, model_id, data, job_id, chain_id
                )
            with self._lock:
                self._jobs.pop(job_id, None)
            return result

        result = self._call(
            model_id,
            deadline,
            lambda s, timeout: self._idempotent(lambda: s.stub.Result(request, timeout=timeout)),
            check,
            only=name,
        )
        with self._lock:
            unanswered = sidecar is not None or self._jobs.get(job_id) == name
        if result.status == "failed" and unanswered:
            # the sidecar did not answer (down, or gone from the pool): the job may be
            # submitted again, to it or to another sidecar of the model
            with self._lock:
                self._jobs.pop(job_id, None)
            return CallResult("unknown", error=result.error)
        return result

    # -- internals -------------------------------------------------------------------

    def _get(self, name: str) -> _Sidecar:
        with self._lock:
            sidecar = self._sidecars.get(name)
        if sidecar is None:
            raise KeyError(f"no sidecar named {name!r} in the pool")
        return sidecar

    def _route(self, model_id: bytes, only: str | None) -> tuple[_Sidecar, ...]:
        routes = self._routes.get(model_id, ())
        return routes if only is None else tuple(s for s in routes if s.name == only)

    def _reroute(self) -> None:
        """Rebuild the routing table from the sidecars' last ``Info``; hold the lock."""
        routes: dict[bytes, tuple[_Sidecar, ...]] = {}
        for sidecar in self._sidecars.values():
            for model_id in dict.fromkeys(sidecar.info.model_ids if sidecar.info else ()):
                routes[model_id] = (*routes.get(model_id, ()), sidecar)
        self._routes = routes

    def _call(self, model_id, deadline, send, check, only: str | None = None) -> CallResult:
        deadline = self.deadline if deadline is None else deadline
        candidates = self._route(model_id, only)
        if not candidates:
            return CallResult("failed", error=f"no sidecar serves model 0x{model_id.hex()}")
        sidecar = next((s for s in candidates if s.breaker.allow()), None)
        if sidecar is None:
            for s in candidates:
                s.count("rejected")
            names = ", ".join(s.name for s in candidates)
            return CallResult(
                "failed", error=f"sidecar {names} is down (circuit open); failing fast"
            )
        started = time.monotonic()
        try:
            try:
                sidecar.slots.get(timeout=max(deadline, 0.0))
            except queue.Empty:
                raise _CallFailed(
                    f"sidecar {sidecar.name} is busy: {self.max_concurrency} calls in flight "
                    f"for the whole {deadline:.3g} s deadline",
                    transport=True,
                    timeout=True,
                ) from None
            try:
                remaining = deadline - (time.monotonic() - started)
                reply = send(sidecar, remaining)
            finally:
                sidecar.slots.put(None)
            result = check(sidecar, reply)
            sidecar.breaker.record_success()
        except grpc.RpcError as exc:
            timeout = exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            result = self._failure(
                sidecar, _CallFailed(_rpc_error(exc), transport=True, timeout=timeout)
            )
        except _CallFailed as exc:
            result = self._failure(sidecar, exc)
        sidecar.count_call(time.monotonic() - started, result.status == "failed")
        return result

    def _failure(self, sidecar: _Sidecar, exc: _CallFailed) -> CallResult:
        if exc.timeout:
            sidecar.count("timeouts")
        if exc.transport and sidecar.breaker.record_failure():
            sidecar.count("breaker_opens")
            log.warning("event=breaker_open sidecar=%s reason=%r", sidecar.name, str(exc))
        return CallResult("failed", error=f"sidecar {sidecar.name}: {exc}")

    def _check_result(
        self, sidecar: _Sidecar, reply, precompile, model_id, data, context, chain_id
    ) -> CallResult:
        """Accept an OK reply only with a valid attestation by the expected executor."""
        if reply.status != sidecar_pb2.STATUS_OK:
            return self._refusal(sidecar, reply.status, reply.reason)
        executor = sidecar.info.executor
        if len(reply.output) > self.max_output_bytes:
            raise _CallFailed(
                f"output of {len(reply.output)} bytes exceeds the {self.max_output_bytes} limit",
                transport=True,
            )
        if reply.executor != executor:
            raise _CallFailed(
                f"reply names executor 0x{reply.executor.hex()}, Info said 0x{executor.hex()}",
                transport=True,
            )
        digest = attestation_digest(
            chain_id, precompile, model_id, keccak(data), keccak(reply.output), context
        )
        try:
            signer = recover_signer(digest, reply.signature)
        except InvalidAttestation as exc:
            raise _CallFailed(f"invalid attestation: {exc}", transport=True) from None
        if signer != executor:
            raise _CallFailed(
                f"attestation signed by 0x{signer.hex()}, not by executor 0x{executor.hex()}",
                transport=True,
            )
        return CallResult("ok", reply.output, reply.signature, executor, proof=reply.proof)

    def _refusal(self, sidecar: _Sidecar, status: int, reason: str) -> CallResult:
        if status == sidecar_pb2.STATUS_FAILED:
            what = "model failed"
        elif status == sidecar_pb2.STATUS_REFUSED:
            what = "refused"
        else:
            raise _CallFailed(f"reply has unknown status {status}", transport=True)
        reason = reason[:MAX_REASON_CHARS] or "no reason given"
        return CallResult("failed", error=f"sidecar {sidecar.name} {what}: {reason}")

    @staticmethod
    def _idempotent(send):
        """Run an idempotent call, retrying transport failures with a short backoff."""
        for attempt in range(IDEMPOTENT_ATTEMPTS):
            try:
                return send()
            except grpc.RpcError:
                if attempt == IDEMPOTENT_ATTEMPTS - 1:
                    raise
                time.sleep(IDEMPOTENT_BACKOFF * 2**attempt)
        raise AssertionError("unreachable")


def _rpc_error(exc: grpc.RpcError) -> str:
    code = exc.code().name if hasattr(exc, "code") and exc.code() else "UNKNOWN"
    details = exc.details() if hasattr(exc, "details") else str(exc)
    return f"{code}: {(details or '')[:MAX_REASON_CHARS]}"
