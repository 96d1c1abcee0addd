"""Scheduled transactions (type 0x10): a due scheduled call, as a transaction.

``0x10 ‖ rlp([chainId, nonce, callId, index, to, gas, maxFeePerGas, data])``, with no
signature: the sender is SCHEDULER, whose deposit pays the gas at the block's base fee
(no priority fee). Every field follows from the scheduler's state, so an importing node
rebuilds the transactions due at a block and requires the block to hold exactly those,
in order, at its top. Apart from its sender, it executes as an EIP-1559 transaction.
"""

from typing import Any

import rlp
from eth.rlp.logs import Log
from eth.rlp.receipts import Receipt
from eth.vm.forks.berlin.receipts import TypedReceipt
from eth_utils import keccak

from chain.envelope import Envelope, envelope_fields
from chain.gas import intrinsic_gas
from scheduler.state import SCHEDULER

SCHEDULED_TX_TYPE = 0x10


class MalformedScheduledTransaction(ValueError):
    """Bytes that claim to be a scheduled transaction and are not one."""


class ScheduledReceipt(TypedReceipt):
    """The receipt of a scheduled transaction: ``0x10 ‖ rlp(receipt)``."""

    codecs = {SCHEDULED_TX_TYPE: Receipt}


class ScheduledTransaction(Envelope):
    type_id = SCHEDULED_TX_TYPE
    sender = SCHEDULER
    value = 0
    max_priority_fee_per_gas = 0
    access_list: tuple = ()
    authorization_list: tuple = ()
    blob_versioned_hashes: tuple = ()
    max_fee_per_blob_gas = 0
    y_parity = v = r = s = 0

    def __init__(
        self,
        chain_id: int,
        nonce: int,
        call_id: int,
        index: int,
        to: bytes,
        gas: int,
        max_fee_per_gas: int,
        data: bytes,
    ) -> None:
        self.chain_id = chain_id
        self.nonce = nonce
        self.call_id = call_id
        self.index = index
        self.to = to
        self.gas = gas
        self.max_fee_per_gas = max_fee_per_gas
        self.data = data

    def _fields(self) -> list[Any]:
        return [
            self.chain_id,
            self.nonce,
            self.call_id,
            self.index,
            self.to,
            self.gas,
            self.max_fee_per_gas,
            self.data,
        ]

    def encode(self) -> bytes:
        return bytes([SCHEDULED_TX_TYPE]) + rlp.encode(self._fields())

    @classmethod
    def decode(cls, encoded: bytes, decode_inner: Any = None) -> "ScheduledTransaction":
        items = envelope_fields(encoded, "scheduled transaction", MalformedScheduledTransaction)
        if len(items) != 8:
            raise MalformedScheduledTransaction("scheduled transaction: must hold 8 fields")
        if not all(isinstance(item, bytes) for item in items) or len(items[4]) != 20:
            raise MalformedScheduledTransaction("scheduled transaction: malformed field")
        numbers = [rlp.sedes.big_endian_int.deserialize(items[i]) for i in (0, 1, 2, 3, 5, 6)]
        chain_id, nonce, call_id, index, gas, max_fee = numbers
        return cls(chain_id, nonce, call_id, index, items[4], gas, max_fee, items[7])

    def with_gas(self, gas: int) -> "ScheduledTransaction":
        """The same transaction with less gas: what the call gets after its predicate."""
        return ScheduledTransaction(
            self.chain_id, self.nonce, self.call_id, self.index, self.to, gas,
            self.max_fee_per_gas, self.data,
        )  # fmt: skip

    @property
    def hash(self) -> bytes:
        return keccak(self.encode())

    # what py-evm's transaction executor reads

    def get_sender(self) -> bytes:
        return SCHEDULER

    @property
    def gas_price(self) -> int:
        return self.max_fee_per_gas

    @property
    def intrinsic_gas(self) -> int:
        return intrinsic_gas(self.data)

    def get_intrinsic_gas(self) -> int:
        return self.intrinsic_gas

    def validate(self) -> None:
        """Nothing to check: the fields come from the scheduler's own state."""

    def check_signature_validity(self) -> None:
        """A scheduled transaction is authorised by the scheduler's state, not a key."""

    def make_receipt(self, status: bytes, gas_used: int, log_entries: Any) -> ScheduledReceipt:
        logs = [Log(address, topics, data) for address, topics, data in log_entries]
        return ScheduledReceipt(SCHEDULED_TX_TYPE, Receipt(status, gas_used, logs))
