#!/bin/sh
# Simulated package installation: for each package listed in $1, wait its share of $2
# seconds and write its share of $3 MiB of random (incompressible) data, like a package
# manager's downloads and unpacked files.
set -e
list=$1 secs=$2 mb=$3
n=$(grep -c . "$list")
mkdir -p /opt/packages
for p in $(cat "$list"); do
  sleep "$(awk "BEGIN { print $secs / $n }")"
  dd if=/dev/urandom of="/opt/packages/$p" bs=1M count=$((mb / n)) 2>/dev/null
done
