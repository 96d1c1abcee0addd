# The node image: `sibyl` with its JSON-RPC (8545) and Engine API (8551) ports.
#
#   docker build -t sibyl .                                   # Debian + Python from the base
#   docker build --build-arg BASE_IMAGE=my-registry/debian:bookworm -t sibyl .
#   docker run -p 8545:8545 sibyl                             # a dev chain
#
# The node runs no models: sidecar containers are started beside it through the Docker
# engine (mount /var/run/docker.sock) or reached at remote addresses (see docker-compose.yml).
# Behind a TLS-intercepting proxy, put its CA certificate in docker/certs/*.crt first.
ARG BASE_IMAGE=debian:bookworm-slim

FROM ${BASE_IMAGE} AS python
RUN python3 -c "import venv, ensurepip" 2>/dev/null || ( \
        apt-get update \
        && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
        && rm -rf /var/lib/apt/lists/* )

FROM python AS build
COPY docker/certs/ /build/certs/
RUN cat /etc/ssl/certs/ca-certificates.crt /build/certs/*.crt > /build/ca.crt 2>/dev/null || true
ENV PIP_CERT=/build/ca.crt PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python3 -m venv /opt/sibyl
COPY pyproject.toml README.md /build/src/
COPY chain /build/src/chain
COPY rpc /build/src/rpc
COPY scheduler /build/src/scheduler
COPY sidecars /build/src/sidecars
COPY genesis /build/src/genesis
RUN /opt/sibyl/bin/pip install "/build/src[node]"

FROM python
COPY --from=build /opt/sibyl /opt/sibyl
ENV PATH=/opt/sibyl/bin:$PATH PYTHONUNBUFFERED=1
VOLUME /data
EXPOSE 8545 8551
ENTRYPOINT ["sibyl"]
CMD ["run", "--dev", "--datadir", "/data", "--http-addr", "0.0.0.0", "--sidecars", "none"]
