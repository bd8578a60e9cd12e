#!/usr/bin/env bash
# The demo command: set up (system packages, Deno and Bun, the native shim),
# then run examples/demo.ts on Deno and on Bun.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
export PATH="$PWD/node_modules/.bin:$PATH" RUST_BACKTRACE=0
echo "== Deno"; deno run -A examples/demo.ts
echo "== Bun";  bun examples/demo.ts
