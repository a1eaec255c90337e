#!/usr/bin/env bash
# Makes a Docker engine available on machines without systemd, and stops only the one it started.
#
#   scripts/docker-engine.sh start    an engine that already answers is used as it is; otherwise
#                                     docker.io is installed if missing and dockerd is started in the
#                                     background (log: $ECHOLAB_DOCKERD_LOG)
#   scripts/docker-engine.sh stop     stops the dockerd that `start` launched (never another one)
#   scripts/docker-engine.sh status   says whether an engine answers and who started it
#
# Storage: overlay2, falling back to vfs (slow, but works on any filesystem) when the kernel or
# the backing filesystem refuses overlay mounts. Networking: the default bridge with iptables,
# falling back to --iptables=false where iptables cannot be used; published ports then go
# through docker-proxy, and image builds use the host network, since build containers get no
# NAT (recorded in $ECHOLAB_DOCKER_STATE/build-network, read by docker-common.sh).
# ECHOLAB_DOCKER_STORAGE and ECHOLAB_DOCKERD_ARGS override the choice.
set -euo pipefail
# shellcheck source=scripts/docker-common.sh
source "$(dirname "$0")/docker-common.sh"

pid_file="$ECHOLAB_DOCKER_STATE/dockerd.pid"
build_network_file="$ECHOLAB_DOCKER_STATE/build-network"
start_timeout=${ECHOLAB_DOCKERD_TIMEOUT:-60}

ours_running() {
  [[ -f "$pid_file" ]] || return 1
  local pid
  pid=$(<"$pid_file")
  [[ -n "$pid" && -d /proc/$pid ]] && grep -q dockerd "/proc/$pid/comm" 2>/dev/null
}

# Starts dockerd with the given options; succeeds once the engine answers, fails if it exits.
try_dockerd() {
  echo "docker-engine: starting dockerd $*" >&2
  echo "=== $(date -u +%FT%TZ) dockerd $*" >>"$ECHOLAB_DOCKERD_LOG"
  setsid dockerd "$@" >>"$ECHOLAB_DOCKERD_LOG" 2>&1 </dev/null &
  local pid=$!
  echo "$pid" >"$pid_file"
  local deadline=$((SECONDS + start_timeout))
  while ((SECONDS < deadline)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$pid_file"
      echo "docker-engine: dockerd $* exited; last lines of $ECHOLAB_DOCKERD_LOG:" >&2
      tail -n 5 "$ECHOLAB_DOCKERD_LOG" >&2
      return 1
    fi
    if engine_answers; then
      return 0
    fi
    sleep 0.2
  done
  echo "docker-engine: dockerd $* did not answer within ${start_timeout}s" >&2
  stop_ours
  return 1
}

stop_ours() {
  ours_running || { rm -f "$pid_file"; return 0; }
  local pid
  pid=$(<"$pid_file")
  kill -TERM "$pid"
  # dockerd stops its containers and the containerd it launched before it exits.
  for _ in $(seq 1 150); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "docker-engine: dockerd $pid ignored SIGTERM for 30s; killing it" >&2
    kill -KILL "$pid"
  fi
  rm -f "$pid_file" "$build_network_file"
  echo "docker-engine: stopped dockerd $pid" >&2
}

start() {
  if engine_answers; then
    return 0
  fi
  if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker-compose >/dev/null 2>&1 \
    || ! command -v debootstrap >/dev/null 2>&1; then
    "$ECHOLAB_ROOT/scripts/install-deps.sh" --docker
  fi
  if [[ $(id -u) -ne 0 ]]; then
    echo "docker-engine: no Docker engine answers and starting dockerd needs root" >&2
    return 1
  fi
  mkdir -p "$ECHOLAB_DOCKER_STATE" "$(dirname "$ECHOLAB_DOCKERD_LOG")"
  if ours_running; then
    echo "docker-engine: dockerd $(<"$pid_file") is running but does not answer; restarting it" >&2
    stop_ours
  fi

  local -a storages networks
  if [[ -n "${ECHOLAB_DOCKER_STORAGE:-}" ]]; then
    storages=("$ECHOLAB_DOCKER_STORAGE")
  else
    storages=(overlay2 vfs)
  fi
  if [[ -n "${ECHOLAB_DOCKERD_ARGS:-}" ]]; then
    networks=("$ECHOLAB_DOCKERD_ARGS")
  else
    networks=("" "--iptables=false --ip-masq=false")
  fi
  local storage network
  for network in "${networks[@]}"; do
    for storage in "${storages[@]}"; do
      # shellcheck disable=SC2086  # the network options are words on purpose
      if try_dockerd --storage-driver="$storage" $network; then
        if [[ "$network" == *--iptables=false* ]]; then
          echo host >"$build_network_file"
        else
          rm -f "$build_network_file"
        fi
        echo "docker-engine: dockerd $(<"$pid_file") answers (storage $storage${network:+, $network})" >&2
        return 0
      fi
    done
  done
  echo "docker-engine: no configuration of dockerd starts here; see $ECHOLAB_DOCKERD_LOG" >&2
  return 1
}

status() {
  if engine_answers; then
    if ours_running; then
      echo "engine answers: dockerd $(<"$pid_file") started by scripts/docker-engine.sh"
    else
      echo "engine answers: started outside echolab"
    fi
  else
    echo "no engine answers"
    return 1
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop_ours ;;
  status) status ;;
  *)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
