// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * What every crash sweep's report has, whatever the store: the common
 * counts, the capped examples, the adding up of the per-model children's
 * reports, and the report's first lines. Each store's report extends
 * {@linkcode SweepCounts} with its own counts (`sweep.ts`, `obj_sweep.ts`,
 * `stream_sweep.ts`).
 *
 * @module
 */
import { RUNTIME } from "../../ffi/_runtime.ts";

/** Problems a report keeps whole; past them they are only counted. */
export const MAX_EXAMPLES = 20;

/** The counts and examples every sweep's report has. */
export interface SweepCounts<P> {
  /** The runtime. */
  runtime: string;
  /** The model(s). */
  models: string[];
  /** Traces recorded. */
  traces: number;
  /** Operations traced. */
  operations: number;
  /** Events recorded (flushes, fences, marks). */
  events: number;
  /** Crash points visited. */
  crashPoints: number;
  /** Distinct crash images checked (image × what had been acknowledged). */
  images: number;
  /** Subsets skipped because their image had been checked already. */
  duplicates: number;
  /** Images with at least one violated invariant. */
  problems: number;
  /** The first {@linkcode MAX_EXAMPLES} problems. */
  examples: P[];
  /** Wall time, milliseconds. */
  ms: number;
}

/**
 * The common part of an empty report, so that each store's empty report
 * only names its own counts.
 */
export function emptyCounts<P>(): SweepCounts<P> {
  return {
    runtime: RUNTIME,
    models: [],
    traces: 0,
    operations: 0,
    events: 0,
    crashPoints: 0,
    images: 0,
    duplicates: 0,
    problems: 0,
    examples: [],
    ms: 0,
  };
}

/**
 * Count a problem image in `report`, keeping it whole while there is
 * room, so that a broken store's thousands of failures do not flood the
 * report or the JSON a child prints.
 */
export function recordProblem<P>(report: SweepCounts<P>, example: P): void {
  report.problems++;
  if (report.examples.length < MAX_EXAMPLES) report.examples.push(example);
}

/**
 * One violated invariant of a crash image of a workload's trace, with
 * what reproduces it (the block and stream sweeps' problems).
 */
export interface TraceProblem {
  /** The workload. */
  workload: string;
  /** The trace's seed. */
  seed: number;
  /** Its operations. */
  ops: number;
  /** The model. */
  model: string;
  /** The data mover. */
  mover: string;
  /** The event the crash followed (-1: before the first). */
  event: number;
  /** The pending units the image kept (indexes). */
  units: number[];
  /** What is wrong. */
  message: string;
}

/** What names a trace in its problems. */
export interface TraceName {
  workload: { name: string };
  seed: number;
  ops: number;
  model: { name: string };
  mover: string;
}

/**
 * Records the problems of a trace's crash images in `report`: the
 * image after `event` that kept `units`, and what is wrong with it.
 */
export function traceProblems(
  report: SweepCounts<TraceProblem>,
  trace: TraceName,
): (event: number, units: number[], problems: string[]) => void {
  return (event, units, problems) =>
    recordProblem(report, {
      workload: trace.workload.name,
      seed: trace.seed,
      ops: trace.ops,
      model: trace.model.name,
      mover: trace.mover,
      event,
      units,
      message: problems.join(" | "),
    });
}

/**
 * A sweep in this process, whatever the store: `check(k)` records trace
 * k and checks its images into `report`, for k = 0, 1, … until at least
 * `minTraces` traces ran (every mover, or every workload, once) and
 * `images` images were checked. The report gets the model's name and the
 * wall time.
 */
export function sweepTraces<R extends SweepCounts<unknown>>(
  report: R,
  model: { name: string },
  limits: { minTraces: number; images: number },
  check: (k: number) => void,
): R {
  const started = performance.now();
  report.models.push(model.name);
  for (let k = 0; k < limits.minTraces || report.images < limits.images; k++) {
    check(k);
  }
  report.ms = Math.round(performance.now() - started);
  return report;
}

/** Count a recorded trace's operations and events in `report`. */
export function countTrace(
  report: SweepCounts<unknown>,
  trace: { operations: number; events: readonly unknown[] },
): void {
  report.traces++;
  report.operations += trace.operations;
  report.events += trace.events.length;
}

/** Add to `into` the items of `from` it does not have, in their order. */
export function addNew(into: string[], from: readonly string[]): void {
  for (const x of from) if (!into.includes(x)) into.push(x);
}

/** The keys of `R` whose values are numbers. */
export type CountKey<R> = {
  [K in keyof R]: R[K] extends number ? K : never;
}[keyof R];

const COMMON_COUNTS = [
  "traces",
  "operations",
  "events",
  "crashPoints",
  "images",
  "duplicates",
  "problems",
] as const;

/**
 * Add one child's report to the total: the common counts, the store's
 * own `counts`, the examples (up to {@linkcode MAX_EXAMPLES}) and the
 * models. Whatever else a store's report has, its merge adds itself.
 */
export function mergeCounts<P, R extends SweepCounts<P>>(
  into: R,
  r: R,
  counts: readonly CountKey<R>[],
): void {
  // the keys are checked by `counts`' type; the sum needs them as strings
  const to = into as unknown as Record<string, number>;
  const from = r as unknown as Record<string, number>;
  const sum = (k: string) => (to[k] += from[k]);
  for (const k of COMMON_COUNTS) sum(k);
  for (const k of counts) sum(k as string);
  into.examples.push(
    ...r.examples.slice(0, MAX_EXAMPLES - into.examples.length),
  );
  addNew(into.models, r.models);
}

/**
 * The first two lines of a report, the ones a reader (and CI's log)
 * looks at: `TITLE (runtime, models A + B[, movers …]): N images
 * checked, …`, then how much was traced and visited.
 *
 * @param operations what the store calls its operations ("transactions")
 * @param movers the movers, for a report that lists them
 */
export function reportHead(
  title: string,
  r: SweepCounts<unknown>,
  operations = "operations",
  movers?: readonly string[],
): string[] {
  const ms = movers === undefined ? "" : `, movers ${movers.join(" + ")}`;
  return [
    `${title} (${r.runtime}, models ${
      r.models.join(" + ")
    }${ms}): ${r.images} images checked, ${r.problems} with problems, in ${
      (r.ms / 1000).toFixed(1)
    } s`,
    `  ${r.traces} traces, ${r.operations} ${operations}, ${r.events} events, ${r.crashPoints} crash points, ${r.duplicates} duplicate subsets skipped`,
  ];
}
