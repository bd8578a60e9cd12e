// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The object store's crash sweep at the end of its redo log's ring: a
 * workload, swept at every crash point by `obj_sweep.ts`'s checker,
 * where the main workload (`obj_workload.ts`, 14 transactions in a 256
 * KiB log) never gets. An untraced preparation (the workload's setup, a
 * few of its transactions, then transactions that change nothing the
 * model sees) moves the log's head to a random 56 to 112 bytes short of
 * the ring's end; the traced part then takes one of two shapes:
 *
 * - **moved**: a transaction whose record does not fit before the end: it
 *   moves to the next lap's start, a WRAP record left where it started;
 * - **end**: a transaction whose record ends exactly at the ring's end, a
 *   checkpoint there (`flush`), a clean close and a reopen;
 *
 * then one of the main workload's transactions (or group of them) at the
 * next lap's start. The sweep's checker continues every recovered image near the end
 * ({@linkcode fillToEnd}): what was lost at a crash must stay lost once
 * later records reach the lap's start.
 *
 * As a script (options `--seed N`, `--model cache-line|page`):
 *
 * ```sh
 * deno run -A tests/crash/obj_wrap_sweep.ts --seed 7
 * ```
 *
 * @module
 */
import { rmSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import {
  type ObjectHandle,
  ObjectPool,
  type Transaction,
} from "../../obj/mod.ts";
import { openPoolWith, poolEngine } from "../../obj/pool_access.ts";
import { ENTRY_HEADER as ENTRY, RECORD_HEADER } from "../../obj/layout.ts";
import type { Mapping } from "../../pmem2/mod.ts";
import type { PersistTracer } from "../../pmem2/tracer.ts";
import type { PersistenceModel } from "./model.ts";
import { CRASH_MOVERS, crashMover, parseCrashMover } from "./movers.ts";
import { pick, xorshift } from "./random.ts";
import { recycle } from "./spare_buffers.ts";
import { traceFile } from "./tracer.ts";
import {
  type ModelState,
  OBJ_OPTIONS,
  ObjDriver,
  ROOT_SIZE,
  setup,
  SLOTS,
} from "./obj_workload.ts";
import {
  checkObjTrace,
  emptyObjReport,
  formatObjReport,
  mergeObjReport,
  OBJ_CI_SUBSETS,
  type ObjSweepReport,
  type ObjTrace,
} from "./obj_sweep.ts";
import { sweepTraces } from "./sweep_report.ts";
import type { SubsetOptions } from "./subsets.ts";
import { runSweepScript, stage, SweepArgs, sweepPerModel } from "./driver.ts";

/** The traced part's shapes (see the module's documentation). */
export const WRAP_SHAPES = ["moved", "end"] as const;
/** One of {@linkcode WRAP_SHAPES}. */
export type WrapShape = typeof WRAP_SHAPES[number];

/** The smallest record {@linkcode rewriteRoot} makes: one entry of a word. */
export const MIN_REWRITE = RECORD_HEADER + ENTRY + 8;

/**
 * Stage entries of exactly `bytes` (a multiple of 8, at least one entry
 * of a word) into `tx`: the root's slots written over with what they hold
 * (`rootBytes`, the root as it is), then its counter moved on by `step`.
 * So the transaction's record is `RECORD_HEADER + bytes` and its only
 * effect is the counter's: {@linkcode countBy}.
 */
export function rewriteRoot(
  tx: Transaction,
  root: ObjectHandle,
  rootBytes: Uint8Array,
  bytes: number,
  step: number,
): void {
  const rest = bytes - (ENTRY + 8);
  if (rest < 0 || rest % 8 !== 0) {
    throw new RangeError(`no entries make ${bytes} bytes`);
  }
  // a rest no entry of its own takes (8 or 16 bytes) widens the
  // counter's entry by the slots before it
  const widen = rest < ENTRY + 8 ? rest / 8 : 0;
  let left = rest - 8 * widen;
  const largest = ENTRY + 8 * SLOTS;
  while (left > 0) {
    let n = Math.min(largest, left);
    if (left - n > 0 && left - n < ENTRY + 8) n -= ENTRY + 8;
    tx.write(root, 0, rootBytes.subarray(0, n - ENTRY));
    left -= n;
  }
  const last = new Uint8Array(8 * (widen + 1));
  last.set(rootBytes.subarray(8 * (SLOTS - widen), 8 * SLOTS));
  new DataView(last.buffer).setBigUint64(
    8 * widen,
    BigInt(tx.getU64(root, 8 * SLOTS)) + BigInt(step),
    true,
  );
  tx.write(root, 8 * (SLOTS - widen), last);
}

/** The model's side of {@linkcode rewriteRoot} by `step`. */
export function countBy(step: number): (s: ModelState) => void {
  return (s) => {
    s.counter += step;
  };
}

/**
 * The traced transactions' steps: never 1, the continuation's
 * ({@linkcode fillToEnd}), so that a lost one replayed after it shows.
 */
function tracedStep(rand: () => number): number {
  return 2 + pick(rand, 1 << 20);
}

/** The log's head: bytes left before the ring's end, and its lap. */
export function logEnd(pool: ObjectPool): { left: number; lap: number } {
  const log = poolEngine(pool).log;
  return {
    left: log.size - log.head % log.size,
    lap: Math.floor(log.head / log.size),
  };
}

/**
 * Commit one transaction whose record ends exactly at the ring's end,
 * when the log's head is close enough to it (one record's reach): the
 * continuation of a recovered image. Nothing when it is not.
 *
 * @returns its effect ({@linkcode countBy} 1), or null where it
 *   committed none
 * @throws {Error} when the record did not end at the ring's end
 */
export function fillToEnd(
  pool: ObjectPool,
): ((s: ModelState) => void) | null {
  const { left } = logEnd(pool);
  if (left < MIN_REWRITE || left > poolEngine(pool).log.maxRecord) {
    return null;
  }
  const root = pool.root(ROOT_SIZE);
  const bytes = pool.read(root);
  pool.tx((tx) => rewriteRoot(tx, root, bytes, left - RECORD_HEADER, 1));
  const after = logEnd(pool).left;
  if (after !== poolEngine(pool).log.size) {
    throw new Error(
      `a record of ${left} bytes left the log's head ${after} bytes short of the ring's end`,
    );
  }
  return countBy(1);
}

/**
 * Transactions that change nothing the model sees (an object allocated,
 * written with zeros and freed), then one of the driver's that rewrites
 * the root: the log's head ends exactly `gap` bytes short of the ring's
 * end.
 */
function moveHead(d: ObjDriver, gap: number): void {
  const pool = d.pool;
  for (;;) {
    const { left } = logEnd(pool);
    // a filler's bookkeeping entries take < 1 KiB
    if (left - gap < 4096) break;
    const n = Math.min(64 << 10, left - gap - 3072);
    pool.tx((tx) => {
      const o = tx.alloc(n);
      tx.write(o, 0, new Uint8Array(n));
      tx.free(o);
    });
  }
  const { left } = logEnd(pool);
  const bytes = pool.read(d.root);
  d.commit(
    (tx) => rewriteRoot(tx, d.root, bytes, left - gap - RECORD_HEADER, 1),
    countBy(1),
  );
  if (logEnd(pool).left !== gap) {
    throw new Error(
      `the log's head is ${
        logEnd(pool).left
      } bytes short of the ring's end, not ${gap}`,
    );
  }
}

/**
 * Prepare a pool at `path` untraced (its head `gap` short of the ring's
 * end), then run the traced part of `shape` on it from its reopening
 * (the file is removed afterwards).
 */
export function recordObjWrapTrace(
  model: PersistenceModel,
  seed: number,
  shape: WrapShape,
  path: string,
  mover: string,
): ObjTrace {
  const rand = xorshift(seed);
  const vdm = crashMover(parseCrashMover(mover));
  let probe: Mapping | undefined;
  let pool: ObjectPool | undefined;
  try {
    pool = ObjectPool.create(path, { ...OBJ_OPTIONS, mover: vdm });
    const prepared = new ObjDriver(pool, () => {}, rand, setup(pool));
    prepared.run(4);
    const gap = 8 * (MIN_REWRITE / 8 + pick(rand, 8));
    moveHead(prepared, gap);
    const base = { state: prepared.state, states: prepared.states };
    pool.close();
    const traced = traceFile(path, model);
    probe = traced.probe;
    const { tracer } = traced;
    const open = () =>
      openPoolWith(path, { layout: OBJ_OPTIONS.layout, mover: vdm }, {
        tracer: tracer as PersistTracer,
      });
    pool = open();
    let d = new ObjDriver(pool, (l) => tracer.mark(l), rand, base);
    const bytes = pool.read(d.root);
    const lap = logEnd(pool).lap;
    if (shape === "moved") {
      // a record longer than the gap, by up to 64 bytes
      const size = gap + 8 * (1 + pick(rand, 8));
      const step = tracedStep(rand);
      d.commit(
        (tx) => rewriteRoot(tx, d.root, bytes, size - RECORD_HEADER, step),
        countBy(step),
      );
      if (
        logEnd(pool).lap !== lap + 1 ||
        logEnd(pool).left !== OBJ_OPTIONS.logSize - size
      ) {
        throw new Error("the record did not move to the next lap");
      }
    } else {
      const step = tracedStep(rand);
      d.commit(
        (tx) => rewriteRoot(tx, d.root, bytes, gap - RECORD_HEADER, step),
        countBy(step),
      );
      if (logEnd(pool).left !== OBJ_OPTIONS.logSize) {
        throw new Error("the record did not end at the ring's end");
      }
      pool.flush();
      pool.close();
      pool = open();
      d = new ObjDriver(pool, (l) => tracer.mark(l), rand, d);
    }
    d.run(d.issued + 1);
    pool.close();
    const events = tracer.finish();
    recycle(traced.shadow); // the tracer is finished with it
    return {
      model,
      seed,
      mover,
      events,
      states: d.states,
      operations: d.states.length - base.states.length,
      base: traced.base,
      // the creation and the preparation, before tracing
      acknowledged: base.states.length - 1,
    };
  } finally {
    pool?.close();
    probe?.close();
    vdm.close();
    rmSync(path, { force: true });
  }
}

/**
 * The sweep's subsets: the CI sweep's, but every prefix of up to 31
 * flushed units (the moved record's words and its WRAP's, a few dozen:
 * a crash that kept the one but not the other is a prefix in program
 * order wherever the record was flushed first).
 */
export const WRAP_SUBSETS: SubsetOptions = { ...OBJ_CI_SUBSETS, prefixes: 32 };

/**
 * Sweep four traces under `model` in this process (trace k: seed `seed +
 * k`, shape k mod 2, mover k mod the movers: each shape with two movers,
 * every mover), every recovered image near the ring's end continued
 * ({@linkcode fillToEnd}).
 */
export function runObjWrapSweep(
  model: PersistenceModel,
  seed: number,
  dir: string,
): ObjSweepReport {
  const report = emptyObjReport();
  return sweepTraces(report, model, {
    minTraces: Math.max(4, CRASH_MOVERS.length),
    images: 0,
  }, (k) => {
    const trace = recordObjWrapTrace(
      model,
      seed + k,
      WRAP_SHAPES[k % WRAP_SHAPES.length],
      join(dir, "trace"),
      CRASH_MOVERS[k % CRASH_MOVERS.length],
    );
    checkObjTrace(trace, {
      subsets: WRAP_SUBSETS,
      recoveryImages: 1,
      maxImages: 1000,
      dir,
      continuation: fillToEnd,
    }, report);
    // checked: nothing reads it again
    if (trace.base !== undefined) recycle(trace.base);
  });
}

/** Run the wrap sweep per model in child processes (both at once). */
export function objWrapSweepInChildren(
  options: { models: readonly PersistenceModel[]; seed: number; dir: string },
): Promise<ObjSweepReport> {
  return sweepPerModel({
    ...options,
    images: 0,
    ops: 0,
    long: false,
    file: fileURLToPath(import.meta.url),
    what: "object wrap sweep",
    extra: [],
    empty: emptyObjReport,
    merge: mergeObjReport,
  });
}

async function main(argv: string[]): Promise<number> {
  const args = new SweepArgs(argv);
  const { seed, models } = args;
  return await runSweepScript(args, {
    prefix: "asyncpmem-objwrap-",
    child: (dir) => runObjWrapSweep(models[0], seed, dir),
    stages: {
      images: stage(
        (dir) => objWrapSweepInChildren({ models, seed, dir }),
        formatObjReport,
      ),
    },
  });
}

if (import.meta.main) process.exitCode = await main(process.argv.slice(2));
