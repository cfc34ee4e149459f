# syntax=docker/dockerfile:1
#
# Keydrop in a container: one static-ish binary on a distroless base.
#
#   docker build -t keydrop .
#   docker run --rm -e DATABASE_URL=… -e KEYDROP_KEKS_FILE=/run/secrets/keks \
#       -p 8080:8080 -p 127.0.0.1:8081:8081 keydrop
#
# Templates (askama) and the stylesheet (include_str!) are compiled into the
# binary, and migrations are embedded (sqlx::migrate!), so the runtime image
# holds nothing but the binary.

# ---- build ------------------------------------------------------------------
FROM rust:1-bookworm AS build
WORKDIR /src
# Queries are checked against the committed .sqlx/ data: no database at build time.
ENV SQLX_OFFLINE=true \
    CARGO_TERM_COLOR=never
COPY Cargo.toml Cargo.lock ./
COPY .sqlx ./.sqlx
COPY migrations ./migrations
COPY templates ./templates
COPY static ./static
COPY src ./src
# Cache mounts keep the registry and build artefacts between builds; the binary
# is copied out of the cached target directory so the next stage can see it.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin keydrop \
 && install -D -m 0755 target/release/keydrop /out/keydrop

# ---- runtime ----------------------------------------------------------------
# glibc, libgcc, CA certificates (provider checks and webhooks use TLS), tzdata,
# and a non-root user (uid 65532); no shell, no package manager.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/keydrop /usr/local/bin/keydrop
# MIMALLOC_ARENA_EAGER_COMMIT=0: the allocator (mimalloc) then returns the
# memory freed after start-up to the system instead of keeping it committed:
# idle RSS 15.5 MiB instead of 24.6 MiB (BENCHMARKS.md, issue 16).
ENV KEYDROP_PUBLIC_ADDR=0.0.0.0:8080 \
    KEYDROP_INTERNAL_ADDR=0.0.0.0:8081 \
    KEYDROP_LOG_FORMAT=json \
    MIMALLOC_ARENA_EAGER_COMMIT=0
USER nonroot:nonroot
# 8080: drop pages (behind your TLS proxy). 8081: staff API and /metrics —
# publish it on a private network only.
EXPOSE 8080 8081
# `keydrop healthcheck` GETs /healthz on the internal listener: no curl needed.
# Liveness only; /readyz (database, keys, migrations) is for load balancers.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["/usr/local/bin/keydrop", "healthcheck"]
# SIGTERM (docker stop) drains in-flight requests for KEYDROP_SHUTDOWN_TIMEOUT
# (30s by default); give docker stop a longer --time than that.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/keydrop"]
CMD ["serve"]
