"""JSON-RPC error codes, and the one place where the node's errors become them.

Codes follow EIP-1474 and geth: -32700 parse error, -32600 invalid request, -32601
unknown method, -32602 invalid params, -32603 internal error, -32000 a server-side
refusal (pool rejections, missing blocks), -32005 a limit exceeded, -32002 a resource
that is not available (an AI model with no sidecar), 3 a reverted execution (with the
revert bytes as ``data``), and -38xxx for the Engine API.
"""

from typing import Any

from chain.ai.results import ModelUnavailable
from chain.engine import EngineError
from chain.evm_timeout import EvmTimeout
from chain.simulate import CallError, ExecutionReverted, OutOfGasError
from chain.simulate_blocks import SimulationError
from chain.txpool import TxPoolError

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
SERVER_ERROR = -32000
RESOURCE_UNAVAILABLE = -32002
LIMIT_EXCEEDED = -32005
EXECUTION_REVERTED = 3


class RpcError(Exception):
    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def to_json(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


def invalid_params(message: str) -> RpcError:
    return RpcError(INVALID_PARAMS, message)


def not_found(message: str = "header not found") -> RpcError:
    return RpcError(SERVER_ERROR, message)


def from_exception(exc: Exception) -> RpcError | None:
    """The JSON-RPC form of a node error, or None for a bug (reported as internal)."""
    if isinstance(exc, RpcError):
        return exc
    if isinstance(exc, ExecutionReverted):
        return RpcError(EXECUTION_REVERTED, str(exc), "0x" + exc.data.hex())
    if isinstance(exc, TxPoolError | CallError | OutOfGasError | EvmTimeout):
        return RpcError(SERVER_ERROR, str(exc))
    if isinstance(exc, SimulationError):
        return RpcError(exc.code, str(exc))
    if isinstance(exc, EngineError):
        return RpcError(exc.code, str(exc))
    if isinstance(exc, ModelUnavailable):
        return RpcError(RESOURCE_UNAVAILABLE, str(exc), "0x" + exc.model_id.hex())
    return None
