// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The Worker of `tests/blk_lost_lane_test.ts`: it opens a pool by path
 * with a testing tracer that, at the commit point of a write of blocks of
 * arena 0 (the first persist of a flog entry, with the blocks' stripes
 * held), spoils that commit's recovery and closes the pool, so the close
 * cannot recover the lane of that entry from its flog slot.
 * Its thread goes on living: its open counts as closed, not as ended.
 * How the recovery is spoilt (`spoil`):
 *
 * - `"lba"`: the entry being persisted names a block beyond the arena
 *   (the open would refuse the pool: code -22);
 * - `"seq"`: the entry's sequence number is invalid (the open would mark
 *   the arena: it refuses writes);
 * - `"persist"`: every persist from then on fails with a `PmemError`
 *   -5 (EIO), the close's recovery persists among them.
 *
 * It posts "ready", then takes one job and replies `{ ok }` with the
 * write's error as `"name op"` (or `"ok"`), whether the tracer came to
 * the step, and whether the pool is closed.
 *
 * @module
 */
import { closeSync, openSync, writeSync } from "node:fs";
import { arena0Regions } from "./arena0.ts";
import { FLOG_ENTRY_SIZE } from "../../blk/layout.ts";
import { PmemError } from "../../errors/mod.ts";
import { openBlockPool } from "../../testing/mod.ts";

/** How the Worker keeps its close from recovering the write's lane. */
export type LaneSpoil = "lba" | "seq" | "persist";

/** The one job of this Worker. */
export interface LostLaneJob {
  /** The pool (its first arena holds `lbas`). */
  path: string;
  /** The blocks written: one by `write`, more by `writeMany`. */
  lbas: number[];
  /** The byte it is filled with. */
  value: number;
  /** How the close's recovery of the lane is spoilt. */
  spoil: LaneSpoil;
}

/** What the Worker replies. */
export interface LostLaneResult {
  /** The write's outcome: "ok", or its error's name and op. */
  outcome: string;
  /** Whether the tracer came to the commit point (and closed there). */
  closedAtStep: boolean;
  /** The pool's `closed` after the write. */
  closed: boolean;
}

/** Store `value` as a u32 at file offset `at` (the mapping sees it). */
function patchU32(path: string, at: number, value: number): void {
  const fd = openSync(path, "r+");
  try {
    writeSync(fd, new Uint8Array(new Uint32Array([value]).buffer), 0, 4, at);
  } finally {
    closeSync(fd);
  }
}

// deno-lint-ignore no-explicit-any
const self_ = globalThis as any;

self_.onmessage = async (e: MessageEvent<LostLaneJob>) => {
  const job = e.data;
  const { flog } = arena0Regions(job.path);
  let armed = false;
  let failing = false;
  let closedAtStep = false;
  let close = () => {};
  const tracer = {
    flush(offset: number, length: number): void {
      if (failing) {
        throw new PmemError("persist", -5, "injected media error", {
          errno: 5,
        });
      }
      if (!armed || length === 0 || offset < flog[0] || offset >= flog[1]) {
        return;
      }
      armed = false;
      closedAtStep = true;
      // the flog entry being made durable: {lba, old_map, new_map, seq}
      const entry = flog[0] +
        Math.floor((offset - flog[0]) / FLOG_ENTRY_SIZE) * FLOG_ENTRY_SIZE;
      if (job.spoil === "lba") patchU32(job.path, entry, 0x7fffffff);
      else if (job.spoil === "seq") patchU32(job.path, entry + 12, 7);
      else failing = true;
      close();
    },
    drain(): void {},
  };
  const pool = openBlockPool(job.path, { tracer });
  close = () => pool.close();
  const data = new Uint8Array(pool.blockSize).fill(job.value);
  let outcome = "ok";
  armed = true;
  try {
    if (job.lbas.length === 1) pool.write(job.lbas[0], data);
    else await pool.writeMany(job.lbas.map((lba) => ({ lba, data })));
  } catch (err) {
    const { name, op } = err as { name: string; op?: string };
    outcome = `${name} ${op}`;
  }
  failing = false;
  const ok: LostLaneResult = { outcome, closedAtStep, closed: pool.closed };
  self_.postMessage({ ok });
};
self_.postMessage("ready");
