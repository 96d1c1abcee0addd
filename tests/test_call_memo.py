"""eth_call's memo (chain.simulate.CallMemo): an output is kept by block and arguments,
only when the call succeeded on the state alone, and a later block, a state edit or
other arguments never see it."""

from dataclasses import fields, replace

import pytest
from eth_abi import encode as abi_encode
from nodes import rpc
from test_web3_e2e import balance_slot, call_tx, deploy_token, raw, transact

from chain.ai.registry import ModelRecord
from chain.ai.results import NO_TX, AiCall, AiCallFailed, ModelUnavailable
from chain.simulate import AskedOracle, CallArgs, CallMemo, ExecutionReverted

RETURN_ONE = bytes.fromhex("600160005260206000f3")  # init code: return the word 1
REVERTS = bytes.fromhex("60006000fd")  # init code: REVERT(0, 0)
LOOP = bytes.fromhex("5b600056")  # JUMPDEST, JUMP to 0


@pytest.fixture(scope="module")
def token(w3, accounts, token_artifact):
    return deploy_token(w3, accounts[0], token_artifact)[0]


def test_a_successful_call_is_kept_by_block_and_arguments(dev_genesis):
    simulator, header = dev_genesis
    args = CallArgs(sender=b"\x01" * 20, data=RETURN_ONE, access_list=[(b"\x02" * 20, [1, 2])])
    assert simulator.memo.get(header, args) is None
    output = simulator.call(header, args)
    assert output == (1).to_bytes(32, "big")
    assert simulator.memo.get(header, args) == output
    same = CallArgs(sender=b"\x01" * 20, data=RETURN_ONE, access_list=[(b"\x02" * 20, [1, 2])])
    assert simulator.memo.get(header, same) == output
    for other in (
        CallArgs(sender=b"\x03" * 20, data=RETURN_ONE, access_list=same.access_list),
        CallArgs(sender=b"\x01" * 20, data=RETURN_ONE, access_list=[(b"\x02" * 20, [1])]),
        CallArgs(sender=b"\x01" * 20, data=RETURN_ONE, access_list=same.access_list, gas=10**6),
    ):
        assert simulator.memo.get(header, other) is None
    assert simulator.memo.get(header.copy(timestamp=header.timestamp + 1), same) is None


def test_the_memo_key_holds_every_field_of_a_call(dev_genesis):
    _, header = dev_genesis
    args = CallArgs()
    assert len(CallMemo.key(header, args)) == 1 + len(fields(CallArgs))
    for name, value in (("sender", b"\x01" * 20), ("to", b"\x02" * 20), ("gas", 1),
                        ("gas_price", 1), ("max_fee_per_gas", 1), ("max_priority_fee_per_gas", 1),
                        ("value", 1), ("data", b"\x01"), ("nonce", 1),
                        ("access_list", [(b"\x03" * 20, [])])):  # fmt: skip
        assert CallMemo.key(header, replace(args, **{name: value})) != CallMemo.key(header, args)


def test_a_reverting_call_is_not_kept(dev_genesis):
    simulator, header = dev_genesis
    args = CallArgs(sender=b"\x01" * 20, data=REVERTS)
    with pytest.raises(ExecutionReverted):
        simulator.call(header, args)
    assert simulator.memo.get(header, args) is None


def test_the_memo_keeps_the_most_recently_used_answers_within_its_bounds(dev_genesis):
    _, header = dev_genesis
    memo = CallMemo(entries=2)
    first, second, third = (CallArgs(data=bytes([n])) for n in range(3))
    memo.keep(header, first, b"1")
    memo.keep(header, second, b"2")
    assert memo.get(header, first) == b"1"  # now the most recently used
    memo.keep(header, third, b"3")
    assert memo.get(header, second) is None
    assert (memo.get(header, first), memo.get(header, third)) == (b"1", b"3")
    memo.keep(header, CallArgs(data=b"\x00" * 2000), b"")  # too large to keep
    assert memo.get(header, CallArgs(data=b"\x00" * 2000)) is None


def test_an_oracle_asked_during_the_call_says_so():
    """A call that ran a model or asked a sidecar has an answer that is not the state's
    alone: the simulator keeps none of those."""
    oracle = AskedOracle(1, None)
    oracle.begin(NO_TX)
    assert oracle.asked is False
    model = ModelRecord(b"\x01" * 32, "m", "onnx", None, None, 0, 1, "attest", 0, 0, 32)
    with pytest.raises(ModelUnavailable):
        oracle.call(AiCall(b"\x01" * 20, model, b""), None)
    assert oracle.asked is True
    oracle.begin(NO_TX)
    assert oracle.asked is False
    oracle.async_call_index()
    assert oracle.asked is True
    replicate = ModelRecord(b"\x01" * 32, "m", "onnx", None, None, 0, 1, "replicate", 0, 0, 32)
    oracle.begin(NO_TX)
    with pytest.raises((ModelUnavailable, AiCallFailed)):
        oracle.call(AiCall(b"\x01" * 20, replicate, b""), None)
    assert oracle.asked is True


def test_calls_answer_the_state_of_the_block_they_name(node, w3, accounts, token):
    holder, other = accounts[0], accounts[7]
    balance_of = call_tx(token.functions.balanceOf(other.address), holder)
    before = w3.eth.block_number
    answers = [raw(w3, "eth_call", [balance_of, "latest"])["result"] for _ in range(3)]
    assert len(set(answers)) == 1

    transact(w3, holder, call_tx(token.functions.transfer(other.address, 5), holder))
    after = raw(w3, "eth_call", [balance_of, "latest"])["result"]
    assert int(after, 16) == int(answers[0], 16) + 5
    assert raw(w3, "eth_call", [balance_of, hex(before)])["result"] == answers[0]

    # a state edit re-seals the head: the same block number answers the edited state
    number = w3.eth.block_number
    slot = "0x" + abi_encode(["uint256"], [balance_slot(other.address)]).hex()
    edited = "0x" + (12345).to_bytes(32, "big").hex()
    assert rpc(node.url, "anvil_setStorageAt", [token.address, slot, edited])["result"] is True
    assert w3.eth.block_number == number
    assert raw(w3, "eth_call", [balance_of, "latest"])["result"] == edited


@pytest.mark.parametrize("code", [RETURN_ONE, LOOP], ids=["returns", "out-of-gas"])
def test_calls_charge_opcodes_as_py_evm_does(dev_genesis, code):
    """The simulator's opcodes charge their gas themselves (chain.interpreter.charged): the
    gas left, the output and the error are py-evm's."""
    simulator, header = dev_genesis
    plain = simulator.vm_class_after(header).get_state_class().computation_class
    args = CallArgs(sender=b"\x01" * 20, data=code, gas=100_000)
    outcomes = []
    for computation_class in (None, lambda charged: plain):
        with simulator.execution(header, args, computation_class=computation_class) as (run, _):
            outcomes.append((run.get_gas_remaining(), run.output, run.is_error and str(run.error)))
    assert outcomes[0] == outcomes[1]
    assert ("Out of gas" in (outcomes[0][2] or "")) == (code == LOOP)
