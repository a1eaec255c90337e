#!/usr/bin/env bash
# make swarm-down: removes the swarm stack and all it created (services, their containers, its
# network and config), waiting until they are gone; then leaves the swarm if, and only if,
# scripts/swarm-up.sh initialised it, and stops the Docker engine if docker-engine.sh started it
# (unless ECHOLAB_KEEP_ENGINE=1).
set -euo pipefail
here="$(dirname "$0")"
# shellcheck source=scripts/swarm-common.sh
source "$here/swarm-common.sh"

leftovers() {
  docker ps -aq --filter "label=com.docker.stack.namespace=$ECHOLAB_STACK"
  docker network ls -q --filter "label=com.docker.stack.namespace=$ECHOLAB_STACK"
  if [[ "$(swarm_state)" == active ]]; then
    docker service ls -q --filter "label=com.docker.stack.namespace=$ECHOLAB_STACK"
    docker config ls -q --filter "label=com.docker.stack.namespace=$ECHOLAB_STACK"
  fi
}

if engine_answers; then
  if [[ "$(swarm_state)" == active ]]; then
    docker stack rm "$ECHOLAB_STACK" >/dev/null 2>&1 || true
  fi
  # Containers stop within their stop_grace_period; the network goes after its last one.
  deadline=$((SECONDS + 60))
  while [[ -n "$(leftovers)" ]]; do
    if ((SECONDS > deadline)); then
      echo "swarm-down: still there after 60 s:" >&2
      leftovers >&2
      exit 1
    fi
    sleep 0.5
  done
  if [[ -f "$ECHOLAB_SWARM_MARK" ]]; then
    docker swarm leave --force >/dev/null
    # The bridge `swarm init` made for the overlay networks' egress.
    docker network rm docker_gwbridge >/dev/null 2>&1 || true
    rm -f "$ECHOLAB_SWARM_MARK"
    echo "swarm-down: left the swarm that swarm-up.sh initialised" >&2
  fi
fi
if [[ "${ECHOLAB_KEEP_ENGINE:-0}" != 1 ]]; then
  "$here/docker-engine.sh" stop
fi
