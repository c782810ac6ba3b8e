#!/bin/sh
# tool version manager: 35% of the tooling layer's time and payload.
set -e
. /opt/tooling/lib.sh
install_tool mise 35 "$1" "$2"
