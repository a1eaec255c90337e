#!/usr/bin/env bash
# Makes sure the base image of every echolab image ($ECHOLAB_BASE_IMAGE, debian:bookworm-slim)
# is in the local image store. Where no registry is reachable it is built offline: a minimal
# Debian 12 from the apt mirror this machine already uses (debootstrap --variant=minbase),
# trimmed the way the official slim image is, then `docker import`ed under the same tag. The
# image store keeps it, so only the first run pays for it (about half a minute).
set -euo pipefail
# shellcheck source=scripts/docker-common.sh
source "$(dirname "$0")/docker-common.sh"

if docker image inspect "$ECHOLAB_BASE_IMAGE" >/dev/null 2>&1; then
  exit 0
fi
if [[ "${ECHOLAB_OFFLINE_BASE:-0}" != 1 ]] && timeout 120 docker pull -q "$ECHOLAB_BASE_IMAGE" >/dev/null 2>&1; then
  echo "docker-base-image: pulled $ECHOLAB_BASE_IMAGE" >&2
  exit 0
fi

# The URIs of the host's Debian suites, from one-line (.list) or deb822 (.sources) files.
# Prints "<uri> <suite>" per suite.
host_debian_suites() {
  local file
  for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -f "$file" ]] && awk '$1 == "deb" { i = 2; if ($2 ~ /^\[/) { while ($i !~ /\]$/) i++; i++ } print $i, $(i + 1) }' "$file"
  done
  for file in /etc/apt/sources.list.d/*.sources; do
    [[ -f "$file" ]] && awk '
      /^[ \t]*$/ { flush(); next }
      /^URIs:/ { uri = $2 }
      /^Suites:/ { suites = ""; for (i = 2; i <= NF; i++) suites = suites " " $i }
      END { flush() }
      function flush(  n, list, k) {
        if (uri != "") { n = split(suites, list, " "); for (k = 1; k <= n; k++) print uri, list[k] }
        uri = ""; suites = ""
      }' "$file"
  done
}

suites=$(host_debian_suites)
mirror=$(awk '$2 == "bookworm" { print $1; exit }' <<<"$suites")
security=$(awk '$2 == "bookworm-security" { print $1; exit }' <<<"$suites")
mirror=${ECHOLAB_DEBIAN_MIRROR:-${mirror:-http://deb.debian.org/debian}}
security=${ECHOLAB_DEBIAN_SECURITY:-${security:-http://deb.debian.org/debian-security}}

command -v debootstrap >/dev/null 2>&1 || "$ECHOLAB_ROOT/scripts/install-deps.sh" --docker
rootfs=$(mktemp -d /var/tmp/echolab-bookworm.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT

echo "docker-base-image: $ECHOLAB_BASE_IMAGE is not available; building it with debootstrap from $mirror" >&2
log="$rootfs.log"
if ! debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$log" 2>&1; then
  tail -n 20 "$log" >&2
  echo "docker-base-image: debootstrap failed (full log: $log)" >&2
  exit 1
fi
rm -f "$log"

# What the official slim image does: keep documentation, man pages and translations out of
# every later apt-get install, and keep no package lists or downloaded .debs in layers.
cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
EOF
cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
Acquire::Languages "none";
EOF
find "$rootfs/usr/share/doc" -mindepth 2 ! -name copyright ! -type d -delete
find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$rootfs"/usr/share/{man,groff,info,lintian,linda,locale}/*
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/*.log
rm -f "$rootfs/etc/apt/sources.list" "$rootfs/etc/hostname" "$rootfs/etc/resolv.conf"
cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF

tar --numeric-owner -C "$rootfs" --exclude=./dev/* --exclude=./proc/* --exclude=./sys/* -c . \
  | docker import --change 'CMD ["bash"]' \
    --message "Debian 12 minbase from $mirror (debootstrap), built by echolab" - "$ECHOLAB_BASE_IMAGE" >/dev/null
echo "docker-base-image: imported $ECHOLAB_BASE_IMAGE ($(docker image inspect -f '{{.Size}}' "$ECHOLAB_BASE_IMAGE") bytes)" >&2
