# Shared by scripts/docker-*.sh (sourced, not run): where things are, and which compose tool to use.

ECHOLAB_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# State of an engine started by docker-engine.sh (pid file and log), so that only that engine is stopped.
ECHOLAB_DOCKER_STATE="${ECHOLAB_DOCKER_STATE:-/run/echolab}"
ECHOLAB_DOCKERD_LOG="${ECHOLAB_DOCKERD_LOG:-/var/log/echolab-dockerd.log}"
ECHOLAB_BASE_IMAGE="${ECHOLAB_BASE_IMAGE:-debian:bookworm-slim}"
export COMPOSE_PROJECT_NAME="${COMPOSE_PROJECT_NAME:-echolab}"

engine_answers() {
  docker version --format '{{.Server.Version}}' >/dev/null 2>&1
}

# The Compose v2 plugin when it is installed, otherwise the docker-compose tool (Debian ships 1.29).
# Both read the same docker-compose.yml.
compose() {
  if docker compose version >/dev/null 2>&1; then
    docker compose --project-directory "$ECHOLAB_ROOT" -f "$ECHOLAB_ROOT/docker-compose.yml" "$@"
  elif command -v docker-compose >/dev/null 2>&1; then
    docker-compose --project-directory "$ECHOLAB_ROOT" -f "$ECHOLAB_ROOT/docker-compose.yml" "$@"
  else
    echo "echolab: neither 'docker compose' nor 'docker-compose' is installed (scripts/install-deps.sh --docker)" >&2
    return 1
  fi
}
