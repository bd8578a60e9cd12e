// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The crash sweep: trace workloads on a block pool, then check crash
 * images at every crash point of every trace.
 *
 * {@linkcode runSweep} runs in this process under one persistence model,
 * which the process's mappings must have (`PMEM2_FORCE_GRANULARITY` is
 * read when a mapping is made, and Bun does not pass later `process.env`
 * changes to native code), so {@linkcode sweepInChildren} runs one child
 * process per model, with the environment set, two at a time.
 *
 * As a script:
 *
 * ```sh
 * deno run -A tests/crash/sweep.ts --long          # ≥ 50 000 images
 * bun tests/crash/sweep.ts --images 4000 --seed 7  # a custom sweep
 * ```
 *
 * It runs the image sweep, then the fuzzer and the kill test (each
 * larger with `--long`). Options: `--long`, `--only images|fuzz|kill`,
 * `--images N` (total over the models), `--seed N`, `--model
 * cache-line|page`, `--workload NAME`, `--ops N` (operations per trace).
 * A child sweep is `--json --model M --dir D` (it prints its report as
 * JSON).
 *
 * @module
 */
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { poolGeometry } from "../../blk/mod.ts";
import { ImageChecker } from "./checker.ts";
import {
  checkModel,
  type PerModelOptions,
  runSweepScript,
  stage,
  SweepArgs,
  sweepPerModel,
} from "./driver.ts";
import { formatFuzzReport, fuzz, fuzzRunner } from "./fuzz.ts";
import { formatKillReport, killRounds } from "./kill.ts";
import { lint, type LintReport, summarize } from "./lint.ts";
import type { PersistenceModel } from "./model.ts";
import { Payloads } from "./payload.ts";
import { have } from "../_requires.ts";
import { CRASH_MOVERS, type CrashMover, parseCrashMover } from "./movers.ts";
import { xorshift } from "./random.ts";
import {
  CREATED,
  poolSizeOf,
  recordTrace,
  type Trace,
  WARMED,
} from "./record.ts";
import { poolRegions, regionName } from "./regions.ts";
import { crashImages } from "./images.ts";
import { ScratchImage } from "./scratch.ts";
import { recycle } from "./spare_buffers.ts";
import type { SubsetOptions } from "./subsets.ts";
import {
  countTrace,
  emptyCounts,
  mergeCounts,
  reportHead,
  type SweepCounts,
  sweepTraces,
  type TraceProblem,
  traceProblems,
} from "./sweep_report.ts";
import { type Workload, WORKLOADS } from "./workload.ts";

/** A sweep's budget and knobs. */
export interface SweepOptions {
  /** The persistence model (this process's mappings must have it). */
  model: PersistenceModel;
  /** Stop starting traces once this many images were checked (every
   * workload runs at least once). */
  images: number;
  /** Seed of the first trace (trace k uses seed + k). */
  seed: number;
  /** The workloads, used in turn. */
  workloads: readonly Workload[];
  /** The data movers, each with every workload. */
  movers: readonly CrashMover[];
  /** Whether to run `pmempool check` on sampled images. */
  pmempool: boolean;
  /** Operations per trace. */
  ops: number;
  /** Which subsets of each crash point's pending units to try. */
  subsets: SubsetOptions;
  /** Run `pmempool check` on every n-th image (0: never). */
  pmempoolEvery: number;
  /** Images of a crash during recovery, at most, per recovered image. */
  recoveryImages: number;
  /** A directory for the pool files (tmpfs is much faster). */
  dir: string;
  /**
   * Sees each trace before its images are checked (the window sweep's
   * counts); it must not keep the trace's base, which the sweep reuses.
   */
  onTrace?: (trace: Trace) => void;
}

/** One violated invariant, with what reproduces it. */
export type Problem = TraceProblem;

/** What a sweep did and found (the common counts: `sweep_report.ts`). */
export interface SweepReport extends SweepCounts<Problem> {
  /** Images the open refused with a typed error (crash during create). */
  refused: number;
  /** Images whose recovery stored something. */
  recovered: number;
  /** Images of a crash during recovery checked. */
  recoveryImages: number;
  /** `pmempool check` runs. */
  pmempoolRuns: number;
  /** Images checked, by the data mover their trace ran with. */
  movers: Record<string, number>;
  /** Lint findings (cache-line traces), by rule. */
  lint: Record<string, number>;
  /** Lint findings summarised by place. */
  lintSummary: string[];
}

/** The default images per model of the CI sweep and of the long one. */
export const CI_IMAGES = 1200;
/** See {@linkcode CI_IMAGES}. */
export const LONG_IMAGES = 26_000;

/** Subsets of the CI sweep. */
export const CI_SUBSETS: SubsetOptions = {
  exhaustiveLimit: 4,
  prefixes: 5,
  random: 4,
  evict: 0.3,
};

/** Subsets of the long sweep: exhaustive up to a page of sectors. */
export const LONG_SUBSETS: SubsetOptions = {
  exhaustiveLimit: 8,
  prefixes: 9,
  random: 8,
  evict: 0.3,
};

/** Add one child's report to the total. */
export function mergeReport(into: SweepReport, r: SweepReport): void {
  mergeCounts(into, r, [
    "refused",
    "recovered",
    "recoveryImages",
    "pmempoolRuns",
  ]);
  for (const [k, n] of Object.entries(r.lint)) {
    into.lint[k] = (into.lint[k] ?? 0) + n;
  }
  for (const line of r.lintSummary) {
    if (!into.lintSummary.includes(line)) into.lintSummary.push(line);
  }
  for (const [m, n] of Object.entries(r.movers)) {
    into.movers[m] = (into.movers[m] ?? 0) + n;
  }
}

/** An empty report. */
export function emptyReport(): SweepReport {
  return {
    ...emptyCounts<Problem>(),
    refused: 0,
    recovered: 0,
    recoveryImages: 0,
    pmempoolRuns: 0,
    movers: {},
    lint: {},
    lintSummary: [],
  };
}

/**
 * Run a sweep in this process.
 *
 * @param options the budget and knobs
 * @returns what it checked and found
 */
export function runSweep(options: SweepOptions): SweepReport {
  const model = options.model;
  checkModel(model, options.dir, "sweepInChildren");
  const report = emptyReport();
  const findings: LintReport = {
    unflushed: [],
    unfenced: [],
    "redundant-flush": [],
    overwritten: [],
  };
  // every workload with every mover at least once, then in turn
  const pairs = options.workloads.flatMap((w) =>
    options.movers.map((mover) => ({ w, mover }))
  );
  const n = pairs.length;
  sweepTraces(report, model, { minTraces: n, images: options.images }, (k) => {
    const { w, mover } = pairs[k % n];
    const seed = options.seed + k;
    const before = report.images;
    const trace = recordTrace(
      w,
      model,
      seed,
      options.ops,
      join(options.dir, "trace"),
      {},
      mover,
    );
    if (model.name === "cache-line") {
      const regions = poolRegions(poolSizeOf(w), w.blockSize);
      const found = lint(trace.events, (at) => regionName(regions, at));
      for (const rule of Object.keys(found) as (keyof LintReport)[]) {
        findings[rule].push(...found[rule]);
      }
    }
    options.onTrace?.(trace);
    checkTrace(trace, options, report);
    recycle(trace.base); // checked: nothing reads it again
    report.movers[mover] = (report.movers[mover] ?? 0) + report.images -
      before;
  });
  if (model.name === "cache-line") {
    for (const [rule, list] of Object.entries(findings)) {
      report.lint[rule] = list.length;
    }
    report.lintSummary = summarize(findings);
  }
  return report;
}

/**
 * Check the crash images of a trace, adding to `report`.
 *
 * @param trace the trace (its ledger is used up)
 * @param options the subsets, samples and directory (model: the trace's)
 * @param report where counts and problems go
 */
export function checkTrace(
  trace: Trace,
  options: Omit<
    SweepOptions,
    "model" | "images" | "seed" | "workloads" | "ops" | "movers" | "onTrace"
  >,
  report: SweepReport,
): void {
  const { workload: w, model, seed } = trace;
  countTrace(report, trace);
  const rand = xorshift(seed ^ 0x5eed);
  using scratch = new ScratchImage(join(options.dir, "scratch"), trace.base);
  // the workload's blocks, and two it never writes (they must stay zeros)
  const last = Math.max(...w.lbas);
  const lbas = [
    ...w.lbas,
    last + 1,
    poolGeometry(poolSizeOf(w), w.blockSize).blockCount - 1,
  ];
  const checker = new ImageChecker(scratch, {
    model,
    payloads: new Payloads(w.blockSize),
    lbas,
    regions: poolRegions(poolSizeOf(w), w.blockSize),
    scan: trace.scan,
  });
  const fail = traceProblems(report, trace);
  const escaped =
    "the scratch file differs from the durable image after an undo (an unflushed store escaped the tracer)";
  let created = !w.fromCreate;
  let warmed = w.warmup === 0;
  const images = crashImages({
    scratch,
    events: trace.events,
    model,
    rand,
    subsets: options.subsets,
    mark(label) {
      if (label === CREATED) created = true;
      else if (label === WARMED) warmed = true;
      else trace.ledger.record(label);
    },
    ready: () => warmed,
  }, report);
  for (const { event, units, image } of images) {
    report.images++;
    const outcome = checker.check(image, trace.ledger, {
      mayRefuse: !created,
      pmempool: options.pmempool && options.pmempoolEvery > 0 &&
        report.images % options.pmempoolEvery === 0,
      recoveryImages: options.recoveryImages,
      rand,
    });
    if (outcome.refused) report.refused++;
    if (outcome.recovered) report.recovered++;
    report.recoveryImages += outcome.recoveryImages;
    report.pmempoolRuns += outcome.pmempoolRuns;
    if (report.images % 256 === 0 && !scratch.verify()) {
      outcome.problems.push(escaped);
    }
    if (outcome.problems.length > 0) fail(event, units, outcome.problems);
  }
  if (!scratch.verify()) fail(trace.events.length - 1, [], [escaped]);
}

/** Options of {@linkcode sweepInChildren}. */
export interface ChildSweepOptions extends PerModelOptions {
  /** Only this workload. */
  workload?: string;
  /** Only this mover (else every one of {@linkcode CRASH_MOVERS}). */
  mover?: CrashMover;
  /** Whether the children run `pmempool check` on sampled images. */
  pmempool: boolean;
}

/**
 * Run a sweep per model in child processes (two at a time: this is a
 * two-CPU project), each with its model's mapping granularity.
 *
 * @returns the reports added up
 */
export function sweepInChildren(
  options: ChildSweepOptions,
): Promise<SweepReport> {
  const extra: string[] = [];
  if (options.workload !== undefined) {
    extra.push("--workload", options.workload);
  }
  if (options.mover !== undefined) extra.push("--mover", options.mover);
  if (!options.pmempool) extra.push("--no-pmempool");
  return sweepPerModel({
    ...options,
    file: fileURLToPath(import.meta.url),
    what: "sweep",
    extra,
    empty: emptyReport,
    merge: mergeReport,
  });
}

/** Print a report for people. */
export function formatReport(r: SweepReport): string {
  const lines = [
    ...reportHead("crash sweep", r),
    `  images by mover: ${
      Object.entries(r.movers).map(([m, n]) => `${m} ${n}`).join(", ")
    }`,
    `  ${r.recovered} images needed recovery; ${r.recoveryImages} images of a crash during recovery checked; ${r.refused} refused while the pool was being created; ${r.pmempoolRuns} pmempool checks`,
    `  lint: ${
      Object.entries(r.lint).map(([k, n]) => `${k} ${n}`).join(", ") ||
      "nothing"
    }`,
    ...r.lintSummary.map((l) => `    ${l}`),
  ];
  for (const p of r.examples) {
    lines.push(
      `  PROBLEM ${p.workload} seed ${p.seed} ${p.model} after event ${p.event}, units [${p.units}]: ${p.message}`,
      `    reproduce: tests/crash/sweep.ts --only images --model ${p.model} --workload ${p.workload} --mover ${p.mover} --seed ${p.seed} --ops ${p.ops} --images 1`,
    );
  }
  return lines.join("\n");
}

async function main(argv: string[]): Promise<number> {
  const args = new SweepArgs(argv, ["no-pmempool"], ["workload", "mover"]);
  const long = args.long;
  const seed = args.seed;
  const ops = args.number("ops", long ? 40 : 24);
  const models = args.models;
  const images = args.number(
    "images",
    (long ? LONG_IMAGES : CI_IMAGES) * models.length,
  );
  const movers = args.has("mover")
    ? [parseCrashMover(args.get("mover"))]
    : CRASH_MOVERS;
  // a sweep run by hand samples pmempool when it is installed
  const pmempool = !args.has("no-pmempool") && have("pmempool");
  const workload = args.get("workload");
  const workloads = args.workloads(WORKLOADS);
  return await runSweepScript(args, {
    prefix: "asyncpmem-crash-",
    child: (dir) =>
      runSweep({
        model: models[0],
        images,
        seed,
        workloads,
        movers,
        ops,
        subsets: long ? LONG_SUBSETS : CI_SUBSETS,
        pmempool,
        pmempoolEvery: long ? 100 : 50,
        recoveryImages: long ? 6 : 2,
        dir,
      }),
    stages: {
      images: stage(
        (dir) =>
          sweepInChildren({
            models,
            images: Math.ceil(images / models.length),
            seed,
            ops,
            long,
            workload,
            mover: args.has("mover") ? movers[0] : undefined,
            pmempool,
            dir,
          }),
        formatReport,
      ),
      fuzz: stage(
        (dir) => fuzz(fuzzRunner(dir), seed, long ? 5000 : 400),
        formatFuzzReport,
      ),
      kill: stage(
        (dir) =>
          killRounds(join(dir, "kill"), long ? 40 : 6, seed, { pmempool }),
        formatKillReport,
      ),
    },
  });
}

if (import.meta.main) process.exitCode = await main(process.argv.slice(2));
