"""The manager in docker mode, against a real engine (start one with .ci/docker-up).

Skipped, with the reason, only where no Docker engine answers. Where one answers, the
sidecar image must have been built (``.ci/docker-up`` does both).
"""

import dataclasses
import os
import time
import uuid

import eth_abi
import pytest
from eth_hash.auto import keccak
from sidecar_helpers import CHAIN_ID, dev_spec, wait_until

from sidecars.abi import INFER_ADDRESS
from sidecars.attestation import attestation_digest, recover_signer, sync_context
from sidecars.config import DEV_EXECUTOR_KEY
from sidecars.keys import load_key
from sidecars.manager import DEFAULT_IMAGE, SidecarManager, SidecarStartError

pytestmark = pytest.mark.docker

CONTEXT = sync_context(keccak(b"tx"), 0)
EXECUTOR = load_key(DEV_EXECUTOR_KEY).public_key.to_canonical_address()


@pytest.fixture(scope="module")
def engine():
    docker = pytest.importorskip("docker")
    try:
        client = docker.from_env(timeout=30)
        client.ping()
    except Exception as exc:
        where = os.environ.get("DOCKER_HOST", "the default socket")
        pytest.skip(f"no Docker engine answers at {where} ({type(exc).__name__}); .ci/docker-up")
    try:
        client.images.get(DEFAULT_IMAGE)
    except docker.errors.ImageNotFound:
        pytest.fail(f"a Docker engine answers but image {DEFAULT_IMAGE} is missing: .ci/docker-up")
    return client


@pytest.fixture
def owner(engine):
    owner = f"test-{uuid.uuid4().hex[:8]}"
    yield owner
    for container in engine.containers.list(all=True, filters={"label": f"sibyl.owner={owner}"}):
        container.remove(force=True)


def containers_of(engine, owner):
    return engine.containers.list(all=True, filters={"label": f"sibyl.owner={owner}"})


def execute(manager, spec):
    data = eth_abi.encode(
        ["bytes32", "int256[]", "uint32[]", "uint8"], [spec.model_id, [5, 6, 7, 8], [1, 4], 1]
    )
    result = manager.pool.execute(INFER_ADDRESS, spec.model_id, data, CONTEXT, CHAIN_ID)
    if result.status == "ok":
        digest = attestation_digest(
            CHAIN_ID, INFER_ADDRESS, spec.model_id, keccak(data), keccak(result.output), CONTEXT
        )
        assert recover_signer(digest, result.signature) == EXECUTOR
    return result


def test_docker_sidecars_run_labelled_on_loopback_with_init(engine, owner):
    specs = [dev_spec("torch"), dev_spec("onnx")]
    manager = SidecarManager(specs, mode="docker", owner=owner)
    manager.start()
    try:
        for entry, spec in zip(manager.status(), specs, strict=True):
            assert entry["runtime"] == "docker" and entry["healthy"]
            assert entry["models"] == ["0x" + spec.model_id.hex()]
            assert execute(manager, spec).status == "ok"
        containers = {c.labels["sibyl.sidecar"]: c for c in containers_of(engine, owner)}
        assert set(containers) == {spec.name for spec in specs}
        for spec in specs:
            attrs = containers[spec.name].attrs
            host = attrs["HostConfig"]
            assert host["Init"] is True
            (binding,) = host["PortBindings"]["50051/tcp"]
            assert binding["HostIp"] == "127.0.0.1"
            assert manager.status()[specs.index(spec)]["endpoint"].endswith(binding["HostPort"])
            mounts = {m["Destination"]: m for m in attrs["Mounts"]}
            assert mounts["/keys/executor.key"]["RW"] is False
            assert mounts[f"/models/{spec.model.name}"]["RW"] is False
            assert attrs["Config"]["Labels"]["sibyl.owner"] == owner
    finally:
        manager.stop()
    assert containers_of(engine, owner) == []


def test_killed_container_is_restarted(engine, owner):
    spec = dev_spec("onnx")
    manager = SidecarManager([spec], mode="docker", owner=owner)
    manager.start()
    try:
        assert execute(manager, spec).status == "ok"
        (container,) = containers_of(engine, owner)
        container.kill()
        started = time.monotonic()
        failed = execute(manager, spec)
        assert failed.status == "failed" and time.monotonic() - started < 1.0
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and execute(manager, spec).status != "ok":
            time.sleep(0.2)
        assert execute(manager, spec).status == "ok"
        (replacement,) = containers_of(engine, owner)
        assert replacement.id != container.id
        assert wait_until(lambda: manager.status()[0]["healthy"])
    finally:
        manager.stop()
    assert containers_of(engine, owner) == []


def test_stale_containers_of_the_same_owner_are_removed_at_start(engine, owner):
    stale = engine.containers.create(
        DEFAULT_IMAGE, ["--help"], labels={"sibyl.owner": owner, "sibyl.sidecar": "old"}
    )
    other = engine.containers.create(
        DEFAULT_IMAGE, ["--help"], labels={"sibyl.owner": owner + "-other"}
    )
    try:
        spec = dev_spec("onnx")
        manager = SidecarManager([spec], mode="docker", owner=owner)
        manager.start()
        try:
            names = {c.labels["sibyl.sidecar"] for c in containers_of(engine, owner)}
            assert names == {spec.name}
            other.reload()  # another owner's container is left alone
        finally:
            manager.stop()
    finally:
        other.remove(force=True)
    with pytest.raises(Exception, match="No such container"):
        stale.reload()


def test_gpu_sidecar_asks_docker_for_gpus(engine, owner):
    spec = dataclasses.replace(dev_spec("onnx"), gpu=True)
    manager = SidecarManager([spec], mode="docker", owner=owner, start_timeout=30)
    try:
        manager.start()
    except SidecarStartError as error:  # an engine without GPUs refuses the device request
        assert "could not select device driver" in str(error) and "gpu" in str(error)
        assert containers_of(engine, owner) == []
    else:  # an engine with GPUs runs it
        (container,) = containers_of(engine, owner)
        (request,) = container.attrs["HostConfig"]["DeviceRequests"]
        assert request["Count"] == -1 and request["Capabilities"] == [["gpu"]]
        manager.stop()
