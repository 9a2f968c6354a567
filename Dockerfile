# syntax=docker/dockerfile:1
# One image per service, from this one file:
#   docker build --build-arg SERVICE=directory -t roster-directory:dev .
# (SERVICE is directory, staff or audit.) The image runs `roster-<SERVICE> serve`; the
# migration Job runs the same image with `migrate`.

ARG RUST_IMAGE=rust:1.95-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot

# What decides the dependency build, and nothing else: the manifests, the lock file, the
# patched crates under vendor/, the build scripts and the contracts they compile. Editing
# a source file leaves this stage's result unchanged, so the dependency layer below stays
# cached.
FROM ${RUST_IMAGE} AS manifests
WORKDIR /src
COPY . .
RUN find . -path ./vendor -prune -o -type f \
        ! -name Cargo.toml ! -name Cargo.lock ! -name build.rs ! -name '*.proto' \
        ! -name postgres_tests_cfg.rs -exec rm -f {} +

FROM ${RUST_IMAGE} AS build
ARG SERVICE=directory
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /build
COPY --from=manifests /src ./
# The dependencies, built once against empty crates standing in for the workspace's own.
RUN while read -r manifest; do \
        crate="$(dirname "$manifest")"; \
        mkdir -p "$crate/src"; \
        : > "$crate/src/lib.rs"; \
        echo 'fn main() {}' > "$crate/src/main.rs"; \
    done < <(find shared services tests -name Cargo.toml) \
    && cargo build --release --locked -p "roster-${SERVICE}" \
    && rm -rf shared/*/src services/*/src tests/*/src
COPY . .
# Copied sources can be older than the stand-ins' build: make Cargo rebuild the workspace's
# crates from them.
RUN find shared services tests -name '*.rs' -exec touch {} + \
    && cargo build --release --locked -p "roster-${SERVICE}" --bin "roster-${SERVICE}" \
    && mkdir -p /out \
    && cp "target/release/roster-${SERVICE}" /out/ \
    && ln -s "roster-${SERVICE}" /out/roster-service

# glibc and libgcc from Debian 12, as the build stage links against; no shell, no package
# manager. Its `nonroot` user is 65532, the uid the Kubernetes manifests run as.
FROM ${RUNTIME_IMAGE}
ARG SERVICE=directory
LABEL org.opencontainers.image.title="roster-${SERVICE}" \
      org.opencontainers.image.description="Roster ${SERVICE} service (gRPC); serve or migrate" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/ /usr/local/bin/
USER 65532:65532
# Nothing is written outside /tmp: configuration comes from the environment, keys from
# mounted files, data from PostgreSQL. A relative `data` directory (the development
# defaults) cannot be created here, so a missing KEK setting fails at start instead of
# sealing with a throwaway key.
WORKDIR /
ENTRYPOINT ["/usr/local/bin/roster-service"]
CMD ["serve"]
