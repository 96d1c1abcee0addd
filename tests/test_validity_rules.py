"""Transaction and block validity rules of the supported forks, as geth applies them on
import and when building: each test here fed a block that geth refuses (or a creation
geth makes fail) through the node's execution path, which accepted it before."""

import json

import pytest
import rlp
from eth_account import Account
from eth_keys import keys
from eth_utils import keccak, to_checksum_address
from nodes import DEV_KEYS

from chain.execution import BlockExecution, InvalidTransaction, PayloadAttributes, next_header
from chain.genesis import genesis_block, parse_genesis
from chain.vm import decode_transaction, vm_class_at

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


def execution() -> tuple[BlockExecution, type]:
    """A Prague block being built on a plain Ethereum genesis holding ALLOC."""
    forks = {"shanghaiTime": 0, "cancunTime": 0, "pragueTime": 0}
    raw = json.dumps({"config": {"chainId": CHAIN_ID, **forks}, "alloc": ALLOC}).encode()
    genesis = parse_genesis(raw)
    block, write = genesis_block(genesis)
    parent = block.header
    attributes = PayloadAttributes(parent.timestamp + 12, b"\x00" * 32, b"\x00" * 20,
                                   parent_beacon_block_root=b"\x00" * 32)  # fmt: skip
    header = next_header(genesis.config, parent, attributes)
    run = BlockExecution(genesis.config, parent, header, write.state.get, {parent.hash: parent}.get)
    return run, vm_class_at(genesis.config, header.timestamp)


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
