#!/usr/bin/env bash
# Builds (once) a minimal Debian root filesystem tarball for engine tests that need a base
# image with apt, since base images cannot be pulled here. Cached, so reruns are instant:
#   /var/cache/strata-test/debian-<suite>-minbase.tar
# The suite and mirror come from this machine's apt configuration (sources.list or
# sources.list.d/*.sources), so no mirror is named here. Prints the tarball's path.
# Import it with: docker import <tarball> <name>
# Usage: scripts/debian-base.sh [PACKAGES]   (comma-separated extra packages;
#        default curl,ca-certificates; each package set gets its own cached tarball)
set -euo pipefail
include=${1:-curl,ca-certificates}
cache=/var/cache/strata-test
first_field() { sed -n "s/^$1:[[:space:]]*//p" /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1 | cut -d' ' -f1; }
mirror=$(first_field URIs)
suite=$(first_field Suites)
if [ -z "$mirror" ] && [ -f /etc/apt/sources.list ]; then
  read -r mirror suite < <(awk '$1=="deb" && $2 !~ /^\[/ {print $2, $3; exit}' /etc/apt/sources.list)
fi
[ -n "$mirror" ] && [ -n "$suite" ] || { echo "debian-base: no Debian mirror in the apt configuration" >&2; exit 1; }
if [ "$include" = curl,ca-certificates ]; then
  tarball="$cache/debian-$suite-minbase.tar"
else
  tarball="$cache/debian-$suite-minbase-${include//,/-}.tar"
fi
if [ -s "$tarball" ]; then echo "$tarball"; exit 0; fi
command -v debootstrap >/dev/null || { echo "debian-base: debootstrap missing (apt-get install debootstrap)" >&2; exit 1; }
mkdir -p "$cache"
root=$(mktemp -d "$cache/rootfs.XXXXXX")
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase --include="$include" "$suite" "$root" "$mirror" >"$cache/debootstrap.log" 2>&1 \
  || { echo "debian-base: debootstrap failed; see $cache/debootstrap.log" >&2; exit 1; }
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar -C "$root" -cf "$tarball.tmp" .
mv "$tarball.tmp" "$tarball"
echo "$tarball"
