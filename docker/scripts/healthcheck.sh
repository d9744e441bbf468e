#!/bin/sh
# HEALTHCHECK of the swift-infer images: while the container runs `swift deploy`, its /health answers 200
# (no key needed). The port is the one `swift deploy` was started with (--port, default 8000), read from
# the container's main process; a container running another command (`swift infer`) has nothing to serve.
set -eu
args=$(tr '\0' '\n' </proc/1/cmdline)
echo "$args" | grep -qx deploy || exit 0
port=$(echo "$args" | awk 'take { print; exit } $0 == "--port" { take = 1 } /^--port=/ { sub(/^--port=/, ""); print; exit }')
exec python3 -c "import sys, urllib.request; sys.exit(urllib.request.urlopen(sys.argv[1], timeout=5).status != 200)" \
  "http://127.0.0.1:${port:-8000}/health"
