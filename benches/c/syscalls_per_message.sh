#!/usr/bin/env bash
# System calls and context switches per echoed message of one server, no
# quota: the server pinned to CPU 0, loadgen to CPU 1, `perf stat` on the
# server's process for the whole load (connects and warm-up included, which
# at these rates is well under 1% of the calls).
#
# usage: benches/c/syscalls_per_message.sh STYLE|CMD CONNS [SECONDS]
#   STYLE is a `servers` style (epoll, reactor, ...); anything with a space
#   is run as a command with {port} replaced (e.g. "target/c/epoll_echo {port}").
# Prints one line: messages (the server's bytes_echoed / 64, loadgen's
# message size), then per message: system calls, context switches, reads
# (of which EAGAIN), writes, epoll_wait calls. STRACE=1 adds `strace -c`'s
# table, which names the calls but slows the server (its counts differ).
# Needs root (perf on another process, tracefs) and target/release/{servers,
# loadgen}. Bounded: it stops what it starts.
set -euo pipefail
cd "$(dirname "$0")/../.."
what=$1 conns=$2 secs=${3:-5}
mountpoint -q /sys/kernel/tracing || mount -t tracefs nodev /sys/kernel/tracing
port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
if [[ $what == *" "* ]]; then
  taskset -c 0 ${what//\{port\}/$port} >"$tmp/server.out" 2>"$tmp/server.err" &
else
  taskset -c 0 target/release/servers "$what" --addr "127.0.0.1:$port" >"$tmp/server.out" 2>"$tmp/server.err" &
fi
spid=$!; pids+=("$spid")
for _ in $(seq 100); do
  if (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; then break; fi
  sleep 0.05
done
# The reads that found nothing (EAGAIN, -11) are counted apart: they are the
# call a lean edge-triggered server does not make.
perf stat -x, -e raw_syscalls:sys_enter,context-switches \
  -e syscalls:sys_enter_read,syscalls:sys_enter_recvfrom \
  -e syscalls:sys_exit_read --filter 'ret == -11' -e syscalls:sys_exit_recvfrom --filter 'ret == -11' \
  -e syscalls:sys_enter_write,syscalls:sys_enter_sendto,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_epoll_pwait -p "$spid" -o "$tmp/perf" -- sleep $((secs + 2)) &
ppid=$!; pids+=("$ppid")
strace_on=${STRACE:-0}
if [[ $strace_on == 1 ]]; then
  strace -c -f -p "$spid" -o "$tmp/strace" 2>/dev/null & stpid=$!; pids+=("$stpid")
fi
taskset -c 1 target/release/loadgen run --addr "127.0.0.1:$port" --conns "$conns" \
  --duration "${secs}s" --warmup 1s >"$tmp/run.txt"
wait "$ppid" || true
if [[ $strace_on == 1 ]]; then kill -INT "$stpid"; wait "$stpid" 2>/dev/null || true; fi
kill -INT "$spid"; wait "$spid" 2>/dev/null || true
# Messages: the server's own count of echoed bytes over loadgen's 64-byte
# messages, for the same span perf counted (warm-up included).
bytes=$(grep -o 'bytes_echoed=[0-9]*' "$tmp/server.err" | cut -d= -f2 || true)
if [[ -z $bytes ]]; then bytes=$(( $(grep -o '([0-9]* messages)' "$tmp/run.txt" | tr -dc 0-9) * 64 )); fi
calls=$(grep raw_syscalls "$tmp/perf" | cut -d, -f1)
cs=$(grep context-switches "$tmp/perf" | cut -d, -f1)
rate=$(grep -o '[0-9]* msg/s' "$tmp/run.txt" | head -1)
python3 - "$tmp/perf" "$bytes" "$what" "$conns" "$rate" <<'PY'
import sys
perf, nbytes, what, conns, rate = sys.argv[1:]
m = int(nbytes) / 64
c = {}
for line in open(perf):
    f = line.strip().split(",")
    if len(f) > 2 and f[0].isdigit():
        c[f[2]] = c.get(f[2], 0) + int(f[0])
g = lambda k: c.get(k, 0) / m
reads = g("syscalls:sys_enter_read") + g("syscalls:sys_enter_recvfrom")
eagain = g("syscalls:sys_exit_read") + g("syscalls:sys_exit_recvfrom")
writes = g("syscalls:sys_enter_write") + g("syscalls:sys_enter_sendto")
print(f"{what} conns={conns} msgs={m:.0f} ({rate}) calls/msg={g('raw_syscalls:sys_enter'):.2f} "
      f"cs/msg={g('context-switches'):.4f} reads/msg={reads:.2f} (EAGAIN {eagain:.2f}) "
      f"writes/msg={writes:.2f} epoll_wait/msg={g("syscalls:sys_enter_epoll_wait") + g("syscalls:sys_enter_epoll_pwait"):.3f}")
PY
if [[ $strace_on == 1 ]]; then head -12 "$tmp/strace"; fi
