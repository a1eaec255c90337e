#!/usr/bin/env bash
# make up: builds and starts echolab's stack (four servers, Prometheus, Grafana).
# Starts a Docker engine first where none runs, and builds the Debian base image offline where
# no registry is reachable. Where Grafana's image is neither present nor pullable, everything
# else still comes up, and it says so.
set -euo pipefail
here="$(dirname "$0")"
# shellcheck source=scripts/docker-common.sh
source "$here/docker-common.sh"

"$here/docker-engine.sh" start
"$here/docker-build.sh"

services=(prefork threads pool hybrid prometheus grafana)
grafana_image=$(compose config | awk '/^  grafana:/ { in_grafana = 1; next }
                                      /^  [^ ]/ { in_grafana = 0 }
                                      in_grafana && $1 == "image:" { print $2; exit }')
if ! docker image inspect "$grafana_image" >/dev/null 2>&1 && ! compose pull grafana; then
  echo "docker-up: $grafana_image is not available and cannot be pulled (no registry?);" \
    "starting the stack without Grafana" >&2
  services=(prefork threads pool hybrid prometheus)
fi
compose up -d "${services[@]}"

bind=${ECHOLAB_BIND:-0.0.0.0}
host=$([[ "$bind" == 0.0.0.0 ]] && echo localhost || echo "$bind")
cat <<MSG

echolab is up:
  prefork     http://$host:${ECHOLAB_PREFORK_PORT:-8081}/   metrics http://$host:${ECHOLAB_PREFORK_METRICS_PORT:-9101}/metrics
  threads     http://$host:${ECHOLAB_THREADS_PORT:-8082}/   metrics http://$host:${ECHOLAB_THREADS_METRICS_PORT:-9102}/metrics
  pool        http://$host:${ECHOLAB_POOL_PORT:-8083}/   metrics http://$host:${ECHOLAB_POOL_METRICS_PORT:-9103}/metrics
  hybrid      http://$host:${ECHOLAB_HYBRID_PORT:-8084}/   metrics http://$host:${ECHOLAB_HYBRID_METRICS_PORT:-9104}/metrics
  Prometheus  http://$host:${ECHOLAB_PROMETHEUS_PORT:-9090}/
MSG
if [[ " ${services[*]} " == *" grafana "* ]]; then
  echo "  Grafana     http://$host:${ECHOLAB_GRAFANA_PORT:-3000}/  (dashboard \"Processes vs threads\")"
fi
echo
echo "Load it with: make load   (or: wrk -t2 -c100 -d30s http://$host:${ECHOLAB_POOL_PORT:-8083}/)"
