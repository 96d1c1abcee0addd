"""The transaction pool: validation with geth's messages, pending and queued, eviction.

A transaction enters the pool only if it could execute on the head state: right chain,
valid signature, enough gas for its intrinsic cost, a fee cap that covers the next base
fee, a nonce not yet used and a balance that covers ``gas * fee cap + value``. Rejections
carry geth's exact messages, because ethers, viem and hardhat match on them.

Per sender, transactions whose nonces run on without a gap from the account's nonce are
*pending* (the builder may take them); the rest are *queued* until the gap fills. A
transaction with a nonce already in the pool replaces it only with a 10% higher fee cap
and tip. When the pool is full the cheapest transaction makes room, or the newcomer is
refused if it is the cheapest.
"""

import heapq
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from eth.abc import BlockHeaderAPI, SignedTransactionAPI
from eth.constants import SECPK1_N
from eth.rlp.accounts import Account
from eth.vm.forks.cancun.state import get_total_blob_gas
from eth.vm.forks.london.headers import calculate_expected_base_fee_per_gas
from eth_keys.exceptions import BadSignature
from eth_utils import ValidationError, to_checksum_address

from chain.blobs import BLOB_TX_TYPE, BlobError, BlobSidecar, split_network_form, validate_sidecar
from chain.execution import MAX_NONCE
from chain.gas import floor_gas
from chain.limits import check_transaction
from chain.storage.codec import DECODE_ERRORS
from chain.vm import ChainConfig, child_fork, fork_since, vm_classes

MAX_TX_SIZE = 128 * 1024
MAX_BLOB_TX_SIZE = 1024 * 1024  # geth's blob pool: a transaction with its blobs
MAX_INITCODE_SIZE = 49152
REPLACEMENT_BUMP_PERCENT = 10
TYPED_TRANSACTIONS = {1, 2, 3, 4}  # EIP-2930, EIP-1559, EIP-4844, EIP-7702 envelopes
SET_CODE_TX_TYPE = 4
# the fork that brought each type in: geth's pool refuses one its next block's fork lacks
FIRST_FORK = {1: "berlin", 2: "london", 3: "cancun", 4: "prague"}


class TxPoolError(Exception):
    """A transaction the pool refuses; the message is geth's."""


@dataclass(frozen=True)
class PoolConfig:
    max_txs: int = 10_000
    max_queued_per_account: int = 64


@dataclass(eq=False)
class PooledTx:
    tx: SignedTransactionAPI
    raw: bytes
    hash: bytes
    sender: bytes
    nonce: int
    fee_cap: int
    tip_cap: int
    cost: int
    sidecar: BlobSidecar | None = None  # a blob transaction's blobs (chain.blobs)
    arrival: float = field(default_factory=time.monotonic)

    def effective_tip(self, base_fee: int) -> int:
        return min(self.tip_cap, self.fee_cap - base_fee)


def _blob_fee_cap(tx: SignedTransactionAPI) -> int:
    return tx.max_fee_per_blob_gas if tx.type_id == BLOB_TX_TYPE else 0


def _fees(tx: SignedTransactionAPI) -> tuple[int, int]:
    if tx.type_id in (None, 0, 1):
        return tx.gas_price, tx.gas_price
    return tx.max_fee_per_gas, tx.max_priority_fee_per_gas


# geth decodes into fixed-width fields, so a wider number is a decoding error there
_GO_TYPES = {
    None: "LegacyTx",
    0: "LegacyTx",
    1: "AccessListTx",
    2: "DynamicFeeTx",
    3: "BlobTx",
    4: "SetCodeTx",
}
_FIELD_WIDTHS = (
    ("nonce", "Nonce", 64),
    ("gas", "Gas", 64),
    ("chain_id", "ChainID", 256),
    ("gas_price", "GasPrice", 256),
    ("max_fee_per_gas", "GasFeeCap", 256),
    ("max_priority_fee_per_gas", "GasTipCap", 256),
    ("value", "Value", 256),
    ("v", "V", 256),
    ("y_parity", "V", 256),
    ("r", "R", 256),
    ("s", "S", 256),
)


def _check_widths(tx: SignedTransactionAPI) -> None:
    go_type = _GO_TYPES.get(tx.type_id, "Transaction")
    inner = getattr(tx, "_inner", tx)  # a typed transaction's fields live on its payload
    for name, go_name, bits in _FIELD_WIDTHS:
        value = getattr(inner, name, None)
        if isinstance(value, int) and value >> bits:
            raise TxPoolError(
                f"rlp: input string too long for uint{bits}, decoding into "
                f"(types.{go_type}).{go_name}"
            )


class TxPool:
    def __init__(
        self,
        chain_id: int,
        config: PoolConfig,
        head: Callable[[], BlockHeaderAPI],
        account: Callable[[BlockHeaderAPI, bytes], Account],
        chain_config: ChainConfig,
        total_difficulty: Callable[[BlockHeaderAPI], int] | None = None,
    ) -> None:
        self.chain_id = chain_id
        self.config = config
        self._head = head
        self._account = account  # a sender's account at a header (ChainReader.account)
        self._chain_config = chain_config
        # whether the next block is a proof-of-stake one (None: merged at genesis)
        self._total_difficulty = total_difficulty or (lambda header: 0)
        self.by_hash: dict[bytes, PooledTx] = {}
        self.by_sender: dict[bytes, dict[int, PooledTx]] = {}
        self.listeners: list[Callable[[PooledTx], None]] = []

    def _next_fork(self, head: BlockHeaderAPI) -> str:
        """The fork of the block after ``head``, as the importer will run it."""
        return child_fork(
            self._chain_config, head, head.timestamp + 1, self._total_difficulty(head)
        )

    def base_fee_after(self, head: BlockHeaderAPI) -> int:
        """The base fee of the block after ``head``: none before London."""
        if not fork_since(self._next_fork(head), "london"):
            return 0
        return calculate_expected_base_fee_per_gas(head)

    # admission

    def decode(self, raw: bytes) -> tuple[SignedTransactionAPI, BlobSidecar | None]:
        """Decode a raw transaction as the next block will execute it; a blob transaction
        in its network form comes apart into the transaction and its sidecar, whose
        proofs are checked here (the costly step, tenths of a second: it reads no pool or
        state, so a caller may run it off the event loop and :meth:`admit` after)."""
        fork = self._next_fork(self._head())
        vm_class = vm_classes(self._chain_config.sibyl)[fork]
        limit = MAX_BLOB_TX_SIZE if raw[:1] == bytes([BLOB_TX_TYPE]) else MAX_TX_SIZE
        if len(raw) > limit:
            raise TxPoolError(f"oversized data: transaction size {len(raw)}, limit {limit}")
        typed = bool(raw) and raw[0] <= 0x7F
        if len(raw) <= 1 and (typed or not raw):  # geth's decoding steps and words
            raise TxPoolError("typed transaction too short")
        if typed and raw[0] not in TYPED_TRANSACTIONS:
            raise TxPoolError("transaction type not supported")
        first = FIRST_FORK.get(raw[0]) if typed else None
        if first is not None and not fork_since(fork, first):
            raise TxPoolError(
                f"transaction type not supported: type {raw[0]} rejected, pool not yet in "
                f"{first.title()}"
            )
        sidecar = None
        try:
            check_transaction(raw)
            if raw[0] == BLOB_TX_TYPE:
                raw, sidecar = split_network_form(raw)
            tx = vm_class.get_transaction_builder().decode(raw)
        except BlobError as exc:
            raise TxPoolError(str(exc)) from None
        except DECODE_ERRORS as exc:
            raise TxPoolError(f"rlp: {exc}") from None
        if tx.encode() != raw:
            raise TxPoolError("rlp: non-canonical transaction encoding")
        _check_widths(tx)
        if tx.type_id == BLOB_TX_TYPE:
            try:
                validate_sidecar(tx, sidecar)
            except BlobError as exc:
                raise TxPoolError(str(exc)) from None
        return tx, sidecar

    def add(self, raw: bytes) -> bytes:
        """Validate and admit a raw transaction; returns its hash."""
        return self.admit(*self.decode(raw), raw)

    def add_from(self, raw: bytes, sender: bytes) -> bytes:
        """Admit a transaction whose sender the node knows, taking ``sender`` as given
        rather than recovering it from the signature: a dev account's, which the node
        signed itself (``eth_sendTransaction``), or an impersonated account's, whose
        signature is a placeholder (``anvil_impersonateAccount``)."""
        tx, sidecar = self.decode(raw)
        tx._sender = sender  # chain.vm.CachedSender: never recovered from the signature
        return self.admit(tx, sidecar, raw)

    def admit(self, tx: SignedTransactionAPI, sidecar: BlobSidecar | None, raw: bytes) -> bytes:
        """Admit what :meth:`decode` made of ``raw``, checked against the pool and state."""
        entry = self._validate(tx, sidecar, raw)
        existing = self.by_sender.get(entry.sender, {}).get(entry.nonce)
        if existing is not None:
            self._check_replacement(existing, entry)
            self._remove(existing)
        elif len(self.by_hash) >= self.config.max_txs:
            self._make_room(entry)
        self._insert(entry)
        for listener in self.listeners:
            listener(entry)
        return entry.hash

    def _validate(
        self, tx: SignedTransactionAPI, sidecar: BlobSidecar | None, raw: bytes
    ) -> PooledTx:
        tx_hash = tx.hash
        if tx_hash in self.by_hash:
            raise TxPoolError("already known")
        if tx.chain_id is not None and tx.chain_id != self.chain_id:
            raise TxPoolError("invalid chain id for signer")
        if tx.s > SECPK1_N // 2:  # EIP-2: the VM refuses the high-s twin of a signature
            raise TxPoolError("invalid sender")
        try:
            sender = tx.sender  # one recovery, high-s refused (chain.vm.recover_sender)
        except (ValidationError, ValueError, BadSignature):
            raise TxPoolError("invalid sender") from None
        if tx.nonce >= MAX_NONCE:  # EIP-2681
            raise TxPoolError(
                f"nonce has max value: address {to_checksum_address(sender)}, nonce: {tx.nonce}"
            )
        if tx.type_id == SET_CODE_TX_TYPE and not tx.authorization_list:
            raise TxPoolError("set code tx must have at least one authorization tuple")
        head = self._head()
        fork = self._next_fork(head)
        if tx.gas > head.gas_limit:
            raise TxPoolError("exceeds block gas limit")
        fee_cap, tip_cap = _fees(tx)
        if tip_cap > fee_cap:
            raise TxPoolError("max priority fee per gas higher than max fee per gas")
        if fork_since(fork, "shanghai") and tx.to == b"" and len(tx.data) > MAX_INITCODE_SIZE:
            raise TxPoolError(
                f"max initcode size exceeded: code size {len(tx.data)}, limit {MAX_INITCODE_SIZE}"
            )
        intrinsic = tx.intrinsic_gas
        if tx.gas < intrinsic:
            raise TxPoolError(f"intrinsic gas too low: gas {tx.gas}, minimum needed {intrinsic}")
        vm_class = vm_classes(self._chain_config.sibyl)[fork]
        floor = floor_gas(vm_class.get_state_class(), tx.data)
        if tx.gas < floor:
            raise TxPoolError(
                f"insufficient gas for floor data gas cost: gas {tx.gas}, minimum needed {floor}"
            )
        base_fee = self.base_fee_after(head)
        if fee_cap < base_fee:
            raise TxPoolError(
                f"max fee per gas less than block base fee: address "
                f"{to_checksum_address(sender)}, maxFeePerGas: {fee_cap}, baseFee: {base_fee}"
            )
        account = self._account(head, sender)
        state_nonce = account.nonce
        if tx.nonce < state_nonce:
            raise TxPoolError(f"nonce too low: next nonce {state_nonce}, tx nonce {tx.nonce}")
        balance = account.balance
        cost = tx.gas * fee_cap + tx.value + get_total_blob_gas(tx) * _blob_fee_cap(tx)
        if balance < cost:
            raise TxPoolError(
                f"insufficient funds for gas * price + value: balance {balance}, "
                f"tx cost {cost}, overshot {cost - balance}"
            )
        own = self.by_sender.get(sender, {})
        if tx.nonce not in own and tx.nonce > state_nonce + len(own):
            queued = sum(1 for n in own if n > self._contiguous_end(own, state_nonce))
            if queued >= self.config.max_queued_per_account:
                raise TxPoolError("txpool is full")
        return PooledTx(tx, raw, tx_hash, sender, tx.nonce, fee_cap, tip_cap, cost, sidecar)

    @staticmethod
    def _check_replacement(old: PooledTx, new: PooledTx) -> None:
        bump = 100 + REPLACEMENT_BUMP_PERCENT
        if new.fee_cap * 100 < old.fee_cap * bump or new.tip_cap * 100 < old.tip_cap * bump:
            raise TxPoolError("replacement transaction underpriced")

    def _make_room(self, newcomer: PooledTx) -> None:
        base_fee = self.base_fee_after(self._head())
        cheapest = min(self.by_hash.values(), key=lambda e: e.effective_tip(base_fee))
        if cheapest.effective_tip(base_fee) >= newcomer.effective_tip(base_fee):
            raise TxPoolError("txpool is full")
        # The cheapest transaction's successors could never execute without it.
        for nonce, entry in list(self.by_sender[cheapest.sender].items()):
            if nonce >= cheapest.nonce:
                self._remove(entry)

    # bookkeeping

    def _insert(self, entry: PooledTx) -> None:
        self.by_hash[entry.hash] = entry
        self.by_sender.setdefault(entry.sender, {})[entry.nonce] = entry

    def _remove(self, entry: PooledTx) -> None:
        self.by_hash.pop(entry.hash, None)
        own = self.by_sender.get(entry.sender)
        if own is not None:
            own.pop(entry.nonce, None)
            if not own:
                del self.by_sender[entry.sender]

    @staticmethod
    def _contiguous_end(own: dict[int, PooledTx], state_nonce: int) -> int:
        nonce = state_nonce
        while nonce in own:
            nonce += 1
        return nonce

    # views

    def get(self, tx_hash: bytes) -> PooledTx | None:
        return self.by_hash.get(tx_hash)

    def blob(self, versioned_hash: bytes) -> tuple[bytes, bytes] | None:
        """The blob with ``versioned_hash`` and its EIP-4844 proof, if a pooled
        transaction carries it (``engine_getBlobsV1``)."""
        for entry in self.by_hash.values():
            if entry.sidecar is None:
                continue
            for index, known in enumerate(entry.tx.blob_versioned_hashes):
                if known == versioned_hash:
                    return entry.sidecar.blobs[index], entry.sidecar.blob_proofs()[index]
        return None

    def pending_nonce(self, sender: bytes) -> int:
        """The nonce the sender's next transaction should carry (``pending`` tag)."""
        state_nonce = self._account(self._head(), sender).nonce
        return self._contiguous_end(self.by_sender.get(sender, {}), state_nonce)

    def split(self) -> tuple[dict[bytes, list[PooledTx]], dict[bytes, list[PooledTx]]]:
        """Pending and queued transactions per sender, each in nonce order."""
        head = self._head()
        pending: dict[bytes, list[PooledTx]] = {}
        queued: dict[bytes, list[PooledTx]] = {}
        for sender, own in self.by_sender.items():
            end = self._contiguous_end(own, self._account(head, sender).nonce)
            for nonce in sorted(own):
                target = pending if nonce < end else queued
                target.setdefault(sender, []).append(own[nonce])
        return pending, queued

    def __len__(self) -> int:
        return len(self.by_hash)

    def clear(self) -> None:
        """Forget every transaction (a dev chain's revert to a snapshot)."""
        self.by_hash.clear()
        self.by_sender.clear()

    # a new head

    def on_new_head(self, included: Iterable[tuple[bytes, int]] = ()) -> None:
        """Drop what the new head made stale: used nonces and unaffordable transactions.
        ``included``: the (sender, nonce) of the transactions the new blocks hold, whose
        nonces are used whatever the state says; they are dropped first, so a sender left
        with nothing pooled costs no read of the new state (a trie walk and an account
        decode each, on the event loop before any sender is answered)."""
        for sender, nonce in included:
            entry = self.by_sender.get(sender, {}).get(nonce)
            if entry is not None:
                self._remove(entry)
        head = self._head()
        for sender, own in list(self.by_sender.items()):
            account = self._account(head, sender)
            nonce, balance = account.nonce, account.balance
            for entry in list(own.values()):
                if entry.nonce < nonce or entry.cost > balance:
                    self._remove(entry)


class PriceNonceQueue:
    """Pending transactions, best tip first, each sender's in nonce order (geth's
    ``TransactionsByPriceAndNonce``): ``peek`` the best, then ``shift`` to take it and
    expose the sender's next one, or ``pop`` to drop the sender when its transaction
    could not be included (its later nonces cannot be either)."""

    def __init__(self, pending: dict[bytes, list[PooledTx]], base_fee: int) -> None:
        self.base_fee = base_fee
        self.queues = {sender: list(reversed(txs)) for sender, txs in pending.items()}
        self.heap: list[tuple[int, float, bytes]] = []
        for sender in self.queues:
            self._push(sender)

    def _push(self, sender: bytes) -> None:
        queue = self.queues[sender]
        if queue:
            head = queue[-1]
            tip = head.effective_tip(self.base_fee)
            if tip >= 0:
                heapq.heappush(self.heap, (-tip, head.arrival, sender))

    def peek(self) -> PooledTx | None:
        return self.queues[self.heap[0][2]][-1] if self.heap else None

    def shift(self) -> None:
        sender = heapq.heappop(self.heap)[2]
        self.queues[sender].pop()
        self._push(sender)

    def pop(self) -> None:
        heapq.heappop(self.heap)
