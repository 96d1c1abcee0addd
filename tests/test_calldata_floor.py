"""EIP-7623's calldata floor (Prague): a transaction whose gas limit is below it is
invalid in a block, and eth_estimateGas never answers below it."""

import pytest
from eth_account import Account
from nodes import CHAIN_ID, DEV_KEYS, REPO
from test_web3_e2e import transact

from chain.execution import BlockExecution, InvalidTransaction, PayloadAttributes, next_header
from chain.genesis import genesis_block, load_genesis
from chain.vm import decode_transaction, vm_class_at

DATA = bytes(range(1, 251)) * 4  # 1000 non-zero bytes
EXECUTED = 21000 + 16 * len(DATA)  # what a plain call with this data costs
FLOOR = 21000 + 10 * 4 * len(DATA)  # EIP-7623: 10 gas per token, 4 tokens a byte


def test_a_block_with_a_transaction_below_the_floor_is_invalid():
    genesis = load_genesis(REPO / "genesis" / "dev.json")
    block, write = genesis_block(genesis)
    parent = block.header
    attributes = PayloadAttributes(parent.timestamp + 12, b"\x00" * 32, b"\x00" * 20,
                                   parent_beacon_block_root=b"\x00" * 32)  # fmt: skip
    header = next_header(genesis.config, parent, attributes)
    execution = BlockExecution(
        genesis.config, parent, header, write.state.get, {parent.hash: parent}.get
    )
    sender = Account.from_key(DEV_KEYS[0])
    fields = {"to": "0x" + "11" * 20, "data": DATA, "nonce": 0, "chainId": CHAIN_ID,
              "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9}  # fmt: skip
    vm_class = vm_class_at(genesis.config, header.timestamp)

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
