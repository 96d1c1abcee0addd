"""Node wiring: the store, the pool, the engine and the RPC, and the chain thread.

Everything that changes the chain (building, importing, making canonical) runs on one
dedicated thread, so the event loop keeps answering RPC while a block executes. When a
chain call returns, the blocks it made canonical are published on the event loop: the
reader moves its head, the pool drops what was included, filters and subscriptions hear
about new heads and logs.
"""

import asyncio
import contextlib
import logging
import shutil
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from chain.ai import registry
from chain.ai.replicas import LocalModels
from chain.ai.results import SidecarPool, SpotChecker
from chain.config import NodeConfig
from chain.engine import Engine
from chain.execution import ExecutedBlock
from chain.genesis import Genesis, genesis_block, load_genesis, parse_genesis
from chain.simulate import Simulator
from chain.storage.integrity import check_head
from chain.storage.reader import ChainReader
from chain.storage.store import Store, StoreError, damaged
from chain.txpool import TxPool, TxPoolError
from genesis import DEV_GENESIS, DEV_MODELS

log = logging.getLogger("sibyl.node")

# Threads that run requests' EVM work (eth_call, eth_estimateGas, ...): off the event
# loop, so a long call delays no request that runs no EVM. One: under the GIL more add
# no throughput, and each busy one makes the event loop wait longer for the GIL (with
# 4, a looping eth_call took eth_blockNumber's p99 from 6 ms to 55 ms; with 1, 16 ms).
# Calls wait for each other instead, each at most rpc_evm_timeout.
EVM_THREADS = 1


def initialise(datadir: Path, genesis: Genesis) -> bytes:
    """Create a data dir holding ``genesis``; returns the genesis hash."""
    block, write = genesis_block(genesis)
    store = Store(datadir)
    try:
        store.initialise(write, genesis.raw)
    finally:
        store.close()
    return block.header.hash


def open_datadir(config: NodeConfig, readonly: bool = False) -> tuple[Store, Genesis]:
    """Open (initialising if new and a genesis is given) the data dir of ``config``;
    ``readonly`` to read it beside the node that owns it. A temporary data dir is not
    fsynced (see :class:`~chain.storage.store.Store`)."""
    store = Store(config.datadir, readonly, durable=not config.temporary)
    try:
        genesis = _genesis_of(store, config, readonly)
        check_head(store)
        return store, genesis
    except BaseException:
        store.close()  # and let go of the data dir
        raise


def _genesis_of(store: Store, config: NodeConfig, readonly: bool) -> Genesis:
    stored = store.get("meta", b"genesis")
    if stored is None and (store.head_hash() or store.canonical_hash(0)):
        raise damaged(config.datadir, "it holds blocks but no genesis")
    if stored is None:
        genesis_path = config.genesis or (DEV_GENESIS if config.dev else None)
        if genesis_path is None or readonly:
            raise StoreError(
                f"data dir {config.datadir} is not initialised: run `sibyl init --genesis FILE "
                f"--datadir {config.datadir}` or pass --genesis"
            )
        genesis = load_genesis(genesis_path)
        _, write = genesis_block(genesis)
        store.initialise(write, genesis.raw)
        return genesis
    genesis = parse_genesis(stored, f"{config.datadir} (stored genesis)")
    if config.genesis is not None:
        given = load_genesis(config.genesis)
        ours, theirs = store.canonical_hash(0), genesis_block(given)[0].header.hash
        if given.raw != stored and (theirs != ours or given.config != genesis.config):
            raise StoreError(
                f"data dir {config.datadir} holds another chain (genesis 0x{ours.hex()}, "
                f"chain id {genesis.config.chain_id}), not the one in {config.genesis} "
                f"(genesis 0x{theirs.hex()}, chain id {given.config.chain_id})"
            )
    return genesis


class Node:
    def __init__(
        self,
        config: NodeConfig,
        sidecars: SidecarPool | None = None,
        spot_checker: SpotChecker | None = None,
    ) -> None:
        self.config = config
        self.store, self.genesis = open_datadir(config)
        self.chain_config = self.genesis.config
        self.reader = ChainReader(self.store, self.chain_config)
        replicas = LocalModels([DEV_MODELS, *(Path(d) for d in config.model_dirs)])
        try:
            state = self.reader.accounts(self.reader.head)
            models = [registry.get_model(state, i) for i in registry.model_ids(state)]
            replicas.require_verifying_keys(models)
        except BaseException:
            self.store.close()
            raise
        self.engine = Engine(
            self.chain_config, self.store, self.reader, sidecars, spot_checker, replicas
        )
        self.pool = TxPool(
            self.chain_config.chain_id,
            config.pool,
            lambda: self.reader.head,
            self.reader.account,
            self.chain_config,
            self.engine.total_difficulty,
        )
        self.simulator = Simulator(
            self.chain_config,
            self.store.state_get,
            self.reader.header,
            sidecars,
            replicas,
            config.rpc_gas_cap,
            config.rpc_evm_timeout,
            self.engine.total_difficulty,
        )
        self.evm_threads = ThreadPoolExecutor(max_workers=EVM_THREADS, thread_name_prefix="evm")
        self.head_listeners: list[Callable[[ExecutedBlock], None]] = []
        # told, before the head listeners, which stored blocks a reorg moved
        self.reorg_listeners: list[Callable[[list[bytes]], None]] = []
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chain")
        self._lock = asyncio.Lock()
        head = self.reader.head
        log.info(
            "chain opened chain_id=%d head=%d hash=0x%s datadir=%s",
            self.chain_config.chain_id,
            head.block_number,
            head.hash.hex(),
            config.datadir,
        )

    async def chain_call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn`` on the chain thread, then publish the blocks it made canonical."""
        async with self._lock:
            loop = asyncio.get_running_loop()
            try:
                return await loop.run_in_executor(self.executor, fn, *args)
            finally:
                self._publish(*self.engine.take_commits())

    async def run_evm(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run a request's EVM work (bounded by the simulator's caps) off the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self.evm_threads, fn, *args)

    def _publish(
        self, commits: list[ExecutedBlock], dropped: list[bytes], moved: list[bytes]
    ) -> None:
        if not commits and not dropped and not moved:
            return
        self.reader.refresh_head()
        self.pool.on_new_head(
            (sender, tx.nonce)
            for executed in commits
            for sender, tx in zip(executed.senders, executed.block.transactions, strict=True)
        )
        for raw in dropped:  # what a reorg took out of the chain waits in the pool again
            with contextlib.suppress(TxPoolError):
                self.pool.add(raw)
        if moved:
            for reorg_listener in self.reorg_listeners:
                try:
                    reorg_listener(moved)
                except Exception:
                    log.exception("reorg listener failed")
        for executed in commits:
            for listener in self.head_listeners:
                try:
                    listener(executed)
                except Exception:
                    log.exception("head listener failed")

    def close(self) -> None:
        self.evm_threads.shutdown(wait=True, cancel_futures=True)  # they read the store
        self.executor.shutdown(wait=True)
        self.store.close()
        if self.config.temporary:
            shutil.rmtree(self.config.datadir, ignore_errors=True)


def temporary_datadir() -> Path:
    return Path(tempfile.mkdtemp(prefix="sibyl-dev-"))
