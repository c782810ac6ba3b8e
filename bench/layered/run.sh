#!/usr/bin/env bash
# bench/layered: strata's layered build of examples/layered (base → tooling → app) against the
# same content as one monolithic Dockerfile, with the real Docker engine (BuildKit), for an
# app-only, a tooling and a base change, with a warm and a cold builder cache (seed 003).
#
#   bench/layered/run.sh [--tiny | --seed003 | --heavy] [--engine docker|buildah] [--reps N] [--cases "app tooling base"] [--out FILE] [--logs DIR]
#
# Sizes: seed 003's table (base 3-4 min and 550 MB, tooling 2-3 min and 200 MB, app 10-15 s
# and 1 MB), with time and data scaled down alike so a run takes minutes, not hours:
#   default:   base  42 s +  110 MiB, tooling  30 s +  40 MiB, app 2.4 s + 1 MiB (seed 003 / 5)
#   --seed003: base 210 s +  550 MiB, tooling 150 s + 200 MiB, app  12 s + 1 MiB (seed 003 itself)
#   --heavy:   base  20 s + 1200 MiB, tooling  12 s + 200 MiB, app   1 s + 10 MiB (data-heavy:
#              install time compressed ~10x against data volume, so pulls dominate)
#   --tiny:    base   4 s +   60 MiB, tooling   2 s +  10 MiB, app 0.2 s + 1 MiB (CI smoke run)
# "Package" data is random (incompressible), so pushes and pulls cost what they would.
# Tooling is four steps (mise 35%, cli 30%, sops 20%, user 15% of its time and data); a
# tooling change edits one tool's script, rep 1 the first (mise: every step re-runs), rep 2
# the second, and so on round the four, so 4 reps weigh every tool alike.
#
# --engine buildah: both sides build with buildah on overlay storage of their own (a fresh
# runner: the storage emptied). The example's Dockerfiles are rewritten first: bind-mounted
# scripts become COPYs (buildah's layer cache keys a RUN on its text, not on bind-mounted
# files; strata build refuses that combination) and ARG defaults are written in (buildah
# 1.28's --cache-from misses every step after an ARG step). strata pushes zstd:chunked (`[build] push-compression`) and
# its storage takes layers from `strata layer-store` (restarted with an empty cache on a
# cold runner), so reused parents are not copied; each image uses the registry as buildah's
# layer cache (cache-from/cache-to). The monolithic build is `buildah bud --layers`; its
# "+ registry cache" baseline gets --cache-from the repository its warm-up pushed to.
#
# Engines (docker): strata builds with $DOCKER_HOST (default $STRATA_DOCKER_HOST), the monolithic
# Dockerfile with $MONO_DOCKER_HOST. Give them two separate dockerds: with one daemon the two
# share BuildKit's cache, and strata's base build hits the steps the monolithic build just ran
# (the same instructions), which flatters strata. /usr/bin/docker, /usr/bin/docker-registry (a
# loopback registry is started), /bin/busybox and a built strata ($STRATA_BIN) are needed.
#
# warm: the builder cache and local images of the previous commit are there (a developer
#       machine or a persistent CI runner); the monolithic build re-runs only the layers after
#       the change, which is the honest baseline.
# cold: builder cache pruned and the bench's images removed before the build (a fresh CI
#       runner); strata finds unchanged images by input key in the registry (tag sk-<key>)
#       and pulls them, and imports BuildKit's inline cache of the images it rebuilds from
#       their stable tags; the monolithic build starts from nothing (seed 003's "before").
#       A second baseline, "monolithic + registry cache", gives the monolithic build the
#       same help: --cache-from its previous image (pushed with BuildKit's inline cache).
# Before each measured pair, both engines are warmed up on the current commit and strata
# pushes (as CI would after the previous pipeline). Each measured build follows a commit with
# the change; strata builds `--base HEAD~1` (the affected images, prerequisites reused by key).
# Every strata build's record is checked: exactly the images the change affects are built
# (app: app; tooling: tooling, app; base: all three), else the bench stops.
# Logs (every build's output, strata's JSON records, raw timings with load averages) go to
# --logs DIR (default: a new /tmp/strata-bench-layered-logs.XXXXXX, kept).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
tiny=0; out=; reps=3; cases="app tooling base"; logs=; engine=docker
while [ $# -gt 0 ]; do
  case $1 in
    --tiny) tiny=1 ;;
    --seed003) tiny=2 ;;
    --heavy) tiny=3 ;;
    --engine) engine=$2; shift ;;
    --reps) reps=$2; shift ;;
    --cases) cases=$2; shift ;;
    --out) out=$2; shift ;;
    --logs) logs=$2; shift ;;
    *) echo "usage: $0 [--tiny | --seed003 | --heavy] [--engine docker|buildah] [--reps N] [--cases \"app tooling base\"] [--out FILE] [--logs DIR]" >&2; exit 2 ;;
  esac
  shift
done
if [ $tiny = 1 ]; then
  pk_s=4; pk_mb=60; tl_s=2; tl_mb=10; app_s=0.2; app_mb=1
elif [ $tiny = 2 ]; then
  pk_s=210; pk_mb=550; tl_s=150; tl_mb=200; app_s=12; app_mb=1
elif [ $tiny = 3 ]; then
  pk_s=20; pk_mb=1200; tl_s=12; tl_mb=200; app_s=1; app_mb=10
else
  pk_s=42; pk_mb=110; tl_s=30; tl_mb=40; app_s=2.4; app_mb=1
fi
docker=${STRATA_DOCKER:-/usr/bin/docker}
export DOCKER_BUILDKIT=1
strata_host=${DOCKER_HOST:-${STRATA_DOCKER_HOST:-unix:///run/strata-docker.sock}}
mono_host=${MONO_DOCKER_HOST:-$strata_host}
strata=${STRATA_BIN:-${CARGO_TARGET_DIR:-$root/target}/release/strata}
[ -x "$strata" ] || { (cd "$root" && cargo build --release -q -p strata); }
case $engine in
  docker)
    for h in "$strata_host" "$mono_host"; do
      DOCKER_HOST=$h "$docker" version >/dev/null || { echo "no Docker engine at $h (scripts/start-dockerd.sh)" >&2; exit 1; }
    done
    [ "$strata_host" = "$mono_host" ] && echo "warning: one dockerd for both builds: they share BuildKit's cache (set MONO_DOCKER_HOST)" >&2 ;;
  buildah) command -v buildah >/dev/null || { echo "buildah missing (apt-get install buildah)" >&2; exit 1; } ;;
  *) echo "--engine: docker or buildah" >&2; exit 2 ;;
esac

logs=${logs:-$(mktemp -d /tmp/strata-bench-layered-logs.XXXXXX)}
mkdir -p "$logs"
work=$(mktemp -d /tmp/strata-bench-layered.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$work/registry.yml" <<YML
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $work/registry}, delete: {enabled: true}}
http: {addr: 127.0.0.1:$port}
YML
/usr/bin/docker-registry serve "$work/registry.yml" >"$logs/registry.log" 2>&1 &
regpid=$!
# buildah: the layer caches live in a second registry. buildah's --cache-to pushes gzip
# layers; in the images' registry containers/image would then reuse those blobs for the
# zstd:chunked pushes (cross-repository mounts), and nothing could be pulled lazily.
cport=$port; cregpid=
if [ "$engine" = buildah ]; then
  cport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  sed -e "s|$work/registry|$work/cache-registry|" -e "s|127.0.0.1:$port|127.0.0.1:$cport|" \
    "$work/registry.yml" > "$work/cache-registry.yml"
  /usr/bin/docker-registry serve "$work/cache-registry.yml" >"$logs/cache-registry.log" 2>&1 &
  cregpid=$!
fi
storepid=
cleanup() {
  if [ "$engine" = buildah ]; then
    for side in strata mono; do wipe_storage "$side"; done
    [ -z "$storepid" ] || { kill "$storepid" 2>/dev/null; wait "$storepid" 2>/dev/null || true; }
  fi
  kill $regpid $cregpid 2>/dev/null || true; rm -rf "$work"
}
# buildah storage per side (overlay), the strata side's with the layer store.
bconf() { echo "$work/$1.conf"; }
wipe_storage() {
  local conf; conf=$(bconf "$1")
  [ -e "$conf" ] || return 0
  CONTAINERS_STORAGE_CONF=$conf buildah rm --all >/dev/null 2>&1 || true
  CONTAINERS_STORAGE_CONF=$conf buildah rmi --all --force >/dev/null 2>&1 || true
  grep -o " $work/$1/[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "${work:?}/$1"
}
start_store() {
  mkdir -p "$work/layers"
  "$strata" layer-store --cache-dir "$work/layer-cache" "$work/layers" 2>>"$logs/layer-store.log" &
  storepid=$!
  for _ in $(seq 100); do [ -e "$work/layers/.strata-layer-store.json" ] && return 0; sleep 0.05; done
  echo "strata layer-store did not come up (log $logs/layer-store.log)" >&2; exit 1
}
stop_store() {
  [ -n "$storepid" ] || return 0
  cat "$work/layers/.strata-layer-store.json" >>"$logs/layer-store-stats.jsonl" 2>/dev/null || true
  kill "$storepid"; wait "$storepid" || true; storepid=
}
trap cleanup EXIT
# A kill (TERM) or Ctrl-C ends the script through exit, so the EXIT trap cleans up too.
trap 'exit 143' TERM; trap 'exit 130' INT
for pt in $port $cport; do
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$pt) 2>/dev/null && break; sleep 0.1; done
done

p=$work/project
cp -r "$root/examples/layered" "$p"
cp /bin/busybox "$p/base/busybox"
# A package unique to this run: no key can match an image an earlier run left on the engine.
echo "bench-run-$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')" >> "$p/base/packages.txt"
mkdir -p "$p/app/assets"
head -c $((app_mb * 1048576)) /dev/urandom > "$p/app/assets/bundle.bin"
sed -i -e "s/^ARG PACKAGES_SECONDS=.*/ARG PACKAGES_SECONDS=$pk_s/" -e "s/^ARG PACKAGES_MB=.*/ARG PACKAGES_MB=$pk_mb/" \
  -e "s/^ARG TOOLING_SECONDS=.*/ARG TOOLING_SECONDS=$tl_s/" -e "s/^ARG TOOLING_MB=.*/ARG TOOLING_MB=$tl_mb/" \
  -e "s/^ARG APP_SECONDS=.*/ARG APP_SECONDS=$app_s/" "$p"/Dockerfile*
sed -i "s|^registry = .*|registry = \"127.0.0.1:$port/layered\"|" "$p/strata.toml"
if [ "$engine" = buildah ]; then
  # RUN --mount=type=bind,source=S,target=T ... CMD  ->  COPY S T ... then RUN CMD
  python3 - "$p"/Dockerfile* <<'PY'
import re, sys
for path in sys.argv[1:]:
    text = open(path).read().replace("\\\n", "\x00")
    out = []
    for line in text.split("\n"):
        mounts = re.findall(r"--mount=type=bind,source=([^,\s]+),target=(\S+)", line)
        if line.startswith("RUN ") and mounts:
            out += [f"COPY {s} {t}" for s, t in mounts]
            rest = re.sub(r"--mount=type=bind,source=[^,\s]+,target=\S+", "", line[4:])
            out.append("RUN " + rest.replace("\x00", " ").strip())
        else:
            out.append(line.replace("\x00", "\\\n"))
    # ARGs with a default are written into the instructions: buildah 1.28's --cache-from
    # finds no remote cache for any step after an ARG step.
    args = {}
    final = []
    for line in out:
        m = re.match(r"ARG (\w+)=(\S*)$", line)
        if m:
            args[m.group(1)] = m.group(2)
            continue
        for k, v in args.items():
            line = line.replace(f'"${k}"', v).replace(f"${k}", v)
        final.append(line)
    open(path, "w").write("\n".join(final))
PY
  sed -i -e 's|^engine = .*|engine = "buildah"\npush-compression = "zstd:chunked"|' \
    -e "s|^file = .*|&\ncache-from = [\"127.0.0.1:$cport/layered-cache\"]\ncache-to = [\"127.0.0.1:$cport/layered-cache\"]|" \
    "$p/strata.toml"
  # Measured builds read the registry's layer cache but do not write it (the warm-up, "the
  # previous pipeline", does): a cache push is a push, and no measured build pushes.
  sed '/^cache-to = /d' "$p/strata.toml" > "$p/strata-measure.toml"
  printf '[storage]\ndriver = "overlay"\ngraphroot = "%s/strata/graph"\nrunroot = "%s/strata/run"\n[storage.options]\nadditionallayerstores = ["%s/layers:ref"]\n' \
    "$work" "$work" "$work" > "$(bconf strata)"
  printf '[storage]\ndriver = "overlay"\ngraphroot = "%s/mono/graph"\nrunroot = "%s/mono/run"\n' "$work" "$work" > "$(bconf mono)"
  start_store
fi
cd "$p"
git init -q -b main
g() { git -c user.name=bench -c user.email=bench@example.invalid "$@"; }
g add -A; g commit -qm initial

dk() { local h=$1; shift; DOCKER_HOST=$h "$docker" "$@"; }
# A fresh runner: no builder cache (DOCKER_BUILDKIT=0: Debian's client without buildx refuses
# `builder prune` under DOCKER_BUILDKIT=1) and none of this bench's images, tagged or not.
# clean_side strata|mono: a fresh runner for that side's engine.
clean_side() {
  case $engine:$1 in
    buildah:strata) wipe_storage strata; stop_store; rm -rf "$work/layer-cache"; start_store ;;
    buildah:mono) wipe_storage mono ;;
    docker:strata) clean "$strata_host" ;;
    docker:mono) clean "$mono_host" ;;
  esac
}
clean() {
  local h=$1
  DOCKER_BUILDKIT=0 dk "$h" builder prune -af >/dev/null
  { dk "$h" images --format '{{.Repository}}:{{.Tag}}' \
      | grep -E "^(strata-local/(base|tooling|app):|strata-bench/|127\.0\.0\.1:$port/)" || true
    dk "$h" images -q --no-trunc --filter label=dev.strata.input-key
    # Untagged images too: a monolithic image superseded by a later build is left dangling,
    # unlabelled, with the very layers its registry copy has, so "+ registry cache" found
    # them locally and pulled nothing.
    dk "$h" images -q --no-trunc --filter dangling=true
  } | sort -u | xargs -r env DOCKER_HOST="$h" "$docker" rmi -f >/dev/null 2>&1 || true
  if dk "$h" images -q --filter label=dev.strata.input-key | grep -q .; then
    echo "clean: strata images left on $h" >&2; exit 1
  fi
}
step=0
# secs LOG CMD...: runs CMD with output to LOG, prints the wall time in seconds.
secs() {
  local log=$1; shift
  local s; s=$(date +%s.%N)
  "$@" >"$log" 2>&1 || { tail -40 "$log" >&2; echo "failed: $* (log $log)" >&2; exit 1; }
  echo "$(date +%s.%N) - $s" | bc
}
mono_ref=127.0.0.1:$port/mono:latest
# The monolithic image always carries BuildKit's inline cache (it changes no cache key);
# only the "+ registry cache" baseline imports it.
mono_build() {
  if [ "$engine" = buildah ]; then
    CONTAINERS_STORAGE_CONF=$(bconf mono) buildah bud --layers --network=host --tls-verify=false \
      -f Dockerfile.monolithic -t strata-bench/mono:latest "$@" .
    return
  fi
  dk "$mono_host" build --progress=plain --network=host --build-arg BUILDKIT_INLINE_CACHE=1 \
    -f Dockerfile.monolithic -t strata-bench/mono:latest -t "$mono_ref" "$@" .
}
mono_cache_repo=127.0.0.1:$cport/mono-cache
mono_cache_build() {
  if [ "$engine" = buildah ]; then mono_build --cache-from "$mono_cache_repo"; else mono_build --cache-from "$mono_ref"; fi
}
sb() { DOCKER_HOST=$strata_host CONTAINERS_STORAGE_CONF=$(bconf strata) "$strata" "$@"; }
strata_build() {
  if [ "$engine" = buildah ]; then sb build --config strata-measure.toml --base HEAD~1 --json
  else sb build --base HEAD~1 --json; fi
}
mono_publish() {
  if [ "$engine" = buildah ]; then
    mono_build --cache-to "$mono_cache_repo" \
      && CONTAINERS_STORAGE_CONF=$(bconf mono) buildah push --tls-verify=false strata-bench/mono:latest "docker://$mono_ref"
  else
    mono_build && dk "$mono_host" push "$mono_ref"
  fi
}
# Unmeasured: both engines warm for the current commit, and its images pushed (so a cold
# runner finds unchanged images by key, as CI would after the previous pipeline).
# buildah: its layer cache in the registry is written only by builds with cache-to, and
# measured builds have none; and the images a measured build made are reused by key, not
# built, by a plain warm-up. So the warm-up rebuilds (--rebuild) with cache-to: its steps
# hit the layers the measured build left in this storage (or the registry cache), giving
# the same images, and their cache entries reach the registry as the pipeline that built
# them would have pushed them. Without this, every tooling change after a base change
# found no cache for the new base and re-ran all four tools.
warmup() {
  local rebuild=()
  [ "$engine" = buildah ] && rebuild=(--rebuild)
  sb build --all --push "${rebuild[@]}" >"$logs/warmup-$step.log" 2>&1 \
    || { tail -40 "$logs/warmup-$step.log" >&2; exit 1; }
  mono_publish >"$logs/warmup-mono-$step.log" 2>&1 \
    || { tail -40 "$logs/warmup-mono-$step.log" >&2; exit 1; }
}
tools=(mise cli sops user)
n=0
change() {
  n=$((n+1))
  case $1 in
    app) echo "ext $n" >> app/extensions/nodejs.extension ;;
    tooling) echo "# tooling change $n" >> "tooling/${tools[$(( (rep - 1) % 4 ))]}.sh" ;;
    base) echo "pkg$n" >> base/packages.txt ;;
  esac
  g commit -qam "$1 change $n"
}
# check KIND LOG: the strata record (last line of LOG, --json) built exactly what KIND affects.
check() {
  local want
  case $1 in app) want="app" ;; tooling) want="app tooling" ;; base) want="app base tooling" ;; esac
  local got
  got=$(tail -1 "$2" | python3 -c 'import json,sys; r=json.load(sys.stdin); print(" ".join(sorted(n for n,i in r["images"].items() if i["status"]=="built")))')
  [ "$got" = "$want" ] || { echo "bench bug or strata bug: a $1 change built [$got], expected [$want] (log $2)" >&2; exit 1; }
}
# checkmono CACHE LOG: a cold monolithic build re-ran everything.
checkmono() {
  if [ "$1" = cold ] && grep -qE ' CACHED$|Using cache' "$2"; then
    echo "bench bug: a cold monolithic build used cached steps (log $2)" >&2; exit 1
  fi
}

echo "setup: engine $engine; registry 127.0.0.1:$port; base ${pk_s}s+${pk_mb}MiB, tooling ${tl_s}s+${tl_mb}MiB, app ${app_s}s+${app_mb}MiB; strata $strata_host, monolithic $mono_host; logs $logs" >&2
clean_side strata; clean_side mono
echo "rep,kind,cache,monolithic_s,strata_s,load1_before,monolithic_cache_s" > "$logs/times.csv"
for rep in $(seq "$reps"); do
  for kind in $cases; do
    for c in warm cold; do
      step=$((step+1))
      warmup
      change "$kind"
      load=$(cut -d' ' -f1 /proc/loadavg)
      [ $c = cold ] && clean_side mono
      tm=$(secs "$logs/$step-$kind-$c-mono.log" mono_build)
      checkmono "$c" "$logs/$step-$kind-$c-mono.log"
      tc=
      if [ $c = cold ]; then
        clean_side mono
        tc=$(secs "$logs/$step-$kind-$c-mono-cache.log" mono_cache_build)
      fi
      [ $c = cold ] && clean_side strata
      ts=$(secs "$logs/$step-$kind-$c-strata.log" strata_build)
      check "$kind" "$logs/$step-$kind-$c-strata.log"
      [ "$engine" = docker ] || cp "$work/layers/.strata-layer-store.json" "$logs/$step-$kind-$c-store.json"
      echo "$rep,$kind,$c,$tm,$ts,$load,$tc" >> "$logs/times.csv"
      echo "rep $rep $kind $c: monolithic ${tm}s${tc:+, monolithic + registry cache ${tc}s}, strata ${ts}s (load $load)" >&2
    done
  done
done

python3 - "$logs/times.csv" <<'PY' | if [ -n "$out" ]; then tee "$out"; else cat; fi
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
share = {"app": 0.7, "tooling": 0.2, "base": 0.1}
t = {}
for r in rows:
    cache = float(r["monolithic_cache_s"]) if r.get("monolithic_cache_s") else None
    t.setdefault((r["kind"], r["cache"]), []).append(
        (float(r["monolithic_s"]), float(r["strata_s"]), cache))
reps = max(len(v) for v in t.values())
fmt = lambda v: f"{min(v):.1f} / {statistics.median(v):.1f} s"
print("| change (share) | cache | monolithic min / median | monolithic + registry cache | strata min / median | speed-up vs monolithic | vs + registry cache |")
print("|---|---|---:|---:|---:|---:|---:|")
med = {}
for kind in ("app", "tooling", "base"):
    for c in ("warm", "cold"):
        if (kind, c) not in t:
            continue
        m = [x[0] for x in t[kind, c]]; s = [x[1] for x in t[kind, c]]
        mc = [x[2] for x in t[kind, c] if x[2] is not None]
        med[kind, c] = (statistics.median(m), statistics.median(s),
                        statistics.median(mc) if mc else statistics.median(m))
        mm, sm, cm = med[kind, c]
        print(f"| {kind} ({share[kind]:.0%}) | {c} | {fmt(m)} | {fmt(mc) if mc else '(= monolithic)'} | "
              f"{fmt(s)} | {mm / sm:.1f}× | {cm / sm:.1f}× |")
print()
# Medians, and means: with one tool changed per rep (round the four), the mean of the tooling
# row is the expected cost of a tooling change when every tool changes as often.
for c in ("warm", "cold"):
    if not all((k, c) in t for k in share):
        continue
    for name, agg in (("medians", statistics.median), ("means", statistics.mean)):
        col = lambda k, i: agg([x[i] if x[i] is not None else x[0] for x in t[k, c]])
        m = sum(share[k] * col(k, 0) for k in share)
        s = sum(share[k] * col(k, 1) for k in share)
        mc = sum(share[k] * col(k, 2) for k in share)
        print(f"- {c} builder cache, 70/20/10 mix ({name}): monolithic {m:.1f} s, monolithic + "
              f"registry cache {mc:.1f} s, strata {s:.1f} s per change; weighted saving "
              f"{100 * (1 - s / m):.1f}% vs monolithic, {100 * (1 - s / mc):.1f}% vs + registry cache")
print(f"- {reps} rep(s); raw timings with load averages: times.csv in the logs directory")
PY
echo "logs: $logs" >&2
