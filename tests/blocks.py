"""In-process blocks for tests, with no node: the block after a genesis, being built."""

from chain.execution import BlockExecution
from chain.genesis import Genesis, genesis_block
from chain.headers import PayloadAttributes, next_header
from chain.vm import vm_class_at


def next_block(genesis: Genesis) -> tuple[BlockExecution, type]:
    """Block 1 being built on ``genesis`` (12 s after it, zero beacon root and fee
    recipient), and the VM class its transactions are decoded with."""
    block, write = genesis_block(genesis)
    parent = block.header
    attributes = PayloadAttributes(parent.timestamp + 12, b"\x00" * 32, b"\x00" * 20,
                                   parent_beacon_block_root=b"\x00" * 32)  # fmt: skip
    header = next_header(genesis.config, parent, attributes)
    execution = BlockExecution(
        genesis.config, parent, header, write.state.get, {parent.hash: parent}.get
    )
    return execution, vm_class_at(genesis.config, header.timestamp)
