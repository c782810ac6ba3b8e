#!/usr/bin/env bash
# bench/layered: strata's layered build of examples/layered (base → tooling → app) against the
# same content as one monolithic Dockerfile, with the real Docker engine (BuildKit), for an
# app-only, a tooling and a base change, with a warm and a cold builder cache (seed 003).
#
#   bench/layered/run.sh [--tiny] [--out FILE]
#
# --tiny: short simulated package installs (CI); default: PACKAGES_SECONDS=30, TOOLING_SECONDS=15.
# Needs: a Docker engine (DOCKER_HOST, e.g. from scripts/start-dockerd.sh), /usr/bin/docker,
# /usr/bin/docker-registry (a loopback registry is started), /bin/busybox, a built strata.
#
# warm: the builder cache and local images of earlier builds are there (a developer machine
#       or a persistent CI runner).
# cold: `docker builder prune -af` and every image removed before the build (a fresh CI
#       runner); strata then finds unchanged images by input key in the registry
#       (tag sk-<key>) and pulls them; the monolithic build starts from nothing.
# Every build runs after a commit with the change; strata builds the affected images
# (`strata build --base HEAD~1`) and their prerequisites (reused by key).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
tiny=0; out=
while [ $# -gt 0 ]; do
  case $1 in
    --tiny) tiny=1 ;;
    --out) out=$2; shift ;;
    *) echo "usage: $0 [--tiny] [--out FILE]" >&2; exit 2 ;;
  esac
  shift
done
pk=30; tl=15
[ $tiny = 1 ] && { pk=6; tl=3; }
docker=${STRATA_DOCKER:-/usr/bin/docker}
export DOCKER_BUILDKIT=1
export DOCKER_HOST=${DOCKER_HOST:-${STRATA_DOCKER_HOST:-unix:///run/strata-docker.sock}}
strata=${STRATA_BIN:-$root/target/release/strata}
[ -x "$strata" ] || { (cd "$root" && cargo build --release -q -p strata); }
"$docker" version >/dev/null || { echo "no Docker engine at $DOCKER_HOST (scripts/start-dockerd.sh)" >&2; exit 1; }

work=$(mktemp -d /tmp/strata-bench-layered.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$work/registry.yml" <<YML
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $work/registry}, delete: {enabled: true}}
http: {addr: 127.0.0.1:$port}
YML
/usr/bin/docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
regpid=$!
cleanup() { kill $regpid 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done

p=$work/project
cp -r "$root/examples/layered" "$p"
cp /bin/busybox "$p/base/busybox"
sed -i "s/PACKAGES_SECONDS=20/PACKAGES_SECONDS=$pk/" "$p/Dockerfile.base" "$p/Dockerfile.monolithic"
sed -i "s/TOOLING_SECONDS=10/TOOLING_SECONDS=$tl/" "$p/Dockerfile.tooling" "$p/Dockerfile.monolithic"
sed -i "s|^registry = .*|registry = \"127.0.0.1:$port/layered\"|" "$p/strata.toml"
cd "$p"
git init -q -b main
g() { git -c user.name=bench -c user.email=bench@example.invalid "$@"; }
g add -A; g commit -qm initial

clean_all() {
  "$docker" builder prune -af >/dev/null
  # only this benchmark's images (the engine may be shared with other tests)
  "$docker" images --format '{{.Repository}}:{{.Tag}}' \
    | grep -E "^(strata-local/(base|tooling|app):|strata-bench/|127\.0\.0\.1:$port/)" \
    | xargs -r "$docker" rmi -f >/dev/null 2>&1 || true
}
secs() { local s=$(date +%s.%N); "$@" >"$work/last.log" 2>&1 || { cat "$work/last.log" >&2; exit 1; }; echo "$(date +%s.%N) - $s" | bc; }
mono() { secs "$docker" build --network=host -q -f Dockerfile.monolithic -t strata-bench/mono:latest .; }
layered() { secs "$strata" build --base HEAD~1; }
# Unmeasured: both caches warm for the current commit, and its images pushed (so a cold
# runner can find unchanged images by key, as CI would after the previous pipeline).
warmup() {
  "$strata" build --all --push >"$work/warmup.log" 2>&1 || { cat "$work/warmup.log" >&2; exit 1; }
  "$docker" build --network=host -q -f Dockerfile.monolithic -t strata-bench/mono:latest . >/dev/null
}

echo "setup: registry 127.0.0.1:$port, PACKAGES_SECONDS=$pk TOOLING_SECONDS=$tl" >&2
clean_all

declare -A T
n=0
change() {
  n=$((n+1))
  case $1 in
    app) echo "ext $n" >> app/extensions/nodejs.extension ;;
    tooling) echo "# tooling change $n" >> tooling/install.sh ;;
    base) echo "pkg$n" >> base/packages.txt ;;
  esac
  g commit -qam "$1 change $n"
}
for kind in app tooling base; do
  warmup
  change $kind
  T[$kind,warm,mono]=$(mono)
  T[$kind,warm,strata]=$(layered)
  echo "$kind warm: monolithic ${T[$kind,warm,mono]}s, strata ${T[$kind,warm,strata]}s" >&2
  warmup
  change $kind
  clean_all; T[$kind,cold,mono]=$(mono)
  clean_all; T[$kind,cold,strata]=$(layered)
  echo "$kind cold: monolithic ${T[$kind,cold,mono]}s, strata ${T[$kind,cold,strata]}s" >&2
done

r() { printf '%.1f' "$1"; }
ratio() { echo "scale=1; $1 / $2" | bc; }
{
  echo "| change (share) | cache | monolithic | strata layered | speed-up |"
  echo "|---|---|---:|---:|---:|"
  for kind in app tooling base; do
    share=$(case $kind in app) echo 70%;; tooling) echo 20%;; base) echo 10%;; esac)
    for c in warm cold; do
      echo "| $kind ($share) | $c | $(r ${T[$kind,$c,mono]}) s | $(r ${T[$kind,$c,strata]}) s | $(ratio ${T[$kind,$c,mono]} ${T[$kind,$c,strata]})× |"
    done
  done
  echo
  for c in warm cold; do
    m=$(echo "0.7*${T[app,$c,mono]} + 0.2*${T[tooling,$c,mono]} + 0.1*${T[base,$c,mono]}" | bc -l)
    s=$(echo "0.7*${T[app,$c,strata]} + 0.2*${T[tooling,$c,strata]} + 0.1*${T[base,$c,strata]}" | bc -l)
    echo "- $c builder cache, 70/20/10 mix: monolithic $(r $m) s, strata $(r $s) s per change; weighted saving $(echo "scale=1; 100*(1 - $s/$m)" | bc)%"
  done
} | if [ -n "$out" ]; then tee "$out"; else cat; fi
