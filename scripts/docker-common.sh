# shellcheck shell=bash
# Shared by scripts/docker-*.sh (sourced, not run): where things are, and which compose tool to use.

ECHOLAB_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# State of an engine started by docker-engine.sh (pid file and log), so that only that engine is stopped.
ECHOLAB_DOCKER_STATE="${ECHOLAB_DOCKER_STATE:-/run/echolab}"
ECHOLAB_DOCKERD_LOG="${ECHOLAB_DOCKERD_LOG:-/var/log/echolab-dockerd.log}"
ECHOLAB_BASE_IMAGE="${ECHOLAB_BASE_IMAGE:-debian:bookworm-slim}"
export COMPOSE_PROJECT_NAME="${COMPOSE_PROJECT_NAME:-echolab}"
# An engine that docker-engine.sh had to start without iptables gives build containers no NAT.
if [[ -z "${ECHOLAB_BUILD_NETWORK:-}" && -f "$ECHOLAB_DOCKER_STATE/build-network" ]]; then
  ECHOLAB_BUILD_NETWORK="$(<"$ECHOLAB_DOCKER_STATE/build-network")"
  export ECHOLAB_BUILD_NETWORK
fi

engine_answers() {
  docker version --format '{{.Server.Version}}' >/dev/null 2>&1
}

# The services that build an image: threads, pool, hybrid and load run the image prefork builds,
# so building it once is enough (a `compose build` of every service would compile it five times
# whenever the sources change in between).
ECHOLAB_BUILT_SERVICES=(prefork prometheus)

# The Compose v2 plugin when it is installed, otherwise the docker-compose tool (Debian ships 1.29).
# Both read the same docker-compose.yml.
# COMPOSE_FILE, when set, chooses the files (e.g. docker-compose.yml:deploy/compose/fault-injection.yml).
compose() {
  local -a files=()
  [[ -n "${COMPOSE_FILE:-}" ]] || files=(-f "$ECHOLAB_ROOT/docker-compose.yml")
  if docker compose version >/dev/null 2>&1; then
    docker compose --project-directory "$ECHOLAB_ROOT" "${files[@]}" "$@"
  elif command -v docker-compose >/dev/null 2>&1; then
    docker-compose --project-directory "$ECHOLAB_ROOT" "${files[@]}" "$@"
  else
    echo "echolab: neither 'docker compose' nor 'docker-compose' is installed (scripts/install-deps.sh --docker)" >&2
    return 1
  fi
}

# Builds the stack's images. docker-compose 1.29 uses the classic builder, which keeps the
# container of a failed step unless told otherwise.
compose_build() {
  if docker compose version >/dev/null 2>&1; then
    compose build "$@" "${ECHOLAB_BUILT_SERVICES[@]}"
  else
    compose build --force-rm "$@" "${ECHOLAB_BUILT_SERVICES[@]}"
  fi
}
