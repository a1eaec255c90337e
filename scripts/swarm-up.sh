#!/usr/bin/env bash
# make swarm-up: builds the images and deploys deploy/swarm/stack.yml (the four servers and
# Prometheus; the load service stays at 0 replicas until scripts/swarm-load.sh). Starts a
# Docker engine where none runs. Where this engine is in no swarm, initialises a one-node swarm
# (advertised on ECHOLAB_SWARM_ADVERTISE_ADDR, default 127.0.0.1), which swarm-down.sh leaves
# again; a swarm of one node without role labels gets both roles. docs/swarm.md.
#   ECHOLAB_*_PORT as for make up (published in host mode on the node running each server)
set -euo pipefail
here="$(dirname "$0")"
# shellcheck source=scripts/swarm-common.sh
source "$here/swarm-common.sh"

began=$SECONDS
"$here/docker-engine.sh" start
"$here/docker-build.sh"
build_done=$SECONDS

case "$(swarm_state)" in
  active) ;;
  inactive)
    mkdir -p "$ECHOLAB_DOCKER_STATE"
    docker swarm init --advertise-addr "${ECHOLAB_SWARM_ADVERTISE_ADDR:-127.0.0.1}" >/dev/null
    touch "$ECHOLAB_SWARM_MARK"
    echo "swarm-up: initialised a one-node swarm (scripts/swarm-down.sh leaves it)" >&2
    ;;
  *)
    echo "swarm-up: this engine is in swarm state '$(swarm_state)'; join or leave it first" >&2
    exit 1
    ;;
esac

nodes=$(docker node ls -q)
labelled=$(docker node ls -q | xargs docker node inspect \
  --format '{{index .Spec.Labels "echolab.role.server"}}{{index .Spec.Labels "echolab.role.load"}}' \
  | tr -d '\n')
if [[ $(wc -w <<<"$nodes") -eq 1 && -z "$labelled" ]]; then
  docker node update --label-add echolab.role.server=true --label-add echolab.role.load=true \
    "$nodes" >/dev/null
  echo "swarm-up: labelled the only node with both roles (server and load)" >&2
fi

stack_deploy
deadline=$((SECONDS + ${ECHOLAB_SWARM_TIMEOUT:-120}))
running() { [[ "$(service_replicas "$1")" == 1/1 ]]; }
for service in prefork threads pool hybrid prometheus; do
  wait_for_tasks "$deadline" 0.5 "${ECHOLAB_STACK}_$service" \
    "swarm-up: ${ECHOLAB_STACK}_$service is not running:" running "${ECHOLAB_STACK}_$service"
done

cat <<MSG

echolab's stack "$ECHOLAB_STACK" runs on the swarm (build $((build_done - began)) s, deploy $((SECONDS - build_done)) s).
On the node running each server (docker stack ps $ECHOLAB_STACK):
  prefork     :${ECHOLAB_PREFORK_PORT:-8081}   metrics :${ECHOLAB_PREFORK_METRICS_PORT:-9101}
  threads     :${ECHOLAB_THREADS_PORT:-8082}   metrics :${ECHOLAB_THREADS_METRICS_PORT:-9102}
  pool        :${ECHOLAB_POOL_PORT:-8083}   metrics :${ECHOLAB_POOL_METRICS_PORT:-9103}
  hybrid      :${ECHOLAB_HYBRID_PORT:-8084}   metrics :${ECHOLAB_HYBRID_METRICS_PORT:-9104}
  Prometheus  :${ECHOLAB_PROMETHEUS_PORT:-9090}

Load it with: make swarm-load   (LOAD_REPLICAS=3 LOAD_TARGET=threads:8082 ...)
MSG
