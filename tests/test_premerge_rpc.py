"""Calls, estimates, access lists, traces, simulations and the pool on a plain chain's
proof-of-work blocks run the rules of the block they run in, chosen as the importer
chooses them (chain.vm.child_fork): a call on block N runs in block N + 1, so on the
history of ``tests/pow_history.py`` a call on block 1 runs Homestead's rules, one on
block 7 Berlin's, one on block 8 London's, and one on the terminal block 10 (whose
child is a proof-of-stake block) Prague's. The reference for gas is py-evm's own fork
VMs, without any of the node's configuration."""

import json
import time

from eth.chains.base import MiningChain
from eth.db.atomic import AtomicDB
from eth.vm.forks import BerlinVM, FrontierVM, HomesteadVM, IstanbulVM, LondonVM, PragueVM
from eth_account import Account
from eth_keys import keys
from nodes import DEV_KEYS, NodeProcess, import_blocks, rpc, sibyl
from pow_history import CHAIN_ID, DEPOSIT, POW_BLOCKS, RECIPIENT, SYSTEM, make_history

from chain.vm import fork_since

KEY = DEV_KEYS[0]
SENDER = Account.from_key(KEY)
BERLIN_HEAD = 7  # phase one serves blocks 0-7: the next block is Berlin's
# initcodes run by a creation call, each using one opcode and returning its result
OPCODES = {  # opcode: (its first fork, its byte, initcode, what a call returns)
    "PUSH0": ("shanghai", 0x5F, "5f5ff3", "0x"),
    "BASEFEE": ("london", 0x48, "4860005260206000f3", "0x" + "00" * 32),  # calls: base fee 0
    "CHAINID": ("istanbul", 0x46, "4660005260206000f3", "0x" + f"{CHAIN_ID:064x}"),
    "SHL": ("constantinople", 0x1B, "600160011b60005260206000f3", "0x" + f"{2:064x}"),
    "RETURNDATASIZE": ("byzantium", 0x3D, "3d60005260206000f3", "0x" + "00" * 32),
}
# SLOAD a slot, SSTORE it, SELFDESTRUCT: gas that EIP-150, 1884, 2200, 2929 and 3529
# change, and a refund that London takes away
GAS_CODE = bytes.fromhex("6000546001600055" + "30ff")
REFERENCE_VMS = {"frontier": FrontierVM, "homestead": HomesteadVM, "istanbul": IstanbulVM,
                 "berlin": BerlinVM, "london": LondonVM, "prague": PragueVM}  # fmt: skip


def _fork_of_child(history, number: int) -> str:
    """The fork of the block after ``number``: block 11 on is Prague's."""
    return history.forks[number + 1] if number < POW_BLOCKS else "prague"


def _call(url: str, method: str, call: dict, number: int) -> dict:
    return rpc(url, method, [call, hex(number)])


def reference_gas(vm_class, data: bytes) -> tuple[int, int]:
    """The gas py-evm's own ``vm_class`` (none of the node's configuration) charges a
    creation transaction with ``data``, and the gas it consumes before its refund (the
    least gas limit it runs with)."""
    chain_class = MiningChain.configure(vm_configuration=((0, vm_class),), chain_id=CHAIN_ID)
    merged = fork_since(vm_class.fork, "paris")
    chain = chain_class.from_genesis(
        AtomicDB(),
        {"difficulty": 0 if merged else 1, "gas_limit": 30_000_000, "timestamp": 1},
        {
            bytes.fromhex(SENDER.address[2:]): {
                "balance": 10**21,
                "nonce": 0,
                "code": b"",
                "storage": {},
            }
        },
    )
    vm = chain.get_vm()
    unsigned = vm.create_unsigned_transaction(
        nonce=0, gas_price=10**10, gas=1_000_000, to=b"", value=0, data=data
    )
    _, receipt, computation = chain.apply_transaction(
        unsigned.as_signed_transaction(keys.PrivateKey(bytes.fromhex(KEY[2:])))
    )
    return receipt.gas_used, unsigned.gas - computation.get_gas_remaining()


def _raw(tx: dict) -> str:
    return "0x" + bytes(SENDER.sign_transaction(tx).raw_transaction).hex()


def test_rpc_on_proof_of_work_blocks_runs_their_forks_rules(tmp_path):
    start = int(time.time()) + 3600  # block n has timestamp start + n (see pow_history)
    first_pos = start + POW_BLOCKS + 1
    post_merge = {"shanghaiTime": first_pos, "cancunTime": first_pos, "pragueTime": first_pos,
                  "depositContractAddress": DEPOSIT}  # fmt: skip
    history = make_history(KEY, start, post_merge, SYSTEM)
    genesis = tmp_path / "genesis.json"
    genesis.write_text(json.dumps(history.genesis))
    (tmp_path / "early.rlp").write_bytes(b"".join(history.blocks[:BERLIN_HEAD]))
    (tmp_path / "late.rlp").write_bytes(b"".join(history.blocks[BERLIN_HEAD:]))
    datadir = tmp_path / "data"
    early = import_blocks(genesis, tmp_path / "early.rlp", datadir)
    assert early.returncode == 0, early.stderr

    # phase one: the head is block 7, the pool and "pending" are at Berlin's rules
    node = NodeProcess(datadir, ["--sidecars", "none"]).start()
    try:
        base = {"to": RECIPIENT, "value": 1, "gas": 21_000, "nonce": BERLIN_HEAD,
                "chainId": CHAIN_ID}  # fmt: skip
        dynamic = _raw({**base, "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9})
        refused = rpc(node.url, "eth_sendRawTransaction", [dynamic])
        assert refused["error"]["message"] == (
            "transaction type not supported: type 2 rejected, pool not yet in London"
        )
        access_list_tx = _raw({**base, "gasPrice": 10**9, "accessList": []})
        accepted = rpc(node.url, "eth_sendRawTransaction", [access_list_tx])
        assert accepted["result"].startswith("0x"), accepted
        basefee = {"data": "0x" + OPCODES["BASEFEE"][2]}
        for tag in ("latest", "pending"):
            answer = rpc(node.url, "eth_call", [basefee, tag])
            assert answer["error"]["message"] == "invalid opcode: opcode 0x48 not defined"
        # eth_gasPrice: no base fee before London, only the tip the blocks paid
        assert int(rpc(node.url, "eth_gasPrice")["result"], 16) == 10**9
    finally:
        node.kill()

    late = sibyl("import", str(tmp_path / "late.rlp"), "--datadir", str(datadir))
    assert late.returncode == 0, late.stderr
    # phase two: the whole history and one proof-of-stake block after it
    node = NodeProcess(datadir, ["--dev", "--block-time", "0", "--sidecars", "none"]).start()
    try:
        w3 = node.w3()
        tx = {"to": RECIPIENT, "value": 1, "gas": 21_000, "nonce": POW_BLOCKS,
              "chainId": CHAIN_ID, "maxFeePerGas": 10**10,
              "maxPriorityFeePerGas": 10**9}  # fmt: skip
        receipt = w3.eth.wait_for_transaction_receipt(
            w3.eth.send_raw_transaction(SENDER.sign_transaction(tx).raw_transaction), timeout=30
        )
        assert receipt["blockNumber"] == POW_BLOCKS + 1
        _check_opcodes(node.url, history)
        _check_gas(node.url, history)
        _check_access_lists(node.url)
        _check_simulation(node.url)
    finally:
        node.kill()


def _check_opcodes(url: str, history) -> None:
    """Each opcode fails on the blocks before its fork and works from its fork on, in
    eth_call, eth_estimateGas and debug_traceCall alike."""
    for number in range(POW_BLOCKS + 2):
        fork = _fork_of_child(history, number)
        for name, (first, opcode, code, result) in OPCODES.items():
            call = {"data": "0x" + code}
            answer = _call(url, "eth_call", call, number)
            estimate = _call(url, "eth_estimateGas", call, number)
            trace = _call(url, "debug_traceCall", call, number)["result"]
            if fork_since(fork, first):
                assert answer.get("result") == result, (number, fork, name, answer)
                assert "result" in estimate, (number, fork, name, estimate)
                assert not trace["failed"] and trace["returnValue"] == result
            else:
                message = f"invalid opcode: opcode {opcode:#x} not defined"
                assert answer["error"]["message"] == message, (number, fork, name, answer)
                assert message in estimate["error"]["message"], (number, fork, name, estimate)
                assert trace["failed"], (number, fork, name, trace)


def _check_gas(url: str, history) -> None:
    """The gas of the SLOAD/SSTORE/SELFDESTRUCT creation is what py-evm's fork VM charges,
    in debug_traceCall; eth_estimateGas finds the gas it needs before its refund, within
    geth's 1.5%."""
    call = {"data": "0x" + GAS_CODE.hex()}
    seen = {}
    for number in range(POW_BLOCKS + 2):
        fork = _fork_of_child(history, number)
        if fork not in REFERENCE_VMS or fork in seen:
            continue
        expected, needed = reference_gas(REFERENCE_VMS[fork], GAS_CODE)
        trace = _call(url, "debug_traceCall", call, number)["result"]
        assert trace["gas"] == expected, (number, fork, trace["gas"], expected)
        estimate = int(_call(url, "eth_estimateGas", call, number)["result"], 16)
        assert needed <= estimate <= needed * 1015 // 1000 + 1, (number, fork, estimate, needed)
        seen[fork] = expected
    # the forks differ: Homestead's creation premium, Istanbul's cheaper calldata and
    # dearer SLOAD, Berlin's cold slot, London's lost refund, Shanghai's initcode words
    assert len(set(seen.values())) == len(seen) == len(REFERENCE_VMS), seen


def _check_access_lists(url: str) -> None:
    """eth_createAccessList names the account a BALANCE read, at every era; its gas is
    the fork's, within eth_estimateGas's 1.5% (from Berlin on with the account listed:
    2,400 more for the list, and BALANCE costs 100 instead of a cold account's 2,600)."""
    code = bytes.fromhex("73" + RECIPIENT[2:] + "3150")  # PUSH20 RECIPIENT BALANCE POP
    listed = {"frontier": 0, "istanbul": 0, "berlin": 2400 + 100 - 2600, "prague": -100}
    for number, fork in ((0, "frontier"), (6, "istanbul"), (BERLIN_HEAD, "berlin"),
                         (POW_BLOCKS, "prague")):  # fmt: skip
        result = _call(url, "eth_createAccessList", {"data": "0x" + code.hex()}, number)
        assert result["result"]["accessList"] == [{"address": RECIPIENT, "storageKeys": []}]
        expected = reference_gas(REFERENCE_VMS[fork], code)[0] + listed[fork]
        used = int(result["result"]["gasUsed"], 16)  # eth_estimateGas's, with the list
        assert expected <= used <= expected * 1015 // 1000 + 1, (number, fork, used, expected)


def _check_simulation(url: str) -> None:
    """eth_simulateV1 on block 7 makes a Berlin block (no base fee, and BASEFEE is not an
    opcode) and then a London one; on block 10 a Prague block."""
    options = {"blockStateCalls": [{"calls": [{"data": "0x" + OPCODES["BASEFEE"][2]}]}] * 2}
    blocks = rpc(url, "eth_simulateV1", [options, hex(BERLIN_HEAD)])["result"]
    berlin, london = blocks
    assert berlin["difficulty"] != "0x0" and "baseFeePerGas" not in berlin
    assert berlin["calls"][0]["status"] == "0x0"
    assert "baseFeePerGas" in london and london["calls"][0]["status"] == "0x1"
    (prague,) = rpc(url, "eth_simulateV1", [{"blockStateCalls": options["blockStateCalls"][:1]},
                                            hex(POW_BLOCKS)])["result"]  # fmt: skip
    assert prague["difficulty"] == "0x0" and "requestsHash" in prague
    assert prague["calls"][0]["status"] == "0x1"
