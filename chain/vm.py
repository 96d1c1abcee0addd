"""Sibyl's VM: py-evm's post-merge forks, configured (never patched) with Sibyl's parts.

py-evm extends by configuration: a VM names its block class, the block class its
transaction builder, the state its computation, the computation its precompiles. This
module is the one place where Sibyl's transaction handling and precompiles are wired into
each fork it supports (Shanghai, Cancun, Prague), so the rest of the node asks for
``vm_class_at(config, timestamp)`` and never names a py-evm fork.
"""

from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

import rlp
from eth.abc import VirtualMachineAPI
from eth.constants import BLANK_ROOT_HASH, EMPTY_SHA3
from eth.db.account import AccountDB
from eth.db.cache import CacheDB
from eth.db.journal import JournalDB
from eth.db.storage import AccountStorageDB, StorageLookup
from eth.rlp.accounts import Account
from eth.rlp.receipts import Receipt
from eth.vm.forks.cancun import CancunVM
from eth.vm.forks.cancun.constants import BLOB_TX_TYPE
from eth.vm.forks.prague import PragueVM
from eth.vm.forks.prague.constants import SET_CODE_TRANSACTION_TYPE
from eth.vm.forks.shanghai import ShanghaiVM
from eth.vm.forks.shanghai.constants import MAX_INITCODE_SIZE
from eth_utils import ValidationError, keccak
from lru import LRU
from rlp.sedes import CountableList

from chain.attested import ATTESTED_TX_TYPE, AttestedTransaction
from chain.calldata_floor import floor_gas
from chain.precompiles.mapping import PRECOMPILES
from chain.trie_batch import apply_writes
from scheduler.transactions import SCHEDULED_TX_TYPE, ScheduledTransaction
from sidecars.attestation import InvalidAttestation, recover_signer

FORKS: tuple[tuple[str, type[VirtualMachineAPI]], ...] = (
    ("prague", PragueVM),
    ("cancun", CancunVM),
    ("shanghai", ShanghaiVM),
)


@dataclass(frozen=True)
class ChainConfig:
    """The fork schedule of a chain, from the ``config`` section of its genesis file."""

    chain_id: int
    shanghai_time: int
    cancun_time: int | None = None
    prague_time: int | None = None
    sibyl: bool = True  # False: a plain Ethereum chain (no Sibyl precompiles or tx types)
    deposit_contract: bytes | None = None  # EIP-6110: whose logs are deposit requests
    terminal_total_difficulty: int = 0  # reached at or before genesis

    def fork_at(self, timestamp: int) -> str:
        if self.prague_time is not None and timestamp >= self.prague_time:
            return "prague"
        if self.cancun_time is not None and timestamp >= self.cancun_time:
            return "cancun"
        return "shanghai"


def recover_sender(tx: Any) -> bytes:
    """The sender of a signed transaction: one libsecp256k1 recovery, refusing the
    malleable high-s form (EIP-2). Raises ``ValidationError`` for a bad signature."""
    y_parity = tx.y_parity
    if y_parity not in (0, 1):
        raise ValidationError(f"invalid signature y parity {y_parity}")
    signature = tx.r.to_bytes(32, "big") + tx.s.to_bytes(32, "big") + bytes([y_parity])
    try:
        return recover_signer(keccak(tx.get_message_for_signing()), signature)
    except (InvalidAttestation, OverflowError) as exc:
        raise ValidationError(f"invalid signature: {exc}") from None


class CachedSender:
    """Recovers a transaction's sender once, and hashes it once.

    py-evm recovers the sender every time ``.sender`` is read (several times per
    transaction, through pure-Python wrappers around the curve library) and re-encodes the
    transaction for every ``.hash``; the pool has done both when the builder executes it.
    """

    def get_sender(self) -> bytes:
        try:
            return self._sender  # type: ignore[has-type]
        except AttributeError:
            self._sender = recover_sender(self)
            return self._sender

    @property
    def hash(self) -> bytes:
        try:
            return self._hash  # type: ignore[has-type]
        except AttributeError:
            self._hash = super().hash  # type: ignore[misc]
            return self._hash


class CopyingAccount(Account):
    """py-evm's account whose ``copy`` builds the changed account directly. Every balance
    or nonce change copies an account, about five per transaction, and rlp's generic
    ``copy`` (a deep copy of each unchanged field) takes 13 µs where this takes 3."""

    def copy(self, **changes: Any) -> "CopyingAccount":
        fields = zip(("nonce", "balance", "storage_root", "code_hash"), self, strict=True)
        return CopyingAccount(**{**dict(fields), **changes})


class SibylAccountDB(AccountDB):
    """py-evm's account database with caches for what is named by its content.

    py-evm forgets every decoded account when a snapshot is reverted (each ``eth_call``
    ends with one) and reads code from the database on every call. An encoded account
    decodes to the same value wherever it is read, and code is stored under its own
    hash, so both are kept across calls, blocks and states without ever going stale.
    A code read served from the cache is not recorded in py-evm's witness of accessed
    bytecodes, which the node does not use.
    """

    def _get_account(self, address: bytes, from_journal: bool = True) -> Account:
        if from_journal and address in self._account_cache:
            return self._account_cache[address]
        encoded = self._get_encoded_account(address, from_journal)
        account = decode_account(encoded) if encoded else CopyingAccount()
        if from_journal:
            self._account_cache[address] = account
        return account

    def has_storage(self, address: bytes) -> bool:
        """Whether the account's committed storage is non-empty."""
        return self._get_storage_root(address) != BLANK_ROOT_HASH

    def get_code(self, address: bytes) -> bytes:
        code_hash = self.get_code_hash(address)
        if code_hash == EMPTY_SHA3:
            return b""
        code = CODE_BY_HASH.get(code_hash)
        if code is None:
            code = CODE_BY_HASH[code_hash] = super().get_code(address)
        return code

    def _get_address_store(self, address: bytes) -> AccountStorageDB:
        """py-evm's, with storage whose writes reach the trie together."""
        store = self._account_stores.get(address)
        if store is None:
            storage_root = self._get_storage_root(address)
            store = BatchedStorageDB(self._raw_store_db, storage_root, address)
            self._account_stores[address] = store
        return store


class BatchedStorageLookup(StorageLookup):
    """py-evm's storage lookup, with the writes of each storage root applied at once.

    py-evm sets each written slot in the storage trie as it arrives, rewriting and
    rehashing the path from the root every time. Here writes wait, by hashed slot (reads
    see them), until the root is needed, then go into the trie in one pass
    (:func:`chain.trie_batch.apply_writes`). The trie is the same; a block's storage
    root takes a fraction of the time, the more so the deeper the trie."""

    def __init__(self, db: Any, storage_root: bytes, address: bytes) -> None:
        super().__init__(db, storage_root, address)
        self._waiting: dict[bytes, bytes] = {}  # hashed slot -> value, b"" deletes

    def __getitem__(self, key: bytes) -> bytes:
        if self._waiting:  # rarely: writes wait only while a root is being made
            value = self._waiting.get(self._decode_key(key))
            if value is not None:
                return value
        return super().__getitem__(key)

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self._waiting[self._decode_key(key)] = value

    def __delitem__(self, key: bytes) -> None:
        self._waiting[self._decode_key(key)] = b""

    def _exists(self, key: bytes) -> bool:
        return self[key] != b""

    @property
    def has_changed_root(self) -> bool:
        return bool(self._waiting) or self._write_trie is not None

    def get_changed_root(self) -> bytes:
        self._apply_waiting()
        return super().get_changed_root()

    def commit_to(self, db: Any) -> None:
        self._apply_waiting()
        super().commit_to(db)

    def new_trie(self) -> int:
        self._apply_waiting()
        return super().new_trie()

    def rollback_trie(self, trie_index: int) -> None:
        self._waiting.clear()  # they were writes to the trie being rolled back
        super().rollback_trie(trie_index)

    def _apply_waiting(self) -> None:
        if self._waiting:
            trie = self._get_write_trie()
            trie.root_hash = apply_writes(self._trie_nodes_batch, trie.root_hash, self._waiting)
            self._waiting = {}


class BatchedStorageDB(AccountStorageDB):
    """py-evm's account storage over a :class:`BatchedStorageLookup` (its layers of
    cache and journals rebuilt on top of it, as py-evm builds them)."""

    def __init__(self, db: Any, storage_root: bytes, address: bytes) -> None:
        super().__init__(db, storage_root, address)
        self._storage_lookup = BatchedStorageLookup(db, storage_root, address)
        self._storage_cache = CacheDB(self._storage_lookup)
        self._locked_changes = JournalDB(self._storage_cache)
        self._journal_storage = JournalDB(self._locked_changes)


@lru_cache(maxsize=8192)
def decode_account(encoded: bytes) -> CopyingAccount:
    """An account's RLP decoded; accounts are immutable, so one value serves every read."""
    return rlp.decode(encoded, sedes=CopyingAccount)


CODE_BY_HASH: LRU = LRU(1024)


class SibylState:
    """Mixed into each fork's state class.

    ``oracle`` is where the AI precompiles get their outputs (chain.oracle); each
    execution sets its own, and a state without one refuses AI calls. Scheduled
    transactions skip the checks of signed ones (signature, nonce, balance): every field
    of theirs follows from the scheduler's state, whose deposits pay their gas.
    ``registry_records`` holds the registry records read so far (chain.registry).
    """

    oracle: Any = None

    def has_code_or_nonce(self, address: bytes) -> bool:
        """py-evm's creation-collision test, with EIP-7610's third case: an address
        with storage (which only genesis allocations give an account without code or
        nonce) cannot be created into either."""
        return super().has_code_or_nonce(address) or self._account_db.has_storage(address)  # type: ignore[misc, attr-defined]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.registry_records: dict[bytes, Any] | None = {}

    def validate_transaction(self, transaction: Any) -> None:
        if isinstance(transaction, ScheduledTransaction):
            return
        _check_transaction(self, transaction)
        super().validate_transaction(transaction)  # type: ignore[misc]
        # py-evm raises the gas used to EIP-7623's floor but never checks that the gas
        # limit covers it, as the spec (and geth) do: a block holding such a transaction
        # is invalid, and eth_estimateGas must not answer below the floor.
        floor = floor_gas(type(self), transaction.data)
        if transaction.gas < floor:
            raise ValidationError(
                f"insufficient gas for floor data gas cost: gas {transaction.gas}, "
                f"minimum needed {floor}"
            )


DELEGATION_PREFIX = b"\xef\x01\x00"  # EIP-7702: the code of a delegated account


def _check_transaction(state: Any, transaction: Any) -> None:
    """Rules geth applies to every transaction (its ``preCheck``) that py-evm does not,
    with geth's messages."""
    code = state.get_code(transaction.sender)
    if code and not (len(code) == 23 and code.startswith(DELEGATION_PREFIX)):
        raise ValidationError("sender not an eoa")  # EIP-3607
    max_fee = getattr(transaction, "max_fee_per_gas", None)
    if max_fee is not None and transaction.max_priority_fee_per_gas > max_fee:
        raise ValidationError("max priority fee per gas higher than max fee per gas")
    if transaction.to == b"":
        if len(transaction.data) > MAX_INITCODE_SIZE:  # EIP-3860: py-evm only fails the call
            raise ValidationError(
                f"max initcode size exceeded: code size {len(transaction.data)} "
                f"limit {MAX_INITCODE_SIZE}"
            )
        if transaction.type_id == BLOB_TX_TYPE:
            raise ValidationError("blob transaction of type create")
        if transaction.type_id == SET_CODE_TRANSACTION_TYPE:
            raise ValidationError("set code transaction of type create")


def _finalize_gas_used(cls: Any, transaction: Any, computation: Any) -> int:
    """A receipt's gas, as the sender pays it: EIP-7623's floor applies after the refund.
    py-evm tops up to the floor first and caps the refund on that larger total, so a
    refunding transaction's receipt came out below what its sender was charged."""
    used = transaction.gas - computation.get_gas_remaining()
    refund = cls.calculate_net_gas_refund(used, computation.get_gas_refund())
    return used - refund + computation.data_floor_gas


class SharedJumpdests:
    """Mixed into each fork's computation class: which positions of a contract's code
    are valid jump destinations is worked out once per code, as geth caches its
    analysis, not again by every call (py-evm's CodeStream learns them per computation,
    which is about a tenth of an ``eth_call`` of an ERC-20 view)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        code = self.code  # type: ignore[has-type]
        code.valid_positions, code.invalid_positions = _jumpdests(self.msg.code)  # type: ignore[attr-defined]


@lru_cache(maxsize=1024)
def _jumpdests(code: bytes) -> tuple[set[int], set[int]]:
    """The valid and invalid jump positions learned so far in ``code``: facts of the code
    alone, so every computation running it may share (and add to) them."""
    return set(), set()


class SibylTransactionBuilder:
    """Decodes Sibyl's own envelopes (attested 0x13) before py-evm's standard types."""

    envelopes: dict[int, Any] = {
        ATTESTED_TX_TYPE: AttestedTransaction.decode,
        SCHEDULED_TX_TYPE: ScheduledTransaction.decode,
    }
    envelope_classes: tuple[type, ...] = (AttestedTransaction, ScheduledTransaction)

    @classmethod
    def decode(cls, encoded: bytes) -> Any:
        if encoded and encoded[0] in cls.envelopes:
            return cls.envelopes[encoded[0]](encoded, cls.decode)
        return super().decode(encoded)  # type: ignore[misc]

    @classmethod
    def deserialize(cls, encoded: Any) -> Any:
        if isinstance(encoded, bytes) and encoded and encoded[0] in cls.envelopes:
            return cls.decode(encoded)
        return super().deserialize(encoded)  # type: ignore[misc]

    @classmethod
    def serialize(cls, obj: Any) -> Any:
        if isinstance(obj, cls.envelope_classes):
            return obj.encode()
        return super().serialize(obj)  # type: ignore[misc]


class PlainTransactionBuilder(SibylTransactionBuilder):
    """Decodes Ethereum's transaction types only: a plain chain has no Sibyl envelopes."""

    envelopes: dict[int, Any] = {}
    envelope_classes: tuple[type, ...] = ()


def _configure(name: str, base: type[VirtualMachineAPI], sibyl: bool) -> type[VirtualMachineAPI]:
    """py-evm's fork ``base`` configured for a Sibyl chain or, when ``sibyl`` is False, for a
    plain Ethereum chain: py-evm's own precompiles and transaction types, with the node's
    caches (sender recovery, accounts, code, jump destinations) and EIP-7623 fixes."""
    if not sibyl:
        name = f"Plain{name}"
    builder = base.get_transaction_builder()
    legacy = type(
        f"Sibyl{name}LegacyTransaction",
        (CachedSender, builder.legacy_signed),
        {"__module__": __name__},
    )
    typed = type(
        f"Sibyl{name}TypedTransaction",
        (CachedSender, builder.typed_transaction),
        {"decoders": dict(builder.typed_transaction.decoders), "__module__": __name__},
    )
    tx_builder = type(
        f"Sibyl{name}TransactionBuilder",
        (SibylTransactionBuilder if sibyl else PlainTransactionBuilder, builder),
        {"legacy_signed": legacy, "typed_transaction": typed, "__module__": __name__},
    )
    # A block's RLP sedes names its transaction builder when the class is made, so the
    # configured block class restates its fields with Sibyl's builder.
    fields = [
        (field, CountableList(tx_builder) if field == "transactions" else sedes)
        for field, sedes in base.block_class._meta.fields
    ]
    receipts = base.block_class.receipt_builder
    typed_receipt = type(
        f"Sibyl{name}TypedReceipt",
        (receipts.typed_receipt_class,),
        {
            "codecs": {
                **receipts.typed_receipt_class.codecs,
                **({SCHEDULED_TX_TYPE: Receipt} if sibyl else {}),
            }
        },
    )
    receipt_builder = type(
        f"Sibyl{name}ReceiptBuilder", (receipts,), {"typed_receipt_class": typed_receipt}
    )
    block_class = type(
        f"Sibyl{name}Block",
        (base.block_class,),
        {
            "transaction_builder": tx_builder,
            "receipt_builder": receipt_builder,
            "fields": fields,
            "__module__": __name__,
        },
    )
    state = base.get_state_class()
    computation = type(
        f"Sibyl{name}Computation",
        (SharedJumpdests, state.computation_class),
        {
            "_precompiles": {
                **state.computation_class.get_precompiles(),
                **(PRECOMPILES if sibyl else {}),
            },
            "__module__": __name__,
        },
    )
    state_class = type(
        f"Sibyl{name}State",
        (SibylState, state),
        {
            "computation_class": computation,
            "account_db_class": SibylAccountDB,
            "__module__": __name__,
        },
    )
    return base.configure(
        __name__=f"Sibyl{name}VM",
        block_class=block_class,
        _state_class=state_class,
        finalize_gas_used=classmethod(_finalize_gas_used),
    )


@cache
def vm_classes(sibyl: bool = True) -> dict[str, type[VirtualMachineAPI]]:
    return {fork: _configure(fork.capitalize(), base, sibyl) for fork, base in FORKS}


def vm_class_at(config: ChainConfig, timestamp: int) -> type[VirtualMachineAPI]:
    """The VM class that executes a block with this timestamp."""
    return vm_classes(config.sibyl)[config.fork_at(timestamp)]


def decode_transaction(vm_class: type[VirtualMachineAPI], raw: bytes) -> Any:
    """Decode a canonical transaction encoding (the form of ``eth_sendRawTransaction``)."""
    return vm_class.get_transaction_builder().decode(raw)
