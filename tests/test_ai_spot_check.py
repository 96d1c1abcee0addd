"""Validators that run sidecars re-execute a sample of attested calls and report
disagreements: in the log, through ``sibyl_disagreements`` and as a metric."""

import urllib.request
from concurrent import futures

import grpc
import pytest
from ai_chain import (
    DEV_EXECUTOR,
    SHAPE,
    TORCH_ID,
    Wallet,
    calldata,
    deploy_consumer,
    head,
    shut_down,
    wait_until,
)
from eth_hash.auto import keccak
from eth_keys import keys
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from nodes import DEV_KEYS, REPO, NodeProcess, free_port, rpc

from sidecars.attestation import attestation_digest, sign_digest
from sidecars.client import SERVICE_NAME
from sidecars.protocol import sidecar_pb2

LIAR_KEY = keys.PrivateKey(keccak(b"a sidecar that disagrees"))


class DisagreeingSidecar:
    """Serves the torch MLP's id, but answers every call with a different (well-signed)
    output: what a validator's honest model would look like next to a lying executor."""

    def __init__(self) -> None:
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        handlers = {
            "Info": grpc.unary_unary_rpc_method_handler(self.info),
            "Execute": grpc.unary_unary_rpc_method_handler(self.execute),
        }
        self.server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(SERVICE_NAME, handlers),)
        )
        checker = health.HealthServicer()
        checker.set(SERVICE_NAME, health_pb2.HealthCheckResponse.SERVING)
        checker.set("", health_pb2.HealthCheckResponse.SERVING)
        health_pb2_grpc.add_HealthServicer_to_server(checker, self.server)
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    def info(self, request: bytes, context) -> bytes:
        return sidecar_pb2.InfoReply(
            runtime="disagreeing",
            model_ids=[TORCH_ID],
            executor=LIAR_KEY.public_key.to_canonical_address(),
            capabilities=["INFER"],
        ).SerializeToString()

    def execute(self, raw: bytes, context) -> bytes:
        request = sidecar_pb2.ExecuteRequest.FromString(raw)
        output = b"\x00" * 31 + b"\x20" + b"\x00" * 32  # an empty int256[]: not the model's
        digest = attestation_digest(
            request.chain_id,
            request.precompile,
            request.model_id,
            keccak(request.input),
            keccak(output),
            request.context,
        )
        return sidecar_pb2.ExecuteReply(
            status=sidecar_pb2.STATUS_OK,
            output=output,
            signature=sign_digest(LIAR_KEY, digest),
            executor=LIAR_KEY.public_key.to_canonical_address(),
        ).SerializeToString()


@pytest.fixture(scope="module")
def nodes(tmp_path_factory):
    root = tmp_path_factory.mktemp("spot")
    producer_config = root / "producer.toml"
    producer_config.write_text(
        '[[sidecars]]\nname = "mlp"\nruntime = "torch"\n'
        f'model = "{REPO / "genesis/models/mlp.pt"}"\n'
        f'executor_key = "{REPO / "genesis/dev-executor.key"}"\n'
    )
    producer = NodeProcess(
        root / "producer",
        ["--dev", "--config", str(producer_config), "--sidecars", "process"],
    ).start(timeout=120)
    liar = DisagreeingSidecar()
    metrics_port = free_port()
    validator_config = root / "validator.toml"
    validator_config.write_text(
        f'spot_check_rate = 1.0\n[[sidecars]]\nname = "liar"\naddress = "127.0.0.1:{liar.port}"\n'
    )
    validator = NodeProcess(
        root / "validator",
        ["--dev", "--follow", producer.url, "--config", str(validator_config),
         "--metrics-port", str(metrics_port)],
    ).start()  # fmt: skip
    yield producer, validator, metrics_port
    shut_down(validator)
    shut_down(producer)
    liar.server.stop(0)


def test_validator_reports_an_attested_output_its_own_sidecar_disagrees_with(nodes):
    producer, validator, metrics_port = nodes
    wallet = Wallet(producer.w3(), DEV_KEYS[0])
    consumer = deploy_consumer(wallet, TORCH_ID)
    receipt = wallet.send(
        consumer.address, calldata(consumer, "predict", [1, 2, 3, 4], SHAPE), gas=2_000_000
    )
    assert receipt.status == 1 and consumer.functions.predictions().call() == 1
    wait_until(lambda: head(validator.url) >= receipt.blockNumber, "the validator to import")

    found = wait_until(
        lambda: rpc(validator.url, "sibyl_disagreements")["result"], "a disagreement report"
    )
    assert found[0]["transactionHash"] == receipt.transactionHash.to_0x_hex()
    assert found[0]["modelId"] == "0x" + TORCH_ID.hex()
    assert found[0]["signers"] == [DEV_EXECUTOR]
    assert found[0]["attestedOutput"] != found[0]["localOutput"]
    assert "attested output disagrees" in validator.log()
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics") as response:
        assert "sibyl_ai_disagreements_total 1" in response.read().decode()
    # a disagreement is reported, not a reason to refuse the block
    assert validator.w3().eth.get_block(receipt.blockNumber)["hash"] == receipt.blockHash
