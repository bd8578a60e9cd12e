// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Kill, then recover, then a power failure: the images of the crash
 * class where a killed process leaves stores visible (page cache, CPU
 * caches) that never reached the media, the next open's recovery reads
 * them and builds on them, and a power failure afterwards takes them
 * back. Every store's kill-power check (`kill_power_blk.ts`, …) walks a
 * recorded trace with these:
 *
 * 1. {@linkcode sampledKills}: sampled crash points of the trace where
 *    stores are visible and not durable, each with what a kill there
 *    leaves (`kill_image.ts`'s visible and durable images) and the
 *    trace's marks up to it;
 * 2. the store opens the visible image traced from the durable one
 *    (`kill_image.ts`'s `tracedRun`): the kill's unfenced stores are its
 *    trace's dirty words from the first event on, so a power failure may
 *    keep any of them, as the kernel may have written some back;
 * 3. {@linkcode powerImages}: the crash points of that open's recovery
 *    and sampled ones after it (its read, one more acknowledged
 *    operation, its close), with subsets of their pending units, over
 *    the durable image on a scratch file (`scratch.ts`): each one a power
 *    failure for the store to open and check
 *    ({@linkcode checkPowerFailures}) against what was acknowledged
 *    before the kill, what the open read, and what was acknowledged
 *    after it, by then.
 *
 * The model is the one this process's mappings have
 * ({@linkcode modelHere}): the stores persist by it (a flog entry once
 * per page granularity, in halves per cache line), so a trace walked
 * under another would show tears no real media makes.
 *
 * @module
 */
import { rmSync } from "node:fs";
import { join } from "node:path";
import { mapFile } from "../../pmem2/mod.ts";
import { type CrashImage, crashImages } from "./images.ts";
import { type KillState, killStates } from "./kill_image.ts";
import { CACHE_LINE, PAGE, type PersistenceModel } from "./model.ts";
import { ScratchImage } from "./scratch.ts";
import type { SubsetOptions } from "./subsets.ts";
import {
  emptyCounts,
  reportHead,
  type SweepCounts,
  type TraceProblem,
} from "./sweep_report.ts";
import type { TraceEvent } from "./tracer.ts";
import type { Words } from "./words.ts";

/**
 * Subsets of a power failure's pending units: the kill's dirty words
 * and the recovery's own, few per crash point (the points are sampled).
 */
export const POWER_SUBSETS: SubsetOptions = {
  exhaustiveLimit: 3,
  prefixes: 3,
  random: 3,
  evict: 0.5,
};

/**
 * The persistence model of mappings made in `dir` by this process: page
 * where the mapping's granularity is the page (a file system's msync),
 * else cache line (`PMEM2_FORCE_GRANULARITY=CACHE_LINE`, or real pmem).
 */
export function modelHere(dir: string): PersistenceModel {
  const probe = join(dir, "granularity-probe");
  try {
    using map = mapFile(probe, { size: 4096 });
    return map.granularity === "page" ? PAGE : CACHE_LINE;
  } finally {
    rmSync(probe, { force: true });
  }
}

/** The label a check marks where the open after a kill read the store. */
export const READ_BACK = "read back after the kill";

/** What a kill-power check did and found (a store's checks add to it). */
export interface KillPowerReport extends SweepCounts<TraceProblem> {
  /** Kills whose image was opened. */
  kills: number;
  /** Kills the open refused (a store whose create was killed). */
  refused: number;
  /** Power failures checked after the open that followed a kill read it. */
  afterRead: number;
}

/** An empty report of checks under `model`. */
export function emptyKillPowerReport(
  model: PersistenceModel,
): KillPowerReport {
  return {
    ...emptyCounts(),
    models: [model.name],
    kills: 0,
    refused: 0,
    afterRead: 0,
  };
}

/** Print a report for people: its counts, then each problem kept. */
export function formatKillPowerReport(
  title: string,
  r: KillPowerReport,
): string {
  return [
    ...reportHead(title, r),
    `  ${r.kills} kills reopened (${r.refused} refused in a create), ${r.afterRead} power failures after the reopen read the store`,
    ...r.examples.map((p) =>
      `  PROBLEM ${p.workload} seed ${p.seed} ops ${p.ops} ${p.model} mover ${p.mover}, killed after event ${p.event}, units [${p.units}]: ${p.message}`
    ),
  ].join("\n");
}

/** The budget of one trace's kill-power check. */
export interface KillPowerOptions {
  /** The model of this process's mappings ({@linkcode modelHere}). */
  model: PersistenceModel;
  /** The trace's seed (its kills and images are seeded from it too). */
  seed: number;
  /** Operations the trace runs. */
  ops: number;
  /** Crash points to kill the process at, after its create. */
  kills: number;
  /**
   * Crash points to kill a create at (one that has few unfenced ones:
   * all of them when fewer), for a workload that creates its store.
   */
  createKills: number;
  /**
   * Crash points of each open after a kill to fail the power at, after
   * its recovery (whose points are all tried, up to ten).
   */
  points: number;
  /** A directory for the pool files. */
  dir: string;
}

/** `count` distinct integers of `[from, to)`, ascending (all when fewer). */
export function sample(
  rand: () => number,
  from: number,
  to: number,
  count: number,
): number[] {
  const all = Array.from(
    { length: Math.max(0, to - from) },
    (_, i) => from + i,
  );
  for (let i = all.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [all[i], all[j]] = [all[j], all[i]];
  }
  return all.slice(0, count).sort((a, b) => a - b);
}

/** Where {@linkcode sampledKills} kills: `count` events of `[from, to)`. */
export interface KillRange {
  /** The first event a kill may follow. */
  from: number;
  /** The end of the range (exclusive; past the trace: its end). */
  to: number;
  /** Kills in the range (all of its events when fewer). */
  count: number;
}

/**
 * The events after which stores are visible and not durable, in two
 * sets: `flushed`, where a flush was not fenced yet (the program wrote
 * something back and is about to rely on it: a record sealed, a header
 * or a commit word written), and `dirty`, where stores were only made
 * (the eviction's share). Only a kill at one of them leaves the next
 * open something a power failure can take back.
 */
function unfenced(
  events: readonly TraceEvent[],
): { flushed: number[]; dirty: number[] } {
  const out = { flushed: [] as number[], dirty: [] as number[] };
  let flushed = false;
  events.forEach((e, i) => {
    if (e.kind === "flush" && e.stores.length > 0) flushed = true;
    else if (e.kind === "drain") flushed = false;
    if (flushed) out.flushed.push(i);
    else if (e.dirty.length > 0) out.dirty.push(i);
  });
  return out;
}

/**
 * Kills at crash points of `events` (from `base`) sampled in each of
 * `ranges` (a workload's create, say, whose few events a sample of the
 * whole trace would miss) among those that leave stores visible and not
 * durable, in order: the first of a range, and every other one, after
 * an unfenced flush (a record sealed, a header or
 * a commit word written back: where most known bugs of this class
 * were), the others after stores not flushed yet (a slot's state, a map
 * entry). Every mark of the trace up to a kill goes to
 * `mark`, in order, before the kill is yielded; the images are reused
 * between kills (`kill_image.ts`'s `killStates`).
 *
 * @example
 * ```ts ignore
 * const ranges = [{ from: 0, to: trace.events.length, count: 3 }];
 * for (const kill of sampledKills(trace.base, trace.events, {
 *   model, rand, ranges, mark: (l) => ledger.record(l),
 * })) checkKill(kill);
 * ```
 */
export function* sampledKills(
  base: Uint8Array,
  events: readonly TraceEvent[],
  how: {
    model: PersistenceModel;
    rand: () => number;
    ranges: readonly KillRange[];
    mark(label: string): void;
  },
): Generator<KillState> {
  const { flushed, dirty } = unfenced(events);
  const pick = (from: readonly number[], r: KillRange, count: number) => {
    const inRange = from.filter((i) => i >= r.from && i < r.to);
    return sample(how.rand, 0, inRange.length, count).map((j) => inRange[j]);
  };
  const chosen = new Set(
    how.ranges.flatMap((r) => {
      const first = Math.ceil(r.count / 2);
      return [...pick(flushed, r, first), ...pick(dirty, r, r.count - first)];
    }),
  );
  for (const k of killStates(base, events, how.model)) {
    const e = events[k.event];
    if (e?.kind === "mark") how.mark(e.label);
    if (chosen.has(k.event)) yield k;
  }
}

/** How {@linkcode powerImages} walks the trace of the open after a kill. */
export interface PowerWalk {
  /** The model the traces were recorded under. */
  model: PersistenceModel;
  /** A scratch file holding the kill's durable image. */
  scratch: ScratchImage;
  /** The trace of the open after the kill, from the durable image. */
  events: readonly TraceEvent[];
  /** A seeded random source. */
  rand: () => number;
  /** Crash points after the recovery to fail the power at (and the end). */
  points: number;
  /** Receives the trace's marks, in order, before a point's images. */
  mark(label: string): void;
}

/**
 * Crash points of the open's own recovery (up to its read) a power
 * failure is tried at, at most: recoveries store little, and it is there
 * that what a kill left is trusted.
 */
const RECOVERY_POINTS = 10;

/**
 * The distinct images of a power failure during or after the open that
 * followed a kill: at the crash points of its recovery (up to the
 * {@linkcode READ_BACK} mark; {@linkcode RECOVERY_POINTS} sampled when
 * more), sampled ones after it and its end, the durable image with what
 * was fenced by then and a subset of the pending units (the kill's
 * unfenced stores among them), on the scratch file. Counts as
 * `crashImages` does.
 */
export function powerImages(
  w: PowerWalk,
  counts: { crashPoints: number; duplicates: number },
): Generator<CrashImage> {
  // a crash point is named by the event it follows (-1: before the first)
  const last = w.events.length - 1;
  const read = w.events.findIndex((e) =>
    e.kind === "mark" && e.label === READ_BACK
  );
  const chosen = new Set([
    ...sample(w.rand, -1, read, RECOVERY_POINTS),
    ...sample(w.rand, Math.max(read, -1), last, w.points),
    last,
  ]);
  let point = -1;
  return crashImages({
    scratch: w.scratch,
    events: w.events,
    model: w.model,
    rand: w.rand,
    subsets: POWER_SUBSETS,
    mark: w.mark,
    ready: () => chosen.has(point++),
  }, counts);
}

/** One kill's open after it, whose power failures {@linkcode checkPowerFailures} checks. */
export interface Reopened {
  /** The kill's durable image. */
  durable: Uint8Array;
  /** The trace of the open after the kill (from `durable`). */
  events: readonly TraceEvent[];
  /** Receives the trace's marks, in order, before a point's images. */
  mark(label: string): void;
}

/**
 * Check the sampled power failures during and after one kill's open
 * (`powerImages`): `checkerOn` makes the store's check of an image on
 * the scratch file (it opens the file, checks it against what the marks
 * so far say, and undoes what it stored); each image with problems goes
 * to `fail` with its units.
 *
 * @example
 * ```ts ignore
 * checkPowerFailures(reopened, options, rand, report, (scratch) => {
 *   const checker = new ImageChecker(scratch, setup);
 *   return (image) => checker.check(image, ledger, how).problems;
 * }, (units, problems) => fail(kill.event, units, problems));
 * ```
 */
export function checkPowerFailures(
  r: Reopened,
  options: KillPowerOptions,
  rand: () => number,
  report: KillPowerReport,
  checkerOn: (
    scratch: ScratchImage,
  ) => (image: readonly Words[]) => readonly string[],
  fail: (units: number[], problems: string[]) => void,
): void {
  using scratch = new ScratchImage(join(options.dir, "power"), r.durable);
  const check = checkerOn(scratch);
  let read = false;
  const images = powerImages({
    model: options.model,
    scratch,
    events: r.events,
    rand,
    points: options.points,
    mark(label) {
      if (label === READ_BACK) read = true;
      r.mark(label);
    },
  }, report);
  for (const { event, units, image } of images) {
    report.images++;
    if (read) report.afterRead++;
    const problems = check(image);
    if (problems.length > 0) {
      fail(
        units,
        problems.map((p) =>
          `power failure after event ${event} of the open after the kill: ${p}`
        ),
      );
    }
  }
  if (!scratch.verify()) {
    fail([], ["the scratch file differs from the durable image after an undo"]);
  }
}
