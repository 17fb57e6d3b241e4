#!/usr/bin/env bash
# Builds the c10k-echo:latest image (or $C10K_IMAGE) FROM scratch around
# statically linked `servers` and `loadgen` built here by cargo: no base
# image is pulled. Cargo's target directory is $CARGO_TARGET_DIR when set
# (relative to the repository, as cargo reads it), else target/.
set -euo pipefail
cd "$(dirname "$0")/.."
target=x86_64-unknown-linux-gnu
image=${C10K_IMAGE:-c10k-echo:latest}
out=${CARGO_TARGET_DIR:-target}
echo "== static build (glibc, crt-static)"
RUSTFLAGS='-C target-feature=+crt-static' cargo build --release --locked --target "$target" -p servers -p loadgen
context=$out/docker-context
rm -rf "$context" && mkdir -p "$context"
cp "$out/$target/release/servers" "$out/$target/release/loadgen" "$context/"
cp deploy/Dockerfile "$context/Dockerfile"
echo "== docker build (FROM scratch) -> $image"
docker build --quiet --tag "$image" "$context"
