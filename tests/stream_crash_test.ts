// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// The log stream's crash consistency: the bounded crash sweep (both
// persistence models, every mover, on the production path), the same
// across the ends of Bun's view windows, proof that its checker is not
// vacuous, the image fuzzer and a SIGKILLed writer.
import { join } from "node:path";
import { PAGE } from "./crash/model.ts";
import {
  checkStreamTrace,
  emptyStreamReport,
  formatStreamReport,
  recordStreamTrace,
  STREAM_CI_SUBSETS,
  streamSweepInChildren,
} from "./crash/stream_sweep.ts";
import {
  formatStreamFuzzReport,
  streamFuzz,
  writeStreamFuzzBase,
} from "./crash/stream_fuzz.ts";
import {
  formatStreamKillReport,
  streamKillRounds,
} from "./crash/stream_kill.ts";
import { STREAM_WORKLOADS } from "./crash/stream_workload.ts";
import { CACHE_LINE } from "./crash/model.ts";
import { assert, runScript, tempDir, tempPath, test } from "./_harness.ts";
import { STREAM_CRASH_MOVERS } from "./crash/movers.ts";
import {
  formatStreamWindowReport,
  streamWindowSweepInChildren,
} from "./crash/window_sweep.ts";
import { windowsHere } from "./crash/window_ends.ts";
import { assertFullSweep, assertWindowSweep } from "./crash/assert_sweep.ts";

test(
  "the stream crash sweep finds every image a prefix of the timestamp order, on every mover and both models",
  async () => {
    const report = await streamSweepInChildren({
      models: [CACHE_LINE, PAGE],
      images: 700,
      seed: 1,
      ops: 16,
      long: false,
      dir: tempDir(),
    });
    console.log(formatStreamReport(report));
    assertFullSweep(report, STREAM_CRASH_MOVERS, 1400);
    assert.ok(report.recovered > 0, "no image needed recovery");
    assert.ok(report.dropped > 0, "no recovery dropped an entry");
  },
  { timeout: 240_000 },
);

test(
  "on a stream past 64 MiB, entries appended every way across the ends of Bun's 4 MiB view windows leave every image a prefix (both models, every mover)",
  async () => {
    // On Bun the store sees this 66 MiB stream through even windows, and
    // the workloads append across their ends (copies in pieces, a mover
    // batch split per window, odd windows, CRCs in pieces); on Deno the
    // same stream is one buffer, the same sweep runs unwindowed.
    const windows = windowsHere();
    const report = await streamWindowSweepInChildren({
      models: [CACHE_LINE, PAGE],
      images: 200,
      seed: 1,
      ops: 16,
      long: false,
      dir: tempDir(),
    });
    console.log(formatStreamWindowReport(report));
    assertWindowSweep(report, STREAM_CRASH_MOVERS, 400, windows);
    assert.ok(report.recovered > 0, "no image needed recovery");
  },
  { timeout: 240_000 },
);

test("`checkStreamTrace()` finds lost and torn entries when the program's fences are hidden", () => {
  const dir = tempDir();
  const settings = {
    subsets: STREAM_CI_SUBSETS,
    probeEvery: 0,
    recoveryImages: 0,
    dir,
  };
  for (const name of ["sync", "async"]) {
    const w = STREAM_WORKLOADS.find((x) => x.name === name)!;
    const sound = emptyStreamReport();
    checkStreamTrace(
      recordStreamTrace(w, PAGE, 3, 10, join(dir, "s"), "cpu"),
      settings,
      sound,
    );
    assert.equal(sound.problems, 0, formatStreamReport(sound));
    assert.ok(sound.images > 20, `${name}: ${sound.images} images`);
    const broken = emptyStreamReport();
    checkStreamTrace(
      recordStreamTrace(w, PAGE, 3, 10, join(dir, "s"), "cpu", {
        dropFences: true,
      }),
      settings,
      broken,
    );
    assert.ok(broken.problems > 0, `${name}: nothing found`);
    assert.ok(
      broken.examples.some((p) =>
        /is missing, but it was persisted/.test(p.message)
      ),
      broken.examples.map((p) => p.message).join("\n"),
    );
  }
});

test(
  "seeded mutations of header, watermarks, region table and entries never crash an open",
  () => {
    const base = tempPath("base");
    const scratch = tempPath("mutant");
    writeStreamFuzzBase(base);
    const report = streamFuzz(
      (from, count) =>
        runScript(
          `import { streamFuzzChild } from "@root/tests/crash/stream_fuzz.ts";
streamFuzzChild(${JSON.stringify(base)}, ${
            JSON.stringify(scratch)
          }, ${from}, ${count});`,
          120_000,
        ),
      1,
      400,
    );
    console.log(formatStreamFuzzReport(report));
    assert.deepEqual(report.failures, []);
    assert.equal(report.mutants, 400);
    for (const verdict of ["refused", "consistent", "reported"]) {
      assert.ok(report.verdicts[verdict] > 0, `no mutant was ${verdict}`);
    }
    assert.deepEqual(Object.keys(report.targets).sort(), [
      "data",
      "entry",
      "header",
      "table",
      "watermarks",
    ]);
    assert.ok(report.reads.intact > 0);
  },
  { timeout: 240_000 },
);

test(
  "a stream writer SIGKILLed at random moments leaves every acknowledged entry, whole and in order",
  async () => {
    const report = await streamKillRounds(tempPath(), 6, 11);
    console.log(formatStreamKillReport(report));
    assert.deepEqual(report.problems, []);
    assert.equal(report.kills, 6);
    assert.ok(report.acknowledged > 50, `${report.acknowledged} acknowledged`);
  },
  { timeout: 180_000 },
);
