#!/usr/bin/env bash
# CI's container test: builds the image, brings up two styles plus loadgen
# with the smoke profile on the bridge network (reactor, and uring, which
# shows io_uring works under the engine's default seccomp profile), checks results.json,
# checks that every server process runs as the non-root uid 65532, and
# always tears down. Skips (exit 0, saying why) where no Docker engine is
# reachable.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! docker info >/dev/null 2>&1; then
  echo "compose-test: skipped: no Docker engine reachable (docker info failed)"
  exit 0
fi
if ! command -v docker-compose >/dev/null 2>&1; then
  echo "compose-test: FAILED: docker-compose is not installed" >&2
  exit 1
fi
. deploy/loadgen-user.sh
export_docker_gid
deploy/build-image.sh
project=c10k-ci
run=compose-ci
compose() { docker-compose -f docker-compose.yml -p "$project" "$@"; }
cleanup() { compose --profile parts down -v --remove-orphans >/dev/null 2>&1 || true; }
trap cleanup EXIT
cleanup
rm -rf "results/$run"
loadgen_writable "results/$run"
# Half a CPU per server container, as --server-cpu-quota 0.5 gives a
# process: the report must read it back.
export C10K_SERVER_CPU_QUOTA_US=5000
compose up --no-start reactor reactor-fair uring uring-fair
if ! compose run --rm loadgen compare --profile smoke --out "/results/$run" --network bridge \
    --docker-socket /var/run/docker.sock \
    --target reactor=c10k-reactor:7000,fairness=c10k-reactor-fair:7000 \
    --target uring=c10k-uring:7000,fairness=c10k-uring-fair:7000; then
  echo "compose-test: FAILED: loadgen compare in containers failed; logs follow" >&2
  compose logs --no-color >&2 || true
  exit 1
fi
python3 - "results/$run/results.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
styles = {run["tags"]["style"] for run in r["runs"]}
assert styles == {"reactor", "uring"}, f"styles in results: {styles}"
errors = [(run["label"], run["errors"]) for run in r["runs"] if sum(run["errors"].values())]
assert not errors, f"runs with errors: {errors}"
for s in r["servers"]:
    assert s["started"] and s["stopped_cleanly"], f"server {s}"
sampled = [run for run in r["runs"] if run.get("server")]
assert sampled and all(run["server"]["source"] == "docker-api" for run in sampled), "server figures from the Docker API"
assert r["network"] == "bridge"
cg = r.get("cgroup") or {}
assert cg.get("made_by") == "docker" and cg.get("cpu_quota") == 0.5 and cg.get("period_us") == 10000, f"container quota: {cg}"
print(f"compose-test: ok: {len(r['runs'])} runs over {sorted(styles)}, no errors, servers stopped cleanly")
PY
test -s "results/$run/report.md"
# loadgen wrote them as the uid it was given (65532 when root runs this), not as root.
owner=$(stat -c %u:%g "results/$run/results.json")
if [ "$owner" != "$C10K_UID:$C10K_GID" ]; then
  echo "compose-test: FAILED: loadgen wrote results.json as $owner, not $C10K_UID:$C10K_GID" >&2
  exit 1
fi
echo "compose-test: ok: loadgen ran as $owner, in the Docker socket's group $C10K_DOCKER_GID"

# Least privilege on the real engine: every process of every server
# container runs as 65532 (real, effective, saved and filesystem ids, as the
# engine's host sees them through `docker top`), with a read-only root
# filesystem, no capabilities and no-new-privileges.
servers=(reactor reactor-fair uring uring-fair)
# Whether container $1 has said it listens. The log is read whole first:
# `docker logs | grep -q` under pipefail fails when grep stops at its match
# and docker logs, still writing, gets SIGPIPE.
listening() {
  local log
  log=$(docker logs "$1" 2>&1) || true
  grep -q '^listening on' <<<"$log"
}
compose up -d "${servers[@]}" >/dev/null
for svc in "${servers[@]}"; do
  c=c10k-$svc
  for _ in $(seq 1 40); do
    listening "$c" && break
    [ "$(docker inspect -f '{{.State.Running}}' "$c")" = true ] || break
    sleep 0.25
  done
  listening "$c" || {
    echo "compose-test: FAILED: $c did not listen within 10 s; its log follows" >&2
    docker logs "$c" >&2 || true
    exit 1
  }
  ids=$(docker top "$c" -eo pid,ruid,euid,suid,fsuid,rgid,egid,sgid,fsgid,comm | tail -n +2)
  procs=$(grep -c . <<<"$ids" || true)
  bad=$(awk '{ for (i = 2; i <= 9; i++) if ($i != 65532) { print; next } }' <<<"$ids")
  if [ "$procs" -lt 1 ] || [ -n "$bad" ]; then
    echo "compose-test: FAILED: $c has a process not running as 65532:65532 (pid ruid euid suid fsuid rgid egid sgid fsgid):" >&2
    echo "${bad:-no process listed}" >&2
    exit 1
  fi
  conf=$(docker inspect -f 'user={{.Config.User}} read_only={{.HostConfig.ReadonlyRootfs}} cap_drop={{.HostConfig.CapDrop}} cap_add={{.HostConfig.CapAdd}} security_opt={{.HostConfig.SecurityOpt}} privileged={{.HostConfig.Privileged}}' "$c")
  want='user=65532:65532 read_only=true cap_drop=[ALL] cap_add=[] security_opt=[no-new-privileges:true] privileged=false'
  if [ "$conf" != "$want" ]; then
    echo "compose-test: FAILED: $c: $conf; want $want" >&2
    exit 1
  fi
  echo "compose-test: ok: $c: $procs process(es), every one uid/gid 65532; $conf"
done
compose stop "${servers[@]}" >/dev/null

# Several loadgen instances at once against one server, merged after.
parts=compose-ci-parts
rm -rf "results/$parts"
loadgen_writable "results/$parts"
export C10K_RUN=$parts C10K_PART_DURATION=1s C10K_PART_CONNS=10 C10K_PART_TARGET=c10k-reactor:7000
compose up -d reactor
# (No --exit-code-from: it would stop the second instance when the first
# ends. Each instance's outcome is checked in its JSON below.)
if ! compose --profile parts up --scale loadgen-part=2 loadgen-part; then
  echo "compose-test: FAILED: the loadgen instances failed; logs follow" >&2
  compose logs --no-color >&2 || true
  exit 1
fi
compose run --rm --entrypoint /loadgen loadgen merge "/results/$parts" --format json --out "/results/$parts/merged.out.json" >/dev/null
python3 - "results/$parts" <<'PY'
import glob, json, os, sys
d = sys.argv[1]
parts = [json.load(open(p)) for p in sorted(glob.glob(os.path.join(d, "part-*.json")))]
merged = json.load(open(os.path.join(d, "merged.out.json")))
assert len(parts) == 2, f"{len(parts)} part files"
assert all(p["outcome"]["ok"] for p in parts), [p["outcome"] for p in parts]
assert merged["merged_runs"] == 2
assert merged["messages"] == sum(p["messages"] for p in parts) > 0
assert merged["latency_us"]["count"] == merged["messages"]
print(f"compose-test: ok: 2 loadgen instances merged, {merged['messages']} messages")
PY

