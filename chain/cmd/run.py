"""``sibyl run``: the node with its RPC servers and, on a dev chain, its block producer.

This is the one module where the execution client meets the RPC: it builds the
:class:`~chain.node.Node`, mounts every namespace on the public port and the Engine API
on the authenticated port, starts the dev producer when asked, and shuts everything
down cleanly on SIGINT or SIGTERM.
"""

import asyncio
import contextlib
import hashlib
import logging
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from eth_keys import keys

from chain.ai import registry
from chain.ai.dispatch import JobDispatcher
from chain.ai.results import Disagreement, SpotChecker
from chain.config import NodeConfig
from chain.dev import DevChain
from chain.follower import Follower
from chain.node import Node
from chain.producer import DevProducer
from rpc.accounts import AccountsApi
from rpc.debug import DebugApi
from rpc.dev import DevApi, dev_methods, refusals
from rpc.engine import EngineApi, EngineServer, load_jwt_secret
from rpc.eth import EthApi
from rpc.filters import FilterManager
from rpc.metrics import JobCounters, MetricsServer, render
from rpc.net import NetApi
from rpc.server import RpcServer, collect_methods
from rpc.sibyl import SibylApi
from rpc.subscriptions import Subscriptions
from rpc.txpool import TxPoolApi
from sidecars.config import dev_default_specs
from sidecars.keys import address_of

if TYPE_CHECKING:
    from sidecars.manager import SidecarManager

log = logging.getLogger("sibyl.run")
TEST_MNEMONIC = "test test test test test test test test test test test junk"
# The keys anvil and hardhat derive from TEST_MNEMONIC at m/44'/60'/0'/0/i, written out:
# deriving them takes eth_account, whose import costs up to a second before the port
# opens (rpc/accounts.py); tests/test_dev_methods.py checks them against the derivation.
DEV_KEYS = (
    "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    "47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
    "8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba",
    "92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e",
    "4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356",
    "dbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97",
    "2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6",
)


def dev_accounts(count: int = len(DEV_KEYS)) -> list[keys.PrivateKey]:
    """The accounts of the well-known test mnemonic, as hardhat and anvil derive them."""
    return [keys.PrivateKey(bytes.fromhex(key)) for key in DEV_KEYS[:count]]


def jwt_secret(config: NodeConfig) -> bytes:
    """The Engine API secret: the given file, or ``jwt.hex`` in the data dir (as geth)."""
    path = config.rpc.jwt_secret or config.datadir / "jwt.hex"
    if not path.exists():
        path.write_text(os.urandom(32).hex() + "\n")
        path.chmod(0o600)
        log.info("jwt secret created path=%s", path)
    return load_jwt_secret(path)


def print_dev_accounts(node: Node, signers: list) -> None:
    """The banner anvil prints: funded accounts, their keys, where the node listens."""
    accounts = node.reader.accounts(node.reader.head)
    lines = ["", "Available Accounts", "=================="]
    for i, key in enumerate(signers):
        balance = accounts.get_balance(key.public_key.to_canonical_address()) // 10**18
        lines.append(f"({i}) {address_of(key)} ({balance} ETH)")
    lines += ["", "Private Keys", "=================="]
    lines += [f"({i}) {key.to_hex()}" for i, key in enumerate(signers)]
    rpc = node.config.rpc
    lines += [
        "",
        f"Chain ID:  {node.chain_config.chain_id}",
        f"Data dir:  {node.config.datadir}" + (" (temporary)" if node.config.temporary else ""),
        f"Listening on http://{rpc.http_addr}:{rpc.http_port} (HTTP and WebSocket)",
        "",
    ]
    print("\n".join(lines), flush=True)


def start_sidecars(config: NodeConfig) -> "SidecarManager | None":
    """The node's sidecars: those of the config file, or on a dev chain the bundled
    models; None when there are none to run (``--sidecars none``, or nothing declared).
    They are registered here and launched in the background once the RPC port is open
    (:func:`serve`), so JSON-RPC answers before the slowest model loads and before their
    imports compete with the node's own for the CPU."""
    specs = config.sidecar_specs or (dev_default_specs() if config.dev else [])
    if config.sidecar_mode == "none" or not specs:
        return None
    assert config.datadir is not None
    from sidecars.manager import SidecarManager  # grpc: only a node with sidecars needs it

    owner = "sibyl-" + hashlib.sha256(str(config.datadir.resolve()).encode()).hexdigest()[:12]
    manager = SidecarManager(
        specs,
        config.sidecar_mode,
        owner=owner,
        image=config.sidecar_image,
        log_dir=config.datadir / "sidecars",
        on_ready=print_sidecar_ready,
    )
    manager.start(wait=False, launch=False)  # each sidecar says when it is ready
    return manager


def print_sidecar_ready(name: str, models: list[str]) -> None:
    print(f"Sidecar {name} ready (models {', '.join(models) or 'none'})", flush=True)


async def serve(config: NodeConfig) -> None:
    manager = await asyncio.to_thread(start_sidecars, config)
    disagreements: list[Disagreement] = []
    pool = manager.pool if manager is not None else None
    checker = (
        SpotChecker(pool, config.spot_check_rate, disagreements.append)
        if pool is not None and config.spot_check_rate > 0
        else None
    )
    try:
        node = Node(config, pool, checker)
    except BaseException:
        if manager is not None:
            manager.stop()
        raise
    servers: list[RpcServer | MetricsServer] = []
    tasks: list[asyncio.Task] = []
    debug: DebugApi | None = None
    dispatcher: JobDispatcher | None = None
    try:
        filters = FilterManager(config.rpc.max_filters_per_ip)
        dev_chain = config.dev and not config.follow
        producer = DevProducer(node, config.block_time) if dev_chain else None
        eth = EthApi(node, filters, producer)
        subscriptions = Subscriptions()
        signers = dev_accounts() if config.dev else []
        debug = DebugApi(node, eth)
        impersonated: set[bytes] = set()
        methods = collect_methods(
            eth,
            NetApi(node),
            debug,
            TxPoolApi(node),
            AccountsApi(node, eth, debug, signers, impersonated),
            SibylApi(node, eth.header, manager.status if manager else lambda: [], disagreements),
        )
        if producer is not None:
            methods |= dev_methods(DevApi(DevChain(node, producer), impersonated))
        else:
            methods |= refusals()
        if pool is not None:

            def quorum_of(model_id: bytes) -> int:
                model = registry.get_model(node.reader.accounts(node.reader.head), model_id)
                return model.quorum if model is not None else 1

            # a follower runs no job until a consensus client asks it to build
            dispatcher = JobDispatcher(
                pool, node.chain_config.chain_id, quorum_of, building=not config.follow
            )
            await asyncio.to_thread(dispatcher.recover, node.reader)
            node.head_listeners.append(dispatcher.on_block)
            node.reorg_listeners.append(lambda moved, d=dispatcher: d.on_reorg(node.reader, moved))
            node.engine.deliveries = dispatcher.deliveries
            dispatcher.start()
        node.head_listeners.append(subscriptions.on_commit)
        node.pool.listeners.append(subscriptions.on_pending)
        node.pool.listeners.append(lambda entry: filters.on_pending(entry.hash))

        public = RpcServer(methods, config.rpc, subscriptions.methods_for)
        await public.start(config.rpc.http_addr, config.rpc.http_port)
        servers.append(public)
        if manager is not None:
            manager.launch()
        if config.rpc.engine_port:
            engine = EngineServer(collect_methods(EngineApi(node)), config.rpc, jwt_secret(config))
            await engine.start(config.rpc.http_addr, config.rpc.engine_port)
            servers.append(engine)
        if config.metrics_port:
            job_counters = JobCounters(node)
            node.head_listeners.append(job_counters.on_commit)
            metrics = MetricsServer(
                lambda: render(
                    node,
                    manager.pool.counters if manager else dict,
                    manager.status if manager else list,
                    len(disagreements),
                    job_counters,
                )
            )
            await metrics.start(config.rpc.http_addr, config.metrics_port)
            servers.append(metrics)
        log.info(
            "rpc listening http=%s:%d engine_port=%d",
            config.rpc.http_addr,
            config.rpc.http_port,
            config.rpc.engine_port,
        )
        if config.follow:
            log.info("following peer url=%s", config.follow)
            tasks.append(asyncio.create_task(Follower(node, config.follow).run()))
        elif producer is not None:
            tasks.append(asyncio.create_task(producer.run()))
        if config.dev:
            print_dev_accounts(node, signers)

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        log.info("shutting down")
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if debug is not None:
            debug.stopping.set()  # a running trace ends now, and its request with it
        for server in servers:
            await server.stop()
        if dispatcher is not None:
            await asyncio.to_thread(dispatcher.stop)
        if debug is not None:
            await asyncio.to_thread(debug.close)  # it reads the store: wait for it first
        node.close()
        if manager is not None:
            await asyncio.to_thread(manager.stop)


# How long a thread holding the GIL keeps it while another waits (Python's default is
# 5 ms). Calls, traces and blocks run on their own threads; each time the event loop
# wants the GIL back to answer a request it waits up to this long per busy thread, so
# the default made a looping eth_call add tens of milliseconds to every other request.
GIL_SWITCH_INTERVAL = 0.0005


def run(config: NodeConfig) -> int:
    import uvloop

    sys.setswitchinterval(GIL_SWITCH_INTERVAL)
    try:
        uvloop.run(serve(config))
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def default_datadir() -> Path:
    return Path.home() / ".sibyl"
