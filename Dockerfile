# syntax=docker/dockerfile:1

# Bookworm, because the runtime below is Debian 12: a binary linked against a
# newer glibc would not start there.
FROM rust:1-bookworm AS build
WORKDIR /src
# Only what the release build reads; protox compiles proto/ in pure Rust, so
# no protoc is needed.
COPY Cargo.toml Cargo.lock build.rs ./
COPY proto ./proto
COPY src ./src
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin function-ecr-packages \
    && cp target/release/function-ecr-packages /function-ecr-packages

# glibc and libgcc for the Rust binary, nothing else; no shell.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /function-ecr-packages /function-ecr-packages
USER nonroot:nonroot
# gRPC for Crossplane; metrics are on 8080.
EXPOSE 9443 8080
ENTRYPOINT ["/function-ecr-packages"]
