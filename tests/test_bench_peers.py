"""The peers bench's own parts: its client reads what each node sends, its lines say
what a reader needs. No time is asserted: the bench measures, tests only check it works."""

import asyncio
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

import peers  # noqa: E402
from rpc_client import Connection, RpcFailure  # noqa: E402

CHUNKED = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"10\r\n" + b'{"jsonrpc":"2.0"' + b"\r\n"
    b"1a\r\n" + b',"id":1,"result":"0x4aef"}' + b"\r\n"
    b"0\r\n\r\n"
)
BODY = b'{"jsonrpc":"2.0","id":1,"result":7}'
FRAMED = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(BODY), BODY)


async def answer_with(replies: list[bytes], piece: int) -> list:
    """Serve each request with the next reply, written ``piece`` bytes at a time."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for reply in replies:
            await reader.readuntil(b"\r\n\r\n")
            await reader.read(1)  # the body has at least a byte; the rest can stay
            for start in range(0, len(reply), piece):
                writer.write(reply[start : start + piece])
                await writer.drain()
                await asyncio.sleep(0)
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    connection = await Connection("127.0.0.1", port).open()
    try:
        return [await connection.call("eth_chainId") for _ in replies]
    finally:
        connection.close()
        server.close()


@pytest.mark.parametrize("piece", [1, 7, 4096])
def test_client_reads_chunked_replies_as_hardhat_streams_them(piece):
    assert asyncio.run(answer_with([CHUNKED, FRAMED, CHUNKED], piece)) == ["0x4aef", 7, "0x4aef"]


def test_client_refuses_a_reply_it_cannot_frame():
    unframed = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{}"
    with pytest.raises(RpcFailure, match="without Content-Length"):
        asyncio.run(answer_with([unframed], 4096))


def test_report_gives_ratios_to_each_peer_and_checks_each_target():
    results = peers.Results()
    results.add("sibyl", {"deploy_awaited_transfers_s": 8.0, "mined_tx_per_s": 300.0})
    results.add("sibyl", {"deploy_awaited_transfers_s": 6.0, "mined_tx_per_s": 500.0})
    results.add("sibyl", {"deploy_awaited_transfers_s": 7.0, "mined_tx_per_s": 400.0})
    results.add("anvil", {"deploy_awaited_transfers_s": 3.5, "mined_tx_per_s": 800.0})
    results.add("hardhat", {"deploy_awaited_transfers_s": 7.0, "mined_tx_per_s": 500.0})
    results.add("sibyl", {"startup_sidecars_healthy_s": 25.0})
    lines = {line["figure"]: line for line in peers.report(peers.QUICK, results)}

    awaited = lines["deploy_awaited_transfers_s"]
    assert awaited["sibyl"] == 7.0  # the median of the rounds
    assert (awaited["ratio_to_anvil"], awaited["ratio_to_hardhat"]) == (2.0, 1.0)
    assert (awaited["target"], awaited["meets_target"]) == ("ratio_to_hardhat <= 1.0", True)
    mined = lines["mined_tx_per_s"]
    assert (mined["ratio_to_hardhat"], mined["meets_target"]) == (0.8, False)
    healthy = lines["startup_sidecars_healthy_s"]
    assert (healthy["anvil"], healthy["ratio_to_anvil"]) == (None, None)
    assert (healthy["target"], healthy["meets_target"]) == ("sibyl <= 20.0", False)
    unmeasured = lines["eth_getBalance_req_per_s"]
    assert (unmeasured["sibyl"], unmeasured["meets_target"]) == (None, None)
