#!/usr/bin/env bash
# The containerized comparison: builds the image, creates the server
# containers, runs loadgen (which starts and stops them one style at a time)
# and leaves the report in results/<name>/report.md. Always tears down.
#
#   deploy/compose.sh [--host] [--profile smoke|quick|full|perf] [--name NAME]
#                     [--server-cpu-quota F]
#
# --host uses host networking (docker-compose.host.yml) instead of the
# default bridge network; bridging costs throughput, and the report says
# which mode ran. --server-cpu-quota F gives each server container F CPUs
# through CFS bandwidth with a 10 ms period, as `loadgen compare
# --server-cpu-quota F` gives a server process (the report reads it back).
set -euo pipefail
cd "$(dirname "$0")/.."
file=docker-compose.yml
export C10K_PROFILE=quick C10K_RUN="compose-$(date -u +%Y%m%dT%H%M%SZ)"
while [ $# -gt 0 ]; do
  case "$1" in
    --host) file=docker-compose.host.yml ;;
    --profile) C10K_PROFILE="$2"; shift ;;
    --name) C10K_RUN="$2"; shift ;;
    --server-cpu-quota)
      if ! quota_us=$(awk -v q="$2" 'BEGIN { if (q !~ /^[0-9]*\.?[0-9]+$/ || q < 0.1) exit 1; printf "%d", q * 10000 }'); then
        echo "$0: --server-cpu-quota: $2 is not a number of CPUs from 0.1 up" >&2; exit 2
      fi
      export C10K_SERVER_CPU_QUOTA_US=$quota_us; shift ;;
    *) echo "usage: $0 [--host] [--profile smoke|quick|full|perf] [--name NAME] [--server-cpu-quota F]" >&2; exit 2 ;;
  esac
  shift
done
compose() { docker-compose -f "$file" -p c10k "$@"; }
. deploy/loadgen-user.sh
export_docker_gid

deploy/build-image.sh
loadgen_writable "results/$C10K_RUN"
trap 'compose down -v --remove-orphans >/dev/null 2>&1 || true' EXIT
compose down -v --remove-orphans >/dev/null 2>&1 || true
compose up --no-start
if ! compose up --exit-code-from loadgen loadgen; then
  echo "compose: the comparison failed; container logs follow" >&2
  compose logs --no-color >&2 || true
  exit 1
fi
echo "report: results/$C10K_RUN/report.md"
