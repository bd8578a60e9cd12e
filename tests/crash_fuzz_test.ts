// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// Fuzzing pool metadata: every mutant opens to a typed error or a pool
// that checks, reads and writes without a runtime failure.
import { readFileSync } from "node:fs";
import { MIN_POOL_SIZE } from "../blk/mod.ts";
import {
  formatFuzzReport,
  fuzz,
  type FuzzOutcome,
  mutate,
  writeFuzzBase,
} from "./crash/fuzz.ts";
import { poolRegions } from "./crash/regions.ts";
import { diffWords, Words } from "./crash/words.ts";
import { assert, runScript, tempPath, test } from "./_harness.ts";

test(
  "seeded mutations of header, descriptor, info blocks, map and flog never crash an open",
  () => {
    const base = tempPath("base");
    const scratch = tempPath("mutant");
    writeFuzzBase(base);
    const report = fuzz(
      (from, count) =>
        runScript(
          `import { fuzzChild } from "@root/tests/crash/fuzz.ts";
fuzzChild(${JSON.stringify(base)}, ${
            JSON.stringify(scratch)
          }, ${from}, ${count});`,
          120_000,
        ),
      1,
      600,
    );
    console.log(formatFuzzReport(report));
    assert.deepEqual(report.failures, []);
    assert.equal(report.mutants, 600);
    for (const verdict of ["refused", "consistent", "reported"]) {
      assert.ok(report.verdicts[verdict] > 0, `no mutant was ${verdict}`);
    }
    assert.deepEqual(Object.keys(report.targets).sort(), [
      "backup",
      "descriptor",
      "flog",
      "header",
      "info",
      "map",
    ]);
    assert.ok(report.writes.ok > 0 && report.writes.refused > 0);
  },
  { timeout: 240_000 },
);

test("`fuzz()` blames the mutant a child died on and carries on after it", () => {
  const outcome: FuzzOutcome = {
    verdict: "refused",
    detail: "PmemError: bad",
    reads: {},
    write: "none",
  };
  const line = (seed: number) =>
    `begin ${seed}\nresult ${seed} ${
      JSON.stringify({ what: "map: 1 bits flipped", ...outcome })
    }\n`;
  const calls: [number, number][] = [];
  const report = fuzz(
    (from, count) => {
      calls.push([from, count]);
      return from === 10
        ? {
          status: null,
          signal: "SIGSEGV",
          stdout: `${line(10)}begin 11\n`,
          stderr: "Segmentation fault",
        }
        : {
          status: 0,
          signal: null,
          stdout: Array.from({ length: count }, (_, i) => line(from + i)).join(
            "",
          ),
          stderr: "",
        };
    },
    10,
    6,
    4,
  );
  assert.deepEqual(calls, [[10, 4], [12, 4]]);
  assert.equal(report.mutants, 6);
  assert.deepEqual(report.verdicts, { refused: 5, failed: 1 });
  assert.equal(report.failures.length, 1);
  assert.match(report.failures[0], /^seed 11: the child died \(SIGSEGV\)/);
});

test("`mutate()` is deterministic per seed and stays inside its region", () => {
  const base = tempPath("base");
  writeFuzzBase(base);
  const bytes = new Uint8Array(readFileSync(base));
  const regions = poolRegions(MIN_POOL_SIZE, 4096);
  const seen = new Set<string>();
  // two images refilled per seed, not two fresh 16 MiB arrays each (their
  // page faults took seconds, on Bun most)
  const a = new Uint8Array(bytes.length);
  const b = new Uint8Array(bytes.length);
  for (let seed = 0; seed < 50; seed++) {
    a.set(bytes);
    b.set(bytes);
    const what = mutate(a, regions, seed);
    assert.equal(mutate(b, regions, seed), what);
    assert.deepEqual(a, b, what);
    const kind = what.slice(0, what.indexOf(":"));
    const inside = regions.filter((r) =>
      r.kind === kind || (kind === "info" || kind === "backup") &&
        (r.kind === "info" || r.kind === "backup")
    );
    const changed = new Words();
    diffWords(a, bytes, 0, a.length, changed, false);
    for (let i = 0; i < changed.length; i++) {
      const at = changed.index(i) * 8;
      assert.ok(
        inside.some((r) => at + 8 > r.offset && at < r.offset + r.length),
        `${what}: bytes at ${at} changed`,
      );
    }
    seen.add(what);
  }
  assert.ok(seen.size > 45, "mutations repeat");
});
