// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The object store's crash sweep: the workload of `obj_workload.ts` runs
 * on the production path (a tracer on the pool's mapping, nothing else
 * changed), with each mover in turn, from the pool's creation; then crash
 * images are built at every crash point (`model.ts`, `subsets.ts`) and
 * each is opened (recovered) and checked:
 *
 * - the open refuses the image with a typed error only while the pool's
 *   creation was not acknowledged;
 * - the pool shows exactly the state after some transaction k, with every
 *   acknowledged transaction in and nothing past the last issued one
 *   (each transaction wholly there or wholly absent, in order);
 * - the heap holds exactly the objects that state reaches (no leak, no
 *   dangling pointer; `checkObjectPool`);
 * - recovery leaves nothing unpersisted;
 * - a crash during recovery (a sample of its crash images) recovers to
 *   the same state.
 * - with a continuation (the sweep at the redo log's ring end,
 *   `obj_wrap_sweep.ts`): a transaction committed on the recovered pool,
 *   a clean close and a reopen show the recovered state plus its effect.
 *
 * As a script (`--long` for the long sweep):
 *
 * ```sh
 * deno run -A tests/crash/obj_sweep.ts --long
 * bun tests/crash/obj_sweep.ts --images 2000 --seed 7
 * ```
 *
 * Options: `--long`, `--images N` (per model), `--seed N`, `--model
 * cache-line|page`, `--ops N`. A child sweep is `--json --model M --dir
 * D`.
 *
 * @module
 */
import { rmSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import type { ObjectPool } from "../../obj/mod.ts";
import { createPoolWith } from "../../obj/pool_access.ts";
import { mapFile, type Mapping } from "../../pmem2/mod.ts";
import {
  type PerModelOptions,
  runSweepScript,
  stage,
  SweepArgs,
  sweepPerModel,
} from "./driver.ts";
import type { PersistenceModel } from "./model.ts";
import { CRASH_MOVERS, crashMover, parseCrashMover } from "./movers.ts";
import {
  type ObjCheckSettings,
  ObjImageChecker,
  type ObjImageCounts,
} from "./obj_checker.ts";
import { xorshift } from "./random.ts";
import { crashImages } from "./images.ts";
import { ScratchImage } from "./scratch.ts";
import type { SubsetOptions } from "./subsets.ts";
import {
  addNew,
  countTrace,
  emptyCounts,
  mergeCounts,
  recordProblem,
  reportHead,
  type SweepCounts,
  sweepTraces,
} from "./sweep_report.ts";
import { CrashTracer, faultyTracer, type TraceEvent } from "./tracer.ts";
import { OBJ_OPTIONS, ObjDriver, setup } from "./obj_workload.ts";

/** The mark that says the pool's creation and setup were acknowledged. */
export const CREATED = "ack create";

/** A recorded workload. */
export interface ObjTrace {
  model: PersistenceModel;
  seed: number;
  mover: string;
  events: TraceEvent[];
  /** Fingerprints of the state after transaction k. */
  states: string[];
  operations: number;
  /** The file when tracing started; unset: zeros (traced from creation). */
  base?: Uint8Array;
  /** The ranges the tracers scan (`CrashTracer`); unset: the whole file. */
  scan?: readonly { offset: number; length: number }[];
  /**
   * Set for a pool created and worked on before tracing began: the last
   * transaction acknowledged then (the base image shows its state, which
   * no mark in the trace can announce before the first crash point).
   */
  acknowledged?: number;
}

/** Faults to inject into a recording, to show the checker sees them. */
export interface ObjRecordFaults {
  /** Hide every fence from the tracer. */
  dropFences?: boolean;
}

/** What a traced workload did: the state after each transaction it issued. */
export interface ObjWorkloadRun {
  /** Fingerprints of the state after transaction k (the setup's first). */
  states: string[];
  /** Transactions issued. */
  operations: number;
}

/**
 * Trace `workload` on a new pool at `path` (`mover`'s, the tracer on its
 * mapping from its creation), after `setup` and the mark of its
 * acknowledgement; the pool is closed before the trace is taken. The
 * pool, the probe mapping, the mover and the file go at the end.
 *
 * @param workload runs on the pool with the setup's model, marking
 *   issues and acknowledgements with `mark`
 */
export function traceObjWorkload(
  model: PersistenceModel,
  seed: number,
  path: string,
  mover: string,
  workload: (
    pool: ObjectPool,
    mark: (label: string) => void,
    base: ReturnType<typeof setup>,
  ) => ObjWorkloadRun,
  faults: ObjRecordFaults = {},
): ObjTrace {
  const vdm = crashMover(parseCrashMover(mover));
  let probe: Mapping | undefined;
  let pool: ObjectPool | undefined;
  try {
    const tracer = new CrashTracer({
      live: () => (probe = mapFile(path)).view(),
      shadow: new Uint8Array(OBJ_OPTIONS.size),
      flushGranularity: model.flushGranularity,
    });
    pool = createPoolWith(path, { ...OBJ_OPTIONS, mover: vdm }, {
      tracer: faultyTracer(tracer, faults),
    });
    const base = setup(pool);
    tracer.mark(CREATED);
    const { states, operations } = workload(
      pool,
      (l) => tracer.mark(l),
      base,
    );
    pool.close();
    return {
      model,
      seed,
      mover,
      events: tracer.finish(),
      states,
      operations,
    };
  } finally {
    pool?.close();
    probe?.close();
    vdm.close();
    rmSync(path, { force: true });
  }
}

/** Run the workload on a new pool at `path`, traced from its creation. */
export function recordObjTrace(
  model: PersistenceModel,
  seed: number,
  ops: number,
  path: string,
  mover: string,
  faults: ObjRecordFaults = {},
): ObjTrace {
  return traceObjWorkload(model, seed, path, mover, (pool, mark, base) => {
    const d = new ObjDriver(pool, mark, xorshift(seed), base);
    d.run(ops);
    return { states: d.states, operations: d.issued };
  }, faults);
}

/** One violated invariant, with what reproduces it. */
export interface ObjProblem {
  seed: number;
  model: string;
  mover: string;
  event: number;
  message: string;
}

/** What a sweep did and found (the common counts: `sweep_report.ts`). */
export interface ObjSweepReport
  extends SweepCounts<ObjProblem>, ObjImageCounts {
  movers: string[];
}

/** An empty report. */
export function emptyObjReport(): ObjSweepReport {
  return {
    ...emptyCounts<ObjProblem>(),
    movers: [],
    refused: 0,
    recovered: 0,
    recoveryImages: 0,
    inFlightSeen: 0,
    continued: 0,
  };
}

/** Subsets of the CI sweep. */
export const OBJ_CI_SUBSETS: SubsetOptions = {
  exhaustiveLimit: 3,
  prefixes: 4,
  random: 3,
  evict: 0.3,
};

/** Subsets of the long sweep. */
export const OBJ_LONG_SUBSETS: SubsetOptions = {
  exhaustiveLimit: 6,
  prefixes: 8,
  random: 8,
  evict: 0.3,
};

/** Check the crash images of a trace, adding to `report`. */
export function checkObjTrace(
  trace: ObjTrace,
  settings: ObjCheckSettings,
  report: ObjSweepReport,
): void {
  countTrace(report, trace);
  if (!report.movers.includes(trace.mover)) report.movers.push(trace.mover);
  const rand = xorshift(trace.seed ^ 0x5eed);
  using scratch = new ScratchImage(
    join(settings.dir, "scratch"),
    trace.base ?? new Uint8Array(OBJ_OPTIONS.size),
  );
  const checker = new ObjImageChecker(
    scratch,
    trace.model,
    trace.states,
    trace.scan,
  );
  const fail = (event: number, message: string) =>
    recordProblem(report, {
      seed: trace.seed,
      model: trace.model.name,
      mover: trace.mover,
      event,
      message,
    });
  let created = trace.acknowledged !== undefined;
  let acked = trace.acknowledged ?? 0;
  let issued = acked;
  let checked = 0;
  // spread the image budget over the whole trace
  const budget = settings.maxImages;
  const images = crashImages({
    scratch,
    events: trace.events,
    model: trace.model,
    rand,
    subsets: settings.subsets,
    mark(label) {
      if (label === CREATED) created = true;
      else if (label.startsWith("ack ")) {
        acked = Math.max(acked, Number(label.slice(4)));
      } else if (label.startsWith("issue ")) {
        issued = Math.max(issued, Number(label.slice(6)));
      }
    },
  }, report);
  for (const { event, image } of images) {
    if (checked >= budget) continue;
    checked++;
    report.images++;
    const problems = checker.check(
      image,
      created,
      acked,
      Math.max(issued, acked),
      settings,
      rand,
      report,
    );
    if (problems.length > 0) fail(event, problems.join(" | "));
  }
  // every open's stores were undone: also those outside `scan`, which
  // its tracer did not see
  if (!scratch.verify()) {
    fail(
      trace.events.length - 1,
      "the scratch file differs from the durable image after an undo",
    );
  }
}

/** Options of a sweep in this process. */
export interface ObjSweepOptions extends ObjCheckSettings {
  model: PersistenceModel;
  /** Stop starting traces once this many images were checked. */
  images: number;
  seed: number;
  ops: number;
}

/** Run a sweep in this process; trace k uses mover k mod 2. */
export function runObjSweep(options: ObjSweepOptions): ObjSweepReport {
  const report = emptyObjReport();
  return sweepTraces(report, options.model, {
    minTraces: CRASH_MOVERS.length,
    images: options.images,
  }, (k) => {
    const trace = recordObjTrace(
      options.model,
      options.seed + k,
      options.ops,
      join(options.dir, "trace"),
      CRASH_MOVERS[k % CRASH_MOVERS.length],
    );
    checkObjTrace(trace, options, report);
  });
}

/**
 * Add one child's report to the total (also the window sweep's, which
 * adds its own counts after).
 */
export function mergeObjReport(into: ObjSweepReport, r: ObjSweepReport): void {
  mergeCounts(into, r, [
    "refused",
    "recovered",
    "recoveryImages",
    "inFlightSeen",
    "continued",
  ]);
  addNew(into.movers, r.movers);
}

/** Run a sweep per model in child processes (both at once). */
export function objSweepInChildren(
  options: PerModelOptions,
): Promise<ObjSweepReport> {
  return sweepPerModel({
    ...options,
    file: fileURLToPath(import.meta.url),
    what: "object sweep",
    extra: [],
    empty: emptyObjReport,
    merge: mergeObjReport,
  });
}

/** Print a report for people. */
export function formatObjReport(r: ObjSweepReport): string {
  const lines = [
    ...reportHead("object crash sweep", r, "transactions", r.movers),
    `  ${r.recovered} images replayed the log; ${r.inFlightSeen} showed an unacknowledged transaction; ${r.recoveryImages} images of a crash during recovery checked; ${r.refused} refused while the pool was being created; ${r.continued} recovered images continued to the ring's end`,
  ];
  for (const p of r.examples) {
    lines.push(
      `  PROBLEM seed ${p.seed} ${p.model} ${p.mover} after event ${p.event}: ${p.message}`,
    );
  }
  return lines.join("\n");
}

async function main(argv: string[]): Promise<number> {
  const args = new SweepArgs(argv);
  const long = args.long;
  const seed = args.seed;
  const ops = args.number("ops", long ? 40 : 14);
  const images = args.number("images", long ? 6000 : 300);
  const models = args.models;
  return await runSweepScript(args, {
    prefix: "asyncpmem-obj-",
    child: (dir) =>
      runObjSweep({
        model: models[0],
        images,
        seed,
        ops,
        subsets: long ? OBJ_LONG_SUBSETS : OBJ_CI_SUBSETS,
        recoveryImages: long ? 4 : 1,
        maxImages: long ? 3000 : 200,
        dir,
      }),
    stages: {
      images: stage(
        (dir) => objSweepInChildren({ models, images, seed, ops, long, dir }),
        formatObjReport,
      ),
    },
  });
}

if (import.meta.main) process.exitCode = await main(process.argv.slice(2));
