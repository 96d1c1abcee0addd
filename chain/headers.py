"""A block's header before its transactions: made from its parent and what the consensus
client (or the dev producer) asks the block to carry.

The builder and ``eth_simulateV1`` make every new header here (:func:`next_header`); the
header's execution fields (state root, gas used, bloom, tries) are filled in by
:class:`~chain.execution.BlockExecution` once its transactions have run
(:func:`with_fields`). The checks of a given header before it runs stay with the
importer, in :func:`chain.execution.execute_block`.
"""

from dataclasses import dataclass
from typing import Any

from eth.abc import BlockHeaderAPI
from eth.constants import BLANK_ROOT_HASH, EMPTY_SHA256, EMPTY_UNCLE_HASH
from eth.vm.forks.cancun.constants import MAX_BLOB_GAS_PER_BLOCK as CANCUN_MAX_BLOB_GAS
from eth.vm.forks.cancun.headers import calc_excess_blob_gas_cancun
from eth.vm.forks.london.headers import calculate_expected_base_fee_per_gas
from eth.vm.forks.prague.constants import MAX_BLOB_GAS_PER_BLOCK as PRAGUE_MAX_BLOB_GAS
from eth.vm.forks.prague.headers import calc_excess_blob_gas_prague

from chain.vm import ChainConfig, vm_class_at

MAX_BLOB_GAS = {"cancun": CANCUN_MAX_BLOB_GAS, "prague": PRAGUE_MAX_BLOB_GAS}  # EIP-4844, 7691
# the excess blob gas a block inherits from its parent, by the block's fork
EXCESS_BLOB_GAS = {"cancun": calc_excess_blob_gas_cancun, "prague": calc_excess_blob_gas_prague}


@dataclass(frozen=True)
class PayloadAttributes:
    """What a consensus client (or the dev producer) asks the next block to carry."""

    timestamp: int
    prev_randao: bytes
    fee_recipient: bytes
    withdrawals: tuple = ()
    parent_beacon_block_root: bytes | None = None
    gas_limit: int | None = None
    extra_data: bytes = b""


def next_header(
    config: ChainConfig, parent: BlockHeaderAPI, attributes: PayloadAttributes
) -> BlockHeaderAPI:
    """The header of a new block on ``parent``, before any transaction is applied.

    A Cancun or Prague header is made here in one go (:func:`_blob_era_header`); py-evm's
    ``create_header_from_parent`` makes it fork by fork, a London, Paris, Shanghai,
    Cancun and Prague header each from the last, which took a twentieth of a
    one-transaction block's time. ``tests/test_next_header.py`` holds the two equal."""
    fork = config.fork_at(attributes.timestamp)
    if fork in EXCESS_BLOB_GAS:
        return _blob_era_header(vm_class_at(config, attributes.timestamp), fork, parent, attributes)
    return header_from_parent(config, parent, attributes)


def header_from_parent(
    config: ChainConfig, parent: BlockHeaderAPI, attributes: PayloadAttributes
) -> BlockHeaderAPI:
    """:func:`next_header` made py-evm's way, by the fork's ``create_header_from_parent``."""
    vm_class = vm_class_at(config, attributes.timestamp)
    fields: dict[str, Any] = dict(
        timestamp=attributes.timestamp,
        coinbase=attributes.fee_recipient,
        mix_hash=attributes.prev_randao,
        gas_limit=attributes.gas_limit or parent.gas_limit,
        extra_data=attributes.extra_data,
        difficulty=0,
        nonce=b"\x00" * 8,
    )
    if attributes.parent_beacon_block_root is not None:
        fields["parent_beacon_block_root"] = attributes.parent_beacon_block_root
    return vm_class.create_header_from_parent(parent, **fields)


def with_fields(header: BlockHeaderAPI, **changes: Any) -> BlockHeaderAPI:
    """``header`` with ``changes``, made as rlp's ``copy`` makes it but without its deep
    copy of every unchanged field: a header's fields are ints and bytes, which never
    change (the copy took half of the 0.1 ms a header takes to make)."""
    return type(header)(**{**header.as_dict(), **changes})


def _blob_era_header(
    vm_class: Any, fork: str, parent: BlockHeaderAPI, attributes: PayloadAttributes
) -> BlockHeaderAPI:
    """The fields py-evm's Cancun and Prague ``create_header_from_parent`` give a header
    on ``parent`` made with the attributes' fields: the parent's state root, empty tries
    and bloom, London's base fee, the fork's excess blob gas."""
    beacon_root = attributes.parent_beacon_block_root
    fields: dict[str, Any] = dict(
        parent_hash=parent.hash,
        uncles_hash=EMPTY_UNCLE_HASH,
        coinbase=attributes.fee_recipient,
        state_root=parent.state_root,
        transaction_root=BLANK_ROOT_HASH,
        receipt_root=BLANK_ROOT_HASH,
        bloom=0,
        difficulty=0,
        block_number=parent.block_number + 1,
        gas_limit=attributes.gas_limit or parent.gas_limit,
        gas_used=0,
        timestamp=attributes.timestamp,
        extra_data=attributes.extra_data,
        mix_hash=attributes.prev_randao,
        nonce=b"\x00" * 8,
        base_fee_per_gas=calculate_expected_base_fee_per_gas(parent),
        withdrawals_root=BLANK_ROOT_HASH,
        blob_gas_used=0,
        excess_blob_gas=EXCESS_BLOB_GAS[fork](parent),
        parent_beacon_block_root=BLANK_ROOT_HASH if beacon_root is None else beacon_root,
    )
    if fork == "prague":
        fields["requests_hash"] = EMPTY_SHA256
    header_class = dict(vm_class.get_block_class()._meta.fields)["header"]
    return header_class(**fields)
