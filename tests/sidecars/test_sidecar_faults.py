"""Misbehaving sidecars (tiny gRPC servers written here) are failed calls, never crashes."""

import threading
import time
from concurrent import futures

import grpc
import pytest
from eth_hash.auto import keccak
from eth_keys import keys
from sidecar_helpers import CHAIN_ID

from sidecars.abi import INFER_ADDRESS
from sidecars.attestation import attestation_digest, sign_digest, sync_context
from sidecars.client import SidecarPool
from sidecars.protocol import sidecar_pb2

EXECUTOR_KEY = keys.PrivateKey(keccak(b"fake executor"))
EXECUTOR = EXECUTOR_KEY.public_key.to_canonical_address()
OTHER_KEY = keys.PrivateKey(keccak(b"someone else"))
MODEL = keccak(b"fake model")
DATA = b"some input"
CONTEXT = sync_context(keccak(b"tx"), 0)
OUTPUT = b"\x00" * 64


def signed(output: bytes, key=EXECUTOR_KEY) -> bytes:
    digest = attestation_digest(
        CHAIN_ID, INFER_ADDRESS, MODEL, keccak(DATA), keccak(output), CONTEXT
    )
    return sign_digest(key, digest)


def reply(**fields) -> bytes:
    values = {
        "status": sidecar_pb2.STATUS_OK, "output": OUTPUT, "signature": signed(OUTPUT),
        "executor": EXECUTOR,
    }  # fmt: skip
    values.update(fields)
    return sidecar_pb2.ExecuteReply(**values).SerializeToString()


class FakeSidecar:
    """A gRPC server speaking the sidecar's method names with scripted raw replies."""

    def __init__(self, execute, info_failures: int = 0):
        self.execute = execute
        self.info_failures = info_failures
        self.calls = {"Info": 0, "Execute": 0}
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        handlers = {
            "Info": grpc.unary_unary_rpc_method_handler(self._info),
            "Execute": grpc.unary_unary_rpc_method_handler(self._execute),
        }
        self.server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler("sibyl.sidecar.v1.Sidecar", handlers),)
        )
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    def _info(self, request: bytes, context) -> bytes:
        self.calls["Info"] += 1
        if self.calls["Info"] <= self.info_failures:
            context.abort(grpc.StatusCode.UNAVAILABLE, "warming up")
        return sidecar_pb2.InfoReply(
            runtime="fake", model_ids=[MODEL], executor=EXECUTOR, capabilities=["INFER"]
        ).SerializeToString()

    def _execute(self, request: bytes, context) -> bytes:
        self.calls["Execute"] += 1
        return self.execute(context)

    def pool(self, **options) -> SidecarPool:
        pool = SidecarPool(**options)
        pool.add("fake", f"127.0.0.1:{self.port}")
        assert pool.refresh("fake") is not None
        return pool

    def stop(self):
        self.server.stop(0)


@pytest.fixture
def fake():
    servers = []

    def make(execute, **kwargs) -> FakeSidecar:
        server = FakeSidecar(execute, **kwargs)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


def execute(pool: SidecarPool, deadline: float | None = None):
    return pool.execute(INFER_ADDRESS, MODEL, DATA, CONTEXT, CHAIN_ID, deadline=deadline)


def test_a_well_behaved_fake_is_accepted(fake):
    result = execute(fake(lambda ctx: reply()).pool())
    assert result.status == "ok", result.error
    assert (result.output, result.executor) == (OUTPUT, EXECUTOR)


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (lambda ctx: b"\xff\xff\xff\xff garbage", "INTERNAL"),
        (lambda ctx: reply(signature=signed(OUTPUT, OTHER_KEY)), "attestation signed by 0x"),
        (lambda ctx: reply(signature=signed(b"other output")), "attestation signed by 0x"),
        (lambda ctx: reply(signature=b"\x01" * 10), "invalid attestation: signature must be 65"),
        (lambda ctx: reply(signature=b""), "invalid attestation"),
        (lambda ctx: reply(executor=b"\x22" * 20), "reply names executor 0x2222"),
        (lambda ctx: reply(status=9), "unknown status 9"),
        (lambda ctx: reply(status=0), "unknown status 0"),
        (lambda ctx: reply(output=b"\x00" * (2 << 20)), "RESOURCE_EXHAUSTED"),
        (lambda ctx: ctx.abort(grpc.StatusCode.INTERNAL, "boom"), "INTERNAL: boom"),
    ],
)
def test_garbage_replies_are_failed_calls_with_a_reason(fake, answer, reason):
    result = execute(fake(answer).pool())
    assert result.status == "failed"
    assert reason in result.error
    assert result.output == b""


def test_output_over_the_limit_is_rejected(fake):
    big = b"\x00" * 4096
    pool = fake(lambda ctx: reply(output=big, signature=signed(big))).pool(max_output_bytes=1024)
    result = execute(pool)
    assert result.status == "failed"
    assert "output of 4096 bytes exceeds the 1024 limit" in result.error


def test_a_hung_sidecar_times_out_at_the_deadline(fake):
    release = threading.Event()

    def hang(ctx):
        release.wait(10)
        return reply()

    pool = fake(hang).pool()
    started = time.monotonic()
    result = execute(pool, deadline=0.3)
    elapsed = time.monotonic() - started
    release.set()
    assert result.status == "failed" and "DEADLINE_EXCEEDED" in result.error
    assert 0.3 <= elapsed < 2
    assert pool.counters()["fake"]["timeouts"] == 1


def test_execute_is_never_retried_but_info_is(fake):
    server = fake(lambda ctx: ctx.abort(grpc.StatusCode.UNAVAILABLE, "overloaded"), info_failures=2)
    pool = server.pool()
    assert server.calls["Info"] == 3  # two failures, then the retry that answered
    result = execute(pool)
    assert result.status == "failed" and "UNAVAILABLE: overloaded" in result.error
    assert server.calls["Execute"] == 1


def test_breaker_opens_after_consecutive_failures_and_half_opens_after_cool_down(fake):
    healthy = threading.Event()

    def flaky(ctx):
        if healthy.is_set():
            return reply()
        return ctx.abort(grpc.StatusCode.UNAVAILABLE, "down")

    server = fake(flaky)
    pool = server.pool(failure_threshold=2, cool_down=0.5)
    assert execute(pool).status == "failed"
    assert execute(pool).status == "failed"
    fast = execute(pool)
    assert "circuit open" in fast.error
    assert server.calls["Execute"] == 2  # the third call never reached the sidecar
    healthy.set()
    time.sleep(0.6)
    assert execute(pool).status == "ok"  # the half-open probe succeeds and closes it
    counters = pool.counters()["fake"]
    assert counters["breaker_opens"] == 1 and counters["rejected"] == 1
    assert counters["breaker"] == "closed"


def test_bounded_concurrency_per_sidecar(fake):
    release = threading.Event()
    active = []
    peak = []

    def slow(ctx):
        active.append(1)
        peak.append(len(active))
        release.wait(5)
        active.pop()
        return reply()

    pool = fake(slow).pool(max_concurrency=2)
    with futures.ThreadPoolExecutor(4) as executor:
        calls = [executor.submit(execute, pool, 5) for _ in range(4)]
        time.sleep(0.3)
        assert max(peak) == 2
        release.set()
        assert all(call.result().status == "ok" for call in calls)
