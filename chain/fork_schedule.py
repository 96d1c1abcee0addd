"""A genesis file's ``config``: the chain id and the fork schedule, read as geth reads
it. A plain Ethereum chain may start at any fork from Frontier on: the proof-of-work
forks by block number, the merge by terminal total difficulty, then Shanghai, Cancun and
Prague by timestamp. A Sibyl chain runs merged at genesis, from Shanghai on."""

from typing import Any

from chain.genesis_values import GenesisError, hex_bytes, json_object, quantity
from chain.vm import ChainConfig


def _optional_time(config: dict[str, Any], name: str) -> int | None:
    if config.get(name) is None:
        return None
    return quantity(config[name], f"config.{name}", bits=64)


BLOCK_FORK_NAMES = {  # geth's key of each proof-of-work fork, and py-evm's fork
    "homesteadBlock": "homestead",
    "eip150Block": "tangerine_whistle",
    "eip158Block": "spurious_dragon",  # EIP-155 and EIP-158 together, as on every chain
    "byzantiumBlock": "byzantium",
    "constantinopleBlock": "constantinople",
    "petersburgBlock": "petersburg",
    "istanbulBlock": "istanbul",
    "muirGlacierBlock": "muir_glacier",
    "berlinBlock": "berlin",
    "londonBlock": "london",
    "arrowGlacierBlock": "arrow_glacier",
    "grayGlacierBlock": "gray_glacier",
}
BLOCK_FORKS = ("eip155Block", *BLOCK_FORK_NAMES)
BLOB_SCHEDULE = {  # what py-evm's forks run (EIP-4844, EIP-7691)
    "cancun": {"target": 3, "max": 6, "baseFeeUpdateFraction": 3_338_477},
    "prague": {"target": 6, "max": 9, "baseFeeUpdateFraction": 5_007_716},
}


def _check_blob_schedule(value: Any) -> None:
    """geth's ``blobSchedule``: accepted when it states the forks' own parameters."""
    if value is None:
        return
    for fork, entry in json_object(value, "config.blobSchedule").items():
        expected = BLOB_SCHEDULE.get(fork)
        key = f"config.blobSchedule.{fork}"
        if expected is None:
            raise GenesisError(f"{key}: not a fork Sibyl runs (cancun, prague)")
        given = {name: quantity(v, f"{key}.{name}") for name, v in json_object(entry, key).items()}
        if given != expected:
            raise GenesisError(f"{key}: Sibyl runs the fork's own blob parameters {expected}")


def _block_forks(config: dict[str, Any]) -> tuple[tuple[str, int], ...]:
    """The proof-of-work forks as geth reads them: each from its block on, in fork order
    (geth's ``CheckConfigForkOrder``: a fork is not before an earlier one)."""
    forks: list[tuple[str, int]] = []
    for key, fork in BLOCK_FORK_NAMES.items():
        if config.get(key) is None:
            continue
        block = quantity(config[key], f"config.{key}", bits=64)
        if forks and block < forks[-1][1]:
            raise GenesisError(f"config.{key}: {block} is before an earlier fork's block")
        forks.append((fork, block))
    eip155 = config.get("eip155Block")
    if eip155 is not None and quantity(eip155, "config.eip155Block", bits=64) != dict(forks).get(
        "spurious_dragon"
    ):
        raise GenesisError("config.eip155Block: must equal eip158Block (py-evm's Spurious Dragon)")
    return tuple(forks)


def chain_config(config: dict[str, Any], difficulty: int, sibyl: bool) -> ChainConfig:
    if "chainId" not in config:
        raise GenesisError("config.chainId: missing")
    chain_id = quantity(config["chainId"], "config.chainId", bits=64)
    if chain_id == 0:
        raise GenesisError("config.chainId: must be positive")
    shanghai = _optional_time(config, "shanghaiTime")
    ttd = config.get("terminalTotalDifficulty")
    # geth: no terminalTotalDifficulty, no merge; files written for Sibyl before it read
    # pre-merge history state only shanghaiTime, meaning merged at genesis
    terminal = (
        quantity(ttd, "config.terminalTotalDifficulty")
        if ttd is not None
        else (0 if shanghai is not None else None)
    )
    block_forks = _block_forks(config)
    if sibyl:
        _check_merged_at_genesis(terminal, difficulty, block_forks, shanghai)
    _check_blob_schedule(config.get("blobSchedule"))
    cancun = _optional_time(config, "cancunTime")
    prague = _optional_time(config, "pragueTime")
    if cancun is not None and (shanghai is None or cancun < shanghai):
        raise GenesisError("config.cancunTime: needs shanghaiTime at or before it")
    if prague is not None and (cancun is None or prague < cancun):
        raise GenesisError("config.pragueTime: needs cancunTime at or before it")
    deposit = config.get("depositContractAddress")
    dao = config.get("daoForkBlock") if config.get("daoForkSupport", False) is True else None
    return ChainConfig(
        chain_id,
        shanghai,
        cancun,
        prague,
        sibyl=sibyl,
        terminal_total_difficulty=terminal,
        deposit_contract=None
        if deposit is None
        else hex_bytes(deposit, "config.depositContractAddress", length=20),
        block_forks=block_forks,
        dao_fork_block=None if dao is None else quantity(dao, "config.daoForkBlock", bits=64),
        ethash="ethash" in config,
    )


def _check_merged_at_genesis(
    terminal: int | None, difficulty: int, block_forks: tuple, shanghai: int | None
) -> None:
    """A Sibyl chain is built by its own nodes through the Engine API: it starts merged."""
    if terminal is None or terminal > difficulty:
        # geth: the merge happened at genesis when its total difficulty (its own) has
        # reached the terminal one; a later merge means proof-of-work blocks first
        raise GenesisError(
            f"config.terminalTotalDifficulty: {terminal} is above the genesis "
            f"difficulty {difficulty}, so the chain would start before the merge; a Sibyl "
            "chain (one with a sibyl section) runs merged at genesis"
        )
    for fork, block in block_forks:
        if block != 0:
            key = next(k for k, f in BLOCK_FORK_NAMES.items() if f == fork)
            raise GenesisError(
                f"config.{key}: a fork after genesis by block number means proof-of-work "
                "blocks first; a Sibyl chain runs merged at genesis (set it to 0)"
            )
    if shanghai is None:
        raise GenesisError(
            "config.shanghaiTime: missing; a Sibyl chain runs the post-merge forks "
            "(Shanghai, Cancun, Prague) and needs at least shanghaiTime"
        )
