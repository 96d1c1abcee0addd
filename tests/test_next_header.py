"""The builder's next header (chain.headers.next_header) is py-evm's.

From Cancun on the node fills the header's fields itself instead of asking py-evm's
``create_header_from_parent``, which makes it fork by fork; here both make headers on
parents across the fork boundaries, busy and idle, with and without blobs, and must
agree on every field.
"""

import pytest
from eth.vm.forks.shanghai.blocks import ShanghaiBlockHeader

from chain.headers import PayloadAttributes, header_from_parent, next_header, with_fields
from chain.vm import ChainConfig

CONFIG = ChainConfig(chain_id=1337, shanghai_time=0, cancun_time=100, prague_time=200)
GAS_LIMIT = 30_000_000


def py_evm_header(parent, attributes: PayloadAttributes):
    """What py-evm makes of the same attributes (next_header's own path before Cancun)."""
    return header_from_parent(CONFIG, parent, attributes)


def shanghai_parent():
    return ShanghaiBlockHeader(
        difficulty=0,
        block_number=7,
        gas_limit=GAS_LIMIT,
        timestamp=90,
        gas_used=GAS_LIMIT // 3,
        base_fee_per_gas=875_000_000,
        state_root=b"\x11" * 32,
        coinbase=b"\x22" * 20,
    )


def attributes(timestamp: int, **changes) -> PayloadAttributes:
    fields = dict(
        timestamp=timestamp,
        prev_randao=b"\x33" * 32,
        fee_recipient=b"\x44" * 20,
        parent_beacon_block_root=b"\x55" * 32,
    )
    return PayloadAttributes(**{**fields, **changes})


def parents():
    """Parents of each era the Cancun and Prague blocks can follow, busy and idle."""
    shanghai = shanghai_parent()
    yield "shanghai", shanghai
    cancun = py_evm_header(shanghai, attributes(150))
    yield "cancun", cancun
    yield "cancun full", with_fields(cancun, gas_used=GAS_LIMIT, blob_gas_used=6 * 131072)
    yield "cancun idle", with_fields(cancun, gas_used=0, excess_blob_gas=10 * 131072)
    prague = py_evm_header(cancun, attributes(250))
    yield "prague", prague
    yield "prague busy", with_fields(prague, gas_used=GAS_LIMIT - 1, blob_gas_used=131072)


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"parent_beacon_block_root": None},
        {"gas_limit": 36_000_000},
        {"extra_data": b"sibyl"},
    ],
    ids=["plain", "no beacon root", "gas limit", "extra data"],
)
@pytest.mark.parametrize("timestamp", [150, 250], ids=["cancun", "prague"])
def test_next_header_is_py_evms(changes: dict, timestamp: int) -> None:
    for name, parent in parents():
        if parent.timestamp >= timestamp:
            continue
        given = attributes(timestamp, **changes)
        ours, theirs = next_header(CONFIG, parent, given), py_evm_header(parent, given)
        assert type(ours) is type(theirs), name
        assert ours.as_dict() == theirs.as_dict(), name
        assert ours.hash == theirs.hash, name
