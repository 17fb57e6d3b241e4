#!/usr/bin/env python3
"""Why the perf profile measures each style side by side with epoll.

Usage (as root, cgroup v1, after `cargo build --release -p loadgen`):
    benches/side_by_side_noise.py STYLE_A STYLE_B ROUNDS CONNS [DURATION]

Measures the throughput ratio B/A two ways, interleaved round by round:
one after the other (each server alone with 0.5 CPU of CFS bandwidth) and
side by side (both at once with 0.25 CPU each, one `loadgen run` each).
Servers on CPU 0, loadgen on CPU 1. Prints every round and each way's
median, min, max and standard deviation. An A/A pair (epoll epoll) shows
the noise itself. Cgroups are named c10kexp_a/b and removed at the end.
"""
import json, os, signal, subprocess, sys, statistics as st
LG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target", "release", "loadgen")
A, B = sys.argv[1], sys.argv[2]
N = int(sys.argv[3]); CONNS = int(sys.argv[4]); DUR = sys.argv[5] if len(sys.argv) > 5 else "3s"
Q = 0.5
def cg(name, quota):
    for ctl in ("cpu", "cpuacct"):
        os.makedirs(f"/sys/fs/cgroup/{ctl}/{name}", exist_ok=True)
    open(f"/sys/fs/cgroup/cpu/{name}/cpu.cfs_period_us", "w").write("10000")
    open(f"/sys/fs/cgroup/cpu/{name}/cpu.cfs_quota_us", "w").write(str(int(quota * 10000)))
def put(name, pid):
    for ctl in ("cpu", "cpuacct"):
        open(f"/sys/fs/cgroup/{ctl}/{name}/cgroup.procs", "w").write(str(pid))
LIVE = []  # servers still running: stopped however the script ends

def start(style, name, quota):
    cg(name, quota)
    p = subprocess.Popen(["taskset", "-c", "0", LG, "serve", style, "--addr", "127.0.0.1:0"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    LIVE.append(p)
    line = p.stdout.readline()  # "listening on ADDR ...": it accepts from here on
    put(name, p.pid)
    addr = line.split()[2]
    return p, addr
def stop(p):
    p.terminate(); p.wait(10)
    LIVE.remove(p)
def lg(addr):
    return subprocess.Popen(["taskset", "-c", "1", LG, "run", "--addr", addr, "--conns", str(CONNS), "--duration", DUR, "--warmup", "1s", "--format", "json", "--source-ips", "127.0.0.1-127.0.0.8"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
def tput(p):
    out, _ = p.communicate(timeout=60)
    return json.loads(out)["throughput_msgs_per_s"]
def cleanup():
    for p in list(LIVE):
        if p.poll() is None:
            p.kill()
        p.wait(10)
    LIVE.clear()
    for tag in ("a", "b"):
        for ctl in ("cpu", "cpuacct"):
            d = f"/sys/fs/cgroup/{ctl}/c10kexp_{tag}"
            if os.path.isdir(d):
                os.rmdir(d)
def interrupted(sig, _frame):
    raise SystemExit(128 + sig)
# Ctrl-C or kill: the finally below stops the servers and removes the groups.
signal.signal(signal.SIGINT, interrupted)
signal.signal(signal.SIGTERM, interrupted)
cleanup()  # what a killed earlier run left
seq, sim = [], []
try:
    for i in range(N):
        # one after the other: A then B (the order alternates by round)
        order = [(A, "a"), (B, "b")] if i % 2 == 0 else [(B, "b"), (A, "a")]
        r = {}
        for style, tag in order:
            p, addr = start(style, f"c10kexp_{tag}", Q)
            r[tag] = tput(lg(addr)); stop(p)
        seq.append(r["b"] / r["a"])
        # side by side: both at once, each with half the quota
        pa, aa = start(A, "c10kexp_a", Q / 2); pb, ab = start(B, "c10kexp_b", Q / 2)
        la, lb = lg(aa), lg(ab)
        ta, tb = tput(la), tput(lb)
        stop(pa); stop(pb)
        sim.append(tb / ta)
        print(f"round {i}: seq {r['a']:.0f} {r['b']:.0f} ratio {seq[-1]:.3f} | sim {ta:.0f} {tb:.0f} ratio {sim[-1]:.3f}", flush=True)
finally:
    cleanup()
for name, xs in (("one after the other", seq), ("side by side", sim)):
    print(f"{name}: median {st.median(xs):.3f} min {min(xs):.3f} max {max(xs):.3f} stdev {st.stdev(xs):.3f}")
