# loaddensity container image: a release build, then a small non-root runtime.
#   docker build -t loaddensity:latest .
#   docker run --rm loaddensity:latest run /scripts/s.json ...
# The Kubernetes manifests in deploy/kubernetes/ run this image.

FROM rust:1-slim-bookworm AS build
WORKDIR /src
# Dependencies first, so that source edits do not rebuild them.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src/bin/loaddensity benches \
    && echo 'fn main() {}' > src/bin/loaddensity/main.rs \
    && touch src/lib.rs \
    && echo 'fn main() {}' > benches/line_protocol.rs \
    && cargo build --release --locked --bin loaddensity || true
COPY src ./src
COPY benches ./benches
RUN touch src/bin/loaddensity/main.rs src/lib.rs \
    && cargo build --release --locked --bin loaddensity \
    && strip target/release/loaddensity

FROM debian:bookworm-slim AS runtime
# CA certificates for https targets and sinks.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 loaddensity \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin loaddensity
COPY --from=build /src/target/release/loaddensity /usr/local/bin/loaddensity
USER 10001:10001
WORKDIR /tmp
ENTRYPOINT ["/usr/local/bin/loaddensity"]
CMD ["--help"]
