#!/usr/bin/env bash
# make swarm-load: one distributed run of echolab-load on the swarm stack. LOAD_REPLICAS
# replicas of the echolab-load service (on the nodes labelled echolab.role.load=true) each run
# shard I/N of the same run, all starting at one --start-at; their --json results come back
# through `docker service logs` (from whichever node ran them), are merged with
# `echolab-load merge`, printed, and written with the shards' to LOAD_RESULTS.
#   LOAD_REPLICAS (3)  LOAD_CONNECTIONS (30)  LOAD_THREADS (2)  LOAD_DURATION (10s)
#   LOAD_TARGET (threads:8082, a service of the stack and its port inside the network)
#   LOAD_EXTRA (more echolab-load options)  LOAD_START_DELAY (8, seconds for every task to start)
#   LOAD_RESULTS (build/swarm-load: shard-I.json and merged.json)
set -euo pipefail
here="$(dirname "$0")"
# shellcheck source=scripts/swarm-common.sh
source "$here/swarm-common.sh"

replicas=${LOAD_REPLICAS:-3}
duration=${LOAD_DURATION:-10s}
results=${LOAD_RESULTS:-$ECHOLAB_ROOT/build/swarm-load}
start_delay=${LOAD_START_DELAY:-8}
linger_s=6  # --metrics-linger of the load service (deploy/swarm/stack.yml)

if ! engine_answers || [[ "$(swarm_state)" != active ]] \
  || [[ "$(service_replicas "${ECHOLAB_STACK}_threads")" != 1/1 ]]; then
  echo "swarm-load: the swarm stack is not running; start it with: make swarm-up" >&2
  exit 1
fi

seconds_of() {  # 10s, 500ms, 2m or a bare number of seconds, rounded up
  local text=$1
  case "$text" in
    *ms) echo $(((${text%ms} + 999) / 1000)) ;;
    *s) echo "${text%s}" ;;
    *m) echo $((${text%m} * 60)) ;;
    *h) echo $((${text%h} * 3600)) ;;
    *) echo "$text" ;;
  esac
}

# A service left by an earlier run would mix its tasks into this one's: start afresh.
docker service rm "$ECHOLAB_LOAD_SERVICE" >/dev/null 2>&1 || true
start_at=$(($(date +%s) + start_delay))
export ECHOLAB_LOAD_REPLICAS=$replicas ECHOLAB_LOAD_START_AT=$start_at
export ECHOLAB_LOAD_TARGET=${LOAD_TARGET:-threads:8082}
export ECHOLAB_LOAD_ARGS="-c ${LOAD_CONNECTIONS:-30} -t ${LOAD_THREADS:-2} -d $duration ${LOAD_EXTRA:-}"
echo "== $replicas replicas of echolab-load $ECHOLAB_LOAD_ARGS $ECHOLAB_LOAD_TARGET," \
  "starting at $(date -u -d "@$start_at" +%FT%TZ)" >&2
stack_deploy >/dev/null

# Every task ends: Complete, or Failed (echolab-load exits 1 when its run failed); which of
# the two is checked after the results are in.
deadline=$((SECONDS + start_delay + $(seconds_of "$duration") + linger_s + ${LOAD_TIMEOUT_SLACK:-60}))
every_task_ended() {
  local ended
  ended=$(docker service ps --format '{{.CurrentState}}' "$ECHOLAB_LOAD_SERVICE" | awk '{ print $1 }' \
    | grep -cE '^(Complete|Failed|Rejected|Shutdown)$' || true)
  ((ended >= replicas))
}
wait_for_tasks "$deadline" 1 "$ECHOLAB_LOAD_SERVICE" \
  "swarm-load: the load tasks did not end in time:" every_task_ended

rm -rf "$results"
mkdir -p "$results"
shards=()
failed=()  # the shards whose task did not complete: "2/3 (failed)"
for task in $(docker service ps -q --no-trunc "$ECHOLAB_LOAD_SERVICE"); do
  slot=$(docker inspect --format '{{.Slot}}' "$task")
  file="$results/shard-$slot.json"
  for _ in $(seq 1 20); do  # a task's last lines reach its log a moment after it ends
    docker service logs --raw "$task" 2>/dev/null | sed -n 's/^ECHOLAB-RESULT //p' >"$file"
    [[ -s "$file" ]] && break
    sleep 0.5
  done
  if [[ ! -s "$file" ]]; then
    echo "swarm-load: task $slot of $replicas left no result; its log:" >&2
    docker service logs --raw "$task" >&2 || true
    exit 1
  fi
  shards+=("/results/shard-$slot.json")
  state=$(docker inspect --format '{{.Status.State}}' "$task")
  if [[ "$state" != complete ]]; then
    failed+=("$slot/$replicas ($state)")
  fi
done
docker service rm "$ECHOLAB_LOAD_SERVICE" >/dev/null

# The merge runs in the image, so that it needs nothing built on this machine. It exits 1
# when the merged run failed, 2 when it refused the shards.
merge_status=0
docker run --rm --user "$(id -u)" -v "$results:/results" echolab:latest \
  echolab-load merge "${shards[@]}" --output /results/merged.json || merge_status=$?
echo "swarm-load: the shards and merged.json are in $results" >&2
if ((${#failed[@]} > 0)); then
  echo "swarm-load: ${#failed[@]} of $replicas shards failed: ${failed[*]}" >&2
  exit 1
fi
if ((merge_status != 0)); then
  echo "swarm-load: echolab-load merge exited $merge_status" >&2
  exit "$merge_status"
fi
