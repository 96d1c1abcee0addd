"""The Engine API endpoint (port 8551): JWT-authenticated JSON for a consensus client.

This module only translates: JSON payloads to py-evm blocks and back, and JSON-RPC
calls to :class:`chain.engine.Engine`, whose semantics the dev producer shares. Requests
must carry ``Authorization: Bearer <jwt>`` signed (HS256) with the shared secret and
issued within 60 seconds, as the Engine API specifies.
"""

import time
from pathlib import Path
from typing import Any

import jwt
import orjson
from aiohttp import web
from eth.constants import EMPTY_UNCLE_HASH

from chain.engine import PayloadStatus
from chain.headers import PayloadAttributes
from chain.limits import check_transaction
from chain.node import Node
from chain.requests import requests_hash
from chain.storage.codec import DECODE_ERRORS
from chain.trie.root import ordered_trie_root
from chain.vm import block_withdrawals, fork_since, make_block, vm_class_at
from rpc import params as p
from rpc.encoding import d, q, withdrawal_json
from rpc.errors import RpcError
from rpc.params import Param, method
from rpc.server import RpcServer

JWT_LEEWAY = 60
UNKNOWN_PAYLOAD = -38001
INVALID_FORKCHOICE = -38002
INVALID_ATTRIBUTES = -38003
UNSUPPORTED_FORK = -38005
TOO_LARGE_REQUEST = -38004
MAX_BLOBS_REQUEST = 128  # the Engine API's bound on engine_getBlobsV1


def load_jwt_secret(path: Path) -> bytes:
    text = path.read_text().strip().removeprefix("0x")
    secret = bytes.fromhex(text)
    if len(secret) != 32:
        raise ValueError(f"JWT secret {path} must hold 32 bytes as 64 hex digits")
    return secret


def _object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise p.ParamError("expected an object")
    return value


def _list(decode: Any) -> Any:
    """A decoder of a JSON array whose items ``decode`` decodes."""

    def decode_list(value: Any) -> list[Any]:
        if not isinstance(value, list):
            raise p.ParamError("expected an array")
        return [decode(item) for item in value]

    return decode_list


def payload_json(block: Any) -> dict[str, Any]:
    header = block.header
    out = {
        "parentHash": d(header.parent_hash),
        "feeRecipient": d(header.coinbase),
        "stateRoot": d(header.state_root),
        "receiptsRoot": d(header.receipt_root),
        "logsBloom": d(header.bloom.to_bytes(256, "big")),
        "prevRandao": d(header.mix_hash),
        "blockNumber": q(header.block_number),
        "gasLimit": q(header.gas_limit),
        "gasUsed": q(header.gas_used),
        "timestamp": q(header.timestamp),
        "extraData": d(header.extra_data),
        "baseFeePerGas": q(header.base_fee_per_gas),
        "blockHash": d(header.hash),
        "transactions": [d(tx.encode()) for tx in block.transactions],
    }
    if hasattr(header, "withdrawals_root"):  # ExecutionPayloadV2 on; a Paris one is V1
        out["withdrawals"] = [withdrawal_json(w) for w in block_withdrawals(block)]
    if hasattr(header, "blob_gas_used"):
        out["blobGasUsed"] = q(header.blob_gas_used)
        out["excessBlobGas"] = q(header.excess_blob_gas)
    return out


class EngineApi:
    def __init__(self, node: Node) -> None:
        self.node = node

    def _shanghai(self, timestamp: int) -> bool:
        return fork_since(self.node.chain_config.fork_at(timestamp), "shanghai")

    def _check_withdrawals(self, timestamp: int, given: bool, version: int) -> None:
        """geth's rule for the payload (or attributes) structure: V1 has no withdrawals;
        V2 takes V1's before Shanghai and V2's from it."""
        if version == 1 and given:
            raise p.ParamError("withdrawals not supported in V1")
        if version == 2 and given != self._shanghai(timestamp):
            raise p.ParamError(
                "nil withdrawals post-shanghai" if not given else "non-nil withdrawals pre-shanghai"
            )

    def _block(
        self,
        payload: dict[str, Any],
        beacon_root: bytes | None,
        requests: list[bytes] | None,
        version: int,
    ) -> Any:
        """The block a payload describes; raises ParamError when its fields do not decode."""
        timestamp = p.required_field(payload, "timestamp", p.quantity)
        self._check_withdrawals(timestamp, payload.get("withdrawals") is not None, version)
        vm_class = vm_class_at(self.node.chain_config, timestamp)
        block_class = vm_class.get_block_class()
        builder = vm_class.get_transaction_builder()
        raw_txs = payload.get("transactions")
        if not isinstance(raw_txs, list):
            raise p.ParamError("transactions must be an array")
        transactions = []
        for raw in map(p.hex_bytes, raw_txs):
            try:
                check_transaction(raw)
                transactions.append(builder.decode(raw))
            except DECODE_ERRORS as exc:
                raise p.ParamError(f"invalid transaction: {exc}") from None
        withdrawals = p.withdrawals(payload.get("withdrawals") or [])
        fields: dict[str, Any] = dict(
            parent_hash=p.required_field(payload, "parentHash", p.hash32),
            uncles_hash=EMPTY_UNCLE_HASH,
            coinbase=p.required_field(payload, "feeRecipient", p.address),
            state_root=p.required_field(payload, "stateRoot", p.hash32),
            transaction_root=ordered_trie_root([tx.encode() for tx in transactions]),
            receipt_root=p.required_field(payload, "receiptsRoot", p.hash32),
            bloom=int.from_bytes(
                p.required_field(payload, "logsBloom", p.fixed_bytes(256, "Bloom")), "big"
            ),
            difficulty=0,
            block_number=p.required_field(payload, "blockNumber", p.quantity),
            gas_limit=p.required_field(payload, "gasLimit", p.quantity),
            gas_used=p.required_field(payload, "gasUsed", p.quantity),
            timestamp=timestamp,
            extra_data=p.required_field(payload, "extraData", p.hex_bytes),
            mix_hash=p.required_field(payload, "prevRandao", p.hash32),
            nonce=b"\x00" * 8,
            base_fee_per_gas=p.required_field(payload, "baseFeePerGas", p.quantity),
        )
        if self._shanghai(timestamp):
            fields["withdrawals_root"] = ordered_trie_root([w.encode() for w in withdrawals])
        if beacon_root is not None:
            fields["blob_gas_used"] = p.required_field(payload, "blobGasUsed", p.quantity)
            fields["excess_blob_gas"] = p.required_field(payload, "excessBlobGas", p.quantity)
            fields["parent_beacon_block_root"] = beacon_root
        if requests is not None:
            fields["requests_hash"] = requests_hash(requests)
        header = block_class._meta.sedes[0](**fields)
        return make_block(block_class, header, transactions, (), withdrawals)

    async def _new_payload(
        self,
        payload: dict[str, Any],
        blob_hashes: list[bytes] | None = None,
        beacon_root: bytes | None = None,
        requests: list[bytes] | None = None,
        version: int = 3,
    ) -> dict[str, Any]:
        try:
            block = self._block(payload, beacon_root, requests, version)
        except (p.ParamError, TypeError) as exc:
            raise RpcError(-32602, f"invalid payload: {exc}") from None
        given = p.required_field(payload, "blockHash", p.hash32)
        if block.header.hash != given:
            return _status(PayloadStatus("INVALID", None, "blockhash mismatch"))
        if blob_hashes is not None:
            carried = [h for tx in block.transactions for h in _blob_hashes(tx)]
            if carried != blob_hashes:
                return _status(PayloadStatus("INVALID", None, "blob versioned hashes mismatch"))
        engine = self.node.engine
        return _status(await self.node.chain_call(engine.new_payload, block))

    @method(Param(_object))
    async def engine_newPayloadV1(self, payload: dict[str, Any]) -> dict[str, Any]:
        """A Paris payload (ExecutionPayloadV1: no withdrawals)."""
        return await self._new_payload(payload, version=1)

    @method(Param(_object))
    async def engine_newPayloadV2(self, payload: dict[str, Any]) -> dict[str, Any]:
        return await self._new_payload(payload, version=2)

    @method(Param(_object), Param(_list(p.hash32)), Param(p.hash32))
    async def engine_newPayloadV3(self, payload, blob_hashes, beacon_root) -> dict[str, Any]:  # noqa: ANN001
        return await self._new_payload(payload, blob_hashes, beacon_root)

    @method(
        Param(_object),
        Param(_list(p.hash32)),
        Param(p.hash32),
        Param(_list(p.hex_bytes)),
    )
    async def engine_newPayloadV4(self, payload, blob_hashes, beacon_root, requests):  # noqa: ANN001, ANN201
        return await self._new_payload(payload, blob_hashes, beacon_root, requests)

    async def _forkchoice(
        self, state: dict[str, Any], attributes: dict[str, Any] | None, version: int = 3
    ) -> Any:
        head = p.required_field(state, "headBlockHash", p.hash32)
        safe = state.get("safeBlockHash")
        finalized = state.get("finalizedBlockHash")
        attrs = None
        if attributes is not None:
            beacon = attributes.get("parentBeaconBlockRoot")
            timestamp = p.required_field(attributes, "timestamp", p.quantity)
            given = attributes.get("withdrawals") is not None
            try:
                self._check_withdrawals(timestamp, given, version)
                if version == 1 and self._shanghai(timestamp):
                    raise p.ParamError("forkChoiceUpdateV1 called post-shanghai")
            except p.ParamError as exc:
                raise RpcError(-32602, f"invalid payload attributes: {exc}") from None
            attrs = PayloadAttributes(
                timestamp=timestamp,
                prev_randao=p.required_field(attributes, "prevRandao", p.hash32),
                fee_recipient=p.required_field(attributes, "suggestedFeeRecipient", p.address),
                withdrawals=tuple(p.withdrawals(attributes.get("withdrawals") or [])),
                parent_beacon_block_root=p.hash32(beacon) if beacon else None,
            )
        node = self.node
        pending = node.pool.split()[0] if attrs is not None else None
        status, payload_id = await node.chain_call(
            node.engine.forkchoice_updated,
            head,
            p.hash32(safe) if safe else None,
            p.hash32(finalized) if finalized else None,
            attrs,
            pending,
        )
        return {
            "payloadStatus": _status(status),
            "payloadId": d(payload_id) if payload_id else None,
        }

    @method(Param(_object), Param(_object, None))
    async def engine_forkchoiceUpdatedV1(self, state, attributes):  # noqa: ANN001, ANN201
        return await self._forkchoice(state, attributes, version=1)

    @method(Param(_object), Param(_object, None))
    async def engine_forkchoiceUpdatedV2(self, state, attributes):  # noqa: ANN001, ANN201
        return await self._forkchoice(state, attributes, version=2)

    @method(Param(_object), Param(_object, None))
    async def engine_forkchoiceUpdatedV3(self, state, attributes):  # noqa: ANN001, ANN201
        return await self._forkchoice(state, attributes)

    async def _get_payload(self, payload_id: bytes, version: int) -> dict[str, Any]:
        built = await self.node.chain_call(self.node.engine.get_payload, payload_id)
        result: dict[str, Any] = {
            "executionPayload": payload_json(built.executed.block),
            "blockValue": q(built.value),
        }
        if version >= 3:
            result["blobsBundle"] = self._blobs_bundle(built)
            result["shouldOverrideBuilder"] = False
        if version >= 4:
            requests = built.executed.requests
            result["executionRequests"] = [d(request) for request in requests if len(request) > 1]
        return result

    @staticmethod
    def _blobs_bundle(built: Any) -> dict[str, list[str]]:
        """The blobs of the payload's blob transactions, in block order, as the builder
        kept them from the pool (the block itself names them only by versioned hash)."""
        bundle: dict[str, list[str]] = {"commitments": [], "proofs": [], "blobs": []}
        for tx in built.executed.block.transactions:
            sidecar = built.sidecars.get(tx.hash)
            if sidecar is None:
                continue
            bundle["commitments"].extend(d(c) for c in sidecar.commitments)
            bundle["proofs"].extend(d(proof) for proof in sidecar.blob_proofs())
            bundle["blobs"].extend(d(blob) for blob in sidecar.blobs)
        return bundle

    @method(Param(_list(p.hash32)))
    def engine_getBlobsV1(self, hashes: list[bytes]) -> list[dict[str, str] | None]:
        """Blobs the pool holds, by versioned hash (null for those it does not)."""
        if len(hashes) > MAX_BLOBS_REQUEST:
            raise RpcError(TOO_LARGE_REQUEST, "Too large request")
        found = [self.node.pool.blob(versioned_hash) for versioned_hash in hashes]
        return [None if f is None else {"blob": d(f[0]), "proof": d(f[1])} for f in found]

    @method(Param(p.fixed_bytes(8, "PayloadID")))
    async def engine_getPayloadV1(self, payload_id: bytes) -> dict[str, Any]:
        """ExecutionPayloadV1 itself (no block value): a Paris payload only."""
        waiting = self.node.engine.payloads.get(payload_id)  # checked before it is taken
        if waiting is not None and self._shanghai(waiting.executed.header.timestamp):
            raise RpcError(UNSUPPORTED_FORK, "Unsupported fork")
        built = await self.node.chain_call(self.node.engine.get_payload, payload_id)
        return payload_json(built.executed.block)

    @method(Param(p.fixed_bytes(8, "PayloadID")))
    async def engine_getPayloadV2(self, payload_id: bytes) -> dict[str, Any]:
        return await self._get_payload(payload_id, 2)

    @method(Param(p.fixed_bytes(8, "PayloadID")))
    async def engine_getPayloadV3(self, payload_id: bytes) -> dict[str, Any]:
        return await self._get_payload(payload_id, 3)

    @method(Param(p.fixed_bytes(8, "PayloadID")))
    async def engine_getPayloadV4(self, payload_id: bytes) -> dict[str, Any]:
        return await self._get_payload(payload_id, 4)

    @method(Param(lambda v: v))
    def engine_exchangeTransitionConfigurationV1(self, _: Any) -> dict[str, str]:
        """The merge's terminal settings, as geth still answers them (lodestar asks every
        30 slots): the chain merged at or before its genesis."""
        return {
            "terminalTotalDifficulty": q(self.node.chain_config.terminal_total_difficulty),
            "terminalBlockHash": "0x" + "00" * 32,
            "terminalBlockNumber": "0x0",
        }

    @method(Param(lambda v: v))
    def engine_exchangeCapabilities(self, _: Any) -> list[str]:
        return sorted(name for name in dir(self) if name.startswith("engine_"))


def _blob_hashes(tx: Any) -> list[bytes]:
    try:
        return list(tx.blob_versioned_hashes)
    except (AttributeError, NotImplementedError):  # py-evm's answer for non-blob types
        return []


def _status(status: PayloadStatus) -> dict[str, Any]:
    return {
        "status": status.status,
        "latestValidHash": d(status.latest_valid_hash) if status.latest_valid_hash else None,
        "validationError": status.validation_error,
    }


class EngineServer(RpcServer):
    """The Engine API port: the same JSON-RPC server behind a JWT check."""

    serves_directly = False  # every request goes through the JWT middleware

    def __init__(self, methods: Any, limits: Any, secret: bytes) -> None:
        super().__init__(methods, limits)
        self.secret = secret
        self.app.middlewares.insert(0, self._auth)

    @web.middleware
    async def _auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        header = request.headers.get("Authorization", "")
        token = header.removeprefix("Bearer ").strip()
        try:
            # The Engine API's rule: iat within 60 s of our clock, either way. pyjwt would
            # refuse an iat ahead of the clock by any amount without the leeway, and read
            # a numeric string as an integer; the spec wants an integer.
            claims = jwt.decode(
                token,
                self.secret,
                algorithms=["HS256"],
                options={"require": ["iat"]},
                leeway=JWT_LEEWAY,
            )
            iat = claims["iat"]
            if type(iat) is not int:
                raise jwt.InvalidTokenError("iat must be an integer")
            if abs(time.time() - iat) > JWT_LEEWAY:
                raise jwt.InvalidTokenError("stale token")
        except (jwt.InvalidTokenError, ValueError, TypeError) as exc:
            body = {
                "jsonrpc": "2.0",
                "id": None,
                "error": {"code": -32000, "message": f"unauthorized: {exc}"},
            }
            return web.Response(
                status=401, body=orjson.dumps(body), content_type="application/json"
            )
        return await handler(request)
