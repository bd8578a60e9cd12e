// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The crash sweep of the view windows: the log stream's, the object
 * store's and the block store's crash sweeps (`stream_sweep.ts`,
 * `obj_sweep.ts`, `sweep.ts`: the same checkers, models and movers) on
 * files past the 64 MiB Bun views whole, with their work placed across
 * the ends of the 4 MiB even windows the stores then go through
 * (`stream_window_workload.ts`, `obj_window.ts`, `blk_window.ts`).
 * The small files of the other sweeps never take windows, so this one
 * is what sees a crash bug of the windowed paths: a copy, fill or CRC
 * split in pieces, a mover batch split per window, a view through an odd
 * window. On Deno the same files are seen whole (nothing windowed): the
 * same sweep runs there, and its reports say which traces were windowed.
 *
 * Broken on purpose, on Bun it turned red where every other obj test
 * stayed green: a CRC over only the first piece of a range across a
 * window's end (`EvenWindows.crc`) let a torn log record replay (6 of
 * 600 obj images; 368 of 1117 stream images). Also a stream mover batch
 * entry split per window with its later pieces dropped (188 of 1121),
 * and `EvenWindows.set` storing only a split range's first piece (160 of
 * 600 obj images). And `EvenWindows.storeOps` with the second piece of a
 * block across a window's end dropped: torn blocks after acknowledged
 * writes (951 of 1096 blk images).
 *
 * As a script:
 *
 * ```sh
 * bun tests/crash/window_sweep.ts --store stream --images 2000
 * deno run -A tests/crash/window_sweep.ts --store obj --long
 * ```
 *
 * Options: `--store stream|obj|blk` (all unless given), `--long`, `--images
 * N` (per model), `--seed N`, `--model cache-line|page`, `--ops N`. A
 * child sweep is `--json --store S --model M --dir D`.
 *
 * @module
 */
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import {
  checkModel,
  type PerModelOptions,
  runSweepScript,
  stage,
  SweepArgs,
  sweepPerModel,
} from "./driver.ts";
import type { PersistenceModel } from "./model.ts";
import { sweepTraces } from "./sweep_report.ts";
import { recycle } from "./spare_buffers.ts";
import { CRASH_MOVERS, STREAM_CRASH_MOVERS } from "./movers.ts";
import { BLK_WINDOW_WORKLOADS } from "./blk_window.ts";
import {
  checkObjTrace,
  emptyObjReport,
  formatObjReport,
  mergeObjReport,
  OBJ_CI_SUBSETS,
  OBJ_LONG_SUBSETS,
  type ObjSweepReport,
} from "./obj_sweep.ts";
import { recordObjWindowTrace } from "./obj_window.ts";
import {
  checkStreamTrace,
  emptyStreamReport,
  formatStreamReport,
  mergeStreamReport,
  recordStreamTrace,
  STREAM_LONG_SUBSETS,
  type StreamSweepReport,
} from "./stream_sweep.ts";
import { STREAM_WINDOW_WORKLOADS } from "./stream_window_workload.ts";
import type { SubsetOptions } from "./subsets.ts";
import {
  emptyReport,
  formatReport,
  LONG_SUBSETS,
  mergeReport,
  runSweep,
  type SweepReport,
} from "./sweep.ts";
import { crossingFlushes } from "./window_ends.ts";

/** What the window sweep adds to a store's report. */
export interface WindowCounts {
  /** Traces whose store saw its file through view windows. */
  windowed: number;
  /** Flushes of a range across an even window's end (where Bun splits). */
  crossings: number;
  /** Words stored outside the traced ranges (must be 0: see `CrashTracer`). */
  strays: number;
}

/** Window counts of nothing yet. */
function emptyWindowCounts(): WindowCounts {
  return { windowed: 0, crossings: 0, strays: 0 };
}

/** Add what one trace did across window ends to `into`. */
function countWindows(
  into: WindowCounts,
  trace: {
    windowed: boolean;
    events: Parameters<typeof crossingFlushes>[0];
    strays: number;
  },
): void {
  if (trace.windowed) into.windowed++;
  into.crossings += crossingFlushes(trace.events);
  into.strays += trace.strays;
}

const WINDOW_KEYS = ["windowed", "crossings", "strays"] as const;

/** Add one child's window counts to the total (after its store's merge). */
function mergeWindows(into: WindowCounts, r: WindowCounts): void {
  for (const k of WINDOW_KEYS) into[k] += r[k];
}

/** The log stream's window sweep report. */
export type StreamWindowReport = StreamSweepReport & WindowCounts;
/** The object store's window sweep report. */
export type ObjWindowReport = ObjSweepReport & WindowCounts & {
  /** Objects left across a window's end at the end of their trace. */
  objectsAcross: number;
};

/** The block store's window sweep report. */
export type BlkWindowReport = SweepReport & WindowCounts;

/** Subsets of the CI sweep: the images of a 66 MiB file cost more. */
const CI_SUBSETS: SubsetOptions = {
  exhaustiveLimit: 3,
  prefixes: 4,
  random: 2,
  evict: 0.3,
};

/** An empty stream window report. */
function emptyStreamWindowReport(): StreamWindowReport {
  return { ...emptyStreamReport(), ...emptyWindowCounts() };
}

/** An empty object window report. */
function emptyObjWindowReport(): ObjWindowReport {
  return { ...emptyObjReport(), ...emptyWindowCounts(), objectsAcross: 0 };
}

/** Options of a window sweep in this process. */
export interface WindowSweepOptions {
  model: PersistenceModel;
  /** Stop starting traces once this many images were checked. */
  images: number;
  seed: number;
  ops: number;
  long: boolean;
  dir: string;
}

/**
 * The stream's window sweep in this process: trace k runs workload k mod
 * 2 with mover k mod 4, every mover at least once.
 */
export function runStreamWindowSweep(
  o: WindowSweepOptions,
): StreamWindowReport {
  checkModel(o.model, o.dir, "streamWindowSweepInChildren");
  const report = emptyStreamWindowReport();
  const ws = STREAM_WINDOW_WORKLOADS;
  const movers = STREAM_CRASH_MOVERS;
  const limits = { minTraces: movers.length, images: o.images };
  return sweepTraces(report, o.model, limits, (k) => {
    const trace = recordStreamTrace(
      ws[k % ws.length],
      o.model,
      o.seed + k,
      o.ops,
      join(o.dir, "trace"),
      movers[k % movers.length],
    );
    countWindows(report, trace);
    checkStreamTrace(trace, {
      subsets: o.long ? STREAM_LONG_SUBSETS : CI_SUBSETS,
      probeEvery: o.long ? 2 : 4,
      recoveryImages: o.long ? 4 : 1,
      dir: o.dir,
    }, report);
    recycle(trace.base); // checked: nothing reads it again
  });
}

/**
 * The object store's window sweep in this process: trace k uses mover
 * k mod 3, every mover at least once.
 */
export function runObjWindowSweep(o: WindowSweepOptions): ObjWindowReport {
  checkModel(o.model, o.dir, "objWindowSweepInChildren");
  const report = emptyObjWindowReport();
  const limits = { minTraces: CRASH_MOVERS.length, images: o.images };
  return sweepTraces(report, o.model, limits, (k) => {
    const trace = recordObjWindowTrace(
      o.model,
      o.seed + k,
      o.ops,
      join(o.dir, "trace"),
      CRASH_MOVERS[k % CRASH_MOVERS.length],
    );
    countWindows(report, trace);
    report.objectsAcross += trace.across;
    checkObjTrace(trace, {
      subsets: o.long ? OBJ_LONG_SUBSETS : OBJ_CI_SUBSETS,
      recoveryImages: o.long ? 4 : 1,
      maxImages: o.long ? 1000 : 100,
      dir: o.dir,
    }, report);
    // checked: nothing reads it again (a 66 MiB buffer not recycled is
    // one a later trace allocates and faults in afresh)
    if (trace.base !== undefined) recycle(trace.base);
  });
}

/**
 * The block store's window sweep in this process: the block sweep
 * (`sweep.ts`) of the window workloads, each with every mover, counting
 * what the traces did across window ends.
 */
export function runBlkWindowSweep(o: WindowSweepOptions): BlkWindowReport {
  const counts = emptyWindowCounts();
  const report = runSweep({
    model: o.model,
    images: o.images,
    seed: o.seed,
    workloads: BLK_WINDOW_WORKLOADS,
    movers: CRASH_MOVERS,
    // pmempool reads the whole 66 MiB file: the block sweep samples it
    pmempool: false,
    pmempoolEvery: 0,
    ops: o.ops,
    subsets: o.long ? LONG_SUBSETS : CI_SUBSETS,
    recoveryImages: o.long ? 4 : 1,
    dir: o.dir,
    onTrace: (t) => countWindows(counts, t),
  });
  return { ...report, ...counts };
}

/** Run the stream's window sweep per model in child processes. */
export function streamWindowSweepInChildren(
  options: PerModelOptions,
): Promise<StreamWindowReport> {
  return sweepPerModel<StreamWindowReport>({
    ...options,
    file: fileURLToPath(import.meta.url),
    what: "stream window sweep",
    extra: ["--store", "stream"],
    empty: emptyStreamWindowReport,
    merge(into, r) {
      mergeStreamReport(into, r);
      mergeWindows(into, r);
    },
  });
}

/** Run the object store's window sweep per model in child processes. */
export function objWindowSweepInChildren(
  options: PerModelOptions,
): Promise<ObjWindowReport> {
  return sweepPerModel<ObjWindowReport>({
    ...options,
    file: fileURLToPath(import.meta.url),
    what: "object window sweep",
    extra: ["--store", "obj"],
    empty: emptyObjWindowReport,
    merge(into, r) {
      mergeObjReport(into, r);
      mergeWindows(into, r);
      into.objectsAcross += r.objectsAcross;
    },
  });
}

/** Run the block store's window sweep per model in child processes. */
export function blkWindowSweepInChildren(
  options: PerModelOptions,
): Promise<BlkWindowReport> {
  return sweepPerModel<BlkWindowReport>({
    ...options,
    file: fileURLToPath(import.meta.url),
    what: "block window sweep",
    extra: ["--store", "blk"],
    empty: () => ({ ...emptyReport(), ...emptyWindowCounts() }),
    merge(into, r) {
      mergeReport(into, r);
      mergeWindows(into, r);
    },
  });
}

/** The line a window report adds to its store's report. */
function windowLine(r: WindowCounts & { traces: number }): string {
  return `  windows: ${r.windowed} of ${r.traces} traces windowed, ${r.crossings} flushes across an even window's end, ${r.strays} stray stores`;
}

/**
 * A store's report with the window line, and its problems' reproducing
 * command pointed here (this sweep's traces follow from `--seed`, its
 * workloads are not `stream_sweep.ts`'s or `sweep.ts`'s).
 */
function withWindows(
  text: string,
  store: string,
  r: WindowCounts & { traces: number },
): string {
  const lines = text.split("\n").map((l) =>
    l.replace(
      /reproduce: tests\/crash\/(?:stream_)?sweep\.ts .*--model (\S+).*/,
      `reproduce: tests/crash/window_sweep.ts --store ${store} --model $1 (the same --seed, --ops and --images)`,
    )
  );
  return [...lines, windowLine(r)].join("\n");
}

/** Print the stream's window report for people. */
export function formatStreamWindowReport(r: StreamWindowReport): string {
  return withWindows(formatStreamReport(r), "stream", r);
}

/** Print the object store's window report for people. */
export function formatObjWindowReport(r: ObjWindowReport): string {
  return `${
    withWindows(formatObjReport(r), "obj", r)
  }; ${r.objectsAcross} objects left across an end`;
}

/** Print the block store's window report for people. */
export function formatBlkWindowReport(r: BlkWindowReport): string {
  const text = formatReport(r).replace(/^crash sweep/, "block window sweep");
  return withWindows(text, "blk", r);
}

async function main(argv: string[]): Promise<number> {
  const args = new SweepArgs(argv, [], ["store"]);
  const long = args.long;
  const seed = args.seed;
  const ops = args.number("ops", long ? 40 : 14);
  const images = args.number("images", long ? 3000 : 300);
  const models = args.models;
  const store = args.get("store");
  if (
    store !== undefined && store !== "stream" && store !== "obj" &&
    store !== "blk"
  ) {
    throw new Error(`Unknown store: --store ${store} (stream|obj|blk)`);
  }
  const options = (dir: string) => ({
    model: models[0],
    images,
    seed,
    ops,
    long,
    dir,
  });
  const each = { models, images, seed, ops, long };
  const stages: Record<string, (dir: string) => Promise<boolean>> = {};
  if (store === undefined || store === "stream") {
    stages.stream = stage(
      (dir) => streamWindowSweepInChildren({ ...each, dir: join(dir, "s") }),
      formatStreamWindowReport,
    );
  }
  if (store === undefined || store === "obj") {
    stages.obj = stage(
      (dir) => objWindowSweepInChildren({ ...each, dir: join(dir, "o") }),
      formatObjWindowReport,
    );
  }
  if (store === undefined || store === "blk") {
    stages.blk = stage(
      (dir) => blkWindowSweepInChildren({ ...each, dir: join(dir, "b") }),
      formatBlkWindowReport,
    );
  }
  return await runSweepScript(args, {
    prefix: "asyncpmem-window-",
    child: (dir) =>
      store === "obj"
        ? runObjWindowSweep(options(dir))
        : store === "blk"
        ? runBlkWindowSweep(options(dir))
        : runStreamWindowSweep(options(dir)),
    stages,
  });
}

if (import.meta.main) process.exitCode = await main(process.argv.slice(2));
