"""Parameter decoding for JSON-RPC methods, with geth's error messages.

A method declares its parameters with :func:`method`; the server decodes the positional
``params`` array against that declaration before the handler runs, so handlers receive
plain Python values (ints, bytes, dataclasses) and never see raw JSON. A bad argument
becomes ``-32602 invalid argument N: ...`` naming its position, as geth reports it.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eth.vm.forks.shanghai.withdrawals import Withdrawal

from chain.simulate import CallArgs
from chain.simulate_blocks import AccountOverride, BlockOverrides, SimBlock, SimOptions
from chain.tracers import CALL_TRACER, DEFAULT_TIMEOUT, TraceOptions
from rpc.errors import invalid_params

MISSING = object()


class ParamError(ValueError):
    """One argument that does not decode; the server adds its position."""


@dataclass(frozen=True)
class Param:
    decode: Callable[[Any], Any]
    default: Any = MISSING  # MISSING: required; anything else: value when omitted or null


def method(*params: Param) -> Callable[[Callable], Callable]:
    """Declare the parameters of an RPC handler."""

    def wrap(handler: Callable) -> Callable:
        handler.rpc_params = params  # type: ignore[attr-defined]
        return handler

    return wrap


def decode_params(handler: Callable, raw: Any) -> list[Any]:
    spec: tuple[Param, ...] = getattr(handler, "rpc_params", ())
    if raw is None:
        raw = []
    if not isinstance(raw, list):
        raise invalid_params("non-array args")
    if len(raw) > len(spec):
        raise invalid_params(f"too many arguments, want at most {len(spec)}")
    values = []
    for index, param in enumerate(spec):
        value = raw[index] if index < len(raw) else None
        if value is None:
            if param.default is MISSING:
                raise invalid_params(f"missing value for required argument {index}")
            values.append(param.default)
            continue
        try:
            values.append(param.decode(value))
        except ParamError as exc:
            raise invalid_params(f"invalid argument {index}: {exc}") from None
    return values


# scalar decoders

# Hex digits as geth reads them: ASCII only. Python's int() and bytes.fromhex() also take
# a sign, underscores, whitespace and other scripts' digits ("0x-1", "0x1_0", "0x١").
_HEX = re.compile(r"[0-9a-fA-F]*")


def hex_bytes(value: Any, go_type: str = "hexutil.Bytes") -> bytes:
    if not isinstance(value, str):
        raise ParamError(f"json: cannot unmarshal non-string into Go value of type {go_type}")
    if not value.startswith(("0x", "0X")):
        raise ParamError("hex string without 0x prefix")
    text = value[2:]
    if len(text) % 2:
        raise ParamError("hex string of odd length")
    if not _HEX.fullmatch(text):
        raise ParamError("invalid hex string")
    return bytes.fromhex(text)


def fixed_bytes(length: int, go_type: str) -> Callable[[Any], bytes]:
    def decode(value: Any) -> bytes:
        raw = hex_bytes(value, go_type)
        if len(raw) != length:
            raise ParamError(
                f"hex string has length {len(raw) * 2}, want {length * 2} for {go_type}"
            )
        return raw

    return decode


address = fixed_bytes(20, "common.Address")
hash32 = fixed_bytes(32, "common.Hash")


def storage_slot(value: Any) -> int:
    """eth_getStorageAt's slot as geth decodes it: hex of at most 32 bytes, leading zeros
    allowed (viem, ethers and the specification send 32-byte zero-padded keys)."""
    if not isinstance(value, str):
        raise ParamError(f"json: cannot unmarshal {_json_type(value)} into Go value of type string")
    return int.from_bytes(storage_keys([value])[0][1], "big")


def storage_requests(value: Any) -> dict[bytes, list[int]]:
    """eth_getStorageValues' ``{address: [slot, ...]}``."""
    if not isinstance(value, dict):
        raise ParamError(f"json: cannot unmarshal {_json_type(value)} into Go value of type map")
    return {
        address(key): [int.from_bytes(raw, "big") for _, raw in storage_keys(slots)]
        for key, slots in value.items()
    }


def storage_keys(value: Any) -> list[tuple[str, bytes]]:
    """eth_getProof's slots: hex of at most 32 bytes each, as given and as a 32-byte key."""
    if not isinstance(value, list):
        raise ParamError(
            f"json: cannot unmarshal {_json_type(value)} into Go value of type []string"
        )
    keys = []
    for item in value:
        text = item if isinstance(item, str) else None
        digits = text[2:] if text and text[:2] in ("0x", "0X") else text
        if digits is None or not _HEX.fullmatch(digits):
            raise ParamError(f"invalid storage key: {item!r}")
        raw = bytes.fromhex(digits if len(digits) % 2 == 0 else "0" + digits)
        if len(raw) > 32:
            raise ParamError(f"invalid storage key: {text!r} is longer than 32 bytes")
        keys.append((text, raw.rjust(32, b"\x00")))
    return keys


def quantity(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ParamError(
            f"json: cannot unmarshal {_json_type(value)} into Go value of type hexutil.Big"
        )
    if isinstance(value, int):
        if value < 0:
            raise ParamError("negative quantity")
        return value
    if not value.startswith(("0x", "0X")):
        raise ParamError("hex string without 0x prefix")
    digits = value[2:]
    if not digits:
        raise ParamError('hex string "0x"')
    if len(digits) > 1 and digits[0] == "0":
        raise ParamError("hex number with leading zero digits")
    if not _HEX.fullmatch(digits):
        raise ParamError("invalid hex string")
    if len(digits) > 64:
        raise ParamError("hex number > 256 bits")
    return int(digits, 16)


def uint64(value: Any) -> int:
    """A quantity geth decodes into a ``hexutil.Uint64`` (nonces, gas, timestamps)."""
    number = quantity(value)
    if number >> 64:
        raise ParamError("hex number > 64 bits")
    return number


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ParamError(f"json: cannot unmarshal {_json_type(value)} into Go value of type bool")
    return value


def string(value: Any) -> str:
    if not isinstance(value, str):
        raise ParamError(f"json: cannot unmarshal {_json_type(value)} into Go value of type string")
    return value


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


# block identifiers

BLOCK_TAGS = ("latest", "pending", "earliest", "safe", "finalized")


@dataclass(frozen=True)
class BlockId:
    """A block named by tag, number or hash (EIP-1898)."""

    tag: str | None = None
    number: int | None = None
    hash: bytes | None = None
    require_canonical: bool = False


LATEST = BlockId(tag="latest")
_TAGGED = {tag: BlockId(tag=tag) for tag in BLOCK_TAGS}  # frozen: one value serves all


def block_id(value: Any) -> BlockId:
    if isinstance(value, str):
        if value in _TAGGED:
            return _TAGGED[value]
        if len(value) == 66:
            return BlockId(hash=hash32(value))
        return BlockId(number=_block_number(value))
    if isinstance(value, dict):
        if "blockHash" in value:
            return BlockId(
                hash=hash32(value["blockHash"]),
                require_canonical=boolean(value.get("requireCanonical", False)),
            )
        if "blockNumber" in value:
            return block_id(value["blockNumber"])
        raise ParamError("block object needs blockHash or blockNumber")
    raise ParamError(
        f"json: cannot unmarshal {_json_type(value)} into Go value of type BlockNumber"
    )


def block_number(value: Any) -> BlockId:
    """A block number or tag (no hashes), as eth_getBlockByNumber takes."""
    if isinstance(value, str) and value in _TAGGED:
        return _TAGGED[value]
    return BlockId(number=_block_number(value))


def _block_number(value: Any) -> int:
    number = quantity(value)
    if number >= 2**63:
        raise ParamError("block number larger than int64")
    return number


# objects


def _field(data: dict, name: str, decode: Callable[[Any], Any]) -> Any:
    value = data.get(name)
    if value is None:
        return None
    try:
        return decode(value)
    except ParamError as exc:
        raise ParamError(f"{name}: {exc}") from None


def required_field(data: dict, name: str, decode: Callable[[Any], Any]) -> Any:
    if name not in data or data[name] is None:
        raise ParamError(f"missing field {name}")
    try:
        return decode(data[name])
    except ParamError as exc:
        raise ParamError(f"{name}: {exc}") from None


def withdrawals(values: Any) -> list[Withdrawal]:
    """EIP-4895 withdrawals, as payloads and payload attributes (and simulated blocks)
    carry them."""
    if not isinstance(values, list):
        raise ParamError("withdrawals must be an array")
    if not all(isinstance(w, dict) for w in values):
        raise ParamError("expected an object")
    return [
        Withdrawal(
            required_field(w, "index", quantity),
            required_field(w, "validatorIndex", quantity),
            required_field(w, "address", address),
            required_field(w, "amount", quantity),
        )
        for w in values
    ]


def access_list(value: Any) -> list[tuple[bytes, list[int]]]:
    if not isinstance(value, list):
        raise ParamError("access list must be an array")
    entries = []
    for item in value:
        if not isinstance(item, dict):
            raise ParamError("access list entry must be an object")
        keys = item.get("storageKeys") or []
        if not isinstance(keys, list):
            raise ParamError("storageKeys must be an array")
        entries.append(
            (address(item.get("address")), [int.from_bytes(hash32(k), "big") for k in keys])
        )
    return entries


def call_object(value: Any) -> CallArgs:
    if not isinstance(value, dict):
        raise ParamError(
            f"json: cannot unmarshal {_json_type(value)} into Go value of type TransactionArgs"
        )
    data, data_input = _field(value, "data", hex_bytes), _field(value, "input", hex_bytes)
    if data is not None and data_input is not None and data != data_input:
        raise ParamError(
            'both "data" and "input" are set and not equal. Please use "input" to pass '
            "transaction call data"
        )
    gas_price = _field(value, "gasPrice", quantity)
    max_fee = _field(value, "maxFeePerGas", quantity)
    if gas_price is not None and max_fee is not None:
        raise ParamError("both gasPrice and (maxFeePerGas or maxPriorityFeePerGas) specified")
    return CallArgs(
        sender=_field(value, "from", address) or b"\x00" * 20,
        to=_field(value, "to", address) or b"",
        gas=_field(value, "gas", quantity),
        gas_price=gas_price,
        max_fee_per_gas=max_fee,
        max_priority_fee_per_gas=_field(value, "maxPriorityFeePerGas", quantity),
        value=_field(value, "value", quantity) or 0,
        data=data_input if data_input is not None else (data or b""),
        nonce=_field(value, "nonce", quantity),
        access_list=_field(value, "accessList", access_list) or [],
    )


@dataclass(frozen=True)
class LogFilter:
    """The criteria of eth_getLogs and eth_newFilter."""

    from_block: BlockId | None
    to_block: BlockId | None
    block_hash: bytes | None
    addresses: frozenset[bytes]
    topics: tuple[frozenset[bytes] | None, ...]


def log_filter(value: Any) -> LogFilter:
    if not isinstance(value, dict):
        raise ParamError(
            f"json: cannot unmarshal {_json_type(value)} into Go value of type FilterCriteria"
        )
    block_hash = _field(value, "blockHash", hash32)
    from_block = _field(value, "fromBlock", block_number)
    to_block = _field(value, "toBlock", block_number)
    if block_hash is not None and (from_block is not None or to_block is not None):
        raise ParamError(
            "cannot specify both BlockHash and FromBlock/ToBlock, choose one or the other"
        )
    raw_address = value.get("address")
    if raw_address is None:
        addresses: frozenset[bytes] = frozenset()
    elif isinstance(raw_address, list):
        addresses = frozenset(_field({"address": a}, "address", address) for a in raw_address)
    else:
        addresses = frozenset([_field(value, "address", address)])
    raw_topics = value.get("topics") or []
    if not isinstance(raw_topics, list):
        raise ParamError("topics must be an array")
    if len(raw_topics) > 4:
        raise ParamError("too many topics, limit is 4")
    topics: list[frozenset[bytes] | None] = []
    for position in raw_topics:
        if position is None:
            topics.append(None)
        elif isinstance(position, list):
            choices = frozenset(hash32(t) for t in position if t is not None)
            topics.append(choices if choices and None not in position else None)
        else:
            topics.append(frozenset([hash32(position)]))
    return LogFilter(from_block, to_block, block_hash, addresses, tuple(topics))


def trace_options(value: Any) -> TraceOptions:
    """geth's ``TraceConfig``: the struct logger's switches, or ``tracer: "callTracer"``."""
    if not isinstance(value, dict):
        raise ParamError(
            f"json: cannot unmarshal {_json_type(value)} into Go value of type TraceConfig"
        )
    tracer = _field(value, "tracer", string)
    if tracer not in (None, CALL_TRACER):
        raise ParamError(
            f"tracer {tracer!r} is not available; use {CALL_TRACER!r}, or no tracer for "
            "the struct logger"
        )
    config = value.get("tracerConfig")
    config = {} if config is None else config
    if not isinstance(config, dict):
        raise ParamError("tracerConfig must be an object")
    limit = _field(value, "limit", quantity)
    timeout = _field(value, "timeout", duration)
    return TraceOptions(
        tracer=tracer,
        disable_stack=bool(_field(value, "disableStack", boolean)),
        disable_storage=bool(_field(value, "disableStorage", boolean)),
        enable_memory=bool(_field(value, "enableMemory", boolean)),
        enable_return_data=bool(_field(value, "enableReturnData", boolean)),
        only_top_call=bool(_field(config, "onlyTopCall", boolean)),
        with_log=bool(_field(config, "withLog", boolean)),
        timeout=DEFAULT_TIMEOUT if timeout is None else timeout,
        limit=limit or 0,
    )


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


def duration(value: Any) -> float:
    """A Go duration string ("5s", "300ms", "1m30s") in seconds, as geth's ``timeout``."""
    text = string(value)
    parts = _DURATION.findall(text)
    if not parts or "".join(number + unit for number, unit in parts) != text:
        raise ParamError(f'time: invalid duration "{text}"')
    return sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)


# eth_simulateV1


def _object(value: Any, go_type: str) -> dict:
    if not isinstance(value, dict):
        raise ParamError(
            f"json: cannot unmarshal {_json_type(value)} into Go value of type {go_type}"
        )
    return value


def _slots(value: Any) -> dict[int, int]:
    return {
        storage_slot(k): int.from_bytes(hash32(v), "big") for k, v in _object(value, "map").items()
    }


def account_override(value: Any) -> AccountOverride:
    data = _object(value, "override.OverrideAccount")
    return AccountOverride(
        balance=_field(data, "balance", quantity),
        nonce=_field(data, "nonce", uint64),
        code=_field(data, "code", hex_bytes),
        state=_field(data, "state", _slots),
        state_diff=_field(data, "stateDiff", _slots),
        move_precompile_to=_field(data, "movePrecompileToAddress", address),
    )


def state_overrides(value: Any) -> dict[bytes, AccountOverride]:
    return {
        address(k): account_override(v) for k, v in _object(value, "override.StateOverride").items()
    }


def block_overrides(value: Any) -> BlockOverrides:
    data = _object(value, "override.BlockOverrides")
    return BlockOverrides(
        number=_field(data, "number", quantity),
        time=_field(data, "time", uint64),
        gas_limit=_field(data, "gasLimit", uint64),
        fee_recipient=_field(data, "feeRecipient", address),
        prev_randao=_field(data, "prevRandao", hash32),
        base_fee_per_gas=_field(data, "baseFeePerGas", quantity),
        beacon_root=_field(data, "beaconRoot", hash32),
        withdrawals=tuple(_field(data, "withdrawals", withdrawals) or ()),
    )


def _calls(value: Any) -> list[CallArgs]:
    if not isinstance(value, list):
        raise ParamError(
            f"json: cannot unmarshal {_json_type(value)} into Go value of type "
            "[]ethapi.TransactionArgs"
        )
    return [call_object(item) for item in value]


def simulate_options(value: Any) -> SimOptions:
    """``eth_simulateV1``'s first parameter (geth's ``simOpts``)."""
    data = _object(value, "ethapi.simOpts")
    blocks = data.get("blockStateCalls") or []
    if not isinstance(blocks, list):
        raise ParamError(
            f"json: cannot unmarshal {_json_type(blocks)} into Go value of type []ethapi.simBlock"
        )
    return SimOptions(
        blocks=[
            SimBlock(
                overrides=_field(block, "blockOverrides", block_overrides) or BlockOverrides(),
                state_overrides=_field(block, "stateOverrides", state_overrides) or {},
                calls=_field(block, "calls", _calls) or [],
            )
            for block in (_object(b, "ethapi.simBlock") for b in blocks)
        ],
        trace_transfers=bool(_field(data, "traceTransfers", boolean)),
        validation=bool(_field(data, "validation", boolean)),
        full_transactions=bool(_field(data, "returnFullTransactions", boolean)),
    )
