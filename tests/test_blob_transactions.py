"""Blob transactions sent in their network form (EIP-4844 proofs and EIP-7594 cell
proofs) to a real node driven by a consensus client through the Engine API: the pool
checks the sidecar and keeps the blobs, the payload's ``blobsBundle`` and
``engine_getBlobsV1`` hand them out, the block carries only the transaction; a missing
sidecar, a mismatched hash, a bad proof or too many blobs are refused with geth's words."""

import ckzg
import pytest
import rlp
from eth.precompiles.point_evaluation import TRUSTED_SETUP_PATH, kzg_to_versioned_hash
from eth_account import Account
from eth_utils import keccak
from nodes import CHAIN_ID, DEV_KEYS, REPO, rpc
from test_engine_api import SECRET, build_block, engine

RECIPIENT = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


@pytest.fixture(scope="module")
def setup():
    return ckzg.load_trusted_setup(TRUSTED_SETUP_PATH, 0)


@pytest.fixture
def engine_node(tmp_path, start_node):
    secret_file = tmp_path / "jwt.hex"
    secret_file.write_text(SECRET.hex())
    genesis = REPO / "genesis" / "dev.json"
    return start_node(
        "data", "--genesis", str(genesis), "--jwt-secret", str(secret_file), dev=False
    )


def blob_of(seed: int) -> bytes:
    """A blob whose field elements are all below the BLS modulus (top byte zero)."""
    return b"".join(bytes([0]) + bytes([seed, i % 256]) * 15 + bytes([seed]) for i in range(4096))


def signed_body(key: str, nonce: int, hashes: list[bytes]) -> list:
    """The signed transaction's fields (tx_payload_body), signed without blobs."""
    signed = Account.from_key(key).sign_transaction(
        {
            "type": 3,
            "chainId": CHAIN_ID,
            "nonce": nonce,
            "to": RECIPIENT,
            "value": 1,
            "gas": 21000,
            "maxFeePerGas": 10**10,
            "maxPriorityFeePerGas": 10**9,
            "maxFeePerBlobGas": 10**9,
            "blobVersionedHashes": hashes,
        }
    )
    assert signed.raw_transaction[0] == 3
    return rlp.decode(bytes(signed.raw_transaction[1:]))


def network_form(body: list, blobs: list[bytes], commitments: list[bytes], proofs: list[bytes]):
    return "0x03" + rlp.encode([body, blobs, commitments, proofs]).hex()


def send(node, raw: str) -> dict:
    return rpc(node.url, "eth_sendRawTransaction", [raw], timeout=60)


def test_blob_transaction_network_form_through_pool_payload_and_block(engine_node, setup):
    w3 = engine_node.w3()
    genesis = w3.eth.get_block(0)

    # EIP-4844's form: one blob proof per blob
    blob = blob_of(1)
    commitment = bytes(ckzg.blob_to_kzg_commitment(blob, setup))
    proof = bytes(ckzg.compute_blob_kzg_proof(blob, commitment, setup))
    versioned = kzg_to_versioned_hash(commitment)
    body = signed_body(DEV_KEYS[0], 0, [versioned])
    legacy_hash = send(engine_node, network_form(body, [blob], [commitment], [proof]))["result"]
    pooled = w3.eth.get_transaction(legacy_hash)
    assert pooled["type"] == 3 and pooled["blobVersionedHashes"] == [versioned]
    assert pooled["maxFeePerBlobGas"] == 10**9

    # EIP-7594's form, as eth-account signs a transaction given its blobs
    cell_blob = blob_of(2)
    signed = Account.from_key(DEV_KEYS[1]).sign_transaction(
        {
            "type": 3,
            "chainId": CHAIN_ID,
            "nonce": 0,
            "to": RECIPIENT,
            "value": 1,
            "gas": 21000,
            "maxFeePerGas": 10**10,
            "maxPriorityFeePerGas": 10**9,
            "maxFeePerBlobGas": 10**9,
        },
        blobs=[cell_blob],
    )
    cell_hash = w3.eth.send_raw_transaction(signed.raw_transaction).to_0x_hex()
    # the hash of the canonical form, as geth answers (eth-account's signed.hash is the
    # keccak of the whole network form, which names no transaction on chain)
    canonical = b"\x03" + rlp.encode(rlp.decode(bytes(signed.raw_transaction[1:]))[0])
    assert cell_hash == "0x" + keccak(canonical).hex()

    # the pool serves the blobs by versioned hash (null for one it does not hold)
    served = engine(
        engine_node, "engine_getBlobsV1", [["0x" + versioned.hex(), "0x01" + "00" * 31]]
    )
    assert served["result"] == [{"blob": "0x" + blob.hex(), "proof": "0x" + proof.hex()}, None]

    built = build_block(engine_node, genesis["hash"].to_0x_hex(), genesis["timestamp"] + 12)
    payload, bundle = built["executionPayload"], built["blobsBundle"]
    assert len(payload["transactions"]) == 2
    for raw in payload["transactions"]:  # the block carries the canonical form only
        assert len(bytes.fromhex(raw[2:])) < 1000
    assert len(bundle["blobs"]) == len(bundle["commitments"]) == len(bundle["proofs"]) == 2
    assert ckzg.verify_blob_kzg_proof_batch(
        b"".join(bytes.fromhex(x[2:]) for x in bundle["blobs"]),
        b"".join(bytes.fromhex(x[2:]) for x in bundle["commitments"]),
        b"".join(bytes.fromhex(x[2:]) for x in bundle["proofs"]),
        setup,
    )
    hashes = [
        "0x" + kzg_to_versioned_hash(bytes.fromhex(c[2:])).hex() for c in bundle["commitments"]
    ]
    assert int(payload["blobGasUsed"], 16) == 2 * 131072

    status = engine(engine_node, "engine_newPayloadV4", [payload, hashes, "0x" + "00" * 32, []])
    assert status["result"]["status"] == "VALID", status
    head = payload["blockHash"]
    state = {"headBlockHash": head, "safeBlockHash": head, "finalizedBlockHash": head}
    engine(engine_node, "engine_forkchoiceUpdatedV3", [state, None])
    assert w3.eth.get_transaction_receipt(legacy_hash).status == 1
    assert w3.eth.get_transaction_receipt(cell_hash).status == 1
    assert w3.eth.get_block("latest")["blobGasUsed"] == 2 * 131072
    receipt = rpc(engine_node.url, "eth_getTransactionReceipt", [legacy_hash])["result"]
    assert (receipt["blobGasUsed"], receipt["blobGasPrice"]) == (hex(131072), "0x1")
    assert rpc(engine_node.url, "eth_blobBaseFee")["result"] == "0x1"  # 2 blobs: below target
    history = rpc(engine_node.url, "eth_feeHistory", ["0x1", "latest", []])["result"]
    assert history["blobGasUsedRatio"] == [2 / 9]  # of Prague's 9 blobs a block
    assert history["baseFeePerBlobGas"] == ["0x1", "0x1"]


def test_bad_blob_transactions_are_refused_as_geth_refuses_them(engine_node, setup):
    blob, other = blob_of(3), blob_of(4)
    commitment = bytes(ckzg.blob_to_kzg_commitment(blob, setup))
    other_commitment = bytes(ckzg.blob_to_kzg_commitment(other, setup))
    proof = bytes(ckzg.compute_blob_kzg_proof(blob, commitment, setup))
    other_proof = bytes(ckzg.compute_blob_kzg_proof(other, other_commitment, setup))
    versioned = kzg_to_versioned_hash(commitment)
    body = signed_body(DEV_KEYS[0], 0, [versioned])

    def refusal(raw: str) -> str:
        answer = send(engine_node, raw)
        assert answer["error"]["code"] == -32000, answer
        return answer["error"]["message"]

    assert refusal("0x03" + rlp.encode(body).hex()) == "missing sidecar in blob transaction"
    assert refusal(network_form(body, [other], [other_commitment], [other_proof])) == (
        f"blob 0: computed hash 0x{kzg_to_versioned_hash(other_commitment).hex()} mismatches "
        f"transaction one 0x{versioned.hex()}"
    )
    assert refusal(network_form(body, [blob], [commitment], [other_proof])) == (
        "KZG verification error: invalid blob proofs"
    )
    assert refusal(network_form(body, [blob, other], [commitment], [proof])) == (
        "invalid number of 2 blobs compared to 1 blob hashes"
    )
    assert refusal(network_form(body, [blob], [commitment], [])) == (
        "invalid number of 0 blob proofs expected 1"
    )
    seven = signed_body(DEV_KEYS[0], 0, [versioned] * 7)
    assert refusal(network_form(seven, [blob] * 7, [commitment] * 7, [proof] * 7)) == (
        "too many blobs in transaction: have 7, permitted 6"
    )
    cells = rlp.encode([body, 1, [blob], [commitment], [proof] * 128]).hex()
    assert refusal("0x03" + cells) == "KZG verification error: invalid blob cell proofs"
    assert refusal("0x03" + rlp.encode([body, [blob[:-1]], [commitment], [proof]]).hex()) == (
        "rlp: sidecar blobs[0] is 131071 bytes, expected 131072"
    )
    # nothing was admitted
    assert rpc(engine_node.url, "txpool_status", [])["result"] == {
        "pending": "0x0",
        "queued": "0x0",
    }


def test_dev_node_mines_a_blob_transaction_sent_with_web3(w3):
    """web3.py and eth-account as a dApp uses them: sign with blobs, send, wait."""
    account = Account.from_key(DEV_KEYS[2])
    tx = {
        "type": 3,
        "chainId": CHAIN_ID,
        "nonce": w3.eth.get_transaction_count(account.address),
        "to": RECIPIENT,
        "value": 0,
        "gas": 21000,
        "maxFeePerGas": 10**10,
        "maxPriorityFeePerGas": 10**9,
        "maxFeePerBlobGas": int(w3.eth.blob_base_fee) * 2,
    }
    signed = account.sign_transaction(tx, blobs=[blob_of(5), blob_of(6)])
    tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60)
    assert receipt.status == 1 and receipt["blobGasUsed"] == 2 * 131072
    mined = w3.eth.get_transaction(tx_hash)
    assert len(mined["blobVersionedHashes"]) == 2
    assert w3.eth.get_block(receipt.blockNumber)["blobGasUsed"] == 2 * 131072
