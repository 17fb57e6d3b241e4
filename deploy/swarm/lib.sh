# shellcheck shell=bash
# Shell pieces shared by deploy/swarm.sh and deploy/swarm-test.sh (sourced).
# Everything this project makes in a swarm is named c10k-echo-swarm*, so
# what is ours can be told from what other people run on the same engine.

SWARM_PREFIX=c10k-echo-swarm

# Waits until "$@" succeeds, at most $1 seconds, polling every half
# second; says what it waited for ($2) when the time runs out. A check
# that returns 2 says it never will: the wait ends there, failed.
swarm_wait() {
  local limit=$1 what=$2 deadline rc
  shift 2
  deadline=$((SECONDS + limit))
  while true; do
    if "$@"; then return 0; else rc=$?; fi
    [ "$rc" != 2 ] || return 2
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "swarm: gave up after ${limit} s waiting for $what" >&2
      return 1
    fi
    sleep 0.5
  done
}

# The swarm state of this node: inactive, active, pending, error or locked.
swarm_state() { docker info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null; }

# Our stacks, services, containers and networks still on the engine, one
# line each ("kind name"); nothing when it is clean.
swarm_leftovers() {
  if [ "$(swarm_state)" = active ]; then
    docker stack ls --format '{{.Name}}' 2>/dev/null | grep "^$SWARM_PREFIX" | sed 's/^/stack /'
    docker service ls --format '{{.Name}}' 2>/dev/null | grep "^$SWARM_PREFIX" | sed 's/^/service /'
  fi
  docker ps -a --format '{{.Names}}' | grep "^$SWARM_PREFIX" | sed 's/^/container /'
  docker network ls --format '{{.Name}}' | grep "^$SWARM_PREFIX" | sed 's/^/network /'
  true
}

# Whether a stack is gone: no service, container or network of its left.
swarm_stack_gone() {
  local stack=$1
  ! docker ps -a --format '{{.Names}}' | grep "^${stack}_" >/dev/null &&
    ! docker network ls --format '{{.Name}}' | grep "^${stack}_" >/dev/null &&
    { [ "$(swarm_state)" != active ] || ! docker service ls --format '{{.Name}}' | grep "^${stack}_" >/dev/null; }
}

# What is left of a stack, one line each ("kind name").
swarm_stack_left() {
  local stack=$1
  if [ "$(swarm_state)" = active ]; then
    docker service ls --format '{{.Name}}' 2>/dev/null | grep "^${stack}_" | sed 's/^/service /'
  fi
  docker ps -a --format '{{.Names}} ({{.Status}})' | grep "^${stack}_" | sed 's/^/container /'
  docker network ls --format '{{.Name}}' | grep "^${stack}_" | sed 's/^/network /'
  true
}

# Removes a stack and waits (bounded) until its containers and network
# are gone: `docker stack rm` returns before they are. The engine's own
# removal can lag by minutes on a busy machine (CI saw a stack outlast
# 90 s), so after 45 s (SWARM_RM_PATIENCE) what is left is named and removed by hand: the
# stack's containers (docker rm -f) and then its network.
swarm_stack_rm() {
  local stack=$1 name
  local patience=${SWARM_RM_PATIENCE:-45}
  timeout 60 docker stack rm "$stack" >/dev/null 2>&1 || true
  swarm_wait "$patience" "stack $stack's containers and network to go" swarm_stack_gone "$stack" 2>/dev/null && return 0
  echo "swarm: stack $stack not gone ${patience} s after docker stack rm; removing what is left by hand: $(swarm_stack_left "$stack" | tr '\n' ' ')" >&2
  for name in $(docker ps -a --format '{{.Names}}' | grep "^${stack}_"); do
    timeout 30 docker rm -f "$name" >/dev/null 2>&1 || true
  done
  swarm_wait 30 "stack $stack's containers to go" \
    bash -c "! docker ps -a --format '{{.Names}}' | grep '^${stack}_' >/dev/null" || true
  for name in $(docker network ls --format '{{.Name}}' | grep "^${stack}_"); do
    timeout 30 docker network rm "$name" >/dev/null 2>&1 || true
  done
  if ! swarm_wait 60 "stack $stack's containers and network to go" swarm_stack_gone "$stack"; then
    echo "swarm: left of stack $stack: $(swarm_stack_left "$stack" | tr '\n' ' ')" >&2
    return 1
  fi
}
