#!/bin/sh
# the team's CLIs: 30% of the tooling layer's time and payload.
set -e
. /opt/tooling/lib.sh
install_tool cli 30 "$1" "$2"
