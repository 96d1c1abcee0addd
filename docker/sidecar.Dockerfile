# The sidecar image: `python -m sidecars.serve` (what `sibyl sidecar serve` runs) with the
# torch (CPU), ONNX, embed and zk (ezkl) runtimes. It installs the package's base
# dependencies (gRPC, protobuf, coincurve, eth-keys, eth-abi, numpy, ezkl) and the
# runtimes' extras, not the node's (`node`: py-evm, LMDB, aiohttp...): a sidecar never
# imports the node.
#
# Built by .ci/docker-up from a staged context (see docs/sidecars.md, "Image"):
#   src/      pyproject.toml, README.md and the package folders
#   wheels/   the torch 2.13.0 CPU wheel (PyPI's default torch is a multi-GB CUDA build)
#   pip/      ca.crt (CA bundle pip trusts, for a TLS-intercepting proxy) and index-url
# The base image must be Debian bookworm or alike; python3 is installed when it lacks one.
# GPU hosts pass a CUDA-enabled torch wheel in wheels/ instead; nothing else changes.
ARG BASE_IMAGE=debian:bookworm-slim

FROM ${BASE_IMAGE} AS python
RUN python3 -c "import venv, ensurepip" 2>/dev/null || ( \
        apt-get update \
        && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
        && rm -rf /var/lib/apt/lists/* )

FROM python AS build
ARG EXTRAS=sidecars,embed
COPY pip/ /build/pip/
COPY wheels/ /build/wheels/
ENV PIP_CERT=/build/pip/ca.crt \
    PIP_FIND_LINKS=/build/wheels \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN python3 -m venv /opt/sibyl
COPY src/ /build/src/
RUN index=$(cat /build/pip/index-url) \
    && if [ ! -s /build/pip/ca.crt ]; then unset PIP_CERT; fi \
    && /opt/sibyl/bin/pip install ${index:+--index-url "$index"} \
        "/build/src[${EXTRAS}]"

FROM python
COPY --from=build /opt/sibyl /opt/sibyl
ENV PATH=/opt/sibyl/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1
EXPOSE 50051
ENTRYPOINT ["python3", "-m", "sidecars.serve"]
CMD ["--help"]
