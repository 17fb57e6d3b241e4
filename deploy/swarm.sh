#!/usr/bin/env bash
# The comparison through Docker Swarm: for each style in turn, a stack of
# its servers (deploy/swarm/stack.yml) and N loadgen replicas that each run
# `loadgen compare --target` against them in step, run by run; their
# results merged run by run into DIR/results.json and DIR/report.md, the
# report `loadgen compare` writes, with the replicas as its client.
#
#   deploy/swarm.sh [--styles reactor] [--replicas 3] [--profile smoke|quick|full]
#                   [--out DIR] [--server-cpus F] [--loadgen-cpus F] [--build]
#                   [--timeout SECONDS] [--target HOST:PORT]
#
# Joins nothing: it runs on this node's swarm, and makes one (and leaves it
# after) when the node is in none. Builds the image when it is missing
# (--build: always). --server-cpus/--loadgen-cpus: a CFS quota per
# container (Swarm has no CPU pinning); default none. --target points the
# replicas somewhere else than the servers (to see a failing replica).
# Every wait is bounded; whatever it made is removed on every path.
set -euo pipefail
cd "$(dirname "$0")/.."
. deploy/swarm/lib.sh

styles=reactor replicas=3 profile=smoke out="" build=0 timeout="" target=""
server_cpus=0 loadgen_cpus=0
usage="usage: $0 [--styles S1,S2] [--replicas N] [--profile smoke|quick|full] [--out DIR] [--server-cpus F] [--loadgen-cpus F] [--build] [--timeout SECONDS] [--target HOST:PORT]"
while [ $# -gt 0 ]; do
  case "$1" in
    --styles) styles="$2"; shift ;;
    --replicas) replicas="$2"; shift ;;
    --profile) profile="$2"; shift ;;
    --out) out="$2"; shift ;;
    --server-cpus) server_cpus="$2"; shift ;;
    --loadgen-cpus) loadgen_cpus="$2"; shift ;;
    --build) build=1 ;;
    --timeout) timeout="$2"; shift ;;
    --target) target="$2"; shift ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
  shift
done
bad() { echo "$0: $1" >&2; exit 2; }
[[ "$replicas" =~ ^[0-9]+$ ]] && [ "$replicas" -ge 2 ] && [ "$replicas" -le 1000 ] ||
  bad "--replicas: $replicas is not a number of loadgen replicas from 2 to 1000"
case "$profile" in smoke | quick | full) ;; *) bad "--profile: $profile is not smoke, quick or full (perf runs point by point, a fresh server each: not through a stack)" ;; esac
[[ "$styles" =~ ^[a-z]+(,[a-z]+)*$ ]] || bad "--styles: $styles is not a comma list of styles"
for f in "$server_cpus" "$loadgen_cpus"; do
  [[ "$f" =~ ^[0-9]*\.?[0-9]+$ ]] || bad "--server-cpus/--loadgen-cpus: $f is not a number of CPUs (0: no limit)"
done
if [ -z "$timeout" ]; then
  case "$profile" in smoke) timeout=300 ;; quick) timeout=1800 ;; *) timeout=3600 ;; esac
fi
[[ "$timeout" =~ ^[0-9]+$ ]] || bad "--timeout: $timeout is not a number of seconds"
[ -n "$out" ] || out="results/swarm-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out" && out=$(cd "$out" && pwd)

if ! docker info >/dev/null 2>&1; then
  echo "swarm: no Docker Engine reachable (docker info failed)" >&2
  exit 1
fi
image=${C10K_IMAGE:-c10k-echo:latest}
export C10K_IMAGE=$image
# An image built before `compare --replicas` (another checkout's) would
# fail in every replica: built anew then too.
replicas_known() { docker run --rm --network none --entrypoint /loadgen "$image" compare --help 2>/dev/null | grep -- --replica-dir >/dev/null; }
if [ "$build" = 1 ] || ! docker image inspect "$image" >/dev/null 2>&1 || ! replicas_known; then
  deploy/build-image.sh
fi
for style in ${styles//,/ }; do
  docker run --rm --network none "$image" list 2>/dev/null | awk '{ print $1 }' | grep -x "$style" >/dev/null ||
    bad "--styles: $style is not a style (servers list names them)"
done

live="" made_swarm=0 gwbridge_before=0 started=$SECONDS
docker network inspect docker_gwbridge >/dev/null 2>&1 && gwbridge_before=1
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$live" ]; then
    swarm_stack_rm "$live" || { [ "$rc" != 0 ] || rc=1; }
  fi
  if [ "$made_swarm" = 1 ]; then
    timeout 60 docker swarm leave --force >/dev/null 2>&1 || { echo "swarm: could not leave the swarm made for this run" >&2; [ "$rc" != 0 ] || rc=1; }
    # Made with the swarm for its containers' outside traffic; the engine
    # keeps it after leaving.
    if [ "$gwbridge_before" = 0 ] && docker network inspect docker_gwbridge >/dev/null 2>&1; then
      docker network rm docker_gwbridge >/dev/null 2>&1 || echo "swarm: warning: docker_gwbridge left (in use)" >&2
    fi
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

case "$(swarm_state)" in
  inactive)
    echo "== docker swarm init (this node is in no swarm; it leaves it after)"
    init_args=()
    [ -n "${C10K_SWARM_ADVERTISE_ADDR:-}" ] && init_args=(--advertise-addr "$C10K_SWARM_ADVERTISE_ADDR")
    made_swarm=1
    timeout 60 docker swarm init "${init_args[@]}" >/dev/null ||
      { echo "swarm: docker swarm init failed (several addresses? set C10K_SWARM_ADVERTISE_ADDR)" >&2; exit 1; }
    ;;
  active) ;;
  *) echo "swarm: this node's swarm is $(swarm_state): neither in one nor out" >&2; exit 1 ;;
esac
if [ "$(docker info --format '{{.Swarm.ControlAvailable}}')" != true ]; then
  echo "swarm: this node is a worker: run this on a manager (docker node ls lists them)" >&2
  exit 1
fi
nodes=$(docker info --format '{{.Swarm.Nodes}}')

# One line per task of a service: slot, state, exit code, task id, error.
tasks() {
  local id
  for id in $(docker service ps --no-trunc --format '{{.ID}}' "$1" 2>/dev/null); do
    docker inspect --format "{{.Slot}} {{.Status.State}} {{with .Status.ContainerStatus}}{{.ExitCode}}{{else}}-{{end}} $id {{.Status.Err}}" "$id"
  done
}
ended() { [[ "$1" =~ ^(complete|failed|rejected|shutdown|orphaned|remove)$ ]]; }
log_tail() {
  echo "---- last lines of $2:" >&2
  timeout 30 docker service logs --raw --tail 20 "$1" >&2 2>&1 || true
  echo "----" >&2
}
# The servers' task runs and has printed its listening line; a task that
# ended instead fails at once.
listening() {
  local svc=$1 line
  while read -r line; do
    set -- $line
    if ended "$2"; then
      echo "swarm: $svc's task ended ($2, exit code $3) before listening: ${*:5}" >&2
      return 2
    fi
  done < <(tasks "$svc")
  timeout 20 docker service logs --raw "$svc" 2>/dev/null | grep '^listening on' >/dev/null
}
# Every one of the loadgen replicas' tasks has ended.
all_ended() {
  local lines state
  lines=$(tasks "$1")
  [ "$(grep -c . <<<"$lines")" -ge "$replicas" ] || return 1
  for state in $(awk '{ print $2 }' <<<"$lines"); do ended "$state" || return 1; done
}

# The replicas and the merge write as the caller, so that DIR stays theirs;
# when root runs this, as 65532:65532, and DIR is given to that uid.
. deploy/loadgen-user.sh
C10K_USER="$C10K_UID:$C10K_GID"
export C10K_USER
loadgen_writable "$out"
export C10K_PROFILE=$profile C10K_REPLICAS=$replicas C10K_SERVER_CPUS=$server_cpus C10K_LOADGEN_CPUS=$loadgen_cpus
plural=s
[ "$nodes" = 1 ] && plural=""
export C10K_NETWORK_NOTE="overlay (Docker Swarm, $nodes node$plural, $replicas loadgen replicas, server endpoint_mode dnsrr)"
[ "$profile" = smoke ] && export C10K_WORK_US=200 || export C10K_WORK_US=500
[ -n "$target" ] && export C10K_LOADGEN_TARGET=$target
files=()
for style in ${styles//,/ }; do
  stack=$SWARM_PREFIX-$style
  t0=$SECONDS
  export C10K_STYLE=$style C10K_RESULTS=$out/replicas/$style
  rm -rf "$C10K_RESULTS" && loadgen_writable "$C10K_RESULTS"
  echo "== $style: deploy stack $stack (servers first; loadgen at 0 replicas)"
  live=$stack
  # --resolve-image never: the image is this engine's own (no registry is
  # asked, which could stall on a machine whose DNS hangs).
  if ! said=$(timeout 120 docker stack deploy --resolve-image never -c deploy/swarm/stack.yml "$stack" 2>&1); then
    echo "swarm: docker stack deploy $stack failed or took over 120 s: $said" >&2
    exit 1
  fi
  for svc in server server-fair; do
    if ! swarm_wait 90 "${stack}_$svc to listen" listening "${stack}_$svc"; then
      log_tail "${stack}_$svc" "${stack}_$svc"
      exit 1
    fi
  done
  t1=$SECONDS
  echo "== $style: servers listen after $((t1 - t0)) s; scaling loadgen to $replicas replicas"
  timeout 60 docker service scale --detach "${stack}_loadgen=$replicas" >/dev/null
  if ! swarm_wait "$timeout" "the $replicas loadgen replicas of $stack to end (--timeout)" all_ended "${stack}_loadgen"; then
    tasks "${stack}_loadgen" >&2
    exit 1
  fi
  t2=$SECONDS
  failed_code=0
  while read -r slot state code id err; do
    echo "   replica $slot: $state, exit code $code"
    if [ "$state" != complete ] || [ "$code" != 0 ]; then
      echo "swarm: FAILED: $style replica $slot ($state) exited with code $code ${err}" >&2
      log_tail "$id" "$style replica $slot"
      [ "$failed_code" = 0 ] && failed_code=$([[ "$code" =~ ^[1-9][0-9]*$ ]] && echo "$code" || echo 1)
    fi
  done < <(tasks "${stack}_loadgen" | sort -n)
  [ "$failed_code" = 0 ] || exit "$failed_code"
  for slot in $(seq 1 "$replicas"); do
    f=replicas/$style/loadgen-$slot/results.json
    [ -s "$out/$f" ] || { echo "swarm: replica $slot of $style wrote no $f" >&2; exit 1; }
    files+=("/results/$f")
  done
  swarm_stack_rm "$stack"
  live=""
  echo "== $style: $replicas replicas ran $((t2 - t1)) s; deploy to removed $((SECONDS - t0)) s"
done

echo "== merge the replicas' comparisons run by run"
docker run --rm --name "$SWARM_PREFIX-merge" --network none --user "$C10K_USER" --read-only --cap-drop ALL \
  --security-opt no-new-privileges:true -v "$out:/results" --entrypoint /loadgen "$image" \
  merge --comparisons "${files[@]}" --out /results | sed "s#/results/#$out/#"
echo "swarm: $styles with $replicas loadgen replicas each on $nodes Swarm node$plural, deploy to merged in $((SECONDS - started)) s"
