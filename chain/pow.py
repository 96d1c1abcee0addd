"""The proof-of-work era: what a block before the merge must be, as geth checks on import.

A plain Ethereum chain's history starts with proof-of-work blocks (Frontier to Gray
Glacier by block number) and, when its total difficulty reaches the terminal one, goes on
with proof-of-stake blocks. py-evm has each fork's VM (its header rules, difficulty
formula, rewards); this module adds what geth's ``ethash`` and ``beacon`` engines check
around them:

* a header's difficulty is its fork's formula on its parent, its gas limit within the
  bounds (and below 2**63), its gas used within its limit;
* at most two uncles, each a valid header of its own parent, none an ancestor, none
  included before, each a child of one of the six ancestors before the parent
  (geth's ``VerifyUncles``);
* the merge: a block whose parent reached the terminal total difficulty is a
  proof-of-stake one (difficulty and nonce 0, no uncles), and one whose parent did not
  is a proof-of-work one;
* the DAO fork block and the nine after it carry ``dao-hard-fork`` as extra data, and the
  DAO's balances move to its refund contract before the fork block's transactions;
* the seal, when the genesis names the ``ethash`` engine (:mod:`chain.ethash`); without
  it seals are not checked, as in geth with a faked proof of work (the consensus tests'
  ``sealEngine: NoProof``).
"""

from collections.abc import Callable
from typing import Any

from eth.abc import BlockAPI, BlockHeaderAPI
from eth.constants import EMPTY_UNCLE_HASH, MAX_UNCLE_DEPTH, MAX_UNCLES
from eth.vm.forks.homestead.headers import dao_drain_list, dao_refund_contract
from eth_utils import ValidationError, decode_hex

from chain.ethash import InvalidSeal, check_seal
from chain.vm import ChainConfig, fork_since, merge_reached, vm_class_of

HeaderLookup = Callable[[bytes], BlockHeaderAPI | None]
BlockLookup = Callable[[bytes], BlockAPI | None]

MAX_GAS_LIMIT = 2**63 - 1  # geth's params.MaxGasLimit
DAO_EXTRA_DATA = b"dao-hard-fork"
DAO_EXTRA_RANGE = 10  # blocks from the fork block that must carry it


class InvalidHeader(Exception):
    """A header that breaks a proof-of-work era rule; the message says which."""


def is_pow(header: BlockHeaderAPI) -> bool:
    return header.difficulty != 0


def check_merge(config: ChainConfig, header: BlockHeaderAPI, parent_total_difficulty: int) -> None:
    """geth's ``beacon`` engine: the parent's total difficulty says which kind of block
    this must be."""
    if merge_reached(config, parent_total_difficulty):
        if is_pow(header):
            raise InvalidHeader(
                f"difficulty {header.difficulty} after the merge: the parent's total "
                f"difficulty {parent_total_difficulty} has reached the terminal one"
            )
    elif not is_pow(header):
        raise InvalidHeader(
            f"a proof-of-stake block before the merge: the parent's total difficulty "
            f"{parent_total_difficulty} is below the terminal one "
            f"{config.terminal_total_difficulty}"
        )


def check_header(config: ChainConfig, header: BlockHeaderAPI, parent: BlockHeaderAPI) -> None:
    """What geth's ethash ``verifyHeader`` checks of a proof-of-work header (or uncle)."""
    vm_class = vm_class_of(config, header)
    fork = config.fork_of(header.block_number, header.timestamp, header.difficulty)
    if hasattr(header, "base_fee_per_gas") != fork_since(fork, "london"):
        raise InvalidHeader(f"a header of another layout than {fork}'s (EIP-1559 base fee)")
    try:
        vm_class.validate_header(header, parent)  # extra data, gas limit, base fee, number, time
    except ValidationError as exc:
        raise InvalidHeader(str(exc)) from None
    if header.gas_limit > MAX_GAS_LIMIT:
        raise InvalidHeader(f"gas limit {header.gas_limit} above {MAX_GAS_LIMIT}")
    if header.gas_used > header.gas_limit:
        raise InvalidHeader(f"gas used {header.gas_used} above the gas limit {header.gas_limit}")
    expected = vm_class.compute_difficulty(parent, header.timestamp)
    if header.difficulty != expected:
        raise InvalidHeader(f"difficulty {header.difficulty}, expected {expected}")
    dao = config.dao_fork_block
    in_dao_range = dao is not None and dao <= header.block_number < dao + DAO_EXTRA_RANGE
    if in_dao_range and header.extra_data != DAO_EXTRA_DATA:
        raise InvalidHeader(f"extra data must be {DAO_EXTRA_DATA!r} after the DAO fork")
    if config.ethash:
        try:
            check_seal(
                header.block_number,
                header.mining_hash,
                header.mix_hash,
                header.nonce,
                header.difficulty,
            )
        except InvalidSeal as exc:
            raise InvalidHeader(f"invalid proof of work: {exc}") from None


def check_uncles(
    config: ChainConfig, block: BlockAPI, headers: HeaderLookup, blocks: BlockLookup
) -> None:
    """geth's ``VerifyUncles``: recent ancestors' children that are not ancestors and were
    not included before, each a valid header."""
    uncles = block.uncles
    if len(uncles) > MAX_UNCLES:
        raise InvalidHeader(f"{len(uncles)} uncles, at most {MAX_UNCLES}")
    if not uncles:
        return
    ancestors: dict[bytes, BlockHeaderAPI] = {}
    included: set[bytes] = set()
    parent_hash = block.header.parent_hash
    for _ in range(MAX_UNCLE_DEPTH + 1):
        ancestor = headers(parent_hash)
        if ancestor is None:
            break
        ancestors[parent_hash] = ancestor
        if ancestor.uncles_hash != EMPTY_UNCLE_HASH:
            body = blocks(parent_hash)
            included.update(uncle.hash for uncle in (body.uncles if body is not None else ()))
        parent_hash = ancestor.parent_hash
    ancestors[block.header.hash] = block.header
    included.add(block.header.hash)
    for index, uncle in enumerate(uncles):
        if uncle.hash in included:
            raise InvalidHeader(f"uncle {index} 0x{uncle.hash.hex()}: included before")
        included.add(uncle.hash)
        if uncle.hash in ancestors:
            raise InvalidHeader(f"uncle {index} 0x{uncle.hash.hex()}: is an ancestor")
        uncle_parent = ancestors.get(uncle.parent_hash)
        if uncle_parent is None or uncle.parent_hash == block.header.parent_hash:
            raise InvalidHeader(
                f"uncle {index} 0x{uncle.hash.hex()}: its parent is not one of the "
                "block's recent ancestors before its parent"
            )
        try:
            check_header(config, uncle, uncle_parent)
        except InvalidHeader as exc:
            raise InvalidHeader(f"uncle {index} 0x{uncle.hash.hex()}: {exc}") from None


def apply_dao_fork(state: Any) -> None:
    """geth's ``ApplyDAOHardFork``: every DAO account's balance to the refund contract."""
    for address in dao_drain_list:
        account = decode_hex(address)
        state.delta_balance(dao_refund_contract, state.get_balance(account))
        state.set_balance(account, 0)
