"""What a blob transaction in its network form costs the pool before admission.

For 1 and 6 blobs, in both sidecar forms (EIP-4844 blob proofs, EIP-7594 cell proofs as
eth-account sends them), the median time of splitting the network form and checking
versioned hashes and KZG proofs (chain.blobs), beside the baseline every transaction
pays: recovering its sender from the signature. Also the one-time load of the trusted
setup (on the first blob transaction a node sees). Prints JSON lines.

    python bench/blob_bench.py [--rounds 20]
"""

import argparse
import json
import os
import time
from statistics import median

import ckzg
import rlp
from eth.precompiles.point_evaluation import kzg_to_versioned_hash
from eth_account import Account
from eth_utils import to_checksum_address

from chain.blobs import split_network_form, trusted_setup, validate_sidecar
from chain.startup import prepare_process
from chain.vm import ChainConfig, decode_transaction, recover_sender, vm_class_at

KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
CHAIN_ID = 19183


def blob(seed: int) -> bytes:
    return b"".join(bytes([0]) + bytes([seed, i % 256]) * 15 + bytes([seed]) for i in range(4096))


def network_forms(count: int, setup: object) -> dict[str, bytes]:
    blobs = [blob(seed) for seed in range(count)]
    commitments = [bytes(ckzg.blob_to_kzg_commitment(b, setup)) for b in blobs]
    proofs = [
        bytes(ckzg.compute_blob_kzg_proof(b, c, setup))
        for b, c in zip(blobs, commitments, strict=True)
    ]
    cell_proofs = [bytes(p) for b in blobs for p in ckzg.compute_cells_and_kzg_proofs(b, setup)[1]]
    to = to_checksum_address("0x" + "c1" * 20)
    signed = Account.from_key(KEY).sign_transaction(
        {
            "type": 3, "chainId": CHAIN_ID, "nonce": 0, "to": to, "value": 0,
            "gas": 21000, "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9,
            "maxFeePerBlobGas": 10**9,
            "blobVersionedHashes": [kzg_to_versioned_hash(c) for c in commitments],
        }
    )  # fmt: skip
    body = rlp.decode(bytes(signed.raw_transaction[1:]))
    return {
        "canonical": bytes(signed.raw_transaction),
        "proofs": b"\x03" + rlp.encode([body, blobs, commitments, proofs]),
        "cell_proofs": b"\x03" + rlp.encode([body, 1, blobs, commitments, cell_proofs]),
    }


def timed(fn, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    prepare_process()
    start = time.perf_counter()
    setup = trusted_setup()
    load_ms = round((time.perf_counter() - start) * 1000, 1)
    print(json.dumps({"metric": "kzg_setup_load_ms", "value": load_ms}))
    vm_class = vm_class_at(ChainConfig(CHAIN_ID, 0, 0, 0), 1)
    for count in (1, 6):
        forms = network_forms(count, setup)

        def recover(raw: bytes = forms["canonical"]) -> None:
            recover_sender(decode_transaction(vm_class, raw))

        baseline = timed(recover, args.rounds)
        for form in ("proofs", "cell_proofs"):

            def check(raw: bytes = forms[form]) -> None:
                canonical, sidecar = split_network_form(raw)
                validate_sidecar(decode_transaction(vm_class, canonical), sidecar)

            value = timed(check, args.rounds)
            line = {
                "metric": "blob_sidecar_check_ms",
                "blobs": count,
                "form": form,
                "bytes": len(forms[form]),
                "value": round(value, 3),
                "baseline_value": round(baseline, 3),
                "baseline": "sender recovery",
                "loadavg_1m": round(os.getloadavg()[0], 2),
            }
            print(json.dumps(line))


if __name__ == "__main__":
    main()
