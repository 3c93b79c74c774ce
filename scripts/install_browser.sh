#!/usr/bin/env bash
# Install Debian's chromium for the browser tests, unless `chromium` is already on PATH.
# Playwright drives this system browser; it never downloads a browser of its own.
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
    echo "chromium: $(command -v chromium)"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "error: chromium is not on PATH and there is no apt-get to install it;" \
         "install Chromium so that \`chromium\` is on PATH, then rerun." >&2
    exit 1
fi

if [ "$(id -u)" -eq 0 ]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1 && { sudo -n true 2>/dev/null || [ -t 0 ]; }; then
    as_root=(sudo)  # asks for a password only when there is a terminal to ask on
else
    echo "error: chromium is not on PATH, and installing it needs root:" \
         "run \`sudo apt-get update && sudo apt-get install -y chromium\`, then rerun." >&2
    exit 1
fi

echo "Installing Debian's chromium (apt-get; about a minute)..."
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium

if ! command -v chromium >/dev/null 2>&1; then
    echo "error: apt-get installed a 'chromium' package but no \`chromium\` command is on PATH" \
         "(on Ubuntu it is a snap stub); install a Chromium that provides \`chromium\`." >&2
    exit 1
fi
echo "chromium: $(command -v chromium)"
