// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The measurement helper of every `bench/*_bench.ts` file, and the line
 * format that they and the native baselines in `bench/c/` print for
 * `bench/run.ts`.
 *
 * Method (the same as `bench/c/*.c` and the runtime study): the iteration
 * count is tuned so one run takes about 25 ms, and tuned again after each
 * of 2 warm-up runs (once the JIT has compiled the loop); on the
 * runtimes, warm-up runs go on until they add up to 300 ms and a run is
 * no more than 5 % faster than the one before (at most 3 s): a JIT
 * compiles a long code path, such as a block write's, in tiers, and with
 * 50 ms of warm-up `writeAsync` was timed at 1.6x its steady-state time.
 * Then 7 timed runs, of which the median ns/op is reported. Times come from
 * `performance.now()`, so the helper runs unchanged on Deno and Bun.
 * Results are printed, never asserted on. {@linkcode benchAsync} does the
 * same for a loop that returns a promise (it awaits each run).
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
import process from "node:process";
import { tmpdir } from "node:os";
import { fileURLToPath } from "node:url";
import { RUNTIME, type RuntimeName } from "../ffi/_runtime.ts";
import { CpuMover, ThreadMover, type Vdm } from "../mover/mod.ts";

/** One measured case: one JSON line on standard output. */
export interface BenchResult {
  /**
   * The suite: `pmem2` for `pmem2_bench.ts` and `c/baseline.c`, `mover`
   * for `mover_bench.ts` and `c/mover_baseline.c`.
   */
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
  /** Bytes moved per operation: the table then shows ops/s and GB/s. */
  bytes?: number;
  /** The native case this one is compared with; by default the same name. */
  reference?: string;
  /**
   * A case of the same suite and runtime that this one adds work to: the
   * table lists the difference of their ns/op as this case's overhead.
   */
  overheadOf?: string;
}

/** A benchmark body: perform the operation `n` times. */
export type Loop = (n: number) => void;

/** An asynchronous benchmark body: perform the operation `n` times. */
export type AsyncLoop = (n: number) => Promise<void>;

/** How a case is counted and compared ({@linkcode bench}). */
export interface BenchOptions {
  /** Operations per loop iteration: `loop(n)` performs `n` × this many. */
  opsPerIteration?: number;
  /** Bytes moved per operation ({@linkcode BenchResult.bytes}). */
  bytes?: number;
  /** The native case to compare with ({@linkcode BenchResult.reference}). */
  reference?: string;
  /** The case this one adds work to ({@linkcode BenchResult.overheadOf}). */
  overheadOf?: string;
}

/**
 * The short suite (`bench/run.ts --quick`, `asyncpmem bench`): fewer and
 * shorter runs, for a first look rather than a figure to report.
 */
export const QUICK: boolean = (() => {
  try {
    return process.env.ASYNCPMEM_BENCH_QUICK === "1";
  } catch {
    return false; // no permission to read the environment
  }
})();

/** How long and how often a case runs. */
export interface BenchSettings {
  /** Target duration of one run, in milliseconds. */
  runMs: number;
  /** Warm-up runs go on until they took this long in all (ms)... */
  warmupMs: number;
  /** ...but no longer than this in all (ms). */
  warmupMaxMs: number;
  /** Timed runs; their median is reported. */
  runs: number;
}

/** The settings of the full suite, or of the short one. */
export function benchSettings(quick: boolean): BenchSettings {
  return quick
    ? { runMs: 10, warmupMs: 100, warmupMaxMs: 1000, runs: 3 }
    : { runMs: 25, warmupMs: 300, warmupMaxMs: 3000, runs: 7 };
}

const SETTINGS = benchSettings(QUICK);
/** Target duration of one run, in milliseconds. */
export const RUN_MS: number = SETTINGS.runMs;
/** Untimed runs before the timed ones (at least). */
export const WARMUPS = 2;
/** Warm-up runs go on until they took this long in all (ms)... */
export const WARMUP_MS: number = SETTINGS.warmupMs;
/** ...and until a run is at most this much faster than the one before... */
const WARMUP_SETTLED = 0.05;
/** ...but no longer than this in all (ms). */
const WARMUP_MAX_MS = SETTINGS.warmupMaxMs;
/** Timed runs; their median is reported. */
export const RUNS: number = SETTINGS.runs;
const CALIBRATE_MS = 1;

/** The count that makes a run take RUN_MS, when `n` took `ms`. */
function retune(n: number, ms: number): number {
  return Math.max(1, Math.round(n * RUN_MS / Math.max(ms, 1e-3)));
}

/** The iteration counts of one case; each run's milliseconds are sent back. */
function* schedule(): Generator<number, number[], number> {
  let n = 1;
  let t: number;
  while ((t = yield n) < CALIBRATE_MS) n *= 2;
  let warm = 0;
  let settled = false;
  for (let i = 0; i < WARMUPS || (warm < WARMUP_MAX_MS && !settled); i++) {
    const before = t; // ms of the previous run, of `n` iterations
    const previous = n;
    n = retune(n, t);
    t = yield n;
    warm += t;
    const faster = 1 - (t / n) / (before / previous);
    settled = warm >= WARMUP_MS && faster <= WARMUP_SETTLED;
  }
  n = retune(n, t);
  const ms: number[] = [];
  for (let i = 0; i < RUNS; i++) ms.push(yield n);
  return ms;
}

/** Print the result line of timed runs of `n` iterations each. */
function report(
  suite: string,
  name: string,
  n: number,
  ms: number[],
  options: BenchOptions,
): BenchResult {
  const ops = n * (options.opsPerIteration ?? 1);
  const ns = ms.map((t) => t * 1e6 / ops).sort((a, b) => a - b);
  const result: BenchResult = {
    suite,
    case: name,
    runtime: RUNTIME,
    nsPerOp: ns[RUNS >> 1],
    minNsPerOp: ns[0],
    maxNsPerOp: ns[RUNS - 1],
    iterations: ops,
    runs: RUNS,
  };
  if (options.bytes !== undefined) result.bytes = options.bytes;
  if (options.reference !== undefined) result.reference = options.reference;
  if (options.overheadOf !== undefined) {
    result.overheadOf = options.overheadOf;
  }
  console.log(JSON.stringify(result));
  return result;
}

/**
 * Measure one case and print its {@linkcode BenchResult} line.
 *
 * @param suite the suite name (pairs it with its native baseline)
 * @param name the case name (pairs it with the baseline's case)
 * @param loop runs the operation `n` times (`n` iterations)
 * @param options operations per iteration, bytes, comparisons
 * @returns the result it printed
 */
export function bench(
  suite: string,
  name: string,
  loop: Loop,
  options: BenchOptions = {},
): BenchResult {
  const runs = schedule();
  let step = runs.next();
  let n = 0;
  while (!step.done) {
    n = step.value;
    const t = performance.now();
    loop(n);
    step = runs.next(performance.now() - t);
  }
  return report(suite, name, n, step.value, options);
}

/** One case of {@linkcode benchSideBySide}. */
export interface SideBySideCase {
  /** The case name (pairs it with the baseline's case). */
  name: string;
  /** Runs the operation `n` times (`n` iterations). */
  loop: Loop;
  /** Operations per iteration, bytes, comparisons. */
  options?: BenchOptions;
}

/**
 * {@linkcode bench} for cases compared with each other: their runs take
 * turns (warm-up and timed runs alike), so every case meets the same heap
 * and the same machine. Run one after another, a case that allocates is
 * charged for the collector's state the cases before it left (on Deno as
 * on Bun), so whichever came first or last looked slower.
 *
 * @param suite the suite name
 * @param cases the cases, measured in turns
 * @returns the results it printed, in the order of `cases`
 */
export function benchSideBySide(
  suite: string,
  cases: readonly SideBySideCase[],
): BenchResult[] {
  const runs = cases.map(() => schedule());
  const steps = runs.map((r) => r.next());
  const counts = cases.map(() => 0);
  let pending = true;
  while (pending) {
    pending = false;
    for (let i = 0; i < cases.length; i++) {
      const step = steps[i];
      if (step.done) continue;
      pending = true;
      counts[i] = step.value;
      const t = performance.now();
      cases[i].loop(step.value);
      steps[i] = runs[i].next(performance.now() - t);
    }
  }
  return cases.map((c, i) =>
    report(
      suite,
      c.name,
      counts[i],
      steps[i].value as number[],
      c.options ?? {},
    )
  );
}

/**
 * {@linkcode bench} for a loop that returns a promise: each run is timed
 * until its promise resolves.
 *
 * @param suite the suite name
 * @param name the case name
 * @param loop runs the operation `n` times (`n` iterations)
 * @param options operations per iteration, bytes, comparisons
 * @returns the result it printed
 */
export async function benchAsync(
  suite: string,
  name: string,
  loop: AsyncLoop,
  options: BenchOptions = {},
): Promise<BenchResult> {
  const runs = schedule();
  let step = runs.next();
  let n = 0;
  while (!step.done) {
    n = step.value;
    const t = performance.now();
    await loop(n);
    step = runs.next(performance.now() - t);
  }
  return report(suite, name, n, step.value, options);
}

// A non-literal specifier keeps Deno's checker off bun:ffi.
const BUN_FFI = "bun:ffi";
/** bun:ffi on Bun (for `ptr`), else undefined. */
// deno-lint-ignore no-explicit-any
const bunFfi: any = RUNTIME === "bun" ? await import(BUN_FFI) : undefined;

/** The address of `bytes[0]`. */
function addressOf(bytes: Uint8Array): number {
  if (bunFfi !== undefined) return Number(bunFfi.ptr(bytes));
  return Number(Deno.UnsafePointer.value(Deno.UnsafePointer.of(bytes)));
}

/**
 * `size` zero bytes starting on a 64-byte boundary, as the C baselines
 * allocate theirs (`aligned_alloc(64, …)`), so that both sides of a ratio
 * copy to and from buffers aligned alike: a plain `new Uint8Array(4096)`
 * is page-aligned on Bun but only 16-byte aligned on Deno, and a 4 KiB
 * copy into a buffer off a cache-line boundary took 35–50 ns longer there.
 *
 * @param size bytes
 * @returns a view of a slightly larger array
 */
export function alignedBytes(size: number): Uint8Array {
  const whole = new Uint8Array(size + 64);
  addressOf(whole); // Bun may move a small array's storage once, here
  const skip = (64 - (addressOf(whole) % 64)) % 64;
  return whole.subarray(skip, skip + size);
}

/**
 * On Bun, allocate 4 KiB arrays until 10 000 in a row take under 1 µs
 * each (at most 400 000), so that the case measured next does not pay
 * for the heap's growth alone. A young JavaScriptCore heap page-faults
 * fresh pages for every allocation until its first collections: in one
 * process, 4 KiB `map.get`s then lmdb `getBinary`s took 19.8, 3.1, 1.6,
 * 1.6 µs (rounds of 50 000) and 20.3, 10.9, 3.5, 2.6; in the other order
 * lmdb 28.1, 4.8, 2.6, 2.6 and the map 8.2, 5.9, 1.7, 1.5. So whichever
 * store came first was charged for the heap. A no-op on Deno, whose
 * allocations have no such phase (each costs about the same throughout).
 */
export function warmHeap(): void {
  if (RUNTIME !== "bun") return;
  let kept = 0;
  for (let done = 0; done < 400_000; done += 10_000) {
    const t0 = performance.now();
    for (let i = 0; i < 10_000; i++) kept += new Uint8Array(4096).length;
    if ((performance.now() - t0) / 10_000 < 0.001) break;
  }
  if (kept < 0) throw new Error("unreachable"); // keeps the loop's work
}

/**
 * A directory for pool files: `ASYNCPMEM_BENCH_DIR` (a DAX file system,
 * to measure real persistent memory), else `/dev/shm` (tmpfs) when present.
 */
export function scratchDir(): string {
  const chosen = process.env.ASYNCPMEM_BENCH_DIR;
  if (chosen) return chosen;
  return existsSync("/dev/shm") ? "/dev/shm" : tmpdir();
}

/**
 * The arguments that run the module at `url` again on this runtime (before
 * its own): `deno run -A <file>` or `bun <file>`, with `process.execPath`.
 */
export function rerunArgs(url: string): string[] {
  const file = fileURLToPath(url);
  return RUNTIME === "deno" ? ["run", "-A", file] : [file];
}

/**
 * The movers the suites measure, by the label their cases carry: `cpu`,
 * `threads` (default options: copies under the inline threshold run on
 * the polling thread) and `threads-offload` (every copy to the workers).
 */
export const MOVERS: Readonly<Record<string, () => Vdm>> = {
  "cpu": () => new CpuMover(),
  "threads": () => new ThreadMover(),
  "threads-offload": () => new ThreadMover({ inlineThreshold: 0 }),
};
