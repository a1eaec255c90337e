#!/usr/bin/env bash
# `docker compose` (v2) or `docker-compose` (1.29), whichever is installed, on echolab's
# docker-compose.yml, with the project name and build network the other docker-*.sh use.
# Usage: scripts/docker-compose.sh ARGS...   e.g. scripts/docker-compose.sh ps
set -euo pipefail
# shellcheck source=scripts/docker-common.sh
source "$(dirname "$0")/docker-common.sh"
compose "$@"
