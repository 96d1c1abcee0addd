"""A dApp developer's session with web3.py against a real dev node: deploy an ERC-20,
transfer, read receipts, logs, filters and subscriptions, revert reasons, every
transaction type (legacy, EIP-2930, EIP-1559, EIP-7702), the block and fee queries,
the pool, the raw consensus encodings, and the node-held dev accounts."""

import asyncio
import json
from pathlib import Path

import pytest
import rlp
from eth_abi import encode as abi_encode
from eth_account import Account
from eth_account.messages import encode_defunct, encode_typed_data
from eth_utils import keccak, to_checksum_address
from hexbytes import HexBytes
from nodes import CHAIN_ID, NodeProcess, rpc
from trie import HexaryTrie
from web3 import AsyncWeb3, Web3, WebSocketProvider
from web3.exceptions import ContractCustomError, ContractLogicError, ContractPanicError

FIXTURES = Path(__file__).resolve().parent / "fixtures"
GWEI = 10**9
SUPPLY = 10**24
RECEIPT_TIMEOUT = 30
MESSAGE_TIMEOUT = 30  # only bounds a hang; nothing is asserted about time
TRANSFER_TOPIC = keccak(text="Transfer(address,address,uint256)")
APPROVAL_TOPIC = keccak(text="Approval(address,address,uint256)")
BALANCE_SLOT = 3  # Token.sol: name 0, symbol 1, totalSupply 2, balanceOf 3, allowance 4
SUPPLY_SLOT = 2


# helpers


def topic_of(address: str) -> HexBytes:
    return HexBytes(bytes(12) + bytes.fromhex(address[2:]))


def balance_slot(holder: str) -> int:
    return int.from_bytes(keccak(bytes(topic_of(holder)) + BALANCE_SLOT.to_bytes(32, "big")))


def sign(w3: Web3, account, tx: dict) -> bytes:
    """Fill what a wallet fills (chain id, pending nonce, EIP-1559 fees, gas) and sign."""
    tx = {"chainId": CHAIN_ID, "value": 0, **tx}
    tx.pop("from", None)
    if "nonce" not in tx:
        tx["nonce"] = w3.eth.get_transaction_count(account.address, "pending")
    if "gasPrice" not in tx:
        base = w3.eth.get_block("latest")["baseFeePerGas"]
        tx.setdefault("maxPriorityFeePerGas", GWEI)
        tx.setdefault("maxFeePerGas", 2 * base + tx["maxPriorityFeePerGas"])
    if "gas" not in tx:
        tx["gas"] = w3.eth.estimate_gas({**tx, "from": account.address})
    return bytes(account.sign_transaction(tx).raw_transaction)


def send(w3: Web3, account, tx: dict) -> HexBytes:
    return w3.eth.send_raw_transaction(sign(w3, account, tx))


def transact(w3: Web3, account, tx: dict):
    return w3.eth.wait_for_transaction_receipt(send(w3, account, tx), timeout=RECEIPT_TIMEOUT)


def call_tx(fn, account) -> dict:
    """A contract call as a transaction request (to, data), without web3's defaults."""
    return {"to": fn.address, "data": fn._encode_transaction_data(), "from": account.address}


def raw(w3: Web3, method: str, params: list) -> dict:
    """A raw JSON-RPC exchange, so the exact error object can be checked."""
    return rpc(w3.provider.endpoint_uri, method, params)


# fixtures


@pytest.fixture(scope="module")
def delegate_artifact() -> dict:
    return json.loads((FIXTURES / "Delegate.json").read_text())


def deploy_token(w3: Web3, account, artifact: dict):
    """The ERC-20 of ``artifact`` deployed by ``account``, holding the whole supply;
    (contract, receipt)."""
    factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    constructor = factory.constructor("Sibyl Test Token", "STT", SUPPLY)
    receipt = transact(w3, account, {"data": constructor.data_in_transaction})
    return w3.eth.contract(address=receipt.contractAddress, abi=artifact["abi"]), receipt


@pytest.fixture(scope="module")
def deployment(w3, accounts, token_artifact):
    """The ERC-20 deployed by account 0 holding the whole supply; (contract, receipt)."""
    return deploy_token(w3, accounts[0], token_artifact)


@pytest.fixture(scope="module")
def token(deployment):
    return deployment[0]


@pytest.fixture(scope="module")
def busy_block(w3, accounts, token):
    """One block holding four transactions of three types from three senders, sent in one
    JSON-RPC batch: two token transfers, an approval (EIP-2930) and a legacy transfer."""
    owner, spender, payer = accounts[0], accounts[1], accounts[2]
    nonce = w3.eth.get_transaction_count(owner.address, "pending")
    gas_price = 3 * w3.eth.get_block("latest")["baseFeePerGas"] + GWEI
    signed = [
        sign(
            w3,
            owner,
            {**call_tx(token.functions.transfer(spender.address, 11), owner), "nonce": nonce},
        ),
        sign(
            w3,
            owner,
            {**call_tx(token.functions.transfer(payer.address, 22), owner), "nonce": nonce + 1},
        ),
        sign(
            w3,
            spender,
            {
                **call_tx(token.functions.approve(owner.address, 33), spender),
                "type": 1,
                "gasPrice": gas_price,
                "accessList": [],
            },
        ),
        sign(
            w3, payer, {"to": accounts[3].address, "value": 44, "gas": 21000, "gasPrice": gas_price}
        ),
    ]
    body = [
        {"jsonrpc": "2.0", "id": i, "method": "eth_sendRawTransaction", "params": ["0x" + t.hex()]}
        for i, t in enumerate(signed)
    ]
    hashes = [HexBytes(answer["result"]) for answer in batch_post(w3.provider.endpoint_uri, body)]
    receipts = [w3.eth.wait_for_transaction_receipt(h, timeout=RECEIPT_TIMEOUT) for h in hashes]
    return {"hashes": hashes, "raw": signed, "receipts": receipts}


@pytest.fixture(scope="module")
def idle_node(tmp_path_factory):
    """A dev node whose producer never gets to make a block during the test, so
    transactions stay pending in its pool."""
    process = NodeProcess(
        tmp_path_factory.mktemp("idle") / "data",
        ["--dev", "--block-time", "3600", "--sidecars", "none"],
    ).start()
    yield process
    process.kill()


# chain identity


def test_node_identifies_the_dev_chain(w3):
    assert w3.eth.chain_id == CHAIN_ID
    assert w3.net.version == str(CHAIN_ID)
    # a dev chain says first that it answers anvil's test methods (README)
    assert w3.client_version.startswith("anvil-compatible/sibyl/v")
    assert w3.eth.syncing is False
    genesis = w3.eth.get_block(0)
    assert genesis["number"] == 0 and genesis["transactions"] == []


# ERC-20 deploy, transfer, revert


def test_deploy_receipt_carries_every_field_clients_read(w3, accounts, deployment):
    token, receipt = deployment
    owner = accounts[0].address
    tx = w3.eth.get_transaction(receipt.transactionHash)
    block = w3.eth.get_block(receipt.blockNumber)

    assert receipt.status == 1
    assert receipt.type == 2
    assert receipt["from"] == owner and receipt.to is None
    expected_address = to_checksum_address(keccak(rlp.encode([HexBytes(owner), tx.nonce]))[12:])
    assert receipt.contractAddress == expected_address
    assert receipt.blockHash == block.hash and receipt.transactionHash in block.transactions
    assert receipt.transactionIndex == block.transactions.index(receipt.transactionHash)
    assert 21000 < receipt.gasUsed <= tx.gas
    assert receipt.cumulativeGasUsed == block.gasUsed  # the only transaction of its block
    assert receipt.effectiveGasPrice == min(
        tx.maxFeePerGas, block.baseFeePerGas + tx.maxPriorityFeePerGas
    )
    assert tx.gasPrice == receipt.effectiveGasPrice
    (mint,) = receipt.logs
    assert mint.address == token.address
    assert mint.topics == [TRANSFER_TOPIC, topic_of("0x" + "00" * 20), topic_of(owner)]
    assert int.from_bytes(mint.data) == SUPPLY
    assert (mint.logIndex, mint.transactionIndex) == (0, receipt.transactionIndex)
    assert (mint.blockHash, mint.blockNumber) == (receipt.blockHash, receipt.blockNumber)
    assert mint.transactionHash == receipt.transactionHash and mint.removed is False

    assert len(w3.eth.get_code(token.address)) > 0
    assert token.functions.name().call() == "Sibyl Test Token"
    assert token.functions.symbol().call() == "STT"
    assert token.functions.decimals().call() == 18
    assert token.functions.totalSupply().call() == SUPPLY
    assert token.functions.balanceOf(owner).call() == SUPPLY


def test_erc20_transfer_moves_balances_and_charges_exact_fee(w3, accounts, token):
    sender, recipient = accounts[0], accounts[4]
    tokens_before = token.functions.balanceOf(sender.address).call()
    receipt = transact(
        w3, sender, call_tx(token.functions.transfer(recipient.address, 1000), sender)
    )

    assert receipt.status == 1
    assert token.functions.balanceOf(sender.address).call() == tokens_before - 1000
    assert token.functions.balanceOf(recipient.address).call() == 1000
    (event,) = token.events.Transfer().process_receipt(receipt)
    assert event.args == {"from": sender.address, "to": recipient.address, "value": 1000}
    paid = w3.eth.get_balance(sender.address, receipt.blockNumber - 1) - w3.eth.get_balance(
        sender.address, receipt.blockNumber
    )
    assert paid == receipt.gasUsed * receipt.effectiveGasPrice


def test_reverted_transaction_is_mined_with_failed_status(w3, accounts, token):
    sender = accounts[4]  # holds 1000 tokens at most
    transfer = token.functions.transfer(accounts[0].address, 10**30)
    receipt = transact(w3, sender, {**call_tx(transfer, sender), "gas": 100_000})

    assert receipt.status == 0
    assert receipt.logs == []
    assert 21000 < receipt.gasUsed < 100_000
    assert (
        w3.eth.get_transaction_count(sender.address)
        == w3.eth.get_transaction(receipt.transactionHash).nonce + 1
    )


REVERTS = {
    "require reason": (
        lambda token, caller: token.functions.transfer(caller, 10**30),
        lambda caller: "execution reverted: Token: transfer amount exceeds balance",
        lambda caller: (
            "0x08c379a0" + abi_encode(["string"], ["Token: transfer amount exceeds balance"]).hex()
        ),
        ContractLogicError,
    ),
    "custom error": (
        lambda token, caller: token.functions.onlyZero(),
        lambda caller: "execution reverted",
        lambda caller: (
            "0x"
            + keccak(text="Unauthorized(address)")[:4].hex()
            + abi_encode(["address"], [caller]).hex()
        ),
        ContractCustomError,
    ),
    "panic": (
        lambda token, caller: token.functions.divide(0),
        lambda caller: "execution reverted: division or modulo by zero",
        lambda caller: "0x4e487b71" + abi_encode(["uint256"], [0x12]).hex(),
        ContractPanicError,
    ),
}


@pytest.mark.parametrize("case", REVERTS)
def test_call_reports_revert_reason(w3, accounts, token, case):
    make_call, message, data, web3_error = REVERTS[case]
    caller = accounts[5].address
    fn = make_call(token, caller)

    response = raw(
        w3,
        "eth_call",
        [{"from": caller, "to": token.address, "data": fn._encode_transaction_data()}, "latest"],
    )
    assert response["error"] == {"code": 3, "message": message(caller), "data": data(caller)}
    with pytest.raises(web3_error) as raised:
        fn.call({"from": caller})
    assert raised.value.data == data(caller)


@pytest.mark.parametrize("case", REVERTS)
def test_estimate_gas_reports_revert_reason(w3, accounts, token, case):
    make_call, message, data, web3_error = REVERTS[case]
    caller = accounts[5].address
    fn = make_call(token, caller)

    response = raw(
        w3,
        "eth_estimateGas",
        [{"from": caller, "to": token.address, "data": fn._encode_transaction_data()}],
    )
    assert response["error"] == {"code": 3, "message": message(caller), "data": data(caller)}
    with pytest.raises(web3_error) as raised:
        fn.estimate_gas({"from": caller})
    assert raised.value.data == data(caller)


def test_estimated_gas_is_enough_for_the_transaction(w3, accounts, token):
    sender = accounts[0]
    transfer = token.functions.transfer(accounts[6].address, 7)
    estimate = w3.eth.estimate_gas(call_tx(transfer, sender))
    receipt = transact(w3, sender, {**call_tx(transfer, sender), "gas": estimate})
    assert receipt.status == 1
    assert receipt.gasUsed <= estimate
    assert (
        w3.eth.estimate_gas({"from": sender.address, "to": accounts[6].address, "value": 1})
        == 21000
    )


# blocks


def test_transactions_sent_together_share_one_block(w3, busy_block):
    receipts = sorted(busy_block["receipts"], key=lambda r: r.transactionIndex)
    block = w3.eth.get_block(receipts[0].blockNumber)

    assert {r.blockNumber for r in receipts} == {block.number}
    assert {r.blockHash for r in receipts} == {block.hash}
    assert [r.transactionIndex for r in receipts] == [0, 1, 2, 3]
    assert block.transactions == [r.transactionHash for r in receipts]
    assert all(r.status == 1 for r in receipts)
    assert sorted(r.type for r in receipts) == [0, 1, 2, 2]
    used = 0
    for receipt in receipts:
        used += receipt.gasUsed
        assert receipt.cumulativeGasUsed == used
    assert used == block.gasUsed
    logs = [log for r in receipts for log in r.logs]
    assert len(logs) == 3
    assert [log.logIndex for log in logs] == [0, 1, 2]  # numbered across the block
    for receipt in receipts:
        assert all(log.transactionIndex == receipt.transactionIndex for log in receipt.logs)
        assert all(log.blockHash == block.hash for log in receipt.logs)


def test_block_queries_by_number_and_hash_agree(w3, busy_block):
    receipt = busy_block["receipts"][0]
    number, block_hash = receipt.blockNumber, receipt.blockHash
    by_number = w3.eth.get_block(number)
    by_hash = w3.eth.get_block(block_hash)
    full = w3.eth.get_block(number, full_transactions=True)

    assert by_number == by_hash
    assert by_number.hash == block_hash and by_number.number == number
    assert by_number.parentHash == w3.eth.get_block(number - 1).hash
    assert full.hash == block_hash
    assert [tx.hash for tx in full.transactions] == by_number.transactions
    for index, tx in enumerate(full.transactions):
        assert (tx.blockHash, tx.blockNumber, tx.transactionIndex) == (block_hash, number, index)
        assert tx == w3.eth.get_transaction(tx.hash)
        assert tx == w3.eth.get_transaction_by_block(number, index)
        assert tx == w3.eth.get_transaction_by_block(block_hash, index)
    assert w3.eth.get_block_transaction_count(number) == 4
    assert w3.eth.get_block_transaction_count(block_hash) == 4
    assert (
        raw(w3, "eth_getTransactionByBlockNumberAndIndex", [hex(number), "0x4"])["result"] is None
    )
    assert (
        raw(w3, "eth_getTransactionByBlockHashAndIndex", [block_hash.to_0x_hex(), "0x4"])["result"]
        is None
    )
    block_receipts = raw(w3, "eth_getBlockReceipts", [hex(number)])["result"]
    assert [r["transactionHash"] for r in block_receipts] == [
        h.to_0x_hex() for h in by_number.transactions
    ]
    assert w3.eth.get_block("latest").number >= number
    assert raw(w3, "eth_getBlockByNumber", [hex(10**6), False])["result"] is None
    assert raw(w3, "eth_getBlockByHash", ["0x" + "ab" * 32, False])["result"] is None
    assert raw(w3, "eth_getTransactionByHash", ["0x" + "ab" * 32])["result"] is None
    assert raw(w3, "eth_getTransactionReceipt", ["0x" + "ab" * 32])["result"] is None


def test_debug_raw_encodings_decode_to_the_served_block(w3, busy_block):
    number = busy_block["receipts"][0].blockNumber
    block = w3.eth.get_block(number)
    receipts = sorted(busy_block["receipts"], key=lambda r: r.transactionIndex)

    raw_header = HexBytes(raw(w3, "debug_getRawHeader", [hex(number)])["result"])
    assert keccak(raw_header) == block.hash
    header = rlp.decode(raw_header)
    assert header[0] == block.parentHash
    assert (header[3], header[4], header[5]) == (
        block.stateRoot,
        block.transactionsRoot,
        block.receiptsRoot,
    )
    assert [rlp.sedes.big_endian_int.deserialize(header[i]) for i in (8, 9, 10, 11, 15)] == [
        block.number,
        block.gasLimit,
        block.gasUsed,
        block.timestamp,
        block.baseFeePerGas,
    ]

    raw_block = HexBytes(raw(w3, "debug_getRawBlock", [block.hash.to_0x_hex()])["result"])
    assert raw_block == HexBytes(raw(w3, "debug_getRawBlock", [hex(number)])["result"])
    block_header, transactions, uncles, withdrawals = rlp.decode(raw_block)
    assert rlp.encode(block_header) == raw_header
    assert uncles == [] and withdrawals == []
    encoded = [tx if isinstance(tx, bytes) else rlp.encode(tx) for tx in transactions]
    assert [keccak(tx) for tx in encoded] == block.transactions
    assert trie_root(encoded) == block.transactionsRoot
    assert sorted(encoded) == sorted(busy_block["raw"])

    raw_receipts = [HexBytes(r) for r in raw(w3, "debug_getRawReceipts", [hex(number)])["result"]]
    assert trie_root(raw_receipts) == block.receiptsRoot
    for encoded_receipt, receipt in zip(raw_receipts, receipts, strict=True):
        body = encoded_receipt[1:] if receipt.type else encoded_receipt
        status, cumulative, bloom, logs = rlp.decode(body)
        assert (encoded_receipt[0] if receipt.type else 0) == receipt.type
        assert int.from_bytes(status) == receipt.status
        assert int.from_bytes(cumulative) == receipt.cumulativeGasUsed
        assert bloom == receipt.logsBloom
        assert [log[0] for log in logs] == [HexBytes(log.address) for log in receipt.logs]

    for tx_hash, tx_bytes in zip(block.transactions, encoded, strict=True):
        served = HexBytes(raw(w3, "debug_getRawTransaction", [tx_hash.to_0x_hex()])["result"])
        assert served == tx_bytes
        assert Account.recover_transaction(served) == w3.eth.get_transaction(tx_hash)["from"]
    assert raw(w3, "debug_getRawTransaction", ["0x" + "ab" * 32])["result"] == "0x"


def trie_root(items: list[bytes]) -> bytes:
    trie = HexaryTrie({})
    for index, item in enumerate(items):
        trie[rlp.encode(index)] = bytes(item)
    return trie.root_hash


# logs and filters


def test_get_logs_filters_by_address_topics_and_ranges(w3, accounts, deployment, busy_block):
    token, deploy_receipt = deployment
    owner, spender, payer = (a.address for a in accounts[:3])
    block = busy_block["receipts"][0].blockNumber
    start = deploy_receipt.blockNumber

    everything = w3.eth.get_logs(
        {"address": token.address, "fromBlock": start, "toBlock": "latest"}
    )
    assert everything[0].transactionHash == deploy_receipt.transactionHash
    assert all(log.address == token.address for log in everything)
    assert [(log.blockNumber, log.logIndex) for log in everything] == sorted(
        (log.blockNumber, log.logIndex) for log in everything
    )

    in_block = w3.eth.get_logs({"address": token.address, "fromBlock": block, "toBlock": block})
    in_order = sorted(busy_block["receipts"], key=lambda r: r.transactionIndex)
    assert in_block == [log for receipt in in_order for log in receipt.logs]
    assert sorted(log.topics[0] for log in in_block) == sorted(
        [TRANSFER_TOPIC, TRANSFER_TOPIC, APPROVAL_TOPIC]
    )
    block_hash = busy_block["receipts"][0].blockHash
    assert w3.eth.get_logs({"blockHash": block_hash}) == in_block
    assert w3.eth.get_logs({"fromBlock": block, "toBlock": block}) == in_block

    to_payer = w3.eth.get_logs(
        {"fromBlock": start, "topics": [TRANSFER_TOPIC, None, topic_of(payer)]}
    )
    assert [int.from_bytes(log.data) for log in to_payer] == [22]
    either = w3.eth.get_logs(
        {
            "fromBlock": block,
            "toBlock": block,
            "topics": [[TRANSFER_TOPIC, APPROVAL_TOPIC], topic_of(spender)],
        }
    )
    assert [log.topics[0] for log in either] == [APPROVAL_TOPIC]  # the approval is from spender
    from_owner = w3.eth.get_logs(
        {"fromBlock": block, "toBlock": block, "topics": [None, topic_of(owner)]}
    )
    assert [log.topics[0] for log in from_owner] == [TRANSFER_TOPIC, TRANSFER_TOPIC]
    approvals = token.events.Approval().get_logs(
        from_block=start, argument_filters={"owner": spender}
    )
    assert [(e.args.spender, e.args.value) for e in approvals] == [(owner, 33)]

    assert w3.eth.get_logs({"fromBlock": start, "address": accounts[9].address}) == []
    assert w3.eth.get_logs({"fromBlock": 0, "toBlock": start - 1, "address": token.address}) == []
    assert w3.eth.get_logs({"fromBlock": start, "topics": [keccak(text="Nothing()")]}) == []


def test_log_filter_reports_new_logs_once_and_can_be_uninstalled(w3, accounts, deployment):
    token, deploy_receipt = deployment
    sender = accounts[0]
    new_logs = w3.eth.filter({"address": token.address})
    history = w3.eth.filter({"address": token.address, "fromBlock": deploy_receipt.blockNumber})
    assert new_logs.get_new_entries() == []

    receipt = transact(
        w3, sender, call_tx(token.functions.transfer(accounts[6].address, 5), sender)
    )
    (log,) = new_logs.get_new_entries()
    assert log == receipt.logs[0]
    assert new_logs.get_new_entries() == []
    criteria = {"address": token.address, "fromBlock": deploy_receipt.blockNumber}
    assert history.get_all_entries() == w3.eth.get_logs(criteria)
    assert history.get_all_entries()[-1] == receipt.logs[0]

    assert w3.eth.uninstall_filter(new_logs.filter_id) is True
    assert w3.eth.uninstall_filter(new_logs.filter_id) is False
    gone = raw(w3, "eth_getFilterChanges", [new_logs.filter_id])
    assert gone["error"] == {"code": -32000, "message": "filter not found"}
    w3.eth.uninstall_filter(history.filter_id)


def test_block_filter_reports_each_new_block(w3, accounts):
    blocks = w3.eth.filter("latest")
    assert blocks.get_new_entries() == []
    first = transact(w3, accounts[7], {"to": accounts[8].address, "value": 1, "gas": 21000})
    second = transact(w3, accounts[7], {"to": accounts[8].address, "value": 2, "gas": 21000})
    assert blocks.get_new_entries() == [
        w3.eth.get_block(n).hash for n in range(first.blockNumber, second.blockNumber + 1)
    ]
    assert blocks.get_new_entries() == []
    assert w3.eth.uninstall_filter(blocks.filter_id) is True


def test_pending_transaction_filter_reports_new_transactions(w3, accounts):
    pending = w3.eth.filter("pending")
    tx_hash = send(w3, accounts[7], {"to": accounts[8].address, "value": 3, "gas": 21000})
    assert pending.get_new_entries() == [tx_hash]
    assert pending.get_new_entries() == []
    w3.eth.wait_for_transaction_receipt(tx_hash, timeout=RECEIPT_TIMEOUT)
    assert w3.eth.uninstall_filter(pending.filter_id) is True


# WebSocket subscriptions


async def collect_until(stream, done, messages: list) -> list:
    while not done(messages):
        messages.append(await asyncio.wait_for(anext(stream), MESSAGE_TIMEOUT))
    return messages


def test_websocket_subscriptions_deliver_heads_logs_and_pending_transactions(
    node, w3, accounts, token
):
    sender = accounts[0]

    async def session():
        async with AsyncWeb3(WebSocketProvider(node.ws_url)) as ws:
            heads = await ws.eth.subscribe("newHeads")
            token_logs = await ws.eth.subscribe("logs", {"address": token.address})
            other_logs = await ws.eth.subscribe("logs", {"address": accounts[9].address})
            hashes = await ws.eth.subscribe("newPendingTransactions")
            full = await ws.eth.subscribe("newPendingTransactions", True)
            stream = ws.socket.process_subscriptions()

            transfer = call_tx(token.functions.transfer(accounts[6].address, 9), sender)
            first = transact(w3, sender, transfer)
            # A block without logs comes next: by its head, every notification the first
            # block caused has arrived (one connection delivers in order).
            second = transact(w3, sender, {"to": accounts[6].address, "value": 1, "gas": 21000})
            messages = await collect_until(
                stream,
                lambda got: any(
                    m["subscription"] == heads and m["result"]["number"] == second.blockNumber
                    for m in got
                ),
                [],
            )
            by_subscription = {}
            for message in messages:
                by_subscription.setdefault(message["subscription"], []).append(message["result"])
            return first, second, by_subscription, (heads, token_logs, other_logs, hashes, full)

    first, second, got, ids = asyncio.run(session())
    heads, token_logs, other_logs, hashes, full = ids

    assert [h["number"] for h in got[heads]] == [first.blockNumber, second.blockNumber]
    for head in got[heads]:
        block = w3.eth.get_block(head["number"])
        assert (head["hash"], head["parentHash"], head["stateRoot"]) == (
            block.hash,
            block.parentHash,
            block.stateRoot,
        )
    assert got[token_logs] == [first.logs[0]]
    assert other_logs not in got
    assert got[hashes] == [first.transactionHash, second.transactionHash]
    assert [tx["hash"] for tx in got[full]] == [first.transactionHash, second.transactionHash]
    assert all(tx["from"] == sender.address and tx["blockHash"] is None for tx in got[full])


def test_unsubscribed_websocket_gets_no_more_notifications(node, w3, accounts, token):
    import aiohttp

    sender = accounts[0]

    async def session():
        async with aiohttp.ClientSession() as client, client.ws_connect(node.ws_url) as ws:

            async def request(method, params):
                await ws.send_json({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
                while True:
                    message = await asyncio.wait_for(ws.receive_json(), MESSAGE_TIMEOUT)
                    if message.get("id") == 1:
                        return message

            assert (await request("eth_chainId", []))["result"] == hex(CHAIN_ID)
            heads = (await request("eth_subscribe", ["newHeads"]))["result"]
            logs = (await request("eth_subscribe", ["logs", {"address": token.address}]))["result"]
            assert (await request("eth_unsubscribe", [heads]))["result"] is True
            assert (await request("eth_unsubscribe", [heads]))["result"] is False
            receipt = transact(
                w3, sender, call_tx(token.functions.transfer(sender.address, 1), sender)
            )
            notifications = []
            while not any(n["params"]["subscription"] == logs for n in notifications):
                notifications.append(await asyncio.wait_for(ws.receive_json(), MESSAGE_TIMEOUT))
            return heads, logs, receipt, notifications

    heads, logs, receipt, notifications = asyncio.run(session())
    # newHeads was subscribed first, so its notification would have come before the log's
    assert [n["params"]["subscription"] for n in notifications] == [logs]
    assert (
        notifications[0]["params"]["result"]["transactionHash"]
        == receipt.transactionHash.to_0x_hex()
    )


# transaction types


def test_legacy_eip155_transaction_is_mined(w3, accounts):
    sender, recipient = accounts[7], accounts[8].address
    gas_price = w3.eth.gas_price
    before = w3.eth.get_balance(recipient)
    signed = sign(
        w3, sender, {"to": recipient, "value": 12345, "gas": 21000, "gasPrice": gas_price}
    )
    receipt = w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(signed), timeout=RECEIPT_TIMEOUT
    )
    tx = w3.eth.get_transaction(receipt.transactionHash)

    assert signed[0] >= 0xC0  # an RLP list: no type byte
    assert receipt.status == 1 and receipt.type == 0
    assert receipt.effectiveGasPrice == gas_price
    assert tx.type == 0 and tx.gasPrice == gas_price and tx.chainId == CHAIN_ID
    assert tx.v in (2 * CHAIN_ID + 35, 2 * CHAIN_ID + 36)
    assert "maxFeePerGas" not in tx
    assert Account.recover_transaction(signed) == sender.address
    assert w3.eth.get_balance(recipient) == before + 12345


def test_access_list_transaction_is_mined(w3, accounts, token):
    sender, recipient = accounts[0], accounts[8].address
    transfer = call_tx(token.functions.transfer(recipient, 5), sender)
    access_list = [
        {
            "address": token.address,
            "storageKeys": [
                "0x" + balance_slot(holder).to_bytes(32, "big").hex()
                for holder in (sender.address, recipient)
            ],
        }
    ]
    receipt = transact(
        w3, sender, {**transfer, "type": 1, "gasPrice": w3.eth.gas_price, "accessList": access_list}
    )
    tx = w3.eth.get_transaction(receipt.transactionHash)

    assert receipt.status == 1 and receipt.type == 1 and tx.type == 1
    assert [(e.address, [HexBytes(k) for k in e.storageKeys]) for e in tx.accessList] == [
        (e["address"], [HexBytes(k) for k in e["storageKeys"]]) for e in access_list
    ]
    assert tx.yParity in (0, 1) and tx.v == tx.yParity and tx.chainId == CHAIN_ID
    assert token.functions.balanceOf(recipient).call() >= 5


def test_create_access_list_names_the_storage_a_call_touches(w3, accounts, token):
    sender, recipient = accounts[0], accounts[8].address
    transfer = call_tx(token.functions.transfer(recipient, 5), sender)
    created = w3.eth.create_access_list(transfer)

    (entry,) = [e for e in created["accessList"] if e["address"] == token.address]
    assert {int.from_bytes(HexBytes(k)) for k in entry["storageKeys"]} == {
        balance_slot(sender.address),
        balance_slot(recipient),
    }
    assert created["gasUsed"] > 21000
    receipt = transact(
        w3,
        sender,
        {
            **transfer,
            "type": 1,
            "gasPrice": w3.eth.gas_price,
            "gas": created["gasUsed"],
            "accessList": created["accessList"],
        },
    )
    assert receipt.status == 1


def test_create_access_list_leaves_out_accounts_the_call_does_not_touch(w3, accounts, token):
    sender, recipient = accounts[0], accounts[8].address
    transfer = call_tx(token.functions.transfer(recipient, 5), sender)
    assert [e["address"] for e in w3.eth.create_access_list(transfer)["accessList"]] == [
        token.address
    ]
    plain = {"from": sender.address, "to": recipient, "value": 1}
    assert w3.eth.create_access_list(plain)["accessList"] == []


def test_eip1559_transaction_reports_its_fee_fields(w3, accounts):
    sender = accounts[7]
    receipt = transact(
        w3,
        sender,
        {
            "to": accounts[8].address,
            "value": 1,
            "gas": 21000,
            "maxFeePerGas": 50 * GWEI,
            "maxPriorityFeePerGas": 2 * GWEI,
        },
    )
    tx = w3.eth.get_transaction(receipt.transactionHash)
    base_fee = w3.eth.get_block(receipt.blockNumber).baseFeePerGas
    assert receipt.status == 1 and receipt.type == 2 and tx.type == 2
    assert (tx.maxFeePerGas, tx.maxPriorityFeePerGas) == (50 * GWEI, 2 * GWEI)
    assert tx.gasPrice == receipt.effectiveGasPrice == base_fee + 2 * GWEI
    assert tx.accessList == [] and tx.chainId == CHAIN_ID and tx.v == tx.yParity


def test_eip7702_delegation_runs_delegate_code_on_the_eoa(w3, accounts, delegate_artifact):
    sponsor = accounts[0]
    factory = w3.eth.contract(abi=delegate_artifact["abi"], bytecode=delegate_artifact["bytecode"])
    delegate = transact(w3, sponsor, {"data": factory.constructor().data_in_transaction})
    eoa = Account.create()  # holds no ether: the sponsor pays for the delegation
    authorization = eoa.sign_authorization(
        {"chainId": CHAIN_ID, "address": delegate.contractAddress, "nonce": 0}
    )
    as_delegate = w3.eth.contract(address=eoa.address, abi=delegate_artifact["abi"])
    ping = as_delegate.functions.ping()._encode_transaction_data()

    receipt = transact(
        w3,
        sponsor,
        {
            "type": 4,
            "to": eoa.address,
            "data": ping,
            "gas": 200_000,
            "authorizationList": [authorization],
        },
    )
    assert receipt.status == 1 and receipt.type == 4
    code = w3.eth.get_code(eoa.address)
    assert code == HexBytes("0xef0100") + HexBytes(delegate.contractAddress)
    assert w3.eth.get_transaction_count(eoa.address) == 1  # the authorization used nonce 0
    (pinged,) = receipt.logs
    assert pinged.address == eoa.address
    assert pinged.topics[1:] == [topic_of(eoa.address), topic_of(sponsor.address)]
    assert w3.eth.get_storage_at(eoa.address, 0) == HexBytes(31 * b"\0" + b"\x01")
    tx = w3.eth.get_transaction(receipt.transactionHash)
    (listed,) = tx.authorizationList
    assert (listed.address, listed.chainId, listed.nonce) == (
        delegate.contractAddress,
        CHAIN_ID,
        0,
    )

    assert as_delegate.functions.whoami().call({"from": sponsor.address}) == [
        eoa.address,
        sponsor.address,
    ]
    again = transact(w3, sponsor, call_tx(as_delegate.functions.ping(), sponsor))
    assert again.status == 1
    assert as_delegate.functions.counter().call() == 2


# the pool


def test_queued_transaction_waits_in_pool_until_its_nonce_gap_fills(w3, accounts):
    sender = accounts[5]
    transfer = {"to": accounts[6].address, "value": 1, "gas": 21000}
    nonce = w3.eth.get_transaction_count(sender.address, "pending")
    later = send(w3, sender, {**transfer, "nonce": nonce + 1})

    content = raw(w3, "txpool_content", [])["result"]
    queued = content["queued"][sender.address]
    assert list(queued) == [str(nonce + 1)] and queued[str(nonce + 1)]["hash"] == later.to_0x_hex()
    assert sender.address not in content["pending"]
    waiting = w3.eth.get_transaction(later)
    assert (waiting.blockHash, waiting.blockNumber, waiting.transactionIndex) == (None, None, None)
    assert (waiting.nonce, waiting["from"]) == (nonce + 1, sender.address)
    assert w3.eth.get_transaction_count(sender.address, "pending") == nonce

    first = transact(w3, sender, {**transfer, "nonce": nonce})
    second = w3.eth.wait_for_transaction_receipt(later, timeout=RECEIPT_TIMEOUT)
    assert first.status == second.status == 1
    assert w3.eth.get_transaction(later).blockNumber == second.blockNumber
    assert w3.eth.get_transaction_count(sender.address) == nonce + 2
    content = raw(w3, "txpool_content", [])["result"]
    assert sender.address not in content["pending"] and sender.address not in content["queued"]


def test_pool_holds_pending_and_queued_transactions_until_a_block(idle_node, accounts):
    w3 = idle_node.w3()
    sender = accounts[9]
    transfer = {
        "to": accounts[8].address,
        "value": 1,
        "gas": 21000,
        "maxFeePerGas": 10 * GWEI,
        "maxPriorityFeePerGas": GWEI,
    }
    first = send(w3, sender, {**transfer, "nonce": 0})
    third = send(w3, sender, {**transfer, "nonce": 2})

    content = raw(w3, "txpool_content", [])["result"]
    assert content["pending"][sender.address]["0"]["hash"] == first.to_0x_hex()
    assert content["queued"][sender.address]["2"]["hash"] == third.to_0x_hex()
    assert raw(w3, "txpool_status", [])["result"] == {"pending": "0x1", "queued": "0x1"}
    pending = w3.eth.get_transaction(first)
    assert (pending.blockHash, pending.blockNumber, pending.transactionIndex) == (None, None, None)
    assert pending.hash == first and pending["from"] == sender.address
    assert raw(w3, "debug_getRawTransaction", [first.to_0x_hex()])["result"] != "0x"
    assert w3.eth.get_transaction_count(sender.address) == 0
    assert w3.eth.get_transaction_count(sender.address, "pending") == 1

    bumped = send(
        w3,
        sender,
        {**transfer, "nonce": 0, "maxFeePerGas": 11 * GWEI, "maxPriorityFeePerGas": 2 * GWEI},
    )
    content = raw(w3, "txpool_content", [])["result"]
    assert content["pending"][sender.address]["0"]["hash"] == bumped.to_0x_hex()
    assert raw(w3, "eth_getTransactionByHash", [first.to_0x_hex()])["result"] is None
    assert w3.eth.block_number == 0


# fees


def test_fee_history_matches_blocks_and_predicts_next_base_fee(w3, accounts):
    tip = 3 * GWEI
    latest = transact(
        w3,
        accounts[7],
        {
            "to": accounts[8].address,
            "value": 1,
            "gas": 21000,
            "maxFeePerGas": 100 * GWEI,
            "maxPriorityFeePerGas": tip,
        },
    )
    count = min(4, latest.blockNumber)
    history = w3.eth.fee_history(count, latest.blockNumber, [10, 90])

    assert history.oldestBlock == latest.blockNumber - count + 1
    blocks = [w3.eth.get_block(n) for n in range(history.oldestBlock, latest.blockNumber + 1)]
    assert history.baseFeePerGas[:-1] == [b.baseFeePerGas for b in blocks]
    assert len(history.baseFeePerGas) == count + 1
    assert history.gasUsedRatio == [b.gasUsed / b.gasLimit for b in blocks]
    assert len(history.reward) == count and all(len(r) == 2 for r in history.reward)
    assert history.reward[-1] == [tip, tip]  # the newest block holds only that transaction

    following = transact(w3, accounts[7], {"to": accounts[8].address, "value": 1, "gas": 21000})
    assert w3.eth.get_block(following.blockNumber).baseFeePerGas == history.baseFeePerGas[-1]


def test_suggested_fees_cover_the_next_base_fee(w3, accounts):
    next_base_fee = w3.eth.fee_history(1, "latest").baseFeePerGas[-1]
    tip = w3.eth.max_priority_fee
    assert tip > 0
    assert w3.eth.gas_price >= next_base_fee
    receipt = transact(
        w3,
        accounts[7],
        {
            "to": accounts[8].address,
            "value": 1,
            "gas": 21000,
            "maxPriorityFeePerGas": tip,
            "maxFeePerGas": w3.eth.gas_price,
        },
    )
    assert receipt.status == 1


def test_suggested_tip_is_the_60th_percentile_of_the_last_20_blocks_tips(w3, accounts):
    """As geth's oracle samples: the tips of the head and its 19 ancestors that used gas
    (genesis left out), checked as blocks come, so that the sample slides."""

    def expected() -> int:
        head = w3.eth.block_number
        tips = []
        for number in range(head, max(head - 20, 0), -1):
            block = w3.eth.get_block(number, full_transactions=True)
            if not block.gasUsed:
                continue
            for tx in block.transactions:
                if "maxPriorityFeePerGas" in tx:
                    tip = tx.maxFeePerGas - block.baseFeePerGas
                    tips.append(min(tx.maxPriorityFeePerGas, tip))
                else:
                    tips.append(tx.gasPrice - block.baseFeePerGas)
        return max(sorted(tips)[len(tips) * 60 // 100], 1) if tips else 10**9

    for gwei in range(1, 25):
        fees = {"maxPriorityFeePerGas": gwei * GWEI, "maxFeePerGas": 100 * GWEI}
        if gwei % 3 == 0:  # legacy ones too, their tip the price above the base fee
            fees = {"gasPrice": w3.eth.get_block("latest").baseFeePerGas * 2 + gwei * GWEI}
        transact(w3, accounts[9], {"to": accounts[8].address, "value": 1, "gas": 21000, **fees})
        assert w3.eth.max_priority_fee == expected(), gwei


# state reads


def test_storage_and_code_reads_follow_contract_state(w3, accounts, deployment, token_artifact):
    token, deploy_receipt = deployment
    owner, newcomer = accounts[0].address, accounts[4].address

    assert int.from_bytes(w3.eth.get_storage_at(token.address, SUPPLY_SLOT)) == SUPPLY
    for holder in (owner, newcomer):
        stored = w3.eth.get_storage_at(token.address, balance_slot(holder))
        assert int.from_bytes(stored) == token.functions.balanceOf(holder).call()
    at_deploy = w3.eth.get_storage_at(
        token.address, balance_slot(newcomer), deploy_receipt.blockNumber
    )
    assert int.from_bytes(at_deploy) == 0
    assert (
        token.functions.balanceOf(owner).call(block_identifier=deploy_receipt.blockNumber) == SUPPLY
    )

    code = w3.eth.get_code(token.address)
    assert code.hex() in token_artifact["bytecode"]  # the runtime part of the creation code
    assert w3.eth.get_code(token.address, deploy_receipt.blockNumber - 1) == b""
    assert w3.eth.get_code(owner) == b""
    assert w3.eth.get_balance(accounts[9].address, 0) == 10_000 * 10**18
    assert w3.eth.get_transaction_count(owner, 0) == 0


# batches


def test_batch_request_answers_each_call(w3, accounts, token):
    owner = accounts[0].address
    with w3.batch_requests() as batch:
        batch.add(w3.eth.get_block_number())
        batch.add(w3.eth.get_balance(owner))
        batch.add(token.functions.balanceOf(owner))
        batch.add(w3.eth.get_block(0))
        number, balance, tokens, genesis = batch.execute()
    assert number == w3.eth.block_number
    assert balance == w3.eth.get_balance(owner)
    assert tokens == token.functions.balanceOf(owner).call()
    assert genesis.number == 0

    body = [
        {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"},
        {"jsonrpc": "2.0", "id": "two", "method": "no_such_method"},
        {"jsonrpc": "2.0", "method": "eth_blockNumber"},  # a notification: no answer
        {"jsonrpc": "2.0", "id": 3, "method": "eth_getBalance", "params": [owner, "latest"]},
    ]
    answers = batch_post(w3.provider.endpoint_uri, body)
    assert [a["id"] for a in answers] == [1, "two", 3]
    assert answers[0]["result"] == hex(CHAIN_ID)
    assert answers[1]["error"]["code"] == -32601
    assert int(answers[2]["result"], 16) == w3.eth.get_balance(owner)


def batch_post(url: str, body: list) -> list:
    import urllib.request

    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


# node-held dev accounts


def test_dev_accounts_send_and_sign_for_their_owners(w3, accounts):
    assert w3.eth.accounts == [account.address for account in accounts]
    sender, recipient = w3.eth.accounts[7], w3.eth.accounts[8]
    before = w3.eth.get_balance(recipient)

    tx_hash = w3.eth.send_transaction({"from": sender, "to": recipient, "value": 10**15})
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=RECEIPT_TIMEOUT)
    assert receipt.status == 1 and receipt["from"] == sender
    assert w3.eth.get_balance(recipient) == before + 10**15

    message = b"sign me, sibyl"
    for method, params in (
        ("personal_sign", ["0x" + message.hex(), sender]),
        ("eth_sign", [sender, "0x" + message.hex()]),
    ):
        signature = raw(w3, method, params)["result"]
        recovered = Account.recover_message(encode_defunct(primitive=message), signature=signature)
        assert recovered == sender, method
        reference = Account.sign_message(encode_defunct(primitive=message), accounts[7].key)
        assert signature == "0x" + bytes(reference.signature).hex(), method

    typed = {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "chainId", "type": "uint256"},
            ],
            "Mail": [{"name": "to", "type": "address"}, {"name": "contents", "type": "string"}],
        },
        "primaryType": "Mail",
        "domain": {"name": "Sibyl", "chainId": CHAIN_ID},
        "message": {"to": recipient, "contents": "hello"},
    }
    signature = raw(w3, "eth_signTypedData_v4", [sender, typed])["result"]
    recovered = Account.recover_message(encode_typed_data(full_message=typed), signature=signature)
    assert recovered == sender

    stranger = Account.create().address
    refused = raw(w3, "eth_sendTransaction", [{"from": stranger, "to": recipient, "value": "0x1"}])
    assert refused["error"]["code"] == -32000
    assert "unknown account" in refused["error"]["message"]


def test_dev_accounts_sign_each_transaction_type_as_eth_account_does(w3, accounts):
    """``eth_signTransaction`` (what ``eth_sendTransaction`` sends) gives, byte for byte,
    what eth_account signs for the same fields: legacy with EIP-155's chain id (a
    creation too), EIP-2930 with a gas price and an access list, EIP-1559 otherwise."""
    signer, to = accounts[6], accounts[5].address
    access = [{"address": accounts[4].address, "storageKeys": ["0x" + "00" * 31 + "01"]}]
    legacy = {"gasPrice": 10**9}
    dynamic = {"maxFeePerGas": 3 * 10**9, "maxPriorityFeePerGas": 10**9}
    for fields, tx_type in (
        ({"to": to, **legacy}, 0),
        (legacy, 0),
        ({"to": to, **legacy, "accessList": access}, 1),
        ({"to": to, **dynamic}, 2),
        ({"to": to, **dynamic, "accessList": access}, 2),
    ):
        tx = {"nonce": 3, "gas": 90_000, "value": 7, "data": "0x600160005500", **fields}
        request = {
            "from": signer.address,
            **{k: hex(v) if isinstance(v, int) else v for k, v in tx.items()},
        }
        signed = raw(w3, "eth_signTransaction", [request])["result"]["raw"]
        reference = Account.sign_transaction({**tx, "chainId": CHAIN_ID}, signer.key)
        assert signed == "0x" + bytes(reference.raw_transaction).hex(), fields
        assert (int(signed[2:4], 16) if tx_type else 0) == tx_type


def test_jumps_into_push_data_fail_however_often_the_code_ran(w3, accounts):
    """Calls share what is known of a contract's jump destinations; the byte 0x5b inside
    PUSH2's data must stay no destination, before and after the real JUMPDEST was used."""
    # JUMP(calldata[0:32]); 4: JUMPDEST STOP; 6: PUSH2 0x5b00 (0x5b at 7 is push data)
    runtime = bytes.fromhex("600035565b00615b00")
    init = b"\x68" + runtime + bytes.fromhex("600052") + bytes.fromhex("6009 6017 f3")
    contract = transact(w3, accounts[0], {"data": init, "gas": 100_000}).contractAddress

    def call(target: int) -> dict:
        data = "0x" + target.to_bytes(32, "big").hex()
        return raw(w3, "eth_call", [{"to": contract, "data": data}, "latest"])

    for _ in range(3):
        assert call(4) == {"jsonrpc": "2.0", "id": 1, "result": "0x"}
        error = call(7)["error"]
        assert error == {"code": -32000, "message": "invalid jump destination"}, error
    jumped = transact(
        w3, accounts[0], {"to": contract, "data": (7).to_bytes(32, "big"), "gas": 60_000}
    )
    assert jumped.status == 0 and jumped.gasUsed == 60_000  # an exceptional halt takes all
