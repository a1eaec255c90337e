#!/usr/bin/env bash
# make down: stops and removes every container and network of the stack (the load profile's
# too), then stops the Docker engine if scripts/docker-engine.sh started it. Images stay, so
# the next `make up` starts in seconds.
set -euo pipefail
here="$(dirname "$0")"
# shellcheck source=scripts/docker-common.sh
source "$here/docker-common.sh"

if engine_answers; then
  compose --profile load down --remove-orphans
fi
"$here/docker-engine.sh" stop
