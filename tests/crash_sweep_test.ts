// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// The bounded crash sweep CI runs on every change (the long one is
// `deno task crash`), and proof that its checker is not vacuous.
import { join } from "node:path";
import { CACHE_LINE, PAGE } from "./crash/model.ts";
import { CRASH_MOVERS } from "./crash/movers.ts";
import {
  checkTrace,
  CI_IMAGES,
  CI_SUBSETS,
  emptyReport,
  formatReport,
  sweepInChildren,
} from "./crash/sweep.ts";
import { recordTrace } from "./crash/record.ts";
import { recycle } from "./crash/spare_buffers.ts";
import {
  emptyCounts,
  MAX_EXAMPLES,
  mergeCounts,
  recordProblem,
  type SweepCounts,
} from "./crash/sweep_report.ts";
import { WORKLOADS } from "./crash/workload.ts";
import {
  blkWindowSweepInChildren,
  formatBlkWindowReport,
} from "./crash/window_sweep.ts";
import { windowsHere } from "./crash/window_ends.ts";
import { assert, tempDir, test } from "./_harness.ts";
import { requires } from "./_requires.ts";

function workload(name: string) {
  return WORKLOADS.find((w) => w.name === name)!;
}

test(
  "the crash sweep finds every acknowledged write whole in ≥ 2000 crash images",
  async () => {
    const report = await sweepInChildren({
      models: [CACHE_LINE, PAGE],
      images: CI_IMAGES,
      seed: 1,
      ops: 12,
      long: false,
      pmempool: true,
      dir: tempDir(),
    });
    console.log(formatReport(report));
    assert.deepEqual(report.examples, []);
    assert.equal(report.problems, 0);
    assert.ok(report.images >= 2000, `only ${report.images} images`);
    assert.deepEqual(report.models, ["cache-line", "page"]);
    assert.ok(report.recovered > 0, "no image needed recovery");
    assert.ok(
      report.recoveryImages > 0,
      "no crash during recovery was checked",
    );
    assert.ok(report.refused > 0, "no image of an unfinished create");
    assert.ok(
      report.pmempoolRuns >= 20,
      `${report.pmempoolRuns} pmempool runs`,
    );
    // the production paths: every mover's traces were checked
    for (const mover of CRASH_MOVERS) {
      assert.ok(
        (report.movers[mover] ?? 0) >= 200,
        `${report.movers[mover] ?? 0} images of ${mover} traces`,
      );
    }
    assert.equal(report.lint.unflushed, 0);
    assert.equal(report.lint.unfenced, 0);
  },
  // the limit only catches a hang: the sweep is a fixed amount of work
  // (72 s on Deno on an idle 2-CPU machine, but 165 s on Deno and 223 s
  // on Bun with both CPUs loaded, close to the 240 s it had)
  { timeout: 600_000, skip: requires("pmempool") },
);

test(
  "on a pool past 64 MiB, writes of every kind into blocks across the ends of Bun's 4 MiB view windows leave every acknowledged block whole (both models, every mover)",
  async () => {
    // On Bun the store sees this 66 MiB pool through even windows, and
    // the traced writes land in blocks across their ends (a block copied
    // in two pieces, by a mover batch or the CPU); on Deno the same pool
    // is one buffer, the same sweep runs unwindowed. One lane: no crash
    // during recovery has an image of its own (a recovery stores one map
    // entry), so none is counted.
    const windows = windowsHere();
    const report = await blkWindowSweepInChildren({
      models: [CACHE_LINE, PAGE],
      images: 300,
      seed: 1,
      ops: 16,
      long: false,
      dir: tempDir(),
    });
    console.log(formatBlkWindowReport(report));
    assert.deepEqual(report.examples, []);
    assert.equal(report.problems, 0);
    assert.deepEqual(report.models, ["cache-line", "page"]);
    for (const mover of CRASH_MOVERS) {
      assert.ok(
        (report.movers[mover] ?? 0) >= 50,
        `${report.movers[mover] ?? 0} images of ${mover} traces`,
      );
    }
    assert.equal(report.windowed, windows ? report.traces : 0);
    assert.equal(report.strays, 0, "the tracers missed stores");
    assert.ok(
      report.crossings >= 2 * report.traces,
      `${report.crossings} flushes across a window's end in ${report.traces} traces`,
    );
    assert.ok(report.images >= 600, `only ${report.images} images`);
    assert.ok(report.recovered > 0, "no image needed recovery");
    assert.equal(report.lint.unflushed, 0);
    assert.equal(report.lint.unfenced, 0);
  },
  // about 10 s on an idle 2-CPU machine; the limit only catches a hang
  { timeout: 240_000 },
);

test(
  "`checkTrace()` finds lost and torn blocks when the program's fences are hidden",
  () => {
    const dir = tempDir();
    const options = {
      subsets: CI_SUBSETS,
      pmempool: false,
      pmempoolEvery: 0,
      recoveryImages: 1,
      dir,
    };
    for (
      const [name, mover] of [
        ["sync", "cpu"],
        ["async", "cpu"],
        ["async", "threads"],
        ["shared", "cpu"],
      ] as const
    ) {
      const w = workload(name);
      const sound = emptyReport();
      const path = join(dir, "pool");
      const recorded = recordTrace(w, PAGE, 3, 8, path, {}, mover);
      checkTrace(recorded, options, sound);
      // its base is not read again: kept for the next trace, which would
      // otherwise allocate one and fault its 16 MiB in afresh (as the
      // sweep does, `runSweep()`)
      recycle(recorded.base);
      assert.equal(sound.problems, 0, formatReport(sound));
      assert.ok(sound.images > 20, `${name}: ${sound.images} images`);
      const broken = emptyReport();
      const trace = recordTrace(
        w,
        PAGE,
        3,
        8,
        path,
        { dropFences: true },
        mover,
      );
      checkTrace(trace, options, broken);
      recycle(trace.base);
      assert.ok(broken.problems > 0, `${name}: nothing found`);
      assert.ok(
        broken.examples.some((p) =>
          /holds (zeros|version \d+|a torn block).*, expected/.test(p.message)
        ),
        broken.examples.map((p) => p.message).join("\n"),
      );
    }
    // 18–25 s on Bun with both CPUs busy running other tests (Bun's default
    // limit is 5 s)
  },
  { timeout: 120_000 },
);

test("`mergeCounts()` keeps every child's problems, examples and counts", () => {
  // Children report problems only through the merge: a merge that drops
  // them would make a broken store's sweep look clean.
  type R = SweepCounts<string> & { extra: number };
  const child = (problems: string[], extra: number): R => {
    const r: R = { ...emptyCounts<string>(), extra };
    r.images = 10;
    r.models = [`m${extra}`];
    for (const p of problems) recordProblem(r, p);
    return r;
  };
  const into: R = { ...emptyCounts<string>(), extra: 0 };
  mergeCounts(into, child([], 1), ["extra"]);
  mergeCounts(into, child(["a", "b"], 2), ["extra"]);
  const many = Array.from({ length: MAX_EXAMPLES + 5 }, (_, i) => `c${i}`);
  mergeCounts(into, child(many, 3), ["extra"]);
  assert.equal(into.problems, 2 + MAX_EXAMPLES + 5);
  assert.equal(into.images, 30);
  assert.equal(into.extra, 6);
  assert.deepEqual(into.models, ["m1", "m2", "m3"]);
  assert.equal(into.examples.length, MAX_EXAMPLES);
  assert.deepEqual(into.examples.slice(0, 3), ["a", "b", "c0"]);
});
