"""Node-held accounts (dev chains only): eth_accounts, eth_sendTransaction, signing.

On a dev chain the node holds the keys of the test-mnemonic accounts, as anvil and
hardhat do, so tools that sign remotely (hardhat's ``localhost`` network, ethers'
``provider.getSigner()``) work unmodified. A node that is not a dev chain holds no keys
and these methods report no accounts.

While a dev chain automines, ``eth_sendTransaction`` of a transaction that reverts fails
once its block is in, as Hardhat Network's does (its ``throwOnTransactionFailures``):
the error carries the revert data and the transaction's hash. A node that answers
``hardhat_metadata`` is taken for Hardhat Network by hardhat-ethers, which then sends
with a fixed gas limit and counts on this to see reverts (docs/decisions.md).

Transactions and messages are encoded here and signed with libsecp256k1 (coincurve).
eth_account, which EIP-712 typed data is encoded with, is imported by that method alone,
not here: its import (its keystore module loads py_ecc's BLS12-381 curves) costs half a
second.
"""

from dataclasses import dataclass
from typing import Any

import coincurve
from eth_keys import keys
from eth_utils import keccak, to_checksum_address
from rlp.codec import encode_raw

from chain.limits import load_json
from chain.node import Node
from chain.simulate import CallArgs, ExecutionReverted
from chain.tracers import TraceOptions
from rpc import params as p
from rpc.debug import DebugApi
from rpc.encoding import d
from rpc.errors import EXECUTION_REVERTED, RpcError
from rpc.eth import EthApi
from rpc.params import Param, method
from sidecars.attestation import sign_digest, signing_key


def _typed(key: coincurve.PrivateKey, tx_type: int, fields: list) -> bytes:
    """An EIP-2718 transaction of ``tx_type``: its fields, then the signature over them."""
    prefix = bytes([tx_type])
    signature = sign_digest(key, keccak(prefix + _rlp(fields)))
    return prefix + _rlp([*fields, signature[64], *_r_s(signature)])


def _r_s(signature: bytes) -> tuple[int, int]:
    return int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:64], "big")


def _access_list(args: CallArgs) -> list:
    return [[address, [slot.to_bytes(32, "big") for slot in slots]]
            for address, slots in args.access_list or []]  # fmt: skip


def _rlp(fields: list) -> bytes:
    """The RLP of ``fields``: an int as its shortest big-endian bytes (zero as none)."""
    return encode_raw(_items(fields))


def _items(value: Any) -> Any:
    if isinstance(value, int):
        return value.to_bytes((value.bit_length() + 7) // 8, "big")
    if isinstance(value, list):
        return [_items(item) for item in value]
    return value


@dataclass
class _Filled:
    """A transaction request's fields, each filled: its fees as a gas price or as EIP-1559's
    tip and fee cap."""

    chain_id: int
    nonce: int
    gas: int
    value: int
    data: bytes
    gas_price: int | None = None
    tip: int = 0
    fee_cap: int = 0


class AccountsApi:
    def __init__(
        self,
        node: Node,
        eth: EthApi,
        debug: DebugApi,
        signers: list[keys.PrivateKey],
        impersonated: set[bytes] | None = None,
    ) -> None:
        self.node = node
        self.eth = eth
        self.debug = debug  # replays a reverted send for its revert data
        # libsecp256k1's form of each key, built once (sidecars.attestation.signing_key)
        self.signers = {k.public_key.to_canonical_address(): signing_key(k) for k in signers}
        self.impersonated = impersonated if impersonated is not None else set()

    def _key(self, address: bytes) -> coincurve.PrivateKey:
        key = self.signers.get(address)
        if key is None:
            raise RpcError(-32000, f"unknown account {to_checksum_address(address)}")
        return key

    @method()
    def eth_accounts(self) -> list[str]:
        return [d(address) for address in self.signers]

    def _signed(self, args: CallArgs) -> bytes:
        """The request as a transaction its missing fields filled as geth fills them,
        signed with the sender's key: EIP-1559 unless it names a gas price, then EIP-2930
        with an access list or else legacy with EIP-155's chain id, byte for byte as
        eth_account signs such a request. The fields go into their RLP directly and its
        digest to libsecp256k1: eth_account took 0.36 ms a send, py-evm's transaction
        objects 0.12."""
        key = self._key(args.sender)
        tx = self._filled(args)
        to, access_list = args.to or b"", _access_list(args)
        if tx.gas_price is None:
            fields = [tx.chain_id, tx.nonce, tx.tip, tx.fee_cap, tx.gas, to, tx.value, tx.data]
            return _typed(key, 2, [*fields, access_list])
        if access_list:
            fields = [tx.chain_id, tx.nonce, tx.gas_price, tx.gas, to, tx.value, tx.data]
            return _typed(key, 1, [*fields, access_list])
        fields = [tx.nonce, tx.gas_price, tx.gas, to, tx.value, tx.data]
        # EIP-155: the chain id and two zeros stand in for the signature in the digest
        signature = sign_digest(key, keccak(_rlp([*fields, tx.chain_id, 0, 0])))
        return _rlp([*fields, tx.chain_id * 2 + 35 + signature[64], *_r_s(signature)])

    def _impersonated(self, args: CallArgs) -> bytes:
        """The request as an EIP-1559 transaction with a placeholder signature whose
        ``r`` is the sender's address, so that two senders' otherwise equal transactions
        keep distinct hashes (anvil marks its impersonated transactions alike)."""
        tx = self._filled(args)
        if tx.gas_price is None:
            tip, fee_cap = tx.tip, tx.fee_cap
        else:
            tip = fee_cap = tx.gas_price
        fields = [tx.chain_id, tx.nonce, tip, fee_cap, tx.gas, args.to or b"", tx.value, tx.data]
        placeholder = [0, int.from_bytes(args.sender, "big"), 1]
        return b"\x02" + _rlp([*fields, _access_list(args), *placeholder])

    def _filled(self, args: CallArgs) -> _Filled:
        pool, head = self.node.pool, self.node.reader.head
        nonce = args.nonce if args.nonce is not None else pool.pending_nonce(args.sender)
        gas = args.gas or self.node.simulator.estimate_gas(head, args)
        filled = _Filled(self.node.chain_config.chain_id, nonce, gas, args.value, args.data)
        if args.gas_price is not None:
            filled.gas_price = args.gas_price
            return filled
        tip = args.max_priority_fee_per_gas
        if tip is None:
            tip = int(self.eth.eth_maxPriorityFeePerGas(), 16)
        filled.tip = tip
        filled.fee_cap = (
            args.max_fee_per_gas
            if args.max_fee_per_gas is not None
            else 2 * head.base_fee_per_gas + tip
        )
        return filled

    @method(Param(p.call_object))
    async def eth_sendTransaction(self, args: CallArgs) -> str:
        if args.sender in self.impersonated and args.sender not in self.signers:
            raw = self._impersonated(args)
        else:
            raw = self._signed(args)
        sent = await self.eth.send(raw, self.node.pool.add_from(raw, args.sender))
        await self._fail_if_reverted(sent)
        return sent

    async def _fail_if_reverted(self, tx_hash: str) -> None:
        """When automining, a send whose transaction reverted fails with its revert data
        and hash, as Hardhat Network answers (module docstring)."""
        if self.eth.producer is None or not self.eth.producer.automine:
            return
        receipt = self.eth.eth_getTransactionReceipt(bytes.fromhex(tx_hash[2:]))
        if receipt is None or receipt["status"] != "0x0":
            return
        try:
            top = await self.debug.debug_traceTransaction(
                bytes.fromhex(tx_hash[2:]), TraceOptions(tracer="callTracer", only_top_call=True)
            )
        except RpcError:  # an impersonated sender's does not replay (docs/decisions.md)
            top = {"error": "transaction failed (an impersonated send: revert data unknown)"}
        output = bytes.fromhex(top.get("output", "0x")[2:])
        reverted = top.get("error") == "execution reverted"
        message = str(ExecutionReverted(output)) if reverted else top.get("error", "failed")
        raise RpcError(EXECUTION_REVERTED, message, {"data": d(output), "transactionHash": tx_hash})

    @method(Param(p.call_object))
    def eth_signTransaction(self, args: CallArgs) -> dict[str, Any]:
        raw = self._signed(args)
        tx, _ = self.node.pool.decode(raw)
        return {"raw": d(raw), "tx": {"hash": d(tx.hash)}}

    def _sign_message(self, address: bytes, message: bytes) -> str:
        """EIP-191's signature of a personal message: over keccak256 of
        ``"\\x19Ethereum Signed Message:\\n" ‖ len(message) ‖ message``, ``v`` 27 or 28."""
        prefix = b"\x19Ethereum Signed Message:\n" + str(len(message)).encode()
        signature = sign_digest(self._key(address), keccak(prefix + message))
        return d(signature[:64] + bytes([27 + signature[64]]))

    @method(Param(p.address), Param(p.hex_bytes))
    def eth_sign(self, address: bytes, message: bytes) -> str:
        return self._sign_message(address, message)

    @method(Param(p.hex_bytes), Param(p.address))
    def personal_sign(self, message: bytes, address: bytes) -> str:
        return self._sign_message(address, message)

    @method(Param(p.address), Param(lambda v: v))
    def eth_signTypedData(self, address: bytes, typed: Any) -> str:
        """What web3.py calls: EIP-712 signing, the same as ``eth_signTypedData_v4``."""
        return self.eth_signTypedData_v4(address, typed)

    @method(Param(p.address), Param(lambda v: v))
    def eth_signTypedData_v4(self, address: bytes, typed: Any) -> str:
        if isinstance(typed, str):
            try:
                typed = load_json(typed)
            except ValueError:
                raise RpcError(-32602, "invalid argument 1: typed data is not valid JSON") from None
        from eth_account import Account
        from eth_account.messages import encode_typed_data

        try:
            message = encode_typed_data(full_message=typed)
        except Exception as exc:
            raise RpcError(-32602, f"invalid argument 1: {exc}") from None
        signed = Account.sign_message(message, self._key(address).secret)
        return d(bytes(signed.signature))
