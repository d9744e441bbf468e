#!/bin/sh
# HEALTHCHECK of the swift-infer images: while the container runs `swift deploy`, its /health answers 200
# (no key needed). The port is the one `swift deploy` was started with (--port, default 8000), read from its
# command line (PID 1, or a child of an init such as `docker run --init`); a container running another
# command (`swift infer`) has nothing to serve and counts as healthy.
set -eu
for cmdline in /proc/1/cmdline /proc/[0-9]*/cmdline; do
  args=$(tr '\0' '\n' <"$cmdline" 2>/dev/null) || continue
  echo "$args" | grep -q '/swift$' && echo "$args" | grep -qx deploy && break
  args=""
done
[ -n "$args" ] || exit 0
port=$(echo "$args" | awk 'take { print; exit } $0 == "--port" { take = 1 } /^--port=/ { sub(/^--port=/, ""); print; exit }')
exec python3 -c "import sys, urllib.request; sys.exit(urllib.request.urlopen(sys.argv[1], timeout=5).status != 200)" \
  "http://127.0.0.1:${port:-8000}/health"
