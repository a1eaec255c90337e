# shellcheck shell=bash
# Shared by scripts/swarm-*.sh (sourced, not run): the stack's name and file, and whether the
# swarm is one that swarm-up.sh initialised (only that one is left by swarm-down.sh).
# shellcheck source=scripts/docker-common.sh
source "$(dirname "${BASH_SOURCE[0]}")/docker-common.sh"

ECHOLAB_STACK="${ECHOLAB_STACK:-echolab}"
ECHOLAB_STACK_FILE="$ECHOLAB_ROOT/deploy/swarm/stack.yml"
# shellcheck disable=SC2034  # read by the scripts that source this file
ECHOLAB_SWARM_MARK="$ECHOLAB_DOCKER_STATE/swarm-initialised"
# shellcheck disable=SC2034
ECHOLAB_LOAD_SERVICE="${ECHOLAB_STACK}_echolab-load"

swarm_state() {
  docker info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null
}

# Deploys (or updates) the stack. Images are the ones built here, never looked up in a registry.
stack_deploy() {
  docker stack deploy --detach=true --resolve-image never -c "$ECHOLAB_STACK_FILE" "$ECHOLAB_STACK"
}

# Prints "running/desired" for a service, e.g. "1/1".
service_replicas() {
  docker service ls --filter "name=$1" --format '{{.Name}} {{.Replicas}}' \
    | awk -v name="$1" '$1 == name { print $2 }'
}

# Waits, polling every INTERVAL seconds, until COMMAND... succeeds; once bash's SECONDS has
# passed DEADLINE, prints WHY and the tasks of SERVICE and fails.
# Usage: wait_for_tasks DEADLINE INTERVAL SERVICE WHY COMMAND...
wait_for_tasks() {
  local deadline=$1 interval=$2 service=$3 why=$4
  shift 4
  until "$@"; do
    if ((SECONDS > deadline)); then
      echo "$why" >&2
      docker service ps --no-trunc "$service" >&2
      return 1
    fi
    sleep "$interval"
  done
}
