// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The Worker of `tests/blk_close_commit_test.ts`: it opens a pool by path
 * with a testing tracer that closes the pool at one step of a write of
 * arena 0's blocks, then goes on living (its thread does not end, so its
 * open counts as closed, not as ended). The steps are persists seen
 * through the tracer (it runs before the range is made durable, so what
 * the step stored is in memory):
 *
 * - `"data"`: the data of the write, into its lane's free block (the
 *   lane taken, no stripe held, the flog untouched);
 * - `"flogTail"`: the flog entry's `{new_map, seq}` (the commit point;
 *   the whole entry on page granularity), with the block's stripe held;
 * - `"map"`: a map entry (of a `setError`, which holds the block's
 *   stripe and no lane).
 *
 * It posts "ready", then takes one job: the update (`write` or
 * `writeAsync` of one block, `writeMany` of more, `setError`) closed at
 * the step,
 * replying `{ ok }` with the write's error as `"name op"` (or `"ok"`),
 * whether the tracer ran the close, and whether the pool is closed.
 *
 * @module
 */
import { arena0Regions } from "./arena0.ts";
import { openBlockPool } from "../../testing/mod.ts";

/** A step of a write the Worker closes its pool at. */
export type CloseStep = "data" | "flogTail" | "map";

/** The one job of this Worker. */
export interface CloseInCommitJob {
  /** The pool (its first arena holds `lbas`). */
  path: string;
  /** How the Worker writes. */
  op: "write" | "writeAsync" | "writeMany" | "setError";
  /** Blocks to update (one for all but `writeMany`). */
  lbas: number[];
  /** The byte every written block is filled with. */
  value: number;
  /** Where to close. */
  step: CloseStep;
}

/** What the Worker replies. */
export interface CloseInCommitResult {
  /** The write's outcome: "ok", or its error's name and op. */
  outcome: string;
  /** Whether the tracer came to the step (and closed the pool there). */
  closedAtStep: boolean;
  /** The pool's `closed` after the write. */
  closed: boolean;
}

// deno-lint-ignore no-explicit-any
const self_ = globalThis as any;

self_.onmessage = async (e: MessageEvent<CloseInCommitJob>) => {
  const job = e.data;
  const { map, flog } = arena0Regions(job.path);
  let armed = false;
  let closedAtStep = false;
  let close = () => {};
  const tracer = {
    flush(offset: number, length: number): void {
      if (!armed || length === 0) return;
      const inFlog = offset >= flog[0] && offset < flog[1];
      const inMap = offset >= map[0] && offset < map[1];
      const here = job.step === "flogTail"
        ? inFlog
        : job.step === "map"
        ? inMap
        : !inFlog && !inMap;
      if (here) {
        armed = false;
        closedAtStep = true;
        close();
      }
    },
    drain(): void {},
  };
  const pool = openBlockPool(job.path, { tracer });
  close = () => pool.close();
  const data = new Uint8Array(pool.blockSize).fill(job.value);
  let outcome = "ok";
  armed = true;
  try {
    if (job.op === "write") pool.write(job.lbas[0], data);
    else if (job.op === "writeAsync") await pool.writeAsync(job.lbas[0], data);
    else if (job.op === "setError") pool.setError(job.lbas[0]);
    else await pool.writeMany(job.lbas.map((lba) => ({ lba, data })));
  } catch (err) {
    const { name, op } = err as { name: string; op?: string };
    outcome = `${name} ${op}`;
  }
  const ok: CloseInCommitResult = {
    outcome,
    closedAtStep,
    closed: pool.closed,
  };
  self_.postMessage({ ok });
};
self_.postMessage("ready");
