#!/usr/bin/env bash
# Install everything asyncpmem needs on a fresh Debian/Ubuntu machine that has
# Node/npm and root: system packages, the pinned Deno and Bun from npm, and
# the native shim. Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(gcc libc6-dev libpmem2-dev libpmemblk-dev libpmemlog-dev libpmemobj-dev pmdk-tools libaccel-config-dev valgrind)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ ! -x node_modules/.bin/deno ] || [ ! -x node_modules/.bin/bun ] ||
   [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi

export PATH="$PWD/node_modules/.bin:$PATH"
deno run -A c/build.ts >/dev/null
