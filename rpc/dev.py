"""Dev-chain test methods, by anvil's names and hardhat's (``--dev`` only).

``evm_*`` (snapshots, mining, the clock, mining modes) and ``anvil_*`` with their
``hardhat_*`` twins (mine, automine, state edits, impersonation, metadata, reset), so
that hardhat-network-helpers, viem's test actions and foundry's tooling drive a Sibyl
dev chain as they drive anvil. Results are shaped as anvil answers them (snapshot ids
from ``0x0``, ``evm_increaseTime`` the total offset as a number, ``null`` for setters).
The chain-side operations are :mod:`chain.dev`; the mining modes and the clock are
:mod:`chain.producer`'s. On a node started without ``--dev`` every one of these names
answers with an error that says so (:func:`refusals`).
"""

import time
from collections.abc import Callable
from importlib.metadata import version
from typing import Any

from eth.db.account import AccountDB
from eth_utils import keccak

from chain.dev import DevChain, DumpedAccount, UnknownPreimage, decode_dump
from rpc import params as p
from rpc.encoding import d, q
from rpc.errors import INVALID_PARAMS, METHOD_NOT_FOUND, SERVER_ERROR, RpcError
from rpc.params import Param, ParamError, method
from rpc.server import Methods, collect_methods

MAX_MINE = 10_000  # blocks one hardhat_mine may ask for: each one is a real block here


def _mine_options(value: Any) -> tuple[int | None, int]:
    """evm_mine's argument: a timestamp, or ``{timestamp, blocks}`` (anvil's MineOptions)."""
    if isinstance(value, dict):
        timestamp = value.get("timestamp")
        blocks = value.get("blocks")
        return (
            None if timestamp is None else p.quantity(timestamp),
            1 if blocks is None else p.quantity(blocks),
        )
    return p.quantity(value), 1


def _slot_value(value: Any) -> bytes:
    raw = p.hex_bytes(value)
    if len(raw) > 32:
        raise ParamError("storage value longer than 32 bytes")
    return raw.rjust(32, b"\0")


def _state_dump(value: Any) -> dict[bytes, DumpedAccount]:
    """anvil_loadState's argument: an anvil state dump, hex of its gzipped or plain JSON."""
    raw = p.hex_bytes(value)
    try:
        return decode_dump(raw)
    except ValueError as exc:
        raise ParamError(f"Failed to decode state dump: {exc}") from None


class DevApi:
    def __init__(self, dev: DevChain, impersonated: set[bytes]) -> None:
        self.dev = dev
        self.node = dev.node
        self.producer = dev.producer
        self.impersonated = impersonated  # shared with rpc.accounts' eth_sendTransaction
        self.instance_id = d(keccak(str(time.time_ns()).encode()))

    # snapshots

    @method()
    def evm_snapshot(self) -> str:
        return q(self.dev.snapshot())

    @method(Param(p.quantity))
    async def evm_revert(self, snapshot_id: int) -> bool:
        return await self.dev.revert(snapshot_id)

    # mining

    @method(Param(_mine_options, (None, 1)))
    async def evm_mine(self, options: tuple[int | None, int]) -> str:
        timestamp, blocks = options
        if timestamp is not None:
            self._check_timestamp(timestamp)
            self.producer.next_timestamp = timestamp
        await self._mine(blocks, 1)
        return "0x0"

    @method(Param(p.quantity, 1), Param(p.quantity, 1))
    async def anvil_mine(self, blocks: int, interval: int) -> None:
        await self._mine(blocks, interval)

    async def _mine(self, blocks: int, interval: int) -> None:
        if blocks > MAX_MINE:
            raise RpcError(INVALID_PARAMS, f"too many blocks: {blocks}, at most {MAX_MINE}")
        for index in range(blocks):
            if index:
                self.producer.next_timestamp = self.node.reader.head.timestamp + max(interval, 1)
            await self.producer.mine()

    # A mode changes between blocks: a block being made when it is asked for is in first.

    @method(Param(p.boolean))
    async def evm_setAutomine(self, enabled: bool) -> None:
        async with self.producer.exclusive():
            self.producer.set_automine(enabled)

    @method(Param(p.quantity))
    async def evm_setIntervalMining(self, seconds: int) -> None:
        """In seconds, as anvil takes it (hardhat's is milliseconds: docs/decisions.md)."""
        async with self.producer.exclusive():
            self.producer.set_interval(seconds)

    @method()
    def anvil_getAutomine(self) -> bool:
        return self.producer.automine

    # the clock

    @method(Param(p.quantity))
    def evm_increaseTime(self, seconds: int) -> int:
        self.producer.time_offset += seconds
        self.dev.keep_clock()
        return self.producer.time_offset

    @method(Param(p.quantity))
    def evm_setNextBlockTimestamp(self, timestamp: int) -> None:
        self._check_timestamp(timestamp)
        self.producer.next_timestamp = timestamp

    def _check_timestamp(self, timestamp: int) -> None:
        head = self.node.reader.head.timestamp
        if timestamp <= head:
            raise RpcError(
                INVALID_PARAMS,
                f"Timestamp error: {timestamp} is not after the previous block's timestamp {head}",
            )

    # state edits

    @method(Param(p.address), Param(p.quantity))
    async def anvil_setBalance(self, address: bytes, balance: int) -> None:
        await self.dev.edit(lambda accounts: accounts.set_balance(address, balance))

    @method(Param(p.address), Param(p.hex_bytes))
    async def anvil_setCode(self, address: bytes, code: bytes) -> None:
        await self.dev.edit(lambda accounts: accounts.set_code(address, code))

    @method(Param(p.address), Param(p.quantity))
    async def anvil_setNonce(self, address: bytes, nonce: int) -> None:
        await self.dev.edit(lambda accounts: accounts.set_nonce(address, nonce))

    @method(Param(p.address), Param(p.quantity), Param(_slot_value))
    async def anvil_setStorageAt(self, address: bytes, slot: int, value: bytes) -> bool:
        def edit(accounts: AccountDB) -> None:
            accounts.set_storage(address, slot, int.from_bytes(value, "big"))

        await self.dev.edit(edit)
        return True

    @method(Param(lambda value: value, None))
    def anvil_dumpState(self, preserve_historical_states: Any) -> str:
        """The head's state in anvil's format (``chain/dev.py``); anvil's flag to keep
        its historical states is accepted and means nothing here: a Sibyl data dir keeps
        every block's state."""
        try:
            return d(self.dev.dump_state())
        except UnknownPreimage as exc:
            raise RpcError(SERVER_ERROR, str(exc)) from None

    @method(Param(_state_dump))
    async def anvil_loadState(self, accounts: dict[bytes, DumpedAccount]) -> bool:
        await self.dev.load_state(accounts)
        return True

    # impersonation

    @method(Param(p.address))
    def anvil_impersonateAccount(self, address: bytes) -> None:
        self.impersonated.add(address)

    @method(Param(p.address))
    def anvil_stopImpersonatingAccount(self, address: bytes) -> None:
        self.impersonated.discard(address)

    # the chain as a whole

    @method()
    def anvil_metadata(self) -> dict[str, Any]:
        head = self.node.reader.head
        return {
            "clientVersion": f"sibyl/v{version('sibyl')}",
            "chainId": self.node.chain_config.chain_id,
            "instanceId": self.instance_id,
            "latestBlockNumber": head.block_number,
            "latestBlockHash": d(head.hash),
            "forkedNetwork": None,
            "snapshots": {q(k): [v.number, v.head] for k, v in self.dev.snapshots.items()},
        }

    @method(Param(lambda value: value, None))
    async def anvil_reset(self, options: Any) -> None:
        if options:
            raise RpcError(INVALID_PARAMS, "forking is not supported: reset takes no options")
        await self.dev.reset()


ANVIL_ONLY = ("anvil_dumpState", "anvil_loadState")  # hardhat has no such methods


def _aliases(methods: Methods) -> Methods:
    """Each ``anvil_`` method under its ``hardhat_`` name too."""
    return {
        name.replace("anvil_", "hardhat_", 1): handler
        for name, handler in methods.items()
        if name.startswith("anvil_") and name not in ANVIL_ONLY
    }


def dev_methods(api: DevApi) -> Methods:
    methods = collect_methods(api)
    return methods | _aliases(methods)


def refusals() -> Methods:
    """The dev methods' names on a node without ``--dev``: each answers why not."""

    def refuse(name: str) -> Callable[[], None]:
        @method(*[Param(lambda value: value, None)] * 4)  # whatever it is given
        def refused(*args: Any) -> None:
            raise RpcError(
                METHOD_NOT_FOUND,
                f"the method {name} is only available on a dev chain (sibyl run --dev)",
            )

        return refused

    names = [n for n in dir(DevApi) if n.startswith(("evm_", "anvil_"))]
    names += [
        n.replace("anvil_", "hardhat_", 1)
        for n in names
        if n.startswith("anvil_") and n not in ANVIL_ONLY
    ]
    return {name: refuse(name) for name in names}
