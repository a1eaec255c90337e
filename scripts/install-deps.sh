#!/usr/bin/env bash
# Installs, with apt-get, only the Debian packages echolab needs that are missing.
# Usage: scripts/install-deps.sh [--docker] [--peers]
#   --docker  adds the Docker engine, docker-compose and debootstrap (the compose stack)
#   --peers   adds nginx and Apache httpd (the production servers compared with each model)
set -euo pipefail

packages=(
  # build
  cmake make g++ clang clang-format clang-tidy libclang-rt-14-dev pkg-config ccache
  # libraries (nothing vendored, nothing downloaded at build time)
  libasio-dev node-llhttp prometheus-cpp-dev libcli11-dev libgtest-dev libbenchmark-dev nlohmann-json3-dev
  # echolab-floor's io_uring loop (the measuring instrument; not in the Docker image)
  liburing-dev
  # clients, checks and reports
  wrk apache2-utils curl prometheus gnuplot-nox python3 python3-pytest procps iproute2 strace
  # the HTML report opened in a headless browser (its test)
  chromium
  slowhttptest
  # the dashboard schema check (npm installs its pinned TypeScript tooling)
  nodejs
)
# Node.js packaged outside Debian (NodeSource) bundles npm and conflicts with Debian's npm.
if ! command -v npm >/dev/null 2>&1; then
  packages+=(npm)
fi
peers=0
for option in "$@"; do
  case "$option" in
    --docker) packages+=(docker.io docker-compose debootstrap) ;;
    --peers) packages+=(nginx-light apache2) peers=1 ;;
    *) echo "install-deps: unknown option '$option' (use --docker or --peers)" >&2; exit 2 ;;
  esac
done

missing=()
for pkg in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done
if ((${#missing[@]} == 0)); then
  exit 0
fi

if [[ $(id -u) -eq 0 ]]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1; then
  sudo=(sudo)
else
  echo "install-deps: missing packages (${missing[*]}); run as root or install sudo" >&2
  exit 1
fi

echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# The peers are started by echolab on ports of its own: keep their packages from starting
# the system-wide services (Debian's policy-rc.d convention, removed again afterwards).
policy=/usr/sbin/policy-rc.d
if ((peers)) && [[ ! -e $policy ]]; then
  printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
  "${sudo[@]}" chmod +x "$policy"
  trap '"${sudo[@]}" rm -f "$policy"' EXIT
fi
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
