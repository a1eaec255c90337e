#!/usr/bin/env bash
# make load: the same load against each server of the running stack, first with wrk from this
# machine through the published ports, then with echolab-load from inside the stack's network
# (the `load` service), so Grafana shows the four models under identical load one after the
# other.
#   LOAD_DURATION (30s)  LOAD_CONNECTIONS (100)  LOAD_THREADS (2)   ECHOLAB_*_PORT as for make up
set -euo pipefail
here="$(dirname "$0")"
# shellcheck source=scripts/docker-common.sh
source "$here/docker-common.sh"

duration=${LOAD_DURATION:-30s}
connections=${LOAD_CONNECTIONS:-100}
threads=${LOAD_THREADS:-2}
bind=${ECHOLAB_BIND:-0.0.0.0}
host=$([[ "$bind" == 0.0.0.0 ]] && echo 127.0.0.1 || echo "$bind")
declare -A published=(
  [prefork]=${ECHOLAB_PREFORK_PORT:-8081}
  [threads]=${ECHOLAB_THREADS_PORT:-8082}
  [pool]=${ECHOLAB_POOL_PORT:-8083}
  [hybrid]=${ECHOLAB_HYBRID_PORT:-8084}
)
declare -A internal=([prefork]=8081 [threads]=8082 [pool]=8083 [hybrid]=8084)

if ! engine_answers || [[ -z "$(compose ps -q pool)" ]]; then
  echo "docker-load: the stack is not running; start it with: make up" >&2
  exit 1
fi

for model in prefork threads pool hybrid; do
  if command -v wrk >/dev/null 2>&1; then
    echo "== wrk -t$threads -c$connections -d$duration http://$host:${published[$model]}/   ($model)"
    wrk -t"$threads" -c"$connections" -d"$duration" "http://$host:${published[$model]}/"
  else
    echo "docker-load: wrk is not installed (scripts/install-deps.sh); skipping the wrk runs" >&2
  fi
done
for model in prefork threads pool hybrid; do
  echo "== echolab-load -t$threads -c$connections -d$duration $model:${internal[$model]}   (inside the stack)"
  compose --profile load run --rm load -q -t "$threads" -c "$connections" -d "$duration" \
    "$model:${internal[$model]}"
done
