// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The measurement helper of every `bench/*_bench.ts` file, and the line
 * format that they and the native baselines in `bench/c/` print for
 * `bench/run.ts`.
 *
 * Method (the same as `bench/c/*.c` and the runtime study): the iteration
 * count is tuned so one run takes about 25 ms, and tuned again after each
 * of 2 warm-up runs (once the JIT has compiled the loop); then 7 timed
 * runs, of which the median ns/op is reported. Times come from
 * `performance.now()`, so the helper runs unchanged on Deno and Bun.
 * Results are printed, never asserted on.
 *
 * @example Usage
 * ```ts ignore
 * import { bench } from "./lib.ts";
 *
 * const a = new Uint8Array(64);
 * bench("demo", "fill 64 B", (n) => {
 *   for (let i = 0; i < n; i++) a.fill(i);
 * });
 * ```
 *
 * @module
 */
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { RUNTIME, type RuntimeName } from "../ffi/_runtime.ts";

/** One measured case: one JSON line on standard output. */
export interface BenchResult {
  /** The suite: `pmem2` for `pmem2_bench.ts` and `c/baseline.c`. */
  suite: string;
  /** The case; the same name in the native baseline and in TypeScript. */
  case: string;
  /** Where it ran: a JavaScript runtime, or `c` for a native baseline. */
  runtime: RuntimeName | "c";
  /** Median over the timed runs. */
  nsPerOp: number;
  /** Fastest timed run. */
  minNsPerOp: number;
  /** Slowest timed run. */
  maxNsPerOp: number;
  /** Operations per run. */
  iterations: number;
  /** Timed runs. */
  runs: number;
}

/** A benchmark body: perform the operation `n` times. */
export type Loop = (n: number) => void;

/** Target duration of one run, in milliseconds. */
export const RUN_MS = 25;
/** Untimed runs before the timed ones. */
export const WARMUPS = 2;
/** Timed runs; their median is reported. */
export const RUNS = 7;
const CALIBRATE_MS = 1;

function timeMs(loop: Loop, n: number): number {
  const t = performance.now();
  loop(n);
  return performance.now() - t;
}

/** The count that makes a run take RUN_MS, when `n` took `ms`. */
function retune(n: number, ms: number): number {
  return Math.max(1, Math.round(n * RUN_MS / Math.max(ms, 1e-3)));
}

/**
 * Measure one case and print its {@linkcode BenchResult} line.
 *
 * @param suite the suite name (pairs it with its native baseline)
 * @param name the case name (pairs it with the baseline's case)
 * @param loop runs the operation `n` times
 */
export function bench(suite: string, name: string, loop: Loop): void {
  let n = 1;
  let t: number;
  while ((t = timeMs(loop, n)) < CALIBRATE_MS) n *= 2;
  for (let i = 0; i < WARMUPS; i++) {
    n = retune(n, t);
    t = timeMs(loop, n);
  }
  n = retune(n, t);
  const ns: number[] = [];
  for (let i = 0; i < RUNS; i++) ns.push(timeMs(loop, n) * 1e6 / n);
  ns.sort((a, b) => a - b);
  const result: BenchResult = {
    suite,
    case: name,
    runtime: RUNTIME,
    nsPerOp: ns[RUNS >> 1],
    minNsPerOp: ns[0],
    maxNsPerOp: ns[RUNS - 1],
    iterations: n,
    runs: RUNS,
  };
  console.log(JSON.stringify(result));
}

/** A directory for pool files: `/dev/shm` (tmpfs) when present. */
export function scratchDir(): string {
  return existsSync("/dev/shm") ? "/dev/shm" : tmpdir();
}
