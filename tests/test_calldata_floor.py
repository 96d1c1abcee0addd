"""EIP-7623's calldata floor (Prague): a transaction whose gas limit is below it is
invalid in a block, and eth_estimateGas never answers below it."""

import pytest
from blocks import next_block
from eth_account import Account
from nodes import CHAIN_ID, DEV_KEYS, REPO
from test_web3_e2e import transact

from chain.execution import InvalidTransaction
from chain.genesis import load_genesis
from chain.vm import decode_transaction

DATA = bytes(range(1, 251)) * 4  # 1000 non-zero bytes
EXECUTED = 21000 + 16 * len(DATA)  # what a plain call with this data costs
FLOOR = 21000 + 10 * 4 * len(DATA)  # EIP-7623: 10 gas per token, 4 tokens a byte


def test_a_block_with_a_transaction_below_the_floor_is_invalid():
    execution, vm_class = next_block(load_genesis(REPO / "genesis" / "dev.json"))
    sender = Account.from_key(DEV_KEYS[0])
    fields = {"to": "0x" + "11" * 20, "data": DATA, "nonce": 0, "chainId": CHAIN_ID,
              "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9}  # fmt: skip

    def signed(gas: int):
        raw = sender.sign_transaction({**fields, "gas": gas}).raw_transaction
        return decode_transaction(vm_class, bytes(raw))

    with pytest.raises(InvalidTransaction, match=f"minimum needed {FLOOR}"):
        execution.apply(signed(EXECUTED))  # enough to run, not enough for the floor
    assert execution.apply(signed(FLOOR)).gas_used == FLOOR


def test_estimate_gas_covers_the_floor(w3, accounts):
    call = {"from": accounts[0].address, "to": accounts[9].address, "data": "0x" + DATA.hex()}
    estimate = w3.eth.estimate_gas(call)
    assert FLOOR <= estimate <= FLOOR * 1.015  # geth's search stops within 1.5%
    receipt = transact(w3, accounts[0], {**call, "gas": estimate})
    assert receipt.status == 1 and receipt.gasUsed == FLOOR


def clearing_contract(slots: int) -> bytes:
    """Init code of a contract that sets slots 0..slots-1 to 1 and whose code clears them."""
    setting = b"".join(bytes([0x60, 1, 0x60, i, 0x55]) for i in range(slots))
    runtime = b"".join(bytes([0x60, 0, 0x60, i, 0x55]) for i in range(slots)) + b"\x00"
    copy = bytes([0x60, len(runtime), 0x61]) + (len(setting) + 13).to_bytes(2, "big")
    copy += bytes([0x60, 0, 0x39, 0x60, len(runtime), 0x60, 0, 0xF3])
    assert len(copy) == 13
    return setting + copy + runtime


def test_a_refunding_transaction_pays_and_reports_the_floor_after_its_refund(w3, accounts):
    sender = accounts[1]
    created = transact(w3, sender, {"data": "0x" + clearing_contract(20).hex(), "gas": 1_000_000})
    assert created.status == 1 and w3.eth.get_storage_at(created.contractAddress, 19) != b"\0" * 32
    before = w3.eth.get_balance(sender.address)
    data = DATA * 4
    call = {"to": created.contractAddress, "data": "0x" + data.hex(), "gas": 400_000}
    receipt = transact(w3, sender, call)
    assert receipt.status == 1
    assert w3.eth.get_storage_at(created.contractAddress, 19) == b"\0" * 32
    # 20 cleared slots refund at most a fifth of the gas used, which leaves less than the
    # floor: the floor is what is charged, and what the receipt says
    floor = 21000 + 10 * 4 * len(data)
    assert receipt.gasUsed == floor
    assert before - w3.eth.get_balance(sender.address) == floor * receipt.effectiveGasPrice
