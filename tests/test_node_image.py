"""The node image of the top-level Dockerfile builds on a Debian base and serves a dev
chain. Skipped, with the reason, only where no Docker engine answers (.ci/docker-up
starts one and makes the ``sibyl-base:bookworm`` base image)."""

import os
import shutil
import time
import urllib.request
import uuid

import pytest
from nodes import REPO, free_port, rpc

pytestmark = pytest.mark.docker

BASE = "sibyl-base:bookworm"
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


@pytest.fixture(scope="module")
def engine():
    docker = pytest.importorskip("docker")
    try:
        client = docker.from_env(timeout=600)
        client.ping()
        client.images.get(BASE)
    except Exception as exc:
        where = os.environ.get("DOCKER_HOST", "the default socket")
        pytest.skip(f"no Docker engine with {BASE} at {where} ({type(exc).__name__})")
    return client


def test_node_image_builds_and_serves_a_dev_chain(engine, tmp_path):
    context = tmp_path / "context"
    shutil.copytree(
        REPO,
        context,
        ignore=shutil.ignore_patterns(".venv", ".git", "node_modules", "__pycache__", "tests"),
    )
    if os.path.exists(CA_BUNDLE):  # pip behind this machine's TLS proxy
        shutil.copy(CA_BUNDLE, context / "docker" / "certs" / "host.crt")
    proxies = {k: os.environ[k] for k in ("HTTPS_PROXY", "HTTP_PROXY") if os.environ.get(k)}
    tag = f"sibyl-node-test:{uuid.uuid4().hex[:8]}"
    engine.images.build(
        path=str(context), tag=tag, buildargs={"BASE_IMAGE": BASE, **proxies}, rm=True
    )
    port = free_port()
    container = engine.containers.run(
        tag, detach=True, init=True, ports={"8545/tcp": ("127.0.0.1", port)}
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                assert rpc(url, "eth_chainId")["result"] == hex(19183)
                break
            except (OSError, urllib.error.URLError):
                assert time.monotonic() < deadline, container.logs().decode()[-2000:]
                time.sleep(1)
        assert rpc(url, "eth_blockNumber")["result"] == "0x0"
    finally:
        container.remove(force=True)
        engine.images.remove(tag, force=True)
