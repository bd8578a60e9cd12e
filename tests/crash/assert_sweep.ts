// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * What the object store's and the log stream's crash tests ask of a
 * bounded sweep's report (`obj_crash_test.ts`, `stream_crash_test.ts`):
 * no problem, both models, every mover, enough images; a full sweep also
 * crashed recoveries and saw an unfinished create, and a window sweep
 * ran windowed on Bun and flushed across the windows' ends.
 *
 * @module
 */
import { assert } from "../_harness.ts";
import type { SweepCounts } from "./sweep_report.ts";
import type { WindowCounts } from "./window_sweep.ts";

/** The part of a report these checks read. */
interface StoreReport extends SweepCounts<{ message: string }> {
  /** The movers the traces ran on. */
  movers: string[];
}

/** What a sweep over both models and `movers` must show. */
function assertSweptClean(
  report: StoreReport,
  movers: readonly string[],
  minImages: number,
): void {
  assert.deepEqual(report.examples, []);
  assert.equal(report.problems, 0);
  assert.ok(report.images >= minImages, `only ${report.images} images`);
  assert.deepEqual(report.models, ["cache-line", "page"]);
  assert.deepEqual(report.movers.sort(), [...movers].sort());
}

/**
 * A full sweep's report: clean on both models and every one of `movers`,
 * at least `minImages` images, crashes during recovery checked, and an
 * image of an unfinished create refused.
 */
export function assertFullSweep(
  report: StoreReport & { recoveryImages: number; refused: number },
  movers: readonly string[],
  minImages: number,
): void {
  assertSweptClean(report, movers, minImages);
  assert.ok(
    report.recoveryImages > 0,
    "no crash during recovery was checked",
  );
  assert.ok(report.refused > 0, "no image of an unfinished create");
}

/**
 * A window sweep's report: clean on both models and every one of
 * `movers`, at least `minImages` images, every trace windowed where the
 * runtime has view windows (`windows`) and none elsewhere, no store the
 * tracers missed, and a flush across a window's end per trace at least.
 */
export function assertWindowSweep(
  report: StoreReport & WindowCounts,
  movers: readonly string[],
  minImages: number,
  windows: boolean,
): void {
  assertSweptClean(report, movers, minImages);
  assert.equal(report.windowed, windows ? report.traces : 0);
  assert.equal(report.strays, 0, "the tracers missed stores");
  assert.ok(
    report.crossings >= report.traces,
    `${report.crossings} flushes across a window's end in ${report.traces} traces`,
  );
}
