"""EIP-7685 requests of a Prague block, as execution-specs' Prague ``apply_body`` makes
them: deposits (EIP-6110) read from the deposit contract's logs, withdrawals (EIP-7002)
and consolidations (EIP-7251) dequeued by calling their system contracts.

Each rule that makes a block invalid here is the specification's: a deposit log whose
ABI layout is not the deposit contract's, a request contract that has no code, or a
system call to one that reverts, throws or runs out of gas.
"""

from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

from eth.constants import SYSTEM_ADDRESS, SYSTEM_MESSAGE_GAS
from eth.vm.forks.prague import PragueVM
from eth.vm.forks.prague.constants import (
    CONSOLIDATION_REQUEST_PREDEPLOY_ADDRESS,
    CONSOLIDATION_REQUEST_TYPE,
    DEPOSIT_EVENT_SIGNATURE_HASH,
    DEPOSIT_REQUEST_TYPE,
    WITHDRAWAL_REQUEST_PREDEPLOY_ADDRESS,
    WITHDRAWAL_REQUEST_TYPE,
)

# DepositEvent(bytes pubkey, bytes withdrawal_credentials, bytes amount, bytes signature,
# bytes index): the offset each field's head points at, and the field's length
DEPOSIT_FIELDS = ((160, 48), (256, 32), (320, 8), (384, 96), (512, 8))
DEPOSIT_LOG_SIZE = 576


class InvalidRequests(Exception):
    """A block whose requests cannot be made; the message says why."""


def deposit_requests(receipts: Sequence[Any], deposit_contract: bytes | None) -> bytes:
    """The deposit requests' data: each deposit event's five fields, concatenated."""
    data = b""
    if deposit_contract is None:
        return data
    for receipt in receipts:
        for log in receipt.logs:
            if log.address != deposit_contract or not log.topics:
                continue
            if log.topics[0].to_bytes(32, "big") != DEPOSIT_EVENT_SIGNATURE_HASH:
                continue
            data += _deposit(log.data)
    return data


def _deposit(log_data: bytes) -> bytes:
    if len(log_data) != DEPOSIT_LOG_SIZE:
        raise InvalidRequests(f"deposit event data is {len(log_data)} bytes, not 576")
    fields = b""
    for position, (offset, size) in enumerate(DEPOSIT_FIELDS):
        head = int.from_bytes(log_data[32 * position : 32 * position + 32], "big")
        if head != offset:
            raise InvalidRequests(f"deposit event field {position} at offset {head}, not {offset}")
        length = int.from_bytes(log_data[offset : offset + 32], "big")
        if length != size:
            raise InvalidRequests(f"deposit event field {position} is {length} bytes, not {size}")
        fields += log_data[offset + 32 : offset + 32 + size]
    return fields


def system_call_requests(vm: Any, address: bytes) -> bytes:
    """The requests a system contract dequeues this block (execution-specs'
    ``process_checked_system_transaction``)."""
    code = vm.state.get_code(address)
    if not code:
        raise InvalidRequests(f"system contract 0x{address.hex()} has no code")
    computation = vm.execute_bytecode(
        origin=SYSTEM_ADDRESS,
        gas_price=0,
        gas=SYSTEM_MESSAGE_GAS,
        to=address,
        sender=SYSTEM_ADDRESS,
        value=0,
        data=b"",
        code=code,
        code_address=address,
    )
    if computation.is_error:
        raise InvalidRequests(
            f"system call to 0x{address.hex()} failed: {type(computation.error).__name__}"
        )
    return computation.output


def block_requests(
    vm: Any, receipts: Sequence[Any], deposit_contract: bytes | None, sibyl: bool
) -> list[bytes]:
    """The block's requests, each its type byte and data, in type order. A Sibyl chain
    calls the request contracts only where its genesis deployed them."""
    requests = [DEPOSIT_REQUEST_TYPE + deposit_requests(receipts, deposit_contract)]
    for kind, address in (
        (WITHDRAWAL_REQUEST_TYPE, WITHDRAWAL_REQUEST_PREDEPLOY_ADDRESS),
        (CONSOLIDATION_REQUEST_TYPE, CONSOLIDATION_REQUEST_PREDEPLOY_ADDRESS),
    ):
        if sibyl and not vm.state.get_code(address):
            requests.append(kind)
            continue
        requests.append(kind + system_call_requests(vm, address))
    return requests


def requests_hash(requests: list[bytes]) -> bytes:
    """EIP-7685's commitment to a block's requests, by py-evm's own rule (Prague's
    ``compute_requests_hash``, which reads the requests from a block and writes the hash
    into a copy of its header: here the copies are the hash itself)."""
    block = SimpleNamespace(
        block_requests=requests,
        header=SimpleNamespace(copy=lambda requests_hash: requests_hash),
        copy=lambda header: header,
    )
    return PragueVM.compute_requests_hash(block)
