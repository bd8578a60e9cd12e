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
import { checkObjectPool, type ObjectPool } from "../../obj/mod.ts";
import { createPoolWith, openPoolWith } from "../../obj/pool.ts";
import { mapFile, type Mapping } from "../../pmem2/mod.ts";
import type { PersistTracer } from "../../pmem2/tracer.ts";
import { closeNoting, describeError, isTypedError } from "./checker.ts";
import {
  type PerModelOptions,
  runSweepScript,
  stage,
  SweepArgs,
  sweepPerModel,
} from "./driver.ts";
import type { PersistenceModel } from "./model.ts";
import { CRASH_MOVERS, crashMover, parseCrashMover } from "./movers.ts";
import { xorshift } from "./random.ts";
import { crashImages } from "./images.ts";
import { ScratchImage } from "./scratch.ts";
import { crashRecovery } from "./recovery_crash.ts";
import type { SubsetOptions } from "./subsets.ts";
import {
  addNew,
  emptyCounts,
  mergeCounts,
  recordProblem,
  reportHead,
  type SweepCounts,
} from "./sweep_report.ts";
import { CrashTracer, type TraceEvent } from "./tracer.ts";
import type { Words } from "./words.ts";
import {
  fingerprint,
  OBJ_OPTIONS,
  ObjDriver,
  observe,
  setup,
} from "./obj_workload.ts";

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
}

/** Faults to inject into a recording, to show the checker sees them. */
export interface ObjRecordFaults {
  /** Hide every fence from the tracer. */
  dropFences?: boolean;
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
  const rand = xorshift(seed);
  const vdm = crashMover(parseCrashMover(mover));
  let probe: Mapping | undefined;
  let pool: ObjectPool | undefined;
  try {
    const tracer = new CrashTracer({
      live: () => (probe = mapFile(path)).view(),
      shadow: new Uint8Array(OBJ_OPTIONS.size),
      flushGranularity: model.flushGranularity,
    });
    const hook: PersistTracer = faults.dropFences
      ? {
        flush: (o, l) => tracer.flush(o, l),
        drain() {},
        mark: (l) => tracer.mark(l),
      }
      : tracer;
    pool = createPoolWith(path, { ...OBJ_OPTIONS, mover: vdm }, {
      tracer: hook,
    });
    const base = setup(pool);
    tracer.mark(CREATED);
    const d = new ObjDriver(pool, (l) => tracer.mark(l), rand, base);
    d.run(ops);
    pool.close();
    return {
      model,
      seed,
      mover,
      events: tracer.finish(),
      states: d.states,
      operations: d.issued,
    };
  } finally {
    pool?.close();
    probe?.close();
    vdm.close();
    rmSync(path, { force: true });
  }
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
export interface ObjSweepReport extends SweepCounts<ObjProblem> {
  movers: string[];
  /** Images refused while the pool's creation was unacknowledged. */
  refused: number;
  /** Images whose open replayed log records. */
  recovered: number;
  /** Images of a crash during recovery checked. */
  recoveryImages: number;
  /** Images that showed a transaction issued but not acknowledged. */
  inFlightSeen: number;
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

const RECOVERY_SUBSETS: SubsetOptions = {
  exhaustiveLimit: 4,
  prefixes: 4,
  random: 2,
  evict: 0.5,
};

/** Options of checking a trace. */
export interface ObjCheckSettings {
  subsets: SubsetOptions;
  /** Crash-during-recovery images per recovered image, at most. */
  recoveryImages: number;
  /** Check at most this many images of the trace. */
  maxImages: number;
  dir: string;
}

/** What one open of an image showed. */
interface Opened {
  problems: string[];
  refused: boolean;
  state?: string;
  /** Every k whose state it shows. */
  ks?: number[];
  records: number;
  recovery: TraceEvent[];
}

/** Checks crash images of one trace on a scratch file. */
class ObjImageChecker {
  #scratch: ScratchImage;
  #tracer: CrashTracer;
  #model: PersistenceModel;
  #states: Map<string, number[]>;

  /**
   * @param scan where recovery stores, in a large pool (`CrashTracer`): a
   *   store outside is caught by the scratch file's `verify()`
   */
  constructor(
    scratch: ScratchImage,
    model: PersistenceModel,
    states: string[],
    scan?: readonly { offset: number; length: number }[],
  ) {
    this.#scratch = scratch;
    this.#model = model;
    this.#tracer = new CrashTracer({
      live: scratch.live,
      shadow: scratch.shadow,
      flushGranularity: model.flushGranularity,
      scan,
    });
    this.#tracer.scanning = false;
    this.#states = new Map();
    states.forEach((s, k) => {
      const ks = this.#states.get(s);
      if (ks === undefined) this.#states.set(s, [k]);
      else ks.push(k);
    });
  }

  /** Open the scratch pool traced, read it, check its heap, close it. */
  open(created: boolean): Opened {
    const tracer = this.#tracer;
    tracer.restart();
    const out: Opened = {
      problems: [],
      refused: false,
      records: 0,
      recovery: [],
    };
    let pool: ObjectPool | undefined;
    try {
      pool = openPoolWith(this.#scratch.path, { layout: OBJ_OPTIONS.layout }, {
        tracer,
      });
    } catch (e) {
      if (!created && isTypedError(e)) out.refused = true;
      else out.problems.push(`open failed: ${describeError(e)}`);
    }
    tracer.mark("recovered");
    if (pool !== undefined) {
      try {
        out.records = pool.recovery.records;
        if (pool.rootSize === 0) {
          // the setup transaction did not commit: the pool is empty
          out.state = "empty";
        } else {
          const seen = observe(pool);
          out.state = fingerprint(seen.state);
          const report = checkObjectPool(pool, { live: seen.live });
          out.problems.push(...report.problems);
        }
      } catch (e) {
        out.problems.push(
          `reading the recovered pool failed: ${describeError(e)}`,
        );
      } finally {
        closeNoting(pool, out.problems);
      }
    }
    const events = tracer.finish();
    const end = events.findIndex((e) =>
      e.kind === "mark" && e.label === "recovered"
    );
    out.recovery = events.slice(0, end);
    for (const e of events) {
      if (e.kind === "flush") this.#scratch.touch(e.stores);
    }
    const unflushed = events[events.length - 1].dirty;
    if (unflushed.length > 0) {
      out.problems.push(`${unflushed.length} stores were never persisted`);
      this.#scratch.settle(unflushed);
    }
    if (out.state !== undefined && out.state !== "empty") {
      out.ks = this.#states.get(out.state);
    }
    return out;
  }

  /** Check the durable image with `image` stored over it. */
  check(
    image: readonly Words[],
    created: boolean,
    acked: number,
    issued: number,
    settings: ObjCheckSettings,
    rand: () => number,
    report: ObjSweepReport,
  ): string[] {
    const s = this.#scratch;
    const problems: string[] = [];
    try {
      for (const w of image) s.apply(w);
      const first = this.open(created);
      problems.push(...first.problems);
      if (first.refused) {
        report.refused++;
        return problems;
      }
      if (first.state === undefined) return problems;
      if (first.state === "empty") {
        if (created) {
          problems.push("the pool is empty after its setup was acknowledged");
        }
        return problems;
      }
      const ks = first.ks;
      if (ks === undefined) {
        problems.push(
          `the pool shows a state no transaction prefix left (${
            first.state.slice(0, 80)
          })`,
        );
      } else if (!ks.some((k) => k >= acked && k <= issued)) {
        problems.push(
          ks[ks.length - 1] < acked
            ? `transaction ${acked} was acknowledged, the pool shows the state after ${
              ks[ks.length - 1]
            }`
            : `the pool shows the state after ${
              ks[0]
            }, only ${issued} were issued`,
        );
      } else if (!ks.includes(acked)) report.inFlightSeen++;
      if (first.records > 0) {
        report.recovered++;
        report.recoveryImages += this.#crashRecovery(
          image,
          first.recovery,
          first.state,
          settings,
          rand,
          problems,
        );
      }
      return problems;
    } finally {
      s.revert();
    }
  }

  #crashRecovery(
    image: readonly Words[],
    events: readonly TraceEvent[],
    expected: string,
    settings: ObjCheckSettings,
    rand: () => number,
    problems: string[],
  ): number {
    return crashRecovery({
      scratch: this.#scratch,
      image,
      events,
      model: this.#model,
      subsets: RECOVERY_SUBSETS,
      limit: settings.recoveryImages,
      rand,
      // as this sweep always did: the fully recovered image is checked
      // once more, as a crash at the recovery's end
      skipFinished: false,
    }, () => {
      const r = this.open(true);
      problems.push(...r.problems.map((p) => `crash during recovery: ${p}`));
      if (r.state !== expected) {
        problems.push(
          "crash during recovery: the pool recovers to another state",
        );
      }
    });
  }
}

/** Check the crash images of a trace, adding to `report`. */
export function checkObjTrace(
  trace: ObjTrace,
  settings: ObjCheckSettings,
  report: ObjSweepReport,
): void {
  report.traces++;
  report.operations += trace.operations;
  report.events += trace.events.length;
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
  let created = false;
  let acked = 0;
  let issued = 0;
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
    if (problems.length > 0) {
      recordProblem(report, {
        seed: trace.seed,
        model: trace.model.name,
        mover: trace.mover,
        event,
        message: problems.join(" | "),
      });
    }
  }
  // every open's stores were undone: also those outside `scan`, which
  // its tracer did not see
  if (!scratch.verify()) {
    recordProblem(report, {
      seed: trace.seed,
      model: trace.model.name,
      mover: trace.mover,
      event: trace.events.length - 1,
      message: "the scratch file differs from the durable image after an undo",
    });
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
  const started = performance.now();
  const report = emptyObjReport();
  report.models.push(options.model.name);
  for (
    let k = 0;
    k < CRASH_MOVERS.length || report.images < options.images;
    k++
  ) {
    const trace = recordObjTrace(
      options.model,
      options.seed + k,
      options.ops,
      join(options.dir, "trace"),
      CRASH_MOVERS[k % CRASH_MOVERS.length],
    );
    checkObjTrace(trace, options, report);
  }
  report.ms = Math.round(performance.now() - started);
  return report;
}

/** Add one child's report to the total. */
function merge(into: ObjSweepReport, r: ObjSweepReport): void {
  mergeCounts(into, r, [
    "refused",
    "recovered",
    "recoveryImages",
    "inFlightSeen",
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
    merge,
  });
}

/** Print a report for people. */
export function formatObjReport(r: ObjSweepReport): string {
  const lines = [
    ...reportHead("object crash sweep", r, "transactions", r.movers),
    `  ${r.recovered} images replayed the log; ${r.inFlightSeen} showed an unacknowledged transaction; ${r.recoveryImages} images of a crash during recovery checked; ${r.refused} refused while the pool was being created`,
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
