#!/usr/bin/env bash
# Type-checks Grafana dashboard JSON against the Dashboard type Grafana publishes in
# @grafana/schema, at the release of the Grafana image docker-compose.yml runs (pinned with
# TypeScript in scripts/dashboard-schema/package-lock.json). Grafana itself need not run.
# Usage: scripts/check-dashboard-schema.sh [DASHBOARD.json...]   (default: dashboards/*.json)
# Prints "ok <file>" or "FAIL <file>" with one "  <JSON path>: <error>" line per error.
# Exit status: 0 all pass, 1 some dashboard fails, 2 usage error, 3 the packages could not be
# installed (no node or npm, or the npm registry unreachable).
set -euo pipefail

source_dir=$(cd "$(dirname "$0")/.." && pwd)
# A copy of the tooling elsewhere may be named (the tests use one to install into a scratch
# directory).
tool_dir=${ECHOLAB_SCHEMA_TOOL_DIR:-$source_dir/scripts/dashboard-schema}

for tool in node npm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "check-dashboard-schema: $tool not found (scripts/install-deps.sh installs it)" >&2
    exit 3
  fi
done

if (($# == 0)); then
  set -- "$source_dir"/dashboards/*.json
fi

# npm ci empties node_modules first: one install at a time, and none while the lock file is
# what is installed already (the stamp holds its hash), which keeps a warm run fast.
exec 9<"$tool_dir/package.json"
flock 9
stamp=$tool_dir/node_modules/.echolab-installed
wanted=$(cat "$tool_dir/package.json" "$tool_dir/package-lock.json" | sha256sum | cut -d' ' -f1)
if [[ ! -f $stamp || $(cat "$stamp") != "$wanted" ]]; then
  registry=$(cd "$tool_dir" && npm config get registry)
  if ! (cd "$tool_dir" && npm ci --no-audit --no-fund --loglevel=error \
          --fetch-retries=1 --fetch-retry-mintimeout=2000 --fetch-retry-maxtimeout=5000 --fetch-timeout=30000 >&2); then
    echo "check-dashboard-schema: 'npm ci' in $tool_dir failed: the pinned" \
         "@grafana/schema and typescript could not be installed (is the npm registry" \
         "$registry reachable?)" >&2
    exit 3
  fi
  echo "$wanted" >"$stamp"
fi
flock -u 9

exec node "$tool_dir/check.mjs" "$@"
