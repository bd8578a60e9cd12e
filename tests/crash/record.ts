// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Recording a block workload (`workload.ts`) for the crash sweep
 * (`sweep.ts`): the pool is prepared untraced, then the workload runs
 * under a {@linkcode CrashTracer}, with marks where operations are issued
 * and acknowledged. A workload may ask for a large pool, few lanes and
 * the ranges its trace stores to (the window sweep's, `blk_window.ts`):
 * the tracer then scans only those.
 *
 * @module
 */
import { rmSync } from "node:fs";
import { type BlockPool, MIN_POOL_SIZE } from "../../blk/mod.ts";
import { blockPoolMapping, openPoolWith } from "../../blk/pool_access.ts";
import { hasWholeBuffer } from "../../pmem2/mapping_access.ts";
import { mapFile, type Mapping } from "../../pmem2/mod.ts";
import { createBlockPool } from "../../testing/mod.ts";
import { Ledger, opLabel } from "./ledger.ts";
import type { PersistenceModel } from "./model.ts";
import { type CrashMover, crashMover } from "./movers.ts";
import { Payloads } from "./payload.ts";
import { xorshift } from "./random.ts";
import { recycle, spareCopy } from "./spare_buffers.ts";
import {
  CrashTracer,
  faultyTracer,
  type TraceEvent,
  traceFile,
} from "./tracer.ts";
import { Driver, type Recorder, type Workload } from "./workload.ts";

/** The mark that says `BlockPool.create` returned. */
export const CREATED = "ack create";
/** The mark after a workload's warm-up: crash points are checked from here. */
export const WARMED = "warmed up";

/** The size of a traced pool unless its workload says: libpmemblk's minimum. */
export const POOL_SIZE = MIN_POOL_SIZE;

/** The pool size of a workload's traces. */
export function poolSizeOf(w: Workload): number {
  return w.poolSize ?? POOL_SIZE;
}

/** A recorded workload: what its crash images are made of. */
export interface Trace {
  /** The workload. */
  workload: Workload;
  /** The model it was recorded under. */
  model: PersistenceModel;
  /** Its seed. */
  seed: number;
  /** The file when tracing started (durable). */
  base: Uint8Array;
  /** The events. */
  events: TraceEvent[];
  /** The untraced preparation, acknowledged; the trace's marks add to it. */
  ledger: Ledger;
  /** Operations asked for (`ops`). */
  ops: number;
  /** Operations issued while traced. */
  operations: number;
  /** The data mover it ran with. */
  mover: CrashMover;
  /** The ranges the tracers scan (the workload's `scan`); unset: all. */
  scan?: readonly { offset: number; length: number }[];
  /** Whether the traced pool saw its file through view windows (Bun). */
  windowed: boolean;
  /**
   * Words stored outside `scan` while traced (flushed or not): none, or
   * the scan ranges miss stores whose crash images went unchecked.
   */
  strays: number;
}

/** Faults to inject into a recording, to show that the checker sees them. */
export interface RecordFaults {
  /** Hide every fence from the tracer, as if the program never fenced. */
  dropFences?: boolean;
}

/**
 * Run a workload on a new pool at `path`, traced; the file is removed
 * afterwards.
 *
 * @param w the workload
 * @param model the model (this process's mappings must have it)
 * @param seed its seed
 * @param ops operations to run
 * @param path where the pool goes
 * @param faults faults to inject (none by default)
 * @param mover the data mover the pool copies with (the CPU's by default)
 */
export function recordTrace(
  w: Workload,
  model: PersistenceModel,
  seed: number,
  ops: number,
  path: string,
  faults: RecordFaults = {},
  mover: CrashMover = "cpu",
): Trace {
  const rand = xorshift(seed);
  const payloads = new Payloads(w.blockSize);
  const ledger = new Ledger();
  const direct: Recorder = {
    issue: (op) => ledger.issue(op),
    ack: (op) => ledger.ack(op),
  };
  const poolSize = poolSizeOf(w);
  const scan = w.scan?.();
  let probe: Mapping | undefined;
  let pool: BlockPool | undefined;
  const others: BlockPool[] = [];
  let operations = 0;
  const vdm = crashMover(mover);
  try {
    let base: Uint8Array;
    let tracer: CrashTracer;
    let shadow: Uint8Array;
    let version = 1;
    if (w.fromCreate) {
      base = new Uint8Array(poolSize);
      shadow = spareCopy(base);
      tracer = new CrashTracer({
        live: () => (probe = mapFile(path)).view(),
        shadow,
        flushGranularity: model.flushGranularity,
        scan,
      });
      pool = createBlockPool(path, {
        blockSize: w.blockSize,
        poolSize,
        mover: vdm,
        tracer: faultyTracer(tracer, faults),
        lanes: w.lanes,
      });
      tracer.mark(CREATED);
    } else {
      pool = createBlockPool(path, {
        blockSize: w.blockSize,
        poolSize,
        lanes: w.lanes,
      });
      const d = new Driver(pool, direct, payloads, rand);
      w.prepare(d, rand);
      version = d.nextVersion;
      pool.close();
      ({ probe, base, tracer, shadow } = traceFile(path, model, scan));
      // the lanes hook holds for the opener that sets the file's shared
      // state up: this one
      pool = openPoolWith(path, { mover: vdm }, {
        tracer: faultyTracer(tracer, faults),
        lanes: w.lanes,
      });
    }
    const windowed = !hasWholeBuffer(blockPoolMapping(pool));
    const t = tracer;
    const marking: Recorder = {
      issue: (op) => {
        operations++;
        t.mark(opLabel("issue", op));
      },
      ack: (op) => t.mark(opLabel("ack", op)),
    };
    const d = new Driver(pool, marking, payloads, rand, version);
    for (let k = 1; k < (w.openers ?? 1); k++) {
      // another opener, traced by the same tracer (its mapping's stores
      // land in the same file)
      const other = openPoolWith(path, { mover: vdm }, {
        tracer: faultyTracer(tracer, faults),
      });
      others.push(other);
      d.addOpener(other);
    }
    if (w.warmup > 0) {
      tracer.scanning = false; // its crash points are not checked
      for (let i = 0; i < w.warmup; i++) d.write(w.lbas[i % w.lbas.length]);
      tracer.scanning = true;
      tracer.mark(WARMED);
    }
    w.run(d, rand, ops);
    for (const other of others) other.close();
    pool.close();
    const events = tracer.finish();
    recycle(shadow);
    return {
      workload: w,
      model,
      seed,
      base,
      events,
      ledger,
      ops,
      operations,
      mover,
      scan,
      windowed,
      strays: scan === undefined ? 0 : tracer.strays + tracer.unscanned(),
    };
  } finally {
    for (const other of others) other.close();
    pool?.close();
    vdm.close();
    probe?.close();
    rmSync(path, { force: true });
  }
}
