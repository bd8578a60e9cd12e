// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Recording the object store's crash workload (`obj_workload.ts`) on a
 * pool past the size Bun views whole (`VIEW_WINDOWS.whole`, 64 MiB), so
 * on Bun the store reaches it through even windows of 4 MiB. The pool is
 * laid out so that its work crosses window ends:
 *
 * - the redo log's ring ends 248 KiB past the first window's end (4
 *   MiB), and an untraced preparation moves the log's head to a random
 *   few KiB short of it, so the traced transactions' records are stored
 *   across it in pieces, CRC'd in pieces, and replayed from both sides;
 * - the heap starts right after the log, so its 16th chunk starts 4 KiB
 *   short of the second window's end (8 MiB), and the heap's next-fit
 *   hint is aimed at it: the first new run or huge object goes there,
 *   and an object of it past its first 4 KiB crosses that end (applied
 *   in pieces by the store's thread, not the mover). Runs fill from
 *   their start, so in a short trace that happens only now and then:
 *   the report counts the objects left across an end
 *   ({@linkcode ObjWindowTrace.across}); the log's crossing is the
 *   one every trace has.
 *
 * Only the pool's first 12 MiB are written while traced (the tracers
 * scan only them; the recording counts stores elsewhere as strays). On
 * Deno the same pool is seen whole, so the same trace runs without
 * windows there.
 *
 * @module
 */
import { rmSync } from "node:fs";
import { type ObjectHandle, ObjectPool } from "../../obj/mod.ts";
import { openPoolWith, poolEngine } from "../../obj/pool_access.ts";
import { CHUNK_SIZE, LOG_OFFSET, OBJECT_HEADER } from "../../obj/layout.ts";
import type { Mapping } from "../../pmem2/mod.ts";
import type { PersistTracer } from "../../pmem2/tracer.ts";
import type { PersistenceModel } from "./model.ts";
import { crashMover, parseCrashMover } from "./movers.ts";
import { pick, xorshift } from "./random.ts";
import { recycle } from "./spare_buffers.ts";
import { traceFile } from "./tracer.ts";
import { crossesEnd, EVEN_END } from "./window_ends.ts";
import { OBJ_OPTIONS, ObjDriver, setup, SLOTS } from "./obj_workload.ts";
import { CREATED, type ObjTrace } from "./obj_sweep.ts";

const MiB = 1 << 20;
/**
 * The windowed pool: the log's ring is [8 KiB, 4 MiB + 248 KiB), the
 * chunk table one page after it, the heap from 4 MiB + 252 KiB.
 */
export const WINDOW_POOL = {
  size: 66 * MiB,
  layout: OBJ_OPTIONS.layout,
  logSize: EVEN_END + 240 * 1024,
} as const;
/** What the traced transactions store to: the pool's first 12 MiB. */
const SCAN = [{ offset: 0, length: 3 * EVEN_END }];

/** A recording on the windowed pool. */
export interface ObjWindowTrace extends ObjTrace {
  /** Whether the store saw the pool through view windows. */
  windowed: boolean;
  /** Words stored outside the scanned 12 MiB while traced. */
  strays: number;
  /** Objects in the root's slots at the end that cross a window's end. */
  across: number;
}

/** The objects in the root's slots that cross an even window's end. */
function objectsAcross(pool: ObjectPool, root: ObjectHandle): number {
  let n = 0;
  for (let i = 0; i < SLOTS; i++) {
    const off = pool.getU64(root, 8 * i);
    if (off !== 0 && crossesEnd(off, pool.object(off).size)) n++;
  }
  return n;
}

/**
 * Transactions that change nothing the model sees (an object allocated,
 * written and freed in one), each staging its bytes in the log, until the
 * log's head is a random 256 bytes to 8 KiB short of the first window's
 * end.
 */
function moveLogHead(pool: ObjectPool, rand: () => number): void {
  const log = poolEngine(pool).log;
  const target = EVEN_END - 256 - pick(rand, 8192);
  for (;;) {
    const left = target - (LOG_OFFSET + log.head % log.size);
    if (left < 0) throw new Error(`the log's head passed ${target}`);
    // a record's header and bookkeeping entries take < 1 KiB
    if (left < 2048) return;
    const n = Math.min(MiB, left - 1024);
    pool.tx((tx) => {
      const o = tx.alloc(n);
      // zeros: the chunks it used are still zero when the traced
      // workload takes them (else a new object's zeroing is millions of
      // stores to trace)
      tx.write(o, 0, new Uint8Array(n));
      tx.free(o);
    });
  }
}

/** The chunk that starts 4 KiB short of the second window's end. */
const STRADDLING_CHUNK = 15;

/**
 * Aim the heap's next-fit hint (volatile: 0 after an open) at the chunk
 * across the second window's end, so the next new run or huge object
 * goes there: one transaction takes the free chunks before it as one
 * huge object and frees it again (nothing the model sees; traced),
 * then checkpoints.
 *
 * @throws {Error} when a chunk past the used ones is taken already
 */
function aimHeap(pool: ObjectPool): void {
  const media = poolEngine(pool).media;
  const table = LOG_OFFSET + WINDOW_POOL.logSize;
  let first = 0;
  while (media.getU32(table + 8 * first) !== 0) first++;
  for (let k = first; k <= STRADDLING_CHUNK; k++) {
    if (media.getU32(table + 8 * k) !== 0) {
      throw new Error(`chunk ${k} is taken, past the free chunk ${first}`);
    }
  }
  const n = STRADDLING_CHUNK - first;
  if (n === 0) return;
  pool.tx((tx) => tx.free(tx.alloc(n * CHUNK_SIZE - OBJECT_HEADER)));
  // a checkpoint: else every image's recovery replays the record's
  // zeroing of those chunks (a few MiB: most of the sweep's time)
  pool.flush();
}

/**
 * Prepare the windowed pool at `path` untraced (create, the workload's
 * setup, the log's head moved), then run the workload on it traced from
 * its reopening (the file is removed afterwards).
 */
export function recordObjWindowTrace(
  model: PersistenceModel,
  seed: number,
  ops: number,
  path: string,
  mover: string,
): ObjWindowTrace {
  const rand = xorshift(seed);
  const vdm = crashMover(parseCrashMover(mover));
  let probe: Mapping | undefined;
  let pool: ObjectPool | undefined;
  try {
    pool = ObjectPool.create(path, { ...WINDOW_POOL, mover: vdm });
    const start = setup(pool);
    moveLogHead(pool, rand);
    pool.close();
    const traced = traceFile(path, model, SCAN);
    probe = traced.probe;
    const { base, tracer } = traced;
    pool = openPoolWith(path, { layout: WINDOW_POOL.layout, mover: vdm }, {
      tracer: tracer as PersistTracer,
    });
    const windowed = !poolEngine(pool).media.whole;
    // the creation was acknowledged before tracing began
    tracer.mark(CREATED);
    aimHeap(pool);
    const d = new ObjDriver(pool, (l) => tracer.mark(l), rand, start);
    d.run(ops);
    const across = objectsAcross(pool, d.root);
    pool.close();
    const events = tracer.finish();
    const strays = tracer.strays + tracer.unscanned();
    recycle(traced.shadow); // the tracer is finished with it
    return {
      model,
      seed,
      mover,
      events,
      states: d.states,
      operations: d.issued,
      base,
      scan: SCAN,
      windowed,
      strays,
      across,
    };
  } finally {
    pool?.close();
    probe?.close();
    vdm.close();
    rmSync(path, { force: true });
  }
}
