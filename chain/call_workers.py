"""eth_call, eth_estimateGas and eth_createAccessList on worker processes.

The EVM is pure Python and holds the GIL, so calls answered on the event loop compete
with the RPC server and the chain thread for one core. LMDB lets other processes read a
data dir while the node writes it, so worker processes each open the store read-only,
keep their own warm VM for the head (:class:`chain.simulate.Simulator`) and answer calls
in parallel; the node resolves the block and sends its hash, so a worker reads exactly
the state the node would. A worker that dies is replaced; meanwhile calls run in-process.
"""

import asyncio
import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth.abc import BlockHeaderAPI

from chain.oracle import ModelUnavailable
from chain.reader import ChainReader
from chain.replicas import LocalModels
from chain.simulate import CallArgs, CallError, ExecutionReverted, OutOfGasError, Simulator
from chain.storage import Store
from chain.vm import ChainConfig

log = logging.getLogger("sibyl.calls")


@dataclass(frozen=True)
class WorkerSetup:
    """What a worker needs to open the same chain and reach the same sidecars."""

    datadir: Path
    config: ChainConfig
    sidecars: tuple[tuple[str, str], ...]  # (name, endpoint)
    model_dirs: tuple[Path, ...]


_reader: ChainReader | None = None
_simulator: Simulator | None = None


def _start_worker(setup: WorkerSetup) -> None:
    from sidecars.client import SidecarPool

    global _reader, _simulator
    store = Store(setup.datadir, readonly=True)
    _reader = ChainReader(store, setup.config)
    pool = None
    if setup.sidecars:
        pool = SidecarPool()
        for name, endpoint in setup.sidecars:
            pool.add(name, endpoint)
            pool.refresh(name)
    _simulator = Simulator(
        setup.config, store.state_get, _reader.header, pool, LocalModels(list(setup.model_dirs))
    )


def run(simulator: Simulator, kind: str, header: BlockHeaderAPI, args: CallArgs) -> tuple:
    """Run one call; the outcome as a plain tuple that crosses a process boundary:
    ``("ok", value)`` or ``(error kind, message, data)``."""
    try:
        if kind == "call":
            return ("ok", simulator.call(header, args))
        if kind == "estimate":
            return ("ok", simulator.estimate_gas(header, args))
        return ("ok", simulator.access_list(header, args))
    except ExecutionReverted as exc:
        return ("reverted", str(exc), exc.data)
    except (CallError, OutOfGasError) as exc:
        return ("call", str(exc), None)
    except ModelUnavailable as exc:
        return ("model", str(exc), exc.model_id)


def _run_in_worker(kind: str, block_hash: bytes, args: CallArgs) -> tuple:
    assert _reader is not None and _simulator is not None
    header = _reader.header(block_hash)
    if header is None:
        return ("call", "header not found", None)
    return run(_simulator, kind, header, args)


def unpack(outcome: tuple) -> Any:
    """The value of an outcome, or the node error it stands for."""
    if outcome[0] == "ok":
        return outcome[1]
    kind, message, data = outcome
    if kind == "reverted":
        raise ExecutionReverted(data)
    if kind == "model":
        raise ModelUnavailable(data)
    raise CallError(message)


class CallWorkers:
    def __init__(self, setup: WorkerSetup, workers: int) -> None:
        self.setup = setup
        self.workers = workers
        self.executor = self._spawn()

    def _spawn(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
            initargs=(self.setup,),
        )

    async def run(self, kind: str, header: BlockHeaderAPI, args: CallArgs) -> tuple:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(
                self.executor, _run_in_worker, kind, header.hash, args
            )
        except BrokenProcessPool:
            log.warning("call worker died; restarting the workers")
            self.executor.shutdown(wait=False, cancel_futures=True)
            self.executor = self._spawn()
            raise

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
