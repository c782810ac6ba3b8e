#!/usr/bin/env bash
# bench/serve/run.sh: strata serve vs devpi-server (pip) and verdaccio (npm), and a second
# machine filling from the remote tier vs from the throttled upstream. See bench.py for cases.
#
# Usage: bench/serve/run.sh [--tiny] [--reps N] [--cases LIST] [--work-dir DIR] [--bin-dir DIR]
#   --tiny       smoke run for CI: 5 wheels, 10 npm packages, 1 rep
#   --reps N     repetitions (default 3)
#   --cases LIST comma-separated groups: pip,npm,devpi,verdaccio,remote (default all)
#   --work-dir   data, tools and results (default ${TMPDIR:-/tmp}/strata-bench-serve)
#   --bin-dir    where strata and strata-upstream are (default target/release; built if missing)
# Baselines are installed into the work dir on first use: devpi-server + devpi-client from
# PyPI (a venv), verdaccio from the npm registry. A baseline that cannot be installed is
# reported as SKIP and its cases are left out; strata's cases and checks always run.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
tiny=
reps=3
cases=pip,npm,devpi,verdaccio,remote
work=${TMPDIR:-/tmp}/strata-bench-serve
bin=${CARGO_TARGET_DIR:-$repo/target}/release
while [ $# -gt 0 ]; do
  case $1 in
    --tiny) tiny=--tiny ;;
    --reps) reps=$2; shift ;;
    --cases) cases=$2; shift ;;
    --work-dir) work=$2; shift ;;
    --bin-dir) bin=$2; shift ;;
    -h|--help) sed -n 2,14p "$0"; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
mkdir -p "$work/tools"
if [ ! -x "$bin/strata" ] || [ ! -x "$bin/strata-upstream" ]; then
  (cd "$repo" && cargo build --release -p strata -p strata-upstream)
fi
devpi=
if [ -x "$work/tools/devpi/bin/devpi-server" ] || {
     python3 -m venv "$work/tools/devpi" &&
     "$work/tools/devpi/bin/pip" install -q devpi-server devpi-client; } >/dev/null 2>&1; then
  devpi=$work/tools/devpi/bin
else
  echo "SKIP devpi: could not install devpi-server from PyPI" >&2
fi
# verdaccio 6 needs Node.js 22 (this machine has 20), so 5.x. Its dependency tree asks for
# `node-fetch@cjs`, a dist-tag the public registry has and some mirrors lack: pin it (2.7.0 is
# what the tag names upstream) with an override.
verdaccio=
vd_dir=$work/tools/verdaccio
if [ ! -x "$vd_dir/node_modules/.bin/verdaccio" ]; then
  mkdir -p "$vd_dir"
  cat > "$vd_dir/package.json" <<'JSON'
{"name": "strata-bench-verdaccio", "version": "1.0.0", "private": true,
 "dependencies": {"verdaccio": "^5.33.0"},
 "overrides": {"node-fetch@cjs": "2.7.0", "node-fetch": "2.7.0"}}
JSON
fi
if [ -x "$vd_dir/node_modules/.bin/verdaccio" ] ||
   (cd "$vd_dir" && npm install --silent --no-audit --no-fund) >/dev/null 2>&1; then
  verdaccio=$vd_dir/node_modules/.bin/verdaccio
else
  echo "SKIP verdaccio: could not install it from the npm registry" >&2
fi
exec python3 "$here/bench.py" --work "$work" --bin "$bin" --reps "$reps" --cases "$cases" $tiny \
  --devpi "$devpi" --verdaccio "$verdaccio"
