"""eth_getProof (EIP-1186) from web3.py: every proof checks against the block's state root
with py-trie, for present and absent accounts and slots, at the head and at an older
block."""

import json
from pathlib import Path

import rlp
from eth.rlp.accounts import Account
from eth_utils import keccak
from test_web3_e2e import call_tx, raw, transact
from trie import HexaryTrie

FIXTURES = Path(__file__).resolve().parent / "fixtures"
BALANCE_SLOT = 3  # Token.sol's balanceOf mapping


def proven_value(root: bytes, key: bytes, proof: list) -> bytes:
    """What the proof says is stored under ``key`` (b"" for nothing), checked by py-trie."""
    return HexaryTrie.get_from_proof(root, keccak(key), [rlp.decode(bytes(n)) for n in proof])


def balance_slot(holder: str) -> bytes:
    return keccak(bytes(12) + bytes.fromhex(holder[2:]) + BALANCE_SLOT.to_bytes(32, "big"))


def test_account_and_storage_proofs_check_against_the_state_root(w3, accounts):
    compiled = json.loads((FIXTURES / "Token.json").read_text())
    factory = w3.eth.contract(abi=compiled["abi"], bytecode=compiled["bytecode"])
    owner, other = accounts[0], accounts[4]
    deployed = transact(
        w3, owner, {"data": factory.constructor("P", "P", 1000).data_in_transaction}
    )
    token = w3.eth.contract(address=deployed.contractAddress, abi=compiled["abi"])
    before = w3.eth.block_number
    transact(w3, owner, call_tx(token.functions.transfer(other.address, 250), owner))

    slots = [balance_slot(owner.address), balance_slot(other.address), b"\x77" * 32]
    block = w3.eth.get_block("latest")
    proof = w3.eth.get_proof(token.address, ["0x" + s.hex() for s in slots], block.number)
    account = Account(proof.nonce, proof.balance, proof.storageHash, proof.codeHash)
    assert proven_value(block.stateRoot, bytes.fromhex(token.address[2:]),
                        proof.accountProof) == rlp.encode(account)  # fmt: skip
    assert proof.codeHash == keccak(w3.eth.get_code(token.address))
    values = [int.from_bytes(p.value, "big") for p in proof.storageProof]  # web3's HexBytes
    assert values == [750, 250, 0]
    for slot, value, entry in zip(slots, values, proof.storageProof, strict=True):
        stored = proven_value(proof.storageHash, slot, entry.proof)
        assert stored == (rlp.encode(value) if value else b"")

    # at the block before the transfer, the proof shows the balances as they were
    old = w3.eth.get_block(before)
    earlier = w3.eth.get_proof(token.address, ["0x" + slots[0].hex()], before)
    assert int.from_bytes(earlier.storageProof[0].value, "big") == 1000
    assert proven_value(old.stateRoot, bytes.fromhex(token.address[2:]),
                        earlier.accountProof) != b""  # fmt: skip


def test_an_absent_account_is_proven_absent(w3):
    nobody = "0x" + "5a" * 20
    block = w3.eth.get_block("latest")
    proof = w3.eth.get_proof(w3.to_checksum_address(nobody), ["0x01"], "latest")
    assert (proof.balance, proof.nonce) == (0, 0)
    assert proof.codeHash == keccak(b"")
    assert proof.storageHash == HexaryTrie({}).root_hash
    assert proven_value(block.stateRoot, bytes.fromhex(nobody[2:]), proof.accountProof) == b""
    assert int.from_bytes(proof.storageProof[0].value, "big") == 0


def test_bad_proof_requests_are_invalid_params(w3):
    address = "0x" + "5a" * 20
    good = raw(w3, "eth_getProof", [address, ["0x1", "0x" + "00" * 32], "latest"])["result"]
    assert [(p["key"], p["value"]) for p in good["storageProof"]] == [
        ("0x1", "0x0"), ("0x" + "00" * 32, "0x0")
    ]  # keys as given, values as quantities, as geth answers  # fmt: skip
    for params in ([address, ["0x" + "11" * 33], "latest"], [address, "0x01", "latest"],
                   [address, ["zz"], "latest"], ["0x12", [], "latest"]):  # fmt: skip
        assert raw(w3, "eth_getProof", params)["error"]["code"] == -32602
