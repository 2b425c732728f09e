#!/usr/bin/env bash
# Make sure a Chromium binary exists for the browser tests: Debian's package, installed
# with apt (as root, or through sudo) when missing. Prints the binary's path.
set -euo pipefail
for candidate in chromium chromium-browser; do
  if command -v "$candidate" >/dev/null 2>&1; then command -v "$candidate"; exit 0; fi
done
echo "installing Chromium from Debian's packages for the browser tests..." >&2
if [ "$(id -u)" = 0 ]; then
  apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >&2
else
  sudo apt-get update -qq >&2 && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >&2
fi
command -v chromium
