#!/usr/bin/env bash
# Several loadgen instances against one server container at once, their
# results merged exactly (histograms added): the multi-instance mode.
#
#   deploy/compose-parts.sh [--host] [--instances N] [--style STYLE] [--duration 10s] [--conns 50]
set -euo pipefail
cd "$(dirname "$0")/.."
file=docker-compose.yml instances=3 style=reactor
export C10K_PART_DURATION=10s C10K_PART_CONNS=50 C10K_RUN="parts-$(date -u +%Y%m%dT%H%M%SZ)"
while [ $# -gt 0 ]; do
  case "$1" in
    --host) file=docker-compose.host.yml ;;
    --instances) instances="$2"; shift ;;
    --style) style="$2"; shift ;;
    --duration) C10K_PART_DURATION="$2"; shift ;;
    --conns) C10K_PART_CONNS="$2"; shift ;;
    --name) C10K_RUN="$2"; shift ;;
    *) echo "usage: $0 [--host] [--instances N] [--style STYLE] [--duration D] [--conns N] [--name NAME]" >&2; exit 2 ;;
  esac
  shift
done
if [ "$file" = docker-compose.host.yml ]; then
  port=$(grep -A3 "container_name: c10k-$style\$" "$file" | grep -o '0.0.0.0:[0-9]*' | cut -d: -f2)
  export C10K_PART_TARGET="127.0.0.1:$port"
else
  export C10K_PART_TARGET="c10k-$style:7000"
fi
compose() { docker-compose -f "$file" -p c10k "$@"; }
. deploy/loadgen-user.sh
export_docker_gid
[ "${C10K_SKIP_BUILD:-}" = 1 ] || deploy/build-image.sh
loadgen_writable "results/$C10K_RUN"
trap 'compose --profile parts down -v --remove-orphans >/dev/null 2>&1 || true' EXIT
compose up -d "$style"
compose --profile parts up --scale "loadgen-part=$instances" loadgen-part
compose run --rm --entrypoint /loadgen loadgen merge "/results/$C10K_RUN" --format json --out "/results/$C10K_RUN/merged.json.out"
echo "merged: results/$C10K_RUN/merged.json.out (parts: results/$C10K_RUN/part-*.json)"
