# syntax=docker/dockerfile:1
#
# pgwarden container image.
#
#   docker build -t pgwarden .
#   docker run --rm -p 6432:6432 -p 9187:9187 \
#     -v "$PWD/proxy.toml:/etc/pgwarden/proxy.toml:ro" pgwarden
#
# Build stage: the Rust toolchain only (pg_query compiles PostgreSQL's own parser
# with the C compiler the Rust image has; its bindings come pregenerated from
# tools/pg_query-bindings, so no libclang). The build step is the one .ci/run
# performs, so CI exercises it: `cargo build --profile dist --locked` (the release
# build with whole-program optimisation; see Cargo.toml).
#
# Runtime stage: Debian slim with CA certificates only, running as uid 10001.
# In a container, listen on 0.0.0.0 (`[server] listen = "0.0.0.0:6432"`, or the
# environment override PGWARDEN__SERVER__LISTEN=0.0.0.0:6432); as a Kubernetes sidecar,
# keep 127.0.0.1. /etc/pgwarden holds policy.example.toml and proxy.toml.example;
# mount your proxy.toml (and policy) there, e.g. from a ConfigMap.

ARG RUST_IMAGE=rust:1-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --profile dist --locked \
 && install -m 0755 target/dist/pgwarden /usr/local/bin/pgwarden

FROM ${RUNTIME_IMAGE} AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 pgwarden \
 && useradd --system --uid 10001 --gid 10001 --no-create-home \
      --home-dir /nonexistent --shell /usr/sbin/nologin pgwarden \
 && install -d -o 10001 -g 10001 -m 0750 /var/lib/pgwarden
COPY --from=build /usr/local/bin/pgwarden /usr/local/bin/pgwarden
COPY policy.example.toml proxy.toml.example /etc/pgwarden/
LABEL org.opencontainers.image.title="pgwarden" \
      org.opencontainers.image.description="A guarded PostgreSQL proxy" \
      org.opencontainers.image.licenses="Apache-2.0"
# Audit files and other state go here (mount a volume; the root filesystem may be read-only).
WORKDIR /var/lib/pgwarden
USER 10001:10001
# 6432: PostgreSQL clients. 9187: admin API (/metrics, /healthz, /readyz, /holds).
EXPOSE 6432 9187
STOPSIGNAL SIGTERM
ENTRYPOINT ["pgwarden"]
CMD ["serve", "--config", "/etc/pgwarden/proxy.toml"]
