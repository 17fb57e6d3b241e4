# Sourced by the scripts that start loadgen containers (compose.sh,
# compose-parts.sh, compose-test.sh, swarm.sh): the non-root uid/gid loadgen
# runs as, the folders it writes, and the Docker socket's group.
#
# Run by a user other than root, loadgen runs as that user, so the results
# are theirs. Run by root, it runs as 65532:65532 (the image's own user, as
# the servers do), never as root: the folders it writes are then made and
# given to 65532 first (loadgen_writable).
if [ "$(id -u)" -eq 0 ]; then
  C10K_UID=65532 C10K_GID=65532
else
  C10K_UID=$(id -u) C10K_GID=$(id -g)
fi
export C10K_UID C10K_GID

# loadgen_writable DIR...: makes each DIR, writable by loadgen's uid.
loadgen_writable() {
  mkdir -p "$@"
  if [ "$(id -u)" -eq 0 ]; then chown "$C10K_UID:$C10K_GID" "$@"; fi
}

# The group of the Docker socket the loadgen container mounts: loadgen gets
# it (group_add) to talk to the engine, instead of running as root.
export_docker_gid() {
  local sock=/var/run/docker.sock
  if ! C10K_DOCKER_GID=$(stat -c %g "$sock" 2>/dev/null); then
    echo "$0: no Docker socket at $sock: the loadgen container mounts it to start and stop the servers" >&2
    return 1
  fi
  export C10K_DOCKER_GID
}
