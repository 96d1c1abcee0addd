"""EXECUTOR_REGISTRY (0x…0a02): the keys allowed to attest AI results, with their
capabilities and stake. An executor registers itself by staking at least the minimum
(``register`` is payable) and gets its stake back when it leaves; the admin can
deactivate an executor, the hook for slashing. Layout: :mod:`chain.ai.registry`."""

from eth.abc import ComputationAPI
from eth_abi import encode as abi_encode

from chain.ai import registry
from chain.precompiles.native import (
    READ_GAS,
    WRITE_GAS,
    Function,
    NativeContract,
    NativeRevert,
    event_topic,
)

REGISTERED = event_topic("ExecutorRegistered(address,uint256,uint256)")
DEREGISTERED = event_topic("ExecutorDeregistered(address,uint256)")
DEACTIVATED = event_topic("ExecutorDeactivated(address)")
ALL_CAPABILITIES = (1 << len(registry.CAPABILITIES)) - 1


def _topic(address: bytes) -> int:
    return int.from_bytes(address, "big")


class ExecutorRegistry(NativeContract):
    address = registry.EXECUTOR_REGISTRY
    name = "ExecutorRegistry"

    def functions(self) -> list[Function]:
        return [
            Function("register(uint256)", (), self.register, writes=True, gas=4 * WRITE_GAS),
            Function("deregister()", (), self.deregister, writes=True, gas=3 * WRITE_GAS),
            Function("deactivate(address)", (), self.deactivate, writes=True, gas=WRITE_GAS),
            Function(
                "getExecutor(address)",
                ("uint256", "uint256", "bool"),
                self.get,
                writes=False,
                gas=3 * READ_GAS,
            ),
            Function(
                "isExecutor(address,uint8)",
                ("bool",),
                self.is_executor,
                writes=False,
                gas=3 * READ_GAS,
            ),
            Function("executors()", ("address[]",), self.executors, writes=False, gas=4 * READ_GAS),
            Function("minStake()", ("uint256",), self.min_stake, writes=False, gas=READ_GAS),
        ]

    def register(self, computation: ComputationAPI, capabilities: int) -> None:
        if capabilities == 0 or capabilities & ~ALL_CAPABILITIES:
            raise NativeRevert(
                "capabilities must be a non-empty subset of "
                + ", ".join(f"{1 << i} ({n})" for i, n in enumerate(registry.CAPABILITIES))
            )
        state, sender = computation.state, computation.msg.sender
        current = registry.get_executor(state, sender)
        stake = (current.stake if current else 0) + computation.msg.value
        minimum = state.get_storage(registry.EXECUTOR_REGISTRY, registry.MIN_STAKE_SLOT)
        if stake < minimum:
            raise NativeRevert(f"stake {stake} is below the minimum of {minimum}")
        registry.put_executor(state, registry.ExecutorRecord(sender, capabilities, stake, True))
        computation.add_log_entry(
            registry.EXECUTOR_REGISTRY,
            [REGISTERED, _topic(sender)],
            abi_encode(["uint256", "uint256"], [capabilities, stake]),
        )

    def deregister(self, computation: ComputationAPI) -> None:
        state, sender = computation.state, computation.msg.sender
        current = registry.get_executor(state, sender)
        if current is None or not current.active:
            raise NativeRevert("not an active executor")
        registry.put_executor(
            state, registry.ExecutorRecord(sender, current.capabilities, 0, False)
        )
        state.delta_balance(registry.EXECUTOR_REGISTRY, -current.stake)
        state.delta_balance(sender, current.stake)
        computation.add_log_entry(
            registry.EXECUTOR_REGISTRY,
            [DEREGISTERED, _topic(sender)],
            abi_encode(["uint256"], [current.stake]),
        )

    def deactivate(self, computation: ComputationAPI, executor: str) -> None:
        state = computation.state
        if computation.msg.sender != registry.admin(state, registry.EXECUTOR_REGISTRY):
            raise NativeRevert("only the registry admin may deactivate executors")
        address = bytes.fromhex(executor[2:])
        current = registry.get_executor(state, address)
        if current is None:
            raise NativeRevert("not a registered executor")
        registry.put_executor(
            state, registry.ExecutorRecord(address, current.capabilities, current.stake, False)
        )
        computation.add_log_entry(registry.EXECUTOR_REGISTRY, [DEACTIVATED, _topic(address)], b"")

    def get(self, computation: ComputationAPI, executor: str) -> tuple[int, int, bool]:
        record = registry.get_executor(computation.state, bytes.fromhex(executor[2:]))
        if record is None:
            return (0, 0, False)
        return (record.capabilities, record.stake, record.active)

    def is_executor(self, computation: ComputationAPI, executor: str, capability: int) -> bool:
        record = registry.get_executor(computation.state, bytes.fromhex(executor[2:]))
        return (
            record is not None
            and capability < len(registry.CAPABILITIES)
            and record.can(registry.CAPABILITIES[capability])
        )

    def executors(self, computation: ComputationAPI) -> list[str]:
        return ["0x" + a.hex() for a in registry.executor_addresses(computation.state)]

    def min_stake(self, computation: ComputationAPI) -> int:
        return computation.state.get_storage(registry.EXECUTOR_REGISTRY, registry.MIN_STAKE_SLOT)
