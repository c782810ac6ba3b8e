#!/usr/bin/env bash
# strata's main job on a shipped example, with no external service:
#   1. build strata and the loopback test upstream,
#   2. serve examples/fetch-demo/upstream on 127.0.0.1:38765 (the URLs the lockfiles pin),
#   3. `strata fetch` pylock.toml + package-lock.json + artifacts.lock.yaml into a
#      Hermeto-compatible output directory, cold and then warm,
#   4. use the output the way a hermetic build would: pip and npm install offline from it.
#
# Usage: bash examples/fetch-demo/run.sh [OUTPUT_DIR]     (default: a temp dir, kept and printed)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
"$root/scripts/setup-debian.sh" demo

echo "==> building strata (release)"
cargo build --release --quiet --manifest-path "$root/Cargo.toml" -p strata -p strata-upstream
bin="${CARGO_TARGET_DIR:-$root/target}/release"

work=$(mktemp -d "${TMPDIR:-/tmp}/strata-demo.XXXXXX")
out="${1:-$work/output}"
upstream_pid=
cleanup() { [ -n "$upstream_pid" ] && kill "$upstream_pid" 2>/dev/null; wait 2>/dev/null || true; }
trap cleanup EXIT

echo "==> serving $here/upstream on 127.0.0.1:38765"
"$bin/strata-upstream" --root "$here/upstream" --addr 127.0.0.1:38765 --port-file "$work/port" >/dev/null &
upstream_pid=$!
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.05; done
[ -s "$work/port" ] || { echo "the example upstream did not start (is port 38765 free?)" >&2; exit 1; }

# A project checkout of our own, so inject-files rewrites a copy, not the shipped lockfile.
cp -r "$here/lockfiles" "$work/project"
cd "$work/project"

echo "==> strata fetch (cold cache)"
"$bin/strata" fetch --cache-dir "$work/cache" -o "$out" pylock.toml package-lock.json artifacts.lock.yaml
echo "==> strata fetch again into a new directory (warm cache: hard links, no downloads)"
"$bin/strata" fetch --cache-dir "$work/cache" -o "$work/output-warm" pylock.toml package-lock.json artifacts.lock.yaml
echo "==> the output tree"
(cd "$out" && find . -type f | sort)
echo "==> strata env $out"
"$bin/strata" env "$out"
"$bin/strata" cache --cache-dir "$work/cache" verify

echo "==> pip install --no-index from the output (what a hermetic RUN does)"
eval "$("$bin/strata" env "$out")"
python3 -m pip install --quiet --disable-pip-version-check --target "$work/site" hello-strata colour-names
PYTHONPATH="$work/site" python3 -c 'import hello_strata; print(hello_strata.greet("strata"))'
echo "==> strata inject-files, then npm ci --offline from the output"
"$bin/strata" inject-files "$out"
npm ci --offline --no-audit --no-fund --silent
node -e 'console.log(require("left-pad-lite")("strata", 10, "."), require("@strata-example/tiny"))'
echo "==> done: output in $out"
