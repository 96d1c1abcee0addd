"""The sidecar server's thread pool: the thread that went idle last takes the next call."""

import threading

import pytest

from sidecars.server import WarmThreadPool


def test_calls_one_after_another_run_on_the_thread_that_just_finished():
    pool = WarmThreadPool(4, thread_name_prefix="t")
    started = [threading.Event() for _ in range(3)]
    release = threading.Event()

    def hold(index: int) -> str:
        started[index].set()
        release.wait(10)
        return threading.current_thread().name

    held = [pool.submit(hold, i) for i in range(3)]  # three threads at once
    for event in started:
        assert event.wait(10)
    release.set()
    names = {future.result(10) for future in held}
    assert len(names) == 3
    # one call after another: always the same (last idle) thread, never a rotation
    after = [pool.submit(lambda: threading.current_thread().name).result(10) for _ in range(20)]
    assert len(set(after)) == 1 and after[0] in names
    pool.shutdown()


def test_results_and_exceptions_come_back_through_the_futures():
    pool = WarmThreadPool(2, thread_name_prefix="t")
    assert pool.submit(lambda a, b=0: a + b, 2, b=3).result(10) == 5
    with pytest.raises(ZeroDivisionError):
        pool.submit(lambda: 1 / 0).result(10)
    assert list(pool.map(abs, [-1, -2, 3])) == [1, 2, 3]
    pool.shutdown()


def test_no_more_than_max_workers_run_at_once_and_the_rest_wait_their_turn():
    pool = WarmThreadPool(2, thread_name_prefix="t")
    lock = threading.Lock()
    running, most = 0, 0
    gate = threading.Event()

    def call(index: int) -> int:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        gate.wait(10)
        with lock:
            running -= 1
        return index

    results = [pool.submit(call, i) for i in range(6)]
    gate.set()
    assert [future.result(10) for future in results] == list(range(6))
    assert most <= 2
    assert len(pool._threads) == 2
    pool.shutdown()


def test_shutdown_runs_what_was_queued_and_refuses_new_calls():
    pool = WarmThreadPool(1, thread_name_prefix="t")
    gate = threading.Event()
    first = pool.submit(gate.wait, 10)
    queued = pool.submit(lambda: "queued")
    cancelled_pool = WarmThreadPool(1, thread_name_prefix="u")
    cancelled_gate = threading.Event()
    cancelled_pool.submit(cancelled_gate.wait, 10)
    dropped = cancelled_pool.submit(lambda: "dropped")

    gate.set()
    pool.shutdown(wait=True)
    assert first.result(0) is True and queued.result(0) == "queued"
    with pytest.raises(RuntimeError, match="shut down"):
        pool.submit(lambda: None)

    cancelled_pool.shutdown(wait=False, cancel_futures=True)
    cancelled_gate.set()
    assert dropped.cancelled()
    cancelled_pool.shutdown(wait=True)
    assert not any(thread.is_alive() for thread in pool._threads + cancelled_pool._threads)
