"""Sibyl's VM: py-evm's forks, configured (never patched) with Sibyl's parts.

py-evm extends by configuration: a VM names its block class, the block class its
transaction builder, the state its computation, the computation its precompiles. This
module is the one place where Sibyl's transaction handling and precompiles are wired into
each fork, so the rest of the node asks for ``vm_class_of(config, header)`` (or, for the
next block of a merged chain, ``vm_class_at(config, timestamp)``) and never names a
py-evm fork.

A Sibyl chain runs the post-merge forks (Shanghai, Cancun, Prague) from genesis. A plain
Ethereum chain runs every fork from Frontier, as geth reads its genesis: forks before
the merge by block number, the merge when the total difficulty reaches
``terminalTotalDifficulty`` (a header with difficulty 0 is a proof-of-stake one), and
the later forks by timestamp.
"""

from dataclasses import dataclass
from functools import cache, cached_property, lru_cache
from typing import Any

import rlp
from eth.abc import VirtualMachineAPI
from eth.precompiles.modexp import _compute_modexp_gas_fee_eip_198 as modexp_gas_eip_198
from eth.rlp.receipts import Receipt
from eth.vm.forks import (
    ArrowGlacierVM,
    BerlinVM,
    ByzantiumVM,
    CancunVM,
    ConstantinopleVM,
    FrontierVM,
    GrayGlacierVM,
    HomesteadVM,
    IstanbulVM,
    LondonVM,
    MuirGlacierVM,
    ParisVM,
    PetersburgVM,
    PragueVM,
    ShanghaiVM,
    SpuriousDragonVM,
    TangerineWhistleVM,
)
from eth.vm.forks.cancun.constants import BLOB_TX_TYPE
from eth.vm.forks.prague.constants import SET_CODE_TRANSACTION_TYPE
from eth.vm.forks.shanghai.constants import MAX_INITCODE_SIZE
from eth_utils import ValidationError, get_extended_debug_logger, keccak
from rlp.codec import encode_raw
from rlp.sedes import CountableList

from chain.ai.attested import ATTESTED_TX_TYPE, AttestedTransaction
from chain.ai.delivery import DELIVERY_TX_TYPE, DeliveryTransaction, JobCallback
from chain.evm_timeout import DEADLINE
from chain.gas import floor_gas
from chain.interpreter import interpreted
from chain.precompiles.mapping import PRECOMPILES
from chain.precompiles.modexp import MODEXP, modexp
from chain.state_db import SibylAccountDB
from scheduler.transactions import SCHEDULED_TX_TYPE, ScheduledTransaction
from sidecars.attestation import InvalidAttestation, recover_signer

# Every fork, oldest first; the ones before Paris are proof-of-work forks.
FORKS: tuple[tuple[str, type[VirtualMachineAPI]], ...] = (
    ("frontier", FrontierVM),
    ("homestead", HomesteadVM),
    ("tangerine_whistle", TangerineWhistleVM),
    ("spurious_dragon", SpuriousDragonVM),
    ("byzantium", ByzantiumVM),
    ("constantinople", ConstantinopleVM),
    ("petersburg", PetersburgVM),
    ("istanbul", IstanbulVM),
    ("muir_glacier", MuirGlacierVM),
    ("berlin", BerlinVM),
    ("london", LondonVM),
    ("arrow_glacier", ArrowGlacierVM),
    ("gray_glacier", GrayGlacierVM),
    ("paris", ParisVM),
    ("shanghai", ShanghaiVM),
    ("cancun", CancunVM),
    ("prague", PragueVM),
)
FORK_ORDER = tuple(name for name, _ in FORKS)
MERGED_FORKS = FORK_ORDER[FORK_ORDER.index("paris") :]


def fork_since(fork: str, first: str) -> bool:
    """Whether ``fork`` is ``first`` or a later one (``fork_since(f, "cancun")``: blobs)."""
    return FORK_ORDER.index(fork) >= FORK_ORDER.index(first)


@dataclass(frozen=True)
class ChainConfig:
    """The fork schedule of a chain, from the ``config`` section of its genesis file."""

    chain_id: int
    shanghai_time: int | None = None
    cancun_time: int | None = None
    prague_time: int | None = None
    sibyl: bool = True  # False: a plain Ethereum chain (no Sibyl precompiles or tx types)
    deposit_contract: bytes | None = None  # EIP-6110: whose logs are deposit requests
    # None: a proof-of-work chain that never merges; 0: merged at genesis
    terminal_total_difficulty: int | None = 0
    # the proof-of-work forks after Frontier, (fork, first block), in fork order
    block_forks: tuple[tuple[str, int], ...] = ()
    dao_fork_block: int | None = None  # the DAO's funds move to its refund contract here
    ethash: bool = False  # proof-of-work seals are checked (geth's ``config.ethash``)

    def fork_at(self, timestamp: int) -> str:
        """The fork of a proof-of-stake block with this timestamp."""
        if self.prague_time is not None and timestamp >= self.prague_time:
            return "prague"
        if self.cancun_time is not None and timestamp >= self.cancun_time:
            return "cancun"
        if self.shanghai_time is not None and timestamp >= self.shanghai_time:
            return "shanghai"
        return "paris"

    def pow_fork_at(self, number: int) -> str:
        """The fork of a proof-of-work block with this number."""
        fork = "frontier"
        for name, block in self.block_forks:
            if number >= block:
                fork = name
        return fork

    def fork_of(self, number: int, timestamp: int, difficulty: int) -> str:
        """The fork of a header, by geth's rules: on a chain that merges, a header with
        difficulty 0 is a proof-of-stake one (whether it may be is the importer's check),
        and block 0 is when its own difficulty reaches the terminal one."""
        terminal = self.terminal_total_difficulty
        if terminal is not None and (difficulty == 0 if number else terminal <= difficulty):
            return self.fork_at(timestamp)
        return self.pow_fork_at(number)


def signing_message(tx: Any) -> bytes:
    """What the sender of ``tx`` signed. A typed transaction's (EIP-2718) is its type byte
    and its fields without the last three (the signature), cut from its own encoding:
    py-evm's ``get_message_for_signing`` builds an unsigned transaction object and encodes
    it through its sedes, about 50 µs of each transaction's admission."""
    if tx.type_id is None:  # legacy: EIP-155's chain id stands in for the signature
        return tx.get_message_for_signing()
    encoded = tx.encode()
    fields, _ = rlp.codec.decode_raw(encoded[1:], True, False)  # the decoder installed
    return encoded[:1] + encode_raw(fields[:-3])


def recover_sender(tx: Any) -> bytes:
    """The sender of a signed transaction: one libsecp256k1 recovery, refusing the
    malleable high-s form (EIP-2). Raises ``ValidationError`` for a bad signature."""
    y_parity = tx.y_parity
    if y_parity not in (0, 1):
        raise ValidationError(f"invalid signature y parity {y_parity}")
    signature = tx.r.to_bytes(32, "big") + tx.s.to_bytes(32, "big") + bytes([y_parity])
    try:
        return recover_signer(keccak(signing_message(tx)), signature)
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
            self._sender = self._recovered_sender()
            return self._sender

    def _recovered_sender(self) -> bytes:
        return recover_sender(self)


class CachedTypedSender(CachedSender):
    """A typed transaction's sender cache, and its type byte made directly: py-evm's
    goes through eth_utils' ``to_bytes`` (about 10 µs), for its first encoding."""

    @cached_property
    def _type_byte(self) -> bytes:
        return bytes((self.type_id,))  # type: ignore[attr-defined]


class CachedFrontierSender(CachedSender):
    """Frontier's sender, cached: py-evm's own recovery, which accepts the high-s
    signatures that EIP-2 refused from Homestead on."""

    def _recovered_sender(self) -> bytes:
        return super(CachedSender, self).get_sender()  # type: ignore[misc]

    @property
    def hash(self) -> bytes:
        try:
            return self._hash  # type: ignore[has-type]
        except AttributeError:
            self._hash = super().hash  # type: ignore[misc]
            return self._hash


class SibylState:
    """Mixed into each fork's state class.

    ``oracle`` is where the AI precompiles get their outputs (chain.ai.results); each
    execution sets its own, and a state without one refuses AI calls. Scheduled
    transactions skip the checks of signed ones (signature, nonce, balance): every field
    of theirs follows from the scheduler's state, whose deposits pay their gas.
    ``registry_records`` holds the registry records read so far (chain.ai.registry).
    """

    oracle: Any = None
    calls_from_contracts = False  # True for calls and simulations: any account may send
    limits_initcode = True  # EIP-3860, from Shanghai on

    def has_code_or_nonce(self, address: bytes) -> bool:
        """py-evm's creation-collision test, with EIP-7610's third case: an address
        with storage (which only genesis allocations give an account without code or
        nonce) cannot be created into either."""
        return super().has_code_or_nonce(address) or self._account_db.has_storage(address)  # type: ignore[misc, attr-defined]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.registry_records: dict[bytes, Any] | None = {}

    def set_system_contracts(self) -> None:
        """Nothing, which is what py-evm's does to the state. Its Cancun and Prague
        states set the beacon-roots and history contracts' code only where the account
        already holds that very code (``if not code != CODE``), so the state never
        changes; but each state made (every block, every ``eth_call``) hashed the code
        and rewrote both accounts, which the state root then re-hashed."""

    def get_tip(self, transaction: Any) -> int:
        """A job's callback buys no gas and tips nobody: its price is zero, and JOBS pays
        the block's fee recipient from the job's reservation (chain.ai.jobs.pay).
        py-evm's tip, ``min(maxFee - baseFee, priorityFee)``, would be negative for it."""
        if isinstance(transaction, JobCallback):
            return 0
        return super().get_tip(transaction)  # type: ignore[misc]

    def validate_transaction(self, transaction: Any) -> None:
        if isinstance(transaction, ScheduledTransaction | JobCallback):
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
    delegated = len(code) == 23 and code.startswith(DELEGATION_PREFIX)
    if code and not delegated and not state.calls_from_contracts:
        raise ValidationError("sender not an eoa")  # EIP-3607
    max_fee = getattr(transaction, "max_fee_per_gas", None)
    if max_fee is not None and transaction.max_priority_fee_per_gas > max_fee:
        raise ValidationError("max priority fee per gas higher than max fee per gas")
    if transaction.to == b"":
        if state.limits_initcode and len(transaction.data) > MAX_INITCODE_SIZE:
            # EIP-3860: py-evm only fails the call
            raise ValidationError(
                f"max initcode size exceeded: code size {len(transaction.data)} "
                f"limit {MAX_INITCODE_SIZE}"
            )
        if getattr(transaction, "type_id", None) == BLOB_TX_TYPE:
            raise ValidationError("blob transaction of type create")
        if getattr(transaction, "type_id", None) == SET_CODE_TRANSACTION_TYPE:
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
    """Decodes Sibyl's own envelopes (attested 0x13, scheduled 0x10, delivery 0x12) before
    py-evm's standard types."""

    envelopes: dict[int, Any] = {
        ATTESTED_TX_TYPE: AttestedTransaction.decode,
        SCHEDULED_TX_TYPE: ScheduledTransaction.decode,
        DELIVERY_TX_TYPE: DeliveryTransaction.decode,
    }
    envelope_classes: tuple[type, ...] = (
        AttestedTransaction,
        ScheduledTransaction,
        DeliveryTransaction,
    )

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


def _transaction_builder(name: str, base: type[VirtualMachineAPI], sibyl: bool) -> Any:
    """The fork's transaction builder with the node's sender cache and, on a Sibyl chain,
    Sibyl's envelopes. Before Berlin a fork has one transaction class and no typed
    transactions; Frontier keeps py-evm's own sender recovery (:class:`CachedFrontierSender`)."""
    builder = base.get_transaction_builder()
    if not hasattr(builder, "typed_transaction"):
        cached = CachedFrontierSender if base is FrontierVM else CachedSender
        return type(f"Sibyl{name}Transaction", (cached, builder), {"__module__": __name__})
    legacy = type(
        f"Sibyl{name}LegacyTransaction",
        (CachedSender, builder.legacy_signed),
        {"__module__": __name__},
    )
    typed = type(
        f"Sibyl{name}TypedTransaction",
        (CachedTypedSender, builder.typed_transaction),
        {"decoders": dict(builder.typed_transaction.decoders), "__module__": __name__},
    )
    return type(
        f"Sibyl{name}TransactionBuilder",
        (SibylTransactionBuilder if sibyl else PlainTransactionBuilder, builder),
        {"legacy_signed": legacy, "typed_transaction": typed, "__module__": __name__},
    )


def _receipt_builder(name: str, base: type[VirtualMachineAPI], sibyl: bool) -> Any:
    """The fork's receipts; on a Sibyl chain also those of scheduled and delivery
    transactions. Before Berlin receipts have no type."""
    receipts = base.block_class.receipt_builder
    if not hasattr(receipts, "typed_receipt_class"):
        return receipts
    typed_receipt = type(
        f"Sibyl{name}TypedReceipt",
        (receipts.typed_receipt_class,),
        {
            "codecs": {
                **receipts.typed_receipt_class.codecs,
                **({SCHEDULED_TX_TYPE: Receipt, DELIVERY_TX_TYPE: Receipt} if sibyl else {}),
            }
        },
    )
    return type(f"Sibyl{name}ReceiptBuilder", (receipts,), {"typed_receipt_class": typed_receipt})


def _configure(fork: str, base: type[VirtualMachineAPI], sibyl: bool) -> type[VirtualMachineAPI]:
    """py-evm's fork ``base`` configured for a Sibyl chain or, when ``sibyl`` is False, for a
    plain Ethereum chain: py-evm's own precompiles and transaction types, with the node's
    caches (sender recovery, accounts, code, jump destinations) and EIP-7623 fixes."""
    name = ("" if sibyl else "Plain") + fork.title().replace("_", "")
    tx_builder = _transaction_builder(name, base, sibyl)
    # A block's RLP sedes names its transaction builder when the class is made, so the
    # configured block class restates its fields with Sibyl's builder.
    fields = [
        (field, CountableList(tx_builder) if field == "transactions" else sedes)
        for field, sedes in base.block_class._meta.fields
    ]
    receipt_builder = _receipt_builder(name, base, sibyl)
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
    precompiles = dict(state.computation_class.get_precompiles())
    if MODEXP in precompiles:  # Byzantium on; the fork's gas formula, geth's result
        gas = precompiles[MODEXP].keywords.get("gas_calculator", modexp_gas_eip_198)
        precompiles[MODEXP] = modexp(gas)
    computation = type(
        f"Sibyl{name}Computation",
        (SharedJumpdests, state.computation_class),
        {
            "_precompiles": {**precompiles, **(PRECOMPILES if sibyl else {})},
            "__module__": __name__,
        },
    )
    # blocks, calls and simulations all run the interpreter's loop, so what a call
    # reports is what the block it is included in does (the chain thread sets no deadline)
    computation = interpreted(computation, DEADLINE)
    state_class = type(
        f"Sibyl{name}State",
        (SibylState, state),
        {
            "computation_class": computation,
            "account_db_class": SibylAccountDB,
            "limits_initcode": fork_since(fork, "shanghai"),
            # py-evm's logger of the state, got once: its property asks logging for it
            # by name on every use, five times in a transaction
            "logger": get_extended_debug_logger(f"eth.vm.state.Sibyl{name}State"),
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
def vm_classes(sibyl: bool = True) -> dict[str, Any]:
    forks = FORKS if not sibyl else [(f, base) for f, base in FORKS if f in MERGED_FORKS]
    classes = {fork: _configure(fork, base, sibyl) for fork, base in forks}
    for fork in FORK_ORDER[1 : FORK_ORDER.index("paris")] if not sibyl else ():
        # py-evm's DAO switch (a Homestead-era header hook the node does not use) is
        # off: chain.pow moves the DAO's funds at the configured block, as geth does
        classes[fork] = classes[fork].configure(support_dao_fork=False)
    return classes


def vm_class_at(config: ChainConfig, timestamp: int) -> type[VirtualMachineAPI]:
    """The VM class of a proof-of-stake block with this timestamp (the next block of a
    merged chain)."""
    return vm_classes(config.sibyl)[config.fork_at(timestamp)]


def merge_reached(config: ChainConfig, parent_total_difficulty: int) -> bool:
    """Whether a block on a parent with this total difficulty comes after the merge."""
    terminal = config.terminal_total_difficulty
    return terminal is not None and parent_total_difficulty >= terminal


def child_fork(
    config: ChainConfig, parent: Any, timestamp: int, parent_total_difficulty: int
) -> str:
    """The fork of a block on ``parent`` with this timestamp, as the importer decides it
    (``check_merge``, then :meth:`ChainConfig.fork_of` of the block's header): a
    proof-of-stake block once the parent's total difficulty reached the terminal one,
    a proof-of-work block (difficulty above 0) by its number before. What calls,
    traces, simulations and the pool run a block "after ``parent``" with."""
    difficulty = 0 if merge_reached(config, parent_total_difficulty) else 1
    return config.fork_of(parent.block_number + 1, timestamp, difficulty)


def vm_class_of(config: ChainConfig, header: Any) -> type[VirtualMachineAPI]:
    """The VM class that executes the block of ``header``, of any era. A Sibyl chain
    starts merged and has no proof-of-work forks: a header that claims one is refused
    (``ValidationError``, a decoding error) rather than looked up."""
    fork = config.fork_of(header.block_number, header.timestamp, header.difficulty)
    classes = vm_classes(config.sibyl)
    if fork not in classes:
        raise ValidationError(
            f"block {header.block_number}: difficulty {header.difficulty} makes it a "
            f"{fork} block, and this chain starts at the merge"
        )
    return classes[fork]


def decode_transaction(vm_class: type[VirtualMachineAPI], raw: bytes) -> Any:
    """Decode a canonical transaction encoding (the form of ``eth_sendRawTransaction``)."""
    return vm_class.get_transaction_builder().decode(raw)


def make_block(
    block_class: Any, header: Any, transactions: Any = (), uncles: Any = (), withdrawals: Any = ()
) -> Any:
    """A block of ``block_class``; a fork before Shanghai has no withdrawals field."""
    if "withdrawals" in dict(block_class._meta.fields):
        return block_class(header, list(transactions), list(uncles), list(withdrawals))
    return block_class(header, list(transactions), list(uncles))


def block_withdrawals(block: Any) -> list[Any]:
    """A block's withdrawals: none before Shanghai."""
    return list(getattr(block, "withdrawals", ()) or ())
