#!/usr/bin/env bash
# The test command: set up, check types/lint/format, run the whole suite on
# Deno and on Bun, and end with one line
# "tests: N passed, N failed, N skipped".
set -uo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh || { echo "tests: 0 passed, 1 failed, 0 skipped"; exit 1; }
echo "setup: done in $SECONDS s"
# setup installed every tool a test may need: a missing one is a failure
export PATH="$PWD/node_modules/.bin:$PATH" RUST_BACKTRACE=0 NO_COLOR=1 \
  ASYNCPMEM_STRICT_TOOLS=1

failed=0
step() { # name, command...
  local name=$1 start=$SECONDS; shift
  if "$@" >/tmp/asyncpmem-step.log 2>&1; then
    echo "check: $name ok ($((SECONDS - start)) s)"
  else
    echo "check: $name FAILED ($((SECONDS - start)) s)"; cat /tmp/asyncpmem-step.log; failed=$((failed + 1))
  fi
}
# The two runtimes' suites run side by side, each one file after the other
# in its own process tree, while the checks below run: on 2 CPUs the whole
# takes about the longer suite's time instead of the sum of all three (most
# tests and every check run one thread). Each suite's log is printed whole
# when it ends, after the checks' lines, so nothing interleaves.
deno_log=$(mktemp); bun_log=$(mktemp)
run_suite() { # name, log, command...
  local name=$1 log=$2 start=$SECONDS rc; shift 2
  "$@" >"$log" 2>&1
  rc=$?
  echo "$name suite: rc $rc in $((SECONDS - start)) s" >>"$log"
  return "$rc"
}
run_suite deno "$deno_log" deno test -A --no-check tests/ &
deno_pid=$!
run_suite bun "$bun_log" bun test --timeout 240000 ./tests/ &
bun_pid=$!

ENTRY_POINTS=(mod.ts errors/mod.ts future/mod.ts mover/mod.ts pmem2/mod.ts blk/mod.ts stream/mod.ts obj/mod.ts testing/mod.ts cli/main.ts)
step "deno check" deno check mod.ts errors/ ffi/ future/ mover/ pmem2/ pmdk/ blk/ stream/ obj/ testing/ cli/ tests/ bench/ examples/ c/build.ts
step "tsc (bun-types)" tsc -p .
step "deno lint" deno lint
step "deno fmt" deno fmt --check
step "deno doc --lint" deno doc --lint "${ENTRY_POINTS[@]}"
step "JSR publish (dry run)" deno publish --dry-run --allow-dirty
# the JSDoc examples type-checked here; tests/doc_examples_test.ts runs
# each one, as written, on both runtimes (`deno test --doc` ran them again
# on Deno: 44 s of a quiet machine's time for nothing more)
step "doc examples type-check (deno check --doc)" deno check --doc errors/ ffi/ future/ mover/ pmem2/ pmdk/ blk/ stream/ obj/ testing/ cli/ mod.ts
step "package (npm pack, installed with bun, run on Bun and Deno)" bash tools/package_check.sh

wait "$deno_pid"; deno_rc=$?
cat "$deno_log"
wait "$bun_pid"; bun_rc=$?
cat "$bun_log"

count() { # log, pattern: the number in the last line matching it, or 0
  grep -Eo "$2" "$1" | tail -1 | grep -Eo '[0-9]+' || echo 0
}
# deno: "ok | 12 passed | 0 failed | 1 ignored (..)"
d_pass=$(count "$deno_log" '[0-9]+ passed')
d_fail=$(count "$deno_log" '[0-9]+ failed')
d_skip=$(count "$deno_log" '[0-9]+ ignored')
# bun: " 12 pass", " 1 skip", " 0 fail"
b_pass=$(count "$bun_log" '^ *[0-9]+ pass$')
b_fail=$(count "$bun_log" '^ *[0-9]+ fail$')
b_skip=$(count "$bun_log" '^ *[0-9]+ skip$')
[ "$deno_rc" -ne 0 ] && [ "$d_fail" -eq 0 ] && d_fail=1
[ "$bun_rc" -ne 0 ] && [ "$b_fail" -eq 0 ] && b_fail=1
[ "$d_pass" -eq 0 ] && d_fail=$((d_fail + 1))
[ "$b_pass" -eq 0 ] && b_fail=$((b_fail + 1))

# both runtimes must have run the same tests: compare their names
d_names=$(mktemp); b_names=$(mktemp)
# (unique: bun lists a failed test again in its summary, deno in its
# FAILURES section; a test that failed once is not a test of its own)
sed -nE 's/^(.+) \.\.\. (ok|FAILED|ignored).*$/\1/p' "$deno_log" | sort -u >"$d_names"
sed -nE 's/^\((pass|fail|skip)\) (.+)$/\2/p' "$bun_log" |
  sed -E 's/ \[[0-9.]+(ms|s)\]$//' | sort -u >"$b_names"
if ! diff -q "$d_names" "$b_names" >/dev/null; then
  echo "check: Deno and Bun ran different tests FAILED"
  diff "$d_names" "$b_names" | sed 's/^</  deno only:/; s/^>/  bun only:/' | grep only
  failed=$((failed + 1))
else
  echo "check: Deno and Bun ran the same $(wc -l <"$d_names") tests ok"
fi
rm -f "$d_names" "$b_names"

echo "deno: $d_pass passed, $d_fail failed, $d_skip skipped"
echo "bun: $b_pass passed, $b_fail failed, $b_skip skipped"
pass=$((d_pass + b_pass))
fail=$((d_fail + b_fail + failed))
skip=$((d_skip + b_skip))
echo "tests: $pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
