// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The log stream's crash sweep: trace workloads on the production path
 * (a tracer on the stream's mapping, nothing else changed), with each
 * mover in turn, then check crash images at every crash point.
 *
 * Like `sweep.ts` for the block store, {@linkcode runStreamSweep} runs in
 * this process under one persistence model, and
 * {@linkcode streamSweepInChildren} runs one child per model. As a
 * script:
 *
 * ```sh
 * deno run -A tests/crash/stream_sweep.ts --long         # the long sweep
 * bun tests/crash/stream_sweep.ts --images 3000 --seed 7 # a custom one
 * ```
 *
 * It runs the image sweep, then the fuzzer and the kill test (each larger
 * with `--long`). Options: `--long`, `--only images|fuzz|kill`, `--images
 * N` (per model), `--seed N`, `--model cache-line|page`, `--workload
 * NAME`, `--ops N`. A child sweep is `--json --model M --dir D`.
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
import { xorshift } from "./random.ts";
import { crashImages } from "./images.ts";
import { ScratchImage } from "./scratch.ts";
import { recycle } from "./spare_buffers.ts";
import { StreamImageChecker } from "./stream_checker.ts";
import {
  formatStreamFuzzReport,
  streamFuzz,
  streamFuzzRunner,
} from "./stream_fuzz.ts";
import { formatStreamKillReport, streamKillRounds } from "./stream_kill.ts";
import {
  CREATED_MARK,
  recordStreamTrace,
  type StreamTrace,
} from "./stream_record.ts";
import { STREAM_WORKLOADS, type StreamWorkload } from "./stream_workload.ts";
import type { SubsetOptions } from "./subsets.ts";
import {
  addNew,
  countTrace,
  emptyCounts,
  mergeCounts,
  reportHead,
  type SweepCounts,
  sweepTraces,
  type TraceProblem,
  traceProblems,
} from "./sweep_report.ts";
import { STREAM_CRASH_MOVERS } from "./movers.ts";

export { recordStreamTrace };

/** The mark that says `LogStream.create` returned. */
const CREATED = CREATED_MARK;

/** One violated invariant, with what reproduces it. */
export type StreamProblem = TraceProblem;

/** What a sweep did and found (the common counts: `sweep_report.ts`). */
export interface StreamSweepReport extends SweepCounts<StreamProblem> {
  movers: string[];
  /** Images refused with a typed error (a crash during create). */
  refused: number;
  /** Images whose recovery wrote. */
  recovered: number;
  /** Entries dropped by recoveries (beyond a gap, or torn). */
  dropped: number;
  /** Images of a crash during recovery checked. */
  recoveryImages: number;
}

/** An empty report. */
export function emptyStreamReport(): StreamSweepReport {
  return {
    ...emptyCounts<StreamProblem>(),
    movers: [],
    refused: 0,
    recovered: 0,
    dropped: 0,
    recoveryImages: 0,
  };
}

/** Options of a sweep's checks. */
export interface StreamCheckSettings {
  subsets: SubsetOptions;
  /** Probe (append after recovery, reopen) every n-th image. */
  probeEvery: number;
  /** Crash-during-recovery images per recovered image, at most. */
  recoveryImages: number;
  /** A directory for the scratch file. */
  dir: string;
}

/** Subsets of the CI sweep. */
export const STREAM_CI_SUBSETS: SubsetOptions = {
  exhaustiveLimit: 4,
  prefixes: 5,
  random: 4,
  evict: 0.3,
};

/** Subsets of the long sweep. */
export const STREAM_LONG_SUBSETS: SubsetOptions = {
  exhaustiveLimit: 8,
  prefixes: 9,
  random: 8,
  evict: 0.3,
};

/** Check the crash images of a trace, adding to `report`. */
export function checkStreamTrace(
  trace: StreamTrace,
  settings: StreamCheckSettings,
  report: StreamSweepReport,
): void {
  const { model, seed } = trace;
  countTrace(report, trace);
  if (!report.movers.includes(trace.mover)) report.movers.push(trace.mover);
  const rand = xorshift(seed ^ 0x5eed);
  using scratch = new ScratchImage(join(settings.dir, "scratch"), trace.base);
  const checker = new StreamImageChecker(scratch, model, trace.scan);
  const ledger = trace.ledger;
  const fail = traceProblems(report, trace);
  const images = crashImages({
    scratch,
    events: trace.events,
    model,
    rand,
    subsets: settings.subsets,
    mark(label) {
      if (label === CREATED) ledger.created = true;
      else ledger.record(label);
    },
  }, report);
  for (const { event, units, image } of images) {
    report.images++;
    const outcome = checker.check(image, ledger, {
      mayRefuse: !ledger.created,
      probe: settings.probeEvery > 0 &&
        report.images % settings.probeEvery === 0,
      recoveryImages: settings.recoveryImages,
      rand,
    });
    if (outcome.refused) report.refused++;
    if (outcome.recovered) report.recovered++;
    report.dropped += outcome.dropped;
    report.recoveryImages += outcome.recoveryImages;
    if (report.images % 128 === 0 && !scratch.verify()) {
      outcome.problems.push(
        "the scratch file differs from the durable image after an undo",
      );
    }
    if (outcome.problems.length > 0) fail(event, units, outcome.problems);
  }
  if (!scratch.verify()) {
    fail(trace.events.length - 1, [], [
      "the scratch file differs from the durable image after an undo",
    ]);
  }
}

/** Options of a sweep in this process. */
export interface StreamSweepOptions extends StreamCheckSettings {
  model: PersistenceModel;
  /** Stop starting traces once this many images were checked. */
  images: number;
  seed: number;
  workloads: readonly StreamWorkload[];
  ops: number;
}

/** Run a sweep in this process; trace k uses mover k mod 3. */
export function runStreamSweep(options: StreamSweepOptions): StreamSweepReport {
  checkModel(options.model, options.dir, "streamSweepInChildren");
  const report = emptyStreamReport();
  const movers = STREAM_CRASH_MOVERS;
  const n = options.workloads.length;
  return sweepTraces(report, options.model, {
    minTraces: Math.max(n, movers.length),
    images: options.images,
  }, (k) => {
    const trace = recordStreamTrace(
      options.workloads[k % n],
      options.model,
      options.seed + k,
      options.ops,
      join(options.dir, "trace"),
      movers[k % movers.length],
    );
    checkStreamTrace(trace, options, report);
    recycle(trace.base); // checked: nothing reads it again
  });
}

/**
 * Add one child's report to the total (also the window sweep's, which
 * adds its own counts after).
 */
export function mergeStreamReport(
  into: StreamSweepReport,
  r: StreamSweepReport,
): void {
  mergeCounts(into, r, ["refused", "recovered", "dropped", "recoveryImages"]);
  addNew(into.movers, r.movers);
}

/** Options of {@linkcode streamSweepInChildren}. */
export interface StreamChildOptions extends PerModelOptions {
  /** Only this workload. */
  workload?: string;
}

/** Run a sweep per model in child processes (both at once). */
export function streamSweepInChildren(
  options: StreamChildOptions,
): Promise<StreamSweepReport> {
  return sweepPerModel({
    ...options,
    file: fileURLToPath(import.meta.url),
    what: "stream sweep",
    extra: options.workload === undefined
      ? []
      : ["--workload", options.workload],
    empty: emptyStreamReport,
    merge: mergeStreamReport,
  });
}

/** Print a report for people. */
export function formatStreamReport(r: StreamSweepReport): string {
  const lines = [
    ...reportHead("stream crash sweep", r, "operations", r.movers),
    `  ${r.recovered} images needed recovery (${r.dropped} entries dropped); ${r.recoveryImages} images of a crash during recovery checked; ${r.refused} refused while the stream was being created`,
  ];
  for (const p of r.examples) {
    lines.push(
      `  PROBLEM ${p.workload} seed ${p.seed} ${p.model} ${p.mover} after event ${p.event}, units [${p.units}]: ${p.message}`,
      `    reproduce: tests/crash/stream_sweep.ts --only images --model ${p.model} --workload ${p.workload} --seed ${p.seed} --ops ${p.ops} --images 1`,
    );
  }
  return lines.join("\n");
}

async function main(argv: string[]): Promise<number> {
  const args = new SweepArgs(argv, [], ["workload"]);
  const long = args.long;
  const seed = args.seed;
  const ops = args.number("ops", long ? 40 : 16);
  const models = args.models;
  const images = args.number("images", long ? 20_000 : 600);
  const workload = args.get("workload");
  const workloads = args.workloads(STREAM_WORKLOADS);
  return await runSweepScript(args, {
    prefix: "asyncpmem-stream-",
    child: (dir) =>
      runStreamSweep({
        model: models[0],
        images,
        seed,
        workloads,
        ops,
        subsets: long ? STREAM_LONG_SUBSETS : STREAM_CI_SUBSETS,
        probeEvery: long ? 2 : 4,
        recoveryImages: long ? 6 : 2,
        dir,
      }),
    stages: {
      images: stage(
        (dir) =>
          streamSweepInChildren({
            models,
            images,
            seed,
            ops,
            long,
            workload,
            dir,
          }),
        formatStreamReport,
      ),
      fuzz: stage(
        (dir) => streamFuzz(streamFuzzRunner(dir), seed, long ? 5000 : 400),
        formatStreamFuzzReport,
      ),
      kill: stage(
        (dir) => streamKillRounds(join(dir, "kill"), long ? 40 : 6, seed),
        formatStreamKillReport,
      ),
    },
  });
}

if (import.meta.main) process.exitCode = await main(process.argv.slice(2));
