"""What a sound data dir holds, checked: at every open (the head) and by ``sibyl db check``
(everything the node needs to serve its head).

A data dir damaged outside the node (a disk error, a partial copy, a file deleted by
hand) must be refused, never repaired by starting a new chain over it and never read
into a crash. Opening checks what every later read relies on and costs nothing at any
chain length: the head pointer names a header that decodes, is canonical at its number,
and whose state root is stored. ``sibyl db check`` then walks it all: every canonical
block back to genesis with its body and receipts, each linked to its parent, and the
head's state trie with every storage trie and contract code it references.
"""

from collections.abc import Iterator
from dataclasses import dataclass

import rlp
from eth.constants import BLANK_ROOT_HASH, EMPTY_SHA3

from chain.storage import codec
from chain.storage.store import Store, damaged, number_key

MAX_PROBLEMS = 20  # reported by a check before it stops looking


def check_head(store: Store) -> None:
    """Raise :class:`~chain.storage.DamagedDataDir` unless the head is usable."""
    problem = _head_problem(store)
    if problem is not None:
        raise damaged(store.path, problem)


def _head_problem(store: Store) -> str | None:
    head = store.head_hash()
    if head is None:
        return "it holds a genesis but no head pointer"
    raw = store.get("headers", head)
    if raw is None:
        return f"the head pointer names block 0x{head.hex()}, whose header is missing"
    try:
        header = codec.decode_header(raw)
    except codec.DECODE_ERRORS:
        return f"the head header 0x{head.hex()} does not decode"
    if store.canonical_hash(header.block_number) != head:
        return f"the head block {header.block_number} is not in the canonical index"
    if header.state_root != BLANK_ROOT_HASH and store.state_get(header.state_root) is None:
        return f"the state of the head block {header.block_number} is missing"
    return None


@dataclass
class Report:
    head: int | None = None
    blocks: int = 0
    state_nodes: int = 0
    problems: list[str] | None = None


def check_all(store: Store) -> Report:
    """Every problem (up to :data:`MAX_PROBLEMS`) of the canonical chain and head state."""
    report = Report(problems=[])
    problems = report.problems
    assert problems is not None
    head_problem = _head_problem(store)
    if store.get("meta", b"genesis") is None:
        head_problem = "it holds no genesis (not initialised, or its meta table is damaged)"
    if head_problem is not None:
        problems.append(head_problem)
        return report
    header = codec.decode_header(store.get("headers", store.head_hash()))
    report.head = header.block_number
    for problem in _chain_problems(store, header.block_number):
        problems.append(problem)
        if len(problems) >= MAX_PROBLEMS:
            return report
    report.blocks = header.block_number + 1
    for problem in _state_problems(store, header.state_root, report):
        problems.append(problem)
        if len(problems) >= MAX_PROBLEMS:
            break
    return report


def _chain_problems(store: Store, head: int) -> Iterator[str]:
    parent = None
    with store.env.begin(buffers=False) as txn:
        tables = store.tables
        for number in range(head + 1):
            block_hash = txn.get(number_key(number), db=tables["canonical"])
            if block_hash is None:
                yield f"canonical block {number} is missing from the index"
                parent = None
                continue
            raw = txn.get(block_hash, db=tables["headers"])
            try:
                header = None if raw is None else codec.decode_header(raw)
            except codec.DECODE_ERRORS:
                header = None
            if header is None:
                yield f"the header of block {number} (0x{block_hash.hex()}) is missing or broken"
            elif header.block_number != number or header.hash != block_hash:
                yield f"the canonical index at {number} names block {header.block_number}"
            elif parent is not None and header.parent_hash != parent:
                yield f"block {number} does not extend block {number - 1}"
            if txn.get(block_hash, db=tables["blocks"]) is None:
                yield f"the body of block {number} is missing"
            if number and txn.get(block_hash, db=tables["receipts"]) is None:
                yield f"the receipts of block {number} are missing"
            parent = block_hash


def _state_problems(store: Store, root: bytes, report: Report) -> Iterator[str]:
    """Walk the account trie from ``root``, and each account's storage trie and code."""
    seen: set[bytes] = set()
    work: list[tuple[bytes, bool]] = [(root, True)]  # (node hash, is the account trie)
    while work:
        node_hash, accounts = work.pop()
        if node_hash in seen or node_hash == BLANK_ROOT_HASH:
            continue
        seen.add(node_hash)
        raw = store.state_get(node_hash)
        if raw is None:
            yield f"state trie node 0x{node_hash.hex()} is missing"
            continue
        report.state_nodes += 1
        try:
            for leaf in _walk(rlp.decode(raw), work, accounts):
                nonce, balance, storage_root, code_hash = rlp.decode(leaf)
                work.append((bytes(storage_root), False))
                if code_hash != EMPTY_SHA3 and store.state_get(code_hash) is None:
                    yield f"contract code 0x{code_hash.hex()} is missing"
        except (*codec.DECODE_ERRORS, KeyError):
            yield f"state trie node 0x{node_hash.hex()} does not decode"


def _walk(node: list, work: list[tuple[bytes, bool]], accounts: bool) -> Iterator[bytes]:
    """The leaf values of ``node`` and the nodes it embeds; referenced nodes go to ``work``."""
    stack = [node]
    while stack:
        item = stack.pop()
        if len(item) == 17:
            children = item[:16]
        elif len(item) == 2:
            is_leaf = item[0][0] >> 4 >= 2
            if is_leaf:
                if accounts:
                    yield item[1]
                continue
            children = [item[1]]
        else:
            raise KeyError("not a trie node")
        for child in children:
            if isinstance(child, list):
                stack.append(child)
            elif len(child) == 32:
                work.append((bytes(child), accounts))
            elif child:
                raise KeyError("bad child reference")
