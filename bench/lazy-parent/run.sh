#!/usr/bin/env bash
# bench/lazy-parent: the cold "app" build of a layered set with buildah, its parent pulled
# the usual way vs served lazily by `strata layer-store` — the cost seed 003's app-only row
# pays on a fresh runner before its own build starts.
#
#   bench/lazy-parent/run.sh [--tiny] [--reps N] [--parent-mb MB] [--app-seconds S]
#
# --tiny (CI's smoke run): 1 rep, an 8 MiB parent, a 0.1 s app build.
#
# A parent image like examples/layered's tooling (busybox + MB of random "package" data in
# five layers) is built with buildah and pushed zstd:chunked to a loopback docker-registry.
# Then, each rep, on empty overlay storage (a fresh runner):
#   eager: buildah bud of `FROM parent; COPY app; RUN build (sleep S, 1 MiB of output)`,
#          pulling the parent in full;
#   lazy:  the same build on storage whose additional layer store is strata layer-store
#          (a fresh cache each rep): the parent's files are fetched only when opened;
#   local: the same build with the parent already in storage (the floor: no pull at all).
# Prints min/median per mode and the ratios. Needs buildah, docker-registry, busybox, FUSE,
# root, and a strata binary ($STRATA_BIN, else target/release/strata, built if missing).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
reps=5; parent_mb=150; app_s=2.4
while [ $# -gt 0 ]; do
  case $1 in
    --tiny) reps=1; parent_mb=8; app_s=0.1 ;;
    --reps) reps=$2; shift ;;
    --parent-mb) parent_mb=$2; shift ;;
    --app-seconds) app_s=$2; shift ;;
    *) echo "usage: $0 [--tiny] [--reps N] [--parent-mb MB] [--app-seconds S]" >&2; exit 2 ;;
  esac
  shift
done
strata=${STRATA_BIN:-${CARGO_TARGET_DIR:-$root/target}/release/strata}
[ -x "$strata" ] || (cd "$root" && cargo build --release -q -p strata)
work=$(mktemp -d /tmp/strata-bench-lazy.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
reg=127.0.0.1:$port
cat > "$work/registry.yml" <<YML
version: 0.1
log: {level: warn}
storage: {filesystem: {rootdirectory: $work/registry}}
http: {addr: $reg}
YML
docker-registry serve "$work/registry.yml" > "$work/registry.log" 2>&1 &
reg_pid=$!
store_pid=
conf() { # name [store]
  local d=$work/$1
  printf '[storage]\ndriver = "overlay"\ngraphroot = "%s/graph"\nrunroot = "%s/run"\n' "$d" "$d" > "$d.conf"
  [ -z "${2:-}" ] || printf '[storage.options]\nadditionallayerstores = ["%s:ref"]\n' "$2" >> "$d.conf"
  echo "$d.conf"
}
wipe() { # conf dir
  CONTAINERS_STORAGE_CONF=$1 buildah rm --all >/dev/null 2>&1 || true
  CONTAINERS_STORAGE_CONF=$1 buildah rmi --all --force >/dev/null 2>&1 || true
  grep -o " $2[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$2"
}
cleanup() {
  [ -z "$store_pid" ] || kill "$store_pid" 2>/dev/null || true
  kill "$reg_pid" 2>/dev/null || true
  for c in "$work"/*.conf; do [ -e "$c" ] && wipe "$c" "${c%.conf}"; done
  umount -l "$work/layers" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
# A kill (TERM) or Ctrl-C ends the script through exit, so the EXIT trap cleans up too.
trap 'exit 143' TERM; trap 'exit 130' INT
for _ in $(seq 50); do curl -sf "http://$reg/v2/" >/dev/null && break; sleep 0.1; done

# The parent: five data layers in the proportions of examples/layered's tooling.
mkdir -p "$work/parent" "$work/app/app"
cp /bin/busybox "$work/parent/busybox"
{
  echo 'FROM scratch'
  echo 'COPY busybox /bin/busybox'
  echo 'RUN ["/bin/busybox", "--install", "-s", "/bin"]'
  for share in 35 30 20 15; do
    echo "RUN mkdir -p /opt && head -c $((parent_mb * share / 100 * 1048576)) /dev/urandom > /opt/tool-$share"
  done
} > "$work/parent/Containerfile"
pub=$(conf publisher)
CONTAINERS_STORAGE_CONF=$pub buildah bud -q --layers --network=host -t parent:local "$work/parent" >/dev/null
# (buildah warns that it recorded these blobs as zstd:chunked before: harmless)
CONTAINERS_STORAGE_CONF=$pub buildah push -q --tls-verify=false --format oci \
  --compression-format zstd:chunked parent:local "docker://$reg/bench:parent" 2>/dev/null
wipe "$pub" "$work/publisher"
printf 'ARG PARENT\nFROM ${PARENT}\nCOPY app/ /app/\nRUN sh /app/build.sh\n' > "$work/app/Containerfile"

build() { # conf rep
  printf 'mkdir -p /app/out && head -c 1048576 /dev/urandom > /app/out/assets && sleep %s\n# %s\n' "$app_s" "$2" \
    > "$work/app/app/build.sh"
  local t0 t1
  t0=$(date +%s.%N)
  CONTAINERS_STORAGE_CONF=$1 buildah bud -q --tls-verify=false --network=host \
    --build-arg "PARENT=$reg/bench:parent" -t app:bench "$work/app" >/dev/null
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc
}
declare -A times
for rep in $(seq "$reps"); do
  c=$(conf eager); sync; e=$(build "$c" "e$rep"); times[eager]+="$e "; wipe "$c" "$work/eager"
  mkdir -p "$work/layers"
  "$strata" -q layer-store --cache-dir "$work/cache-$rep" "$work/layers" 2>"$work/store.log" &
  store_pid=$!
  for _ in $(seq 100); do [ -e "$work/layers/.strata-layer-store.json" ] && break; sleep 0.05; done
  c=$(conf lazy "$work/layers"); sync; l=$(build "$c" "l$rep"); times[lazy]+="$l "
  fetched=$(cat "$work/layers/.strata-layer-store.json")
  wipe "$c" "$work/lazy"
  kill "$store_pid"; wait "$store_pid" || true; store_pid=
  rm -rf "$work/cache-$rep"
  c=$(conf local)
  CONTAINERS_STORAGE_CONF=$c buildah pull -q --tls-verify=false "$reg/bench:parent" >/dev/null
  sync; p=$(build "$c" "p$rep"); times[local]+="$p "; wipe "$c" "$work/local"
  echo "rep $rep: eager $e s, lazy $l s, local $p s; the store: $fetched" >&2
done
stat() { tr ' ' '\n' <<<"$1" | grep . | sort -n | awk '{a[NR]=$1} END {printf "%.2f %.2f", a[1], a[int((NR+1)/2)]}'; }
read -r emin emed <<<"$(stat "${times[eager]}")"
read -r lmin lmed <<<"$(stat "${times[lazy]}")"
read -r pmin pmed <<<"$(stat "${times[local]}")"
echo "parent ${parent_mb} MiB in 6 layers, app build ${app_s} s, $reps reps (min / median):"
echo "  eager pull + build:        $emin / $emed s"
echo "  strata layer-store + build: $lmin / $lmed s   ($(echo "scale=2; $emed / $lmed" | bc)x faster than eager)"
echo "  parent already local:      $pmin / $pmed s   (the floor)"
echo "  times: eager ${times[eager]}| lazy ${times[lazy]}| local ${times[local]}"
