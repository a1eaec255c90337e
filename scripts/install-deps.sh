#!/usr/bin/env bash
# Installs, with apt-get, only the Debian packages echolab needs that are missing.
# Usage: scripts/install-deps.sh [--docker]   (--docker adds the engine and compose tool)
set -euo pipefail

packages=(
  # build
  cmake make g++ clang clang-format clang-tidy libclang-rt-14-dev pkg-config
  # libraries (DESIGN.md: nothing vendored, nothing downloaded at build time)
  libasio-dev node-llhttp prometheus-cpp-dev libcli11-dev libgtest-dev libbenchmark-dev
  # clients, checks and reports
  wrk apache2-utils curl prometheus gnuplot-nox python3 python3-pytest procps iproute2
)
if [[ "${1:-}" == "--docker" ]]; then
  packages+=(docker.io docker-compose debootstrap)
fi

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
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
