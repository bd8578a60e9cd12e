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
import { rmSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { RUNTIME } from "../../ffi/_runtime.ts";
import { mapFile } from "../../pmem2/mod.ts";
import { startChild } from "./child.ts";
import { crashPoints, MODELS, type PersistenceModel } from "./model.ts";
import { xorshift } from "./random.ts";
import { scratchDir, ScratchImage } from "./scratch.ts";
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
import { type SubsetOptions, subsets } from "./subsets.ts";
import { STREAM_CRASH_MOVERS } from "./movers.ts";

export { recordStreamTrace };

/** The mark that says `LogStream.create` returned. */
const CREATED = CREATED_MARK;

/** One violated invariant, with what reproduces it. */
export interface StreamProblem {
  workload: string;
  seed: number;
  ops: number;
  model: string;
  mover: string;
  event: number;
  units: number[];
  message: string;
}

/** What a sweep did and found. */
export interface StreamSweepReport {
  runtime: string;
  models: string[];
  movers: string[];
  traces: number;
  operations: number;
  events: number;
  crashPoints: number;
  /** Distinct crash images checked. */
  images: number;
  duplicates: number;
  /** Images refused with a typed error (a crash during create). */
  refused: number;
  /** Images whose recovery wrote. */
  recovered: number;
  /** Entries dropped by recoveries (beyond a gap, or torn). */
  dropped: number;
  /** Images of a crash during recovery checked. */
  recoveryImages: number;
  problems: number;
  examples: StreamProblem[];
  ms: number;
}

/** An empty report. */
export function emptyStreamReport(): StreamSweepReport {
  return {
    runtime: RUNTIME,
    models: [],
    movers: [],
    traces: 0,
    operations: 0,
    events: 0,
    crashPoints: 0,
    images: 0,
    duplicates: 0,
    refused: 0,
    recovered: 0,
    dropped: 0,
    recoveryImages: 0,
    problems: 0,
    examples: [],
    ms: 0,
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
  const { workload: w, model, seed } = trace;
  report.traces++;
  report.operations += trace.operations;
  report.events += trace.events.length;
  if (!report.movers.includes(trace.mover)) report.movers.push(trace.mover);
  const rand = xorshift(seed ^ 0x5eed);
  using scratch = new ScratchImage(join(settings.dir, "scratch"), trace.base);
  const checker = new StreamImageChecker(scratch, model);
  const ledger = trace.ledger;
  const fail = (event: number, units: number[], problems: string[]) => {
    report.problems++;
    if (report.examples.length >= 20) return;
    report.examples.push({
      workload: w.name,
      seed,
      ops: trace.ops,
      model: model.name,
      mover: trace.mover,
      event,
      units,
      message: problems.join(" | "),
    });
  };
  const seen = new Set<string>();
  let marks = 0;
  for (const p of crashPoints(trace.events, model)) {
    for (const words of p.fenced) scratch.commit(words);
    for (const label of p.marks) {
      marks++;
      if (label === CREATED) ledger.created = true;
      else ledger.record(label);
    }
    report.crashPoints++;
    for (const sub of subsets(p.pending, rand, settings.subsets)) {
      const image = sub.units.map((i) => p.pending[i].words);
      const key = `${scratch.fingerprint(image)}:${marks}`;
      if (seen.has(key)) {
        report.duplicates++;
        continue;
      }
      seen.add(key);
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
      if (outcome.problems.length > 0) {
        fail(p.event, sub.units, outcome.problems);
      }
    }
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

/** Fail unless this process's mappings have the model's granularity. */
function checkModel(model: PersistenceModel, dir: string): void {
  const probe = join(dir, "granularity-probe");
  try {
    using map = mapFile(probe, { size: 4096 });
    if (map.granularity !== model.mappingGranularity) {
      throw new Error(
        `Cannot sweep the ${model.name} model: mappings here have ${map.granularity} granularity (run it with PMEM2_FORCE_GRANULARITY=${
          model.forceGranularity ?? "unset"
        }, or through streamSweepInChildren)`,
      );
    }
  } finally {
    rmSync(probe, { force: true });
  }
}

/** Run a sweep in this process; trace k uses mover k mod 3. */
export function runStreamSweep(options: StreamSweepOptions): StreamSweepReport {
  const started = performance.now();
  checkModel(options.model, options.dir);
  const report = emptyStreamReport();
  report.models.push(options.model.name);
  const movers = STREAM_CRASH_MOVERS;
  const n = options.workloads.length;
  for (
    let k = 0;
    k < Math.max(n, movers.length) || report.images < options.images;
    k++
  ) {
    const trace = recordStreamTrace(
      options.workloads[k % n],
      options.model,
      options.seed + k,
      options.ops,
      join(options.dir, "trace"),
      movers[k % movers.length],
    );
    checkStreamTrace(trace, options, report);
  }
  report.ms = Math.round(performance.now() - started);
  return report;
}

/** Add one report's counts to another's. */
function merge(into: StreamSweepReport, r: StreamSweepReport): void {
  for (
    const k of [
      "traces",
      "operations",
      "events",
      "crashPoints",
      "images",
      "duplicates",
      "refused",
      "recovered",
      "dropped",
      "recoveryImages",
      "problems",
    ] as const
  ) {
    into[k] += r[k];
  }
  into.examples.push(...r.examples.slice(0, 20 - into.examples.length));
  for (const m of r.models) if (!into.models.includes(m)) into.models.push(m);
  for (const m of r.movers) if (!into.movers.includes(m)) into.movers.push(m);
}

/** Options of {@linkcode streamSweepInChildren}. */
export interface StreamChildOptions {
  models: readonly PersistenceModel[];
  images: number;
  seed: number;
  ops: number;
  long: boolean;
  workload?: string;
  dir: string;
}

/** Run a sweep per model in child processes (both at once). */
export async function streamSweepInChildren(
  options: StreamChildOptions,
): Promise<StreamSweepReport> {
  const started = performance.now();
  const reports = await Promise.all(options.models.map(async (model) => {
    const args = [
      "--json",
      "--model",
      model.name,
      "--images",
      String(options.images),
      "--seed",
      String(options.seed),
      "--ops",
      String(options.ops),
      "--dir",
      join(options.dir, model.name),
    ];
    if (options.long) args.push("--long");
    if (options.workload !== undefined) {
      args.push("--workload", options.workload);
    }
    const r = await startChild(fileURLToPath(import.meta.url), args, {
      PMEM2_FORCE_GRANULARITY: model.forceGranularity,
    }).ended;
    if (r.status !== 0) {
      throw new Error(
        `The ${model.name} stream sweep ended with ${
          r.signal ?? r.status
        }: ${r.stderr.trim()}`,
      );
    }
    try {
      return JSON.parse(r.stdout) as StreamSweepReport;
    } catch (e) {
      throw new Error(
        `The ${model.name} stream sweep printed no report: ${r.stdout}${r.stderr}`,
        { cause: e },
      );
    }
  }));
  const total = emptyStreamReport();
  for (const r of reports) merge(total, r);
  total.ms = Math.round(performance.now() - started);
  return total;
}

/** Print a report for people. */
export function formatStreamReport(r: StreamSweepReport): string {
  const lines = [
    `stream crash sweep (${r.runtime}, models ${r.models.join(" + ")}, movers ${
      r.movers.join(" + ")
    }): ${r.images} images checked, ${r.problems} with problems, in ${
      (r.ms / 1000).toFixed(1)
    } s`,
    `  ${r.traces} traces, ${r.operations} operations, ${r.events} events, ${r.crashPoints} crash points, ${r.duplicates} duplicate subsets skipped`,
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
  const args = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith("--")) throw new Error(`Unexpected argument: ${a}`);
    const flag = a === "--long" || a === "--json";
    args.set(a.slice(2), flag ? "true" : argv[++i] ?? "");
  }
  const long = args.has("long");
  const seed = Number(args.get("seed") ?? 1);
  const ops = Number(args.get("ops") ?? (long ? 40 : 16));
  const named = args.get("model");
  const models = named === undefined ? Object.values(MODELS) : [
    MODELS[named] ?? (() => {
      throw new Error(`Unknown model: ${named}`);
    })(),
  ];
  const images = Number(args.get("images") ?? (long ? 20_000 : 600));
  const workload = args.get("workload");
  const workloads = workload === undefined
    ? STREAM_WORKLOADS
    : STREAM_WORKLOADS.filter((w) => w.name === workload);
  if (workloads.length === 0) throw new Error(`Unknown workload: ${workload}`);
  if (args.has("json")) {
    const dir = scratchDir("asyncpmem-stream-", args.get("dir"));
    try {
      const report = runStreamSweep({
        model: models[0],
        images,
        seed,
        workloads,
        ops,
        subsets: long ? STREAM_LONG_SUBSETS : STREAM_CI_SUBSETS,
        probeEvery: long ? 2 : 4,
        recoveryImages: long ? 6 : 2,
        dir,
      });
      console.log(JSON.stringify(report));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    return 0;
  }
  const only = args.get("only");
  const dir = scratchDir("asyncpmem-stream-");
  let failed = false;
  try {
    if (only === undefined || only === "images") {
      const report = await streamSweepInChildren({
        models,
        images,
        seed,
        ops,
        long,
        workload,
        dir,
      });
      console.log(formatStreamReport(report));
      failed ||= report.problems > 0;
    }
    if (only === undefined || only === "fuzz") {
      const report = streamFuzz(streamFuzzRunner(dir), seed, long ? 5000 : 400);
      console.log(formatStreamFuzzReport(report));
      failed ||= report.failures.length > 0;
    }
    if (only === undefined || only === "kill") {
      const report = await streamKillRounds(
        join(dir, "kill"),
        long ? 40 : 6,
        seed,
      );
      console.log(formatStreamKillReport(report));
      failed ||= report.problems.length > 0;
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return failed ? 1 : 0;
}

if (import.meta.main) process.exitCode = await main(process.argv.slice(2));
