#!/usr/bin/env bash
# Holds the `epoll` reference against a minimal C epoll echo server
# (benches/c/epoll_echo.c): builds it with the system `cc` into target/c/,
# builds loadgen and servers, and runs `loadgen compare` with the C server as
# an --external row. With the perf profile (the default here) every server
# runs in a cgroup with 0.25 CPU and each row is measured side by side with a
# fresh epoll server, 3 rounds: read the "vs epoll" ratios of c-epoll.
#
# usage: benches/c/build_and_compare.sh [extra `loadgen compare` flags]
#   STYLES=epoll,reactor (default)   OUT=target/c/compare-<UTC time> (default)
#   e.g. unquota'd, one after the other in interleaved rounds:
#   benches/c/build_and_compare.sh --server-cpu-quota none
# Bounded: compare is given 30 min, then SIGINT (it stops its servers and
# removes its cgroups on SIGINT), then SIGKILL 30 s later.
set -euo pipefail
cd "$(dirname "$0")/../.."
styles=${STYLES:-epoll,reactor}
out=${OUT:-target/c/compare-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p target/c
cc -O2 -Wall -Wextra -Werror -o target/c/epoll_echo benches/c/epoll_echo.c
cargo build --release -p loadgen -p servers
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
status=0
timeout --signal=INT --kill-after=30 1800 target/release/loadgen compare \
  --profile perf --styles "$styles" --server-bin target/release/servers \
  --external "c-epoll=exec $PWD/target/c/epoll_echo {port}" --out "$out" "$@" || status=$?
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "report: $out/report.md (the c-epoll (external) row against epoll)"
exit "$status"
