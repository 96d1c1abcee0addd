"""``eth_getProof`` (EIP-1186): Merkle proofs of an account and of some of its storage.

Light clients and bridges check an account or a slot against a block's state root
without trusting the node: the proof is the trie nodes on the path to the key, root
first. A missing account or slot has a proof too, of its absence. py-trie builds the
paths; the node's store has every state a block left, so any block can be proven.
"""

from dataclasses import dataclass

import rlp
from eth.constants import BLANK_ROOT_HASH, EMPTY_SHA3
from eth.rlp.accounts import Account
from eth_utils import keccak

from chain.execution import StateLookup
from chain.storage.store import state_view
from chain.trie.reads import WalkingTrie


@dataclass(frozen=True)
class StorageProof:
    slot: bytes  # 32 bytes
    value: int
    proof: list[bytes]  # RLP trie nodes, root first


@dataclass(frozen=True)
class AccountProof:
    address: bytes
    nonce: int
    balance: int
    code_hash: bytes
    storage_root: bytes
    proof: list[bytes]
    storage: list[StorageProof]


def prove(
    state: StateLookup, state_root: bytes, address: bytes, slots: list[bytes]
) -> AccountProof:
    """Proofs of ``address`` and its 32-byte ``slots`` in the state at ``state_root``."""
    db, _ = state_view(state)
    accounts = WalkingTrie(db, state_root)
    key = keccak(address)
    encoded = accounts.get(key)
    account = rlp.decode(encoded, sedes=Account) if encoded else Account(0, 0)
    storage = WalkingTrie(db, account.storage_root)
    return AccountProof(
        address=address,
        nonce=account.nonce,
        balance=account.balance,
        code_hash=account.code_hash if encoded else EMPTY_SHA3,
        storage_root=account.storage_root if encoded else BLANK_ROOT_HASH,
        proof=_encoded(accounts.get_proof(key)),
        storage=[
            StorageProof(
                slot=slot,
                value=_slot_value(storage.get(keccak(slot))),
                proof=_encoded(storage.get_proof(keccak(slot))),
            )
            for slot in slots
        ],
    )


def _slot_value(encoded: bytes) -> int:
    return int.from_bytes(rlp.decode(encoded), "big") if encoded else 0


def _encoded(nodes: tuple) -> list[bytes]:
    return [rlp.encode(node) for node in nodes]
