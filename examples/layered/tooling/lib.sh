#!/bin/sh
# install_tool NAME PERCENT SECONDS MB: "installs" one tool: waits PERCENT% of SECONDS (its
# downloads and set-up) and writes PERCENT% of MB of random (incompressible) payload.
install_tool() {
  name=$1 pct=$2 secs=$3 mb=$4
  sleep "$(awk "BEGIN { print $secs * $pct / 100 }")"
  mkdir -p /opt/tools
  dd if=/dev/urandom of="/opt/tools/$name" bs=1024 \
    count="$(awk "BEGIN { printf \"%d\", $mb * 1024 * $pct / 100 }")" 2>/dev/null
  echo "$name" >> /opt/tools/versions
}
