#!/usr/bin/env bash
# Builds the c10k-echo:latest image FROM scratch around statically linked
# `servers` and `loadgen` built here by cargo: no base image is pulled.
set -euo pipefail
cd "$(dirname "$0")/.."
target=x86_64-unknown-linux-gnu
echo "== static build (glibc, crt-static)"
RUSTFLAGS='-C target-feature=+crt-static' cargo build --release --locked --target "$target" -p servers -p loadgen
context=target/docker-context
rm -rf "$context" && mkdir -p "$context"
cp "target/$target/release/servers" "target/$target/release/loadgen" "$context/"
cp deploy/Dockerfile "$context/Dockerfile"
echo "== docker build (FROM scratch)"
docker build --quiet --tag c10k-echo:latest "$context"
