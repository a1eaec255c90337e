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
