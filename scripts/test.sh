#!/usr/bin/env bash
# The whole test suite, on a fresh Debian machine (as root, or with sudo for the installs):
# installs what the tests drive for real, then runs every crate's tests.
#
# Tests that need a real component (a tmpfs mount, FUSE, a container engine...) skip with a
# loud SKIP line when it is missing, unless STRATA_TEST_REQUIRE_ALL=1 (as in CI): then they fail.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
scripts/setup-debian.sh test
# A Docker engine of our own for the build tests (see the script); tests read STRATA_DOCKER_HOST.
if [ "$(id -u)" -eq 0 ]; then
  # Unprivileged FUSE mounts (the non-root mount test): /dev/fuse gets the mode udev's
  # standard rule gives it (KERNEL=="fuse", MODE="0666"); machines without udev leave 0600.
  if [ -c /dev/fuse ]; then chmod 0666 /dev/fuse; fi
  STRATA_DOCKER_HOST=$(scripts/start-dockerd.sh)
  export STRATA_DOCKER_HOST
fi
cargo test --workspace --locked "$@"
