"""The ``debug_`` namespace: raw consensus encodings of blocks, headers, receipts and
transactions, which followers use to import blocks from a peer."""

from eth.abc import BlockHeaderAPI

from chain.node import Node
from rpc import params as p
from rpc.encoding import d
from rpc.errors import not_found
from rpc.eth import EthApi
from rpc.params import BlockId, Param, method


class DebugApi:
    def __init__(self, node: Node, eth: EthApi) -> None:
        self.node = node
        self.eth = eth

    def _header(self, block: BlockId) -> BlockHeaderAPI:
        header = self.eth.header(block)
        if header is None:
            raise not_found()
        return header

    @method(Param(p.block_id))
    def debug_getRawHeader(self, block: BlockId) -> str:
        return d(self.node.reader.raw_header(self._header(block).hash) or b"")

    @method(Param(p.block_id))
    def debug_getRawBlock(self, block: BlockId) -> str:
        return d(self.node.reader.raw_block(self._header(block).hash) or b"")

    @method(Param(p.block_id))
    def debug_getRawReceipts(self, block: BlockId) -> list[str]:
        receipts = self.eth.block_data(self._header(block)).receipts
        return [d(receipt.encode()) for receipt in receipts]

    @method(Param(p.hash32))
    def debug_getRawTransaction(self, tx_hash: bytes) -> str:
        found = self.node.reader.transaction(tx_hash)
        if found is not None:
            return d(found[0].encode())
        pooled = self.node.pool.get(tx_hash)
        return d(pooled.raw) if pooled is not None else "0x"
