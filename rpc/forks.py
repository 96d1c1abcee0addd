"""``eth_config`` (EIP-7910): the fork a node runs now and the next one, as clients and
operators check that two nodes agree on a chain's rules before they talk."""

import binascii
from typing import Any

from eth.vm.forks.prague.constants import (
    CONSOLIDATION_REQUEST_PREDEPLOY_ADDRESS,
    HISTORY_STORAGE_ADDRESS,
    WITHDRAWAL_REQUEST_PREDEPLOY_ADDRESS,
)

from chain.ai import jobs, registry
from chain.precompiles.p256 import P256VERIFY
from chain.precompiles.zk_verify import ZK_VERIFY
from chain.vm import ChainConfig
from scheduler.state import SCHEDULER

BEACON_ROOTS = bytes.fromhex("000f3df6d732807ef1319fb7b8bb8522d0beac02")
SHANGHAI_PRECOMPILES = (
    "ECREC", "SHA256", "RIPEMD160", "ID", "MODEXP", "BN254_ADD", "BN254_MUL",
    "BN254_PAIRING", "BLAKE2F",
)  # fmt: skip
PRECOMPILES = {
    "shanghai": SHANGHAI_PRECOMPILES,
    "cancun": (*SHANGHAI_PRECOMPILES, "KZG_POINT_EVALUATION"),
    "prague": (*SHANGHAI_PRECOMPILES, "KZG_POINT_EVALUATION", "BLS12_G1ADD", "BLS12_G1MSM",
               "BLS12_G2ADD", "BLS12_G2MSM", "BLS12_PAIRING_CHECK", "BLS12_MAP_FP_TO_G1",
               "BLS12_MAP_FP2_TO_G2"),
}  # fmt: skip
SIBYL_PRECOMPILES = {
    "INFER": registry.INFER,
    "EMBED": registry.EMBED,
    "LLM": registry.LLM,
    "ZK_PROVE": registry.ZK_PROVE,
    "P256VERIFY": P256VERIFY,
    "ZK_VERIFY": ZK_VERIFY,
}
SIBYL_SYSTEM_CONTRACTS = {
    "SCHEDULER": SCHEDULER,
    "EXECUTOR_REGISTRY": registry.EXECUTOR_REGISTRY,
    "MODEL_REGISTRY": registry.MODEL_REGISTRY,
    "JOBS": jobs.JOBS,
}
BLOB_SCHEDULE = {
    "cancun": {"baseFeeUpdateFraction": 3_338_477, "max": 6, "target": 3},
    "prague": {"baseFeeUpdateFraction": 5_007_716, "max": 9, "target": 6},
}
ORDER = ("shanghai", "cancun", "prague")


def _hex(address: bytes) -> str:
    return "0x" + address.hex()


def activations(config: ChainConfig) -> list[tuple[str, int]]:
    times = (config.shanghai_time, config.cancun_time, config.prague_time)
    return [(fork, time) for fork, time in zip(ORDER, times, strict=True) if time is not None]


def fork_id(genesis_hash: bytes, genesis_time: int, config: ChainConfig, fork: str) -> str:
    """EIP-2124's fork hash: CRC32 of the genesis hash and each fork time passed since."""
    checksum = binascii.crc32(genesis_hash)
    for name, time in activations(config):
        if time > genesis_time and ORDER.index(name) <= ORDER.index(fork):
            checksum = binascii.crc32(time.to_bytes(8, "big"), checksum)
    return "0x" + checksum.to_bytes(4, "big").hex()


def fork_config(
    config: ChainConfig, fork: str, time: int, genesis_hash: bytes, genesis_time: int
) -> dict[str, Any]:
    precompiles = {
        name: _hex((i + 1).to_bytes(20, "big")) for i, name in enumerate(PRECOMPILES[fork])
    }
    system: dict[str, str] = {}
    if fork != "shanghai":
        system["BEACON_ROOTS_ADDRESS"] = _hex(BEACON_ROOTS)
    if fork == "prague":
        system["CONSOLIDATION_REQUEST_PREDEPLOY_ADDRESS"] = _hex(
            CONSOLIDATION_REQUEST_PREDEPLOY_ADDRESS
        )
        if config.deposit_contract is not None:
            system["DEPOSIT_CONTRACT_ADDRESS"] = _hex(config.deposit_contract)
        system["HISTORY_STORAGE_ADDRESS"] = _hex(HISTORY_STORAGE_ADDRESS)
        system["WITHDRAWAL_REQUEST_PREDEPLOY_ADDRESS"] = _hex(WITHDRAWAL_REQUEST_PREDEPLOY_ADDRESS)
    if config.sibyl:
        precompiles.update({name: _hex(address) for name, address in SIBYL_PRECOMPILES.items()})
        system.update({name: _hex(address) for name, address in SIBYL_SYSTEM_CONTRACTS.items()})
    return {
        "activationTime": time,
        "blobSchedule": BLOB_SCHEDULE.get(fork),
        "chainId": hex(config.chain_id),
        "forkId": fork_id(genesis_hash, genesis_time, config, fork),
        "precompiles": precompiles,
        "systemContracts": system,
    }


def eth_config(
    config: ChainConfig, now: int, genesis_hash: bytes, genesis_time: int
) -> dict[str, Any]:
    """``current``, ``next`` and ``last`` fork configurations at time ``now``."""
    forks = activations(config)
    current = max((i for i, (_, time) in enumerate(forks) if time <= now), default=0)

    def at(index: int) -> dict[str, Any] | None:
        if index >= len(forks):
            return None
        fork, time = forks[index]
        return fork_config(config, fork, time, genesis_hash, genesis_time)

    return {
        "current": at(current),
        "next": at(current + 1),
        "last": at(len(forks) - 1) if current + 1 < len(forks) else None,
    }
