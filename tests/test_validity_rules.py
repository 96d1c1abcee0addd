"""Transaction and block validity rules of the supported forks, as geth applies them on
import and when building: each test here fed a block that geth refuses (or a creation
geth makes fail) through the node's execution path, which accepted it before."""

import json

import pytest
import rlp
from blocks import next_block
from eth_account import Account
from eth_keys import keys
from eth_utils import keccak, to_checksum_address
from nodes import DEV_KEYS

from chain.execution import BlockExecution, InvalidBlock, InvalidTransaction
from chain.genesis import parse_genesis
from chain.vm import decode_transaction

CHAIN_ID = 1
SENDER, CODED, DELEGATED = (Account.from_key(key) for key in DEV_KEYS[:3])
FACTORY = bytes.fromhex("fa" * 20)
TARGET = bytes.fromhex("0b" * 20)
# slot 0 := 1, then CREATE(0, 0, 0) with empty init code, its result stored at slot 0
FACTORY_CODE = bytes([0x60, 0x01, 0x5F, 0x55, 0x5F, 0x5F, 0x5F, 0xF0, 0x5F, 0x55, 0x00])


def create_address(sender: bytes, nonce: int) -> bytes:
    return keccak(rlp.encode([sender, nonce]))[12:]


STORAGE_ONLY = {"balance": "0x0", "storage": {"0x01": "0x01"}}  # EIP-7610's case
ALLOC = {
    SENDER.address: {"balance": hex(10**21)},
    CODED.address: {"balance": hex(10**21), "code": "0x00"},
    DELEGATED.address: {"balance": hex(10**21), "code": "0xef0100" + TARGET.hex()},
    "0x" + FACTORY.hex(): {"balance": "0x0", "nonce": "0x1", "code": "0x" + FACTORY_CODE.hex()},
    "0x" + create_address(FACTORY, 1).hex(): STORAGE_ONLY,
    "0x" + create_address(bytes.fromhex(SENDER.address[2:]), 0).hex(): STORAGE_ONLY,
}


def execution(alloc: dict | None = None, **config) -> tuple[BlockExecution, type]:
    """A Prague block being built on a plain Ethereum genesis holding ALLOC (and
    ``alloc``), its ``config`` section extended by ``config``."""
    config = {"chainId": CHAIN_ID, "shanghaiTime": 0, "cancunTime": 0, "pragueTime": 0, **config}
    raw = json.dumps({"config": config, "alloc": {**ALLOC, **(alloc or {})}}).encode()
    return next_block(parse_genesis(raw))


def signed(account, **fields):
    tx = {"to": "0x" + "11" * 20, "nonce": 0, "chainId": CHAIN_ID, "gas": 100_000,
          "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9, **fields}  # fmt: skip
    if tx["to"] is None:
        del tx["to"]
    return bytes(account.sign_transaction(tx).raw_transaction)


def test_a_sender_with_code_is_refused_eip_3607():
    run, vm_class = execution()
    with pytest.raises(InvalidTransaction, match="sender not an eoa"):
        run.apply(decode_transaction(vm_class, signed(CODED)))


def test_a_sender_whose_code_is_a_7702_delegation_may_send():
    run, vm_class = execution()
    assert run.apply(decode_transaction(vm_class, signed(DELEGATED))).gas_used == 21_000


def test_a_priority_fee_above_the_max_fee_is_refused():
    run, vm_class = execution()
    raw = signed(SENDER, maxFeePerGas=10**9, maxPriorityFeePerGas=10**9 + 1)
    with pytest.raises(InvalidTransaction, match="max priority fee per gas higher than max fee"):
        run.apply(decode_transaction(vm_class, raw))


def blob_creation(account) -> bytes:
    """A signed type-3 transaction with an empty ``to`` (no client will sign one)."""
    versioned = b"\x01" + b"\x00" * 31
    fields = [CHAIN_ID, 0, 10**9, 10**10, 100_000, b"", 0, b"", [], 10**9, [versioned]]
    digest = keccak(b"\x03" + rlp.encode(fields))
    signature = keys.PrivateKey(bytes.fromhex(account.key.hex()[-64:])).sign_msg_hash(digest)
    return b"\x03" + rlp.encode([*fields, signature.v, signature.r, signature.s])


def test_a_blob_transaction_must_have_a_recipient():
    run, vm_class = execution()
    with pytest.raises(InvalidTransaction, match="blob transaction of type create"):
        run.apply(decode_transaction(vm_class, blob_creation(SENDER)))


def test_a_creation_transaction_into_an_address_with_storage_collides_eip_7610():
    run, vm_class = execution()
    raw = signed(SENDER, to=None, data="0x600160005500", gas=200_000)  # would store 1 at 0
    receipt = run.apply(decode_transaction(vm_class, raw))
    assert receipt.state_root == b""  # failed: the whole gas limit is spent, no code
    assert receipt.gas_used == 200_000
    address = create_address(bytes.fromhex(SENDER.address[2:]), 0)
    assert run.state.get_code(address) == b""


def test_create_opcode_into_an_address_with_storage_collides_eip_7610():
    run, vm_class = execution()
    receipt = run.apply(
        decode_transaction(vm_class, signed(SENDER, to=to_checksum_address(FACTORY), gas=10**6))
    )
    assert receipt.state_root == b"\x01"
    assert run.state.get_storage(FACTORY, 0) == 0  # CREATE pushed 0: the creation failed


def test_a_creation_transaction_with_initcode_above_the_limit_is_refused_eip_3860():
    run, vm_class = execution()
    raw = signed(SENDER, to=None, data="0x" + "00" * 49_153, gas=5_000_000)
    with pytest.raises(InvalidTransaction, match="max initcode size exceeded"):
        run.apply(decode_transaction(vm_class, raw))


# EIP-7685 requests (Prague)

DEPOSIT_CONTRACT = bytes.fromhex("00000000219ab540356cbb839cbe05303d7705fa")
WITHDRAWALS = bytes.fromhex("00000961ef480eb55e80d19ad83579a64c007002")
CONSOLIDATIONS = bytes.fromhex("0000bbddc7ce488642fb579f8b00f3a590007251")
DEPOSIT_TOPIC = bytes.fromhex("649bbc62d0e31342afea4e5cd82d4049e7e1ee912fc0889aa790803be39038c5")
# logs its calldata as a DepositEvent
LOGGER = bytes([0x36, 0x5F, 0x5F, 0x37, 0x7F]) + DEPOSIT_TOPIC + bytes([0x36, 0x5F, 0xA1, 0x00])
STOP, REVERT = "0x00", "0x5f5ffd"


def deposit_event(pubkey: bytes, credentials: bytes, amount: bytes, sig: bytes, index: bytes):
    """The deposit contract's ABI encoding of DepositEvent's five ``bytes`` fields."""
    head = b"".join(offset.to_bytes(32, "big") for offset in (160, 256, 320, 384, 512))
    tail = b"".join(
        len(value).to_bytes(32, "big") + value.ljust(-(-len(value) // 32) * 32, b"\x00")
        for value in (pubkey, credentials, amount, sig, index)
    )
    return head + tail


DEPOSIT = (b"\x11" * 48, b"\x22" * 32, b"\x33" * 8, b"\x44" * 96, b"\x55" * 8)


def finish_with(alloc: dict, call_data: bytes | None = None):
    """Run a Prague block on a plain chain with ``alloc``, one call to the deposit
    contract with ``call_data`` if given; returns the finished block."""
    run, vm_class = execution(alloc, depositContractAddress="0x" + DEPOSIT_CONTRACT.hex())
    if call_data is not None:
        raw = signed(SENDER, to=to_checksum_address(DEPOSIT_CONTRACT), data=call_data, gas=10**6)
        assert run.apply(decode_transaction(vm_class, raw)).state_root == b"\x01"
    return run.finish()


def contracts(withdrawals: str = STOP, consolidations: str = STOP, deposit=LOGGER) -> dict:
    return {
        "0x" + WITHDRAWALS.hex(): {"balance": "0x0", "code": withdrawals},
        "0x" + CONSOLIDATIONS.hex(): {"balance": "0x0", "code": consolidations},
        "0x" + DEPOSIT_CONTRACT.hex(): {"balance": "0x0", "code": "0x" + deposit.hex()},
    }


def test_deposit_requests_are_read_from_the_deposit_contracts_logs_eip_6110():
    executed = finish_with(contracts(), deposit_event(*DEPOSIT))
    assert executed.requests[0] == b"\x00" + b"".join(DEPOSIT)


@pytest.mark.parametrize(
    "event",
    [
        deposit_event(*DEPOSIT)[:-32],  # short
        deposit_event(b"\x11" * 47, *DEPOSIT[1:]),  # a 47-byte public key
        (161).to_bytes(32, "big") + deposit_event(*DEPOSIT)[32:],  # an offset moved
    ],
)
def test_a_deposit_log_with_another_layout_makes_the_block_invalid(event):
    with pytest.raises(InvalidBlock, match="deposit event"):
        finish_with(contracts(), event)


@pytest.mark.parametrize(
    "alloc, reason",
    [
        (contracts(withdrawals=REVERT), "system call to 0x00000961.* failed: Revert"),
        (
            contracts(consolidations="0xfe"),
            "system call to 0x0000bbdd.* failed: InvalidInstruction",
        ),
        (contracts(withdrawals="0x5f63ffffffff52"), "failed: OutOfGas"),  # 4 GB of memory
        ({"0x" + CONSOLIDATIONS.hex(): {"balance": "0x0"}}, "0x0000bbdd.* has no code"),
    ],
)
def test_a_failing_or_missing_request_contract_makes_the_block_invalid_eip_7002_7251(alloc, reason):
    with pytest.raises(InvalidBlock, match=reason):
        finish_with({**contracts(), **alloc})
