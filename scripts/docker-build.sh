#!/usr/bin/env bash
# Builds the stack's images (the servers' image once, and Prometheus's) on a running engine,
# with the base image made available first. Arguments go to `compose build` (e.g. --no-cache).
set -euo pipefail
here="$(dirname "$0")"
# shellcheck source=scripts/docker-common.sh
source "$here/docker-common.sh"

"$here/docker-base-image.sh"
compose_build "$@"
