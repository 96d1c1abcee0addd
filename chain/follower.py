"""``sibyl run --follow URL``: import a peer's blocks over JSON-RPC and verify them.

The follower asks the peer for its head, fetches each missing block with
``debug_getRawBlock`` and imports it through the engine exactly as a consensus client's
``newPayload`` would: every transaction is re-executed, every AI result is checked
against its attestations, and nothing needs a sidecar. An invalid block is logged with
its reason and never imported; the follower keeps its head and tries again later, so a
peer that recovers (or reorganises) is followed again.
"""

import asyncio
import logging
import re
from typing import Any

import aiohttp

from chain.execution import InvalidBlock
from chain.limits import load_json
from chain.node import Node
from chain.storage import codec

log = logging.getLogger("sibyl.follower")

POLL_SECONDS = 0.25
BACKOFF_SECONDS = 2.0


class PeerError(Exception):
    """The peer answered with an error or with something that is not a block."""


def _block_number(value: Any) -> int:
    if not isinstance(value, str) or not re.fullmatch(r"0x(0|[1-9a-f][0-9a-f]{0,15})", value):
        raise PeerError(f"eth_blockNumber answered {str(value)[:80]!r}, not a block number")
    return int(value, 16)


class Follower:
    def __init__(self, node: Node, url: str) -> None:
        self.node = node
        self.url = url
        self.rejected: dict[bytes, str] = {}

    async def _call(self, session: aiohttp.ClientSession, method: str, *params: Any) -> Any:
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
        async with session.post(self.url, json=body) as response:
            try:
                reply = await response.json(content_type=None, loads=load_json)
            except ValueError as exc:
                raise PeerError(f"{method}: the reply is not JSON: {exc}") from None
        if not isinstance(reply, dict) or "error" in reply or "result" not in reply:
            raise PeerError(
                f"{method} failed: {reply.get('error') if isinstance(reply, dict) else reply}"
            )
        return reply["result"]

    async def run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                try:
                    await self.sync(session)
                    await asyncio.sleep(POLL_SECONDS)
                except (TimeoutError, aiohttp.ClientError, PeerError) as exc:
                    log.warning("peer unavailable url=%s error=%s", self.url, exc)
                    await asyncio.sleep(BACKOFF_SECONDS)

    async def _block(self, session: aiohttp.ClientSession, number: int) -> Any:
        raw = await self._call(session, "debug_getRawBlock", hex(number))
        try:
            return codec.decode_any_block(self.node.chain_config, bytes.fromhex(raw[2:]))
        except codec.DECODE_ERRORS as exc:
            raise PeerError(f"block {number} from the peer does not decode: {exc}") from None

    async def sync(self, session: aiohttp.ClientSession) -> None:
        """Import every block the peer has beyond our head, in order."""
        peer_head = _block_number(await self._call(session, "eth_blockNumber"))
        number = self.node.reader.head.block_number + 1
        while number <= peer_head:
            block = await self._block(session, number)
            if block.header.parent_hash != self.node.store.canonical_hash(number - 1):
                # the peer's chain left ours below this block: rewind to where they agree
                number = await self._common_ancestor(session, number - 1) + 1
                continue
            if block.header.hash in self.rejected:
                return
            try:
                await self.node.chain_call(self.node.engine.import_block, block)
            except InvalidBlock as exc:
                self.rejected[block.header.hash] = str(exc)
                log.error(
                    "block rejected number=%d hash=0x%s reason=%s",
                    number,
                    block.header.hash.hex(),
                    exc,
                )
                return
            number += 1

    async def _common_ancestor(self, session: aiohttp.ClientSession, number: int) -> int:
        """The highest block number where our canonical chain and the peer's agree."""
        while number > 0:
            ours = self.node.store.canonical_hash(number)
            theirs = await self._call(session, "eth_getBlockByNumber", hex(number), False)
            if isinstance(theirs, dict) and ours and theirs.get("hash") == "0x" + ours.hex():
                return number
            number -= 1
        return 0
