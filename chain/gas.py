"""EIP-7623's calldata floor (Prague): the least gas a transaction is charged for its data.

One rule for the pool, the block's validation and the scheduler. It has no imports of
the chain's own, so the system contracts that py-evm's configuration loads can use it.
"""

from types import SimpleNamespace
from typing import Any


def floor_gas(state_class: Any, data: bytes) -> int:
    """The least gas limit of a transaction with calldata ``data`` under ``state_class``'s
    fork; 0 before Prague. py-evm's rule, which reads nothing of the transaction but its
    data."""
    executor = state_class.transaction_executor_class
    return executor.calc_data_floor_gas(SimpleNamespace(data=data), 0, 0)
