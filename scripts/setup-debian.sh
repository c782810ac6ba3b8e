#!/usr/bin/env bash
# Installs what strata's build, example and tests need on a fresh Debian machine.
# Usage: scripts/setup-debian.sh build|demo|test
#   build: a C toolchain for crates with C parts (ring), pkg-config, git.
#   demo:  build + pip and npm, the clients examples/fetch-demo installs with.
#   test:  build + everything the test suite drives for real (see the list below).
# Does nothing for packages already present; needs root (or sudo) only when something is missing.
set -euo pipefail
what=${1:-test}
packages=(gcc libc6-dev pkg-config git ca-certificates)
if [ "$what" = demo ]; then
  packages+=(python3 python3-pip npm)
fi
if [ "$what" = test ]; then
  packages+=(
    python3 python3-pip python3-venv  # pip as a real client of the output tree
    npm                               # npm as a real client of the output tree
    util-linux                        # mount/umount for the tmpfs ENOSPC test
    curl time                         # benchmark baselines and peak-RSS measurement
    docker.io containerd runc         # a real Docker engine (BuildKit) for build tests
    busybox-static                    # test images are built FROM scratch with a static busybox
    fuse3                             # strata mount: FUSE (fusermount3 for non-root users)
    buildah                           # a real buildah bud reading from the lazy mount
    libnfs-utils                      # strata serve --nfs: nfs-ls/nfs-cat as userspace NFS clients
    docker-registry                   # the remote tier (--remote oci://...) against a real registry
    rpm dnf createrepo-c              # RPM repos: rpmbuild makes test packages, a real dnf installs
                                      # from strata's repodata, createrepo_c makes live repos
    debootstrap                       # a Debian base image for the strata generate engine test
    podman bc                         # strata build --engine podman (vfs, chroot); bench/layered arithmetic
                                      # (buildah and docker-registry above also serve strata build/gc tests)
  )
fi
# A package counts as present when dpkg has it, or when what it provides is already on the
# machine from elsewhere (e.g. Node.js with its own npm from another source, which conflicts
# with Debian's npm package; python3 from pyenv).
provided() {
  case "$1" in
    npm) command -v npm >/dev/null ;;
    python3) command -v python3 >/dev/null ;;
    python3-pip) python3 -m pip --version >/dev/null 2>&1 ;;
    python3-venv) python3 -c 'import venv, ensurepip' >/dev/null 2>&1 ;;
    git|gcc|curl) command -v "$1" >/dev/null ;;
    *) return 1 ;;
  esac
}
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || provided "$p" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "setup: missing ${missing[*]} and no apt-get here; install them by hand" >&2
    exit 1
  fi
  sudo=
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  echo "setup: installing ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# From PyPI (test mode): uv, a real client of `strata serve`'s simple index.
if [ "$what" = test ] && ! command -v uv >/dev/null 2>&1; then
  echo "setup: installing uv from PyPI" >&2
  python3 -m pip install --quiet uv 2>/dev/null || python3 -m pip install --quiet --break-system-packages uv
fi
