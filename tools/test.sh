#!/usr/bin/env bash
# The test command: set up, check types/lint/format, run the whole suite on
# Deno and on Bun, and end with one line "tests: N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh || { echo "tests: 0 passed, 1 failed"; exit 1; }
export PATH="$PWD/node_modules/.bin:$PATH" RUST_BACKTRACE=0 NO_COLOR=1

failed=0
step() { # name, command...
  local name=$1; shift
  if "$@" >/tmp/asyncpmem-step.log 2>&1; then
    echo "check: $name ok"
  else
    echo "check: $name FAILED"; cat /tmp/asyncpmem-step.log; failed=$((failed + 1))
  fi
}
step "deno check" deno check mod.ts errors/ ffi/ future/ mover/ pmem2/ blk/ stream/ testing/ tests/ bench/ examples/ c/build.ts
step "tsc (bun-types)" tsc -p .
step "deno lint" deno lint
step "deno fmt" deno fmt --check
step "deno doc --lint" deno doc --lint mod.ts errors/mod.ts future/mod.ts mover/mod.ts pmem2/mod.ts blk/mod.ts stream/mod.ts testing/mod.ts
step "JSR publish (dry run)" deno publish --dry-run --allow-dirty
doc_tmp=$(mktemp -d)
step "doc examples (deno test --doc)" env TMPDIR="$doc_tmp" deno test -A --doc errors/ ffi/ future/ mover/ pmem2/ blk/ stream/ testing/ mod.ts
rm -rf "$doc_tmp"

deno_log=$(mktemp); bun_log=$(mktemp)
deno test -A --no-check tests/ 2>&1 | tee "$deno_log"
deno_rc=${PIPESTATUS[0]}
bun test --timeout 120000 ./tests/ 2>&1 | tee "$bun_log"
bun_rc=${PIPESTATUS[0]}

# deno: "ok | 12 passed | 0 failed (..)" or "FAILED | 1 passed | 1 failed"
d_pass=$(grep -Eo '[0-9]+ passed' "$deno_log" | tail -1 | grep -Eo '[0-9]+' || echo 0)
d_fail=$(grep -Eo '[0-9]+ failed' "$deno_log" | tail -1 | grep -Eo '[0-9]+' || echo 0)
b_pass=$(grep -Eo '^ *[0-9]+ pass$' "$bun_log" | tail -1 | grep -Eo '[0-9]+' || echo 0)
b_fail=$(grep -Eo '^ *[0-9]+ fail$' "$bun_log" | tail -1 | grep -Eo '[0-9]+' || echo 0)
[ "$deno_rc" -ne 0 ] && [ "$d_fail" -eq 0 ] && d_fail=1
[ "$bun_rc" -ne 0 ] && [ "$b_fail" -eq 0 ] && b_fail=1
[ "$d_pass" -eq 0 ] && d_fail=$((d_fail + 1))
[ "$b_pass" -eq 0 ] && b_fail=$((b_fail + 1))
echo "deno: $d_pass passed, $d_fail failed"
echo "bun: $b_pass passed, $b_fail failed"
pass=$((d_pass + b_pass))
fail=$((d_fail + b_fail + failed))
echo "tests: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
