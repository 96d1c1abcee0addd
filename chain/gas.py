"""Gas rules the node states once: a transaction's intrinsic gas and EIP-7623's calldata
floor (Prague), the least gas a transaction is charged for its data.

One definition for the pool, the block's validation, ``eth_call``/``eth_estimateGas``
and the scheduler. It has no imports of the chain's own, so the system contracts that
py-evm's configuration loads can use it.
"""

from types import SimpleNamespace
from typing import Any

from eth.constants import GAS_TX, GAS_TXDATAZERO
from eth.vm.forks.berlin.constants import (
    ACCESS_LIST_ADDRESS_COST_EIP_2930,
    ACCESS_LIST_STORAGE_KEY_COST_EIP_2930,
)
from eth.vm.forks.istanbul.constants import GAS_TXDATANONZERO_EIP2028

TX_GAS = GAS_TX  # 21000: what a plain transfer costs


def intrinsic_gas(data: bytes, access_list: tuple | list = ()) -> int:
    """The gas a call transaction with ``data`` and an EIP-2930 ``access_list`` (pairs of
    address and slots) costs before it runs, since Istanbul."""
    zeros = data.count(0)
    slots = sum(len(s) for _, s in access_list)
    return (
        TX_GAS
        + GAS_TXDATAZERO * zeros
        + GAS_TXDATANONZERO_EIP2028 * (len(data) - zeros)
        + ACCESS_LIST_ADDRESS_COST_EIP_2930 * len(access_list)
        + ACCESS_LIST_STORAGE_KEY_COST_EIP_2930 * slots
    )


def floor_gas(state_class: Any, data: bytes) -> int:
    """The least gas limit of a transaction with calldata ``data`` under ``state_class``'s
    fork; 0 before Prague. py-evm's rule, which reads nothing of the transaction but its
    data."""
    executor = state_class.transaction_executor_class
    return executor.calc_data_floor_gas(SimpleNamespace(data=data), 0, 0)
