// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The Worker of `tests/blk_dead_commit_test.ts`: it opens a pool by path
 * and writes blocks of arena 0, ending its thread at one step of their
 * commit, as a Worker terminated there would: holding the blocks'
 * stripes and lanes with the commit half done. The steps are the
 * persists of the commit, seen through a tracer on the pool's mapping
 * (the tracer runs before the range is made durable, so what the step
 * stored is in memory and may not be durable):
 *
 * - `"map"`: the pending map entries a commit persists before it reuses
 *   a lane whose last map entry is pending (the flog untouched);
 * - `"flogHead"`: the first half `{lba, old_map}` of each flog entry
 *   (granularity below page only, where the halves persist apart);
 * - `"flogTail"`: the second half `{new_map, seq}` (the commit point),
 *   or the whole entry on page granularity.
 *
 * Two more steps come after the last persist of a commit, where no
 * tracer sees them: for those the Worker runs the steps of one write
 * itself, through arena 0's calls in the order `commitUpdates` runs them
 * (`commitByHand`), and ends
 *
 * - `"committed"`: with the flog entry durable, before the map entry is
 *   stored;
 * - `"published"`: with the map entry stored (not persisted, recorded as
 *   pending) and the lane's free block moved on, before the stripe goes.
 *
 * It posts "ready" first (see docs/architecture.md on Bun), then takes
 * one job, sets `words[0]` to 1 when it comes to the step and ends its
 * thread there, and never replies.
 *
 * @module
 */
import { statSync } from "node:fs";
import process from "node:process";
import { Arena } from "../../blk/arena.ts";
import { commitFlog } from "../../blk/commit.ts";
import { BTT_OFFSET, decodeBttInfo, INFO_SIZE } from "../../blk/layout.ts";
import { Media } from "../../blk/media.ts";
import { maxArenas, PoolShared } from "../../blk/shared.ts";
import { FileShare } from "../../pmem2/file_share.ts";
import { mapFile } from "../../pmem2/map_file.ts";
import { openBlockPool } from "../../testing/mod.ts";
import { arena0Regions } from "./arena0.ts";

/** A step of a commit the Worker ends at (see the module doc). */
export type CommitStep =
  | "map"
  | "flogHead"
  | "flogTail"
  | "committed"
  | "published";

/** The one job of this Worker. */
export interface StopInCommitJob {
  /** The pool (its first arena holds `lbas`). */
  path: string;
  /** Blocks to write with `value`: a write for one, a writeMany for more. */
  lbas: number[];
  /** The byte every written block is filled with. */
  value: number;
  /** Where to stop. */
  step: CommitStep;
  /** Whether a flog entry persists in two halves (granularity below page). */
  halves: boolean;
  /** `[0]` is set to 1 (and notified) as the Worker ends at its step. */
  words: SharedArrayBuffer;
  /**
   * The update: a write (a writeMany for more blocks), or a `setZero` of
   * `lbas[0]`, whose one persist is of its map entry (step `"map"`).
   * @default "write"
   */
  op?: "write" | "setZero";
}

// deno-lint-ignore no-explicit-any
const self_ = globalThis as any;

/**
 * The tracer that ends this thread at `job.step` of the armed write: a
 * flush of the map, or of the flog in the first (head) or last (tail)
 * persist of the flog (a persist: flushes, then a drain).
 */
function stopAt(job: StopInCommitJob, words: Int32Array) {
  const { map, flog } = arena0Regions(job.path);
  const inMap = (at: number) => at >= map[0] && at < map[1];
  const inFlog = (at: number) => at >= flog[0] && at < flog[1];
  // the flog persist to stop in: the head's comes first, apart from the
  // tail's only below page granularity
  const target = job.step === "flogTail" && job.halves ? 2 : 1;
  let flogPersists = 0;
  let flogNow = false;
  return {
    armed: false,
    flush(offset: number, length: number): void {
      if (!this.armed || length === 0) return;
      if (job.step === "map" ? inMap(offset) : inFlog(offset)) {
        if (job.step === "map" || flogPersists + 1 === target) {
          endHere(words);
        }
      }
      flogNow ||= inFlog(offset);
    },
    drain(): void {
      if (flogNow) flogPersists++;
      flogNow = false;
    },
  };
}

/**
 * End this thread now, as a Worker terminated or crashed there: no
 * `finally` of the commit runs (Deno ends a Worker blocked in code only
 * through its own exit; Bun's exit in a Worker ends that Worker too).
 */
function endHere(words: Int32Array): never {
  Atomics.store(words, 0, 1);
  Atomics.notify(words, 0);
  const deno = (globalThis as { Deno?: { exit(code: number): never } }).Deno;
  if (deno !== undefined) deno.exit(0);
  process.exit(0);
}

/**
 * Steps 1 to 3, and 4 for `"published"`, of a write of `job.lbas[0]`,
 * through arena 0's own calls as `commitUpdates` runs them, as an opener
 * of the pool's share of its own; then end this thread there.
 */
function commitByHand(job: StopInCommitJob, words: Int32Array): never {
  const size = statSync(job.path).size;
  const share = FileShare.open(job.path, PoolShared.bytes(size));
  const shared = new PoolShared(share.memory, maxArenas(size));
  const media = new Media(mapFile(job.path));
  const info = decodeBttInfo(media.bytes(BTT_OFFSET, INFO_SIZE));
  const arena = Arena.attach(
    media,
    { index: 0, base: BTT_OFFSET, firstLba: 0, info },
    shared.arena(0),
    0x7777,
  );
  const pre = job.lbas[0];
  const lane = arena.takeLane();
  const data = new Uint8Array(arena.blockSize).fill(job.value);
  media.memcpy(arena.blockOffset(arena.freeBlock(lane)), data);
  arena.table.lockStripe(pre);
  const update = { arena, lane, pre, old: 0 };
  commitFlog(media, [update]);
  if (job.step === "published") arena.publishOnly(lane, pre, update.old);
  endHere(words);
}

self_.onmessage = async (e: MessageEvent<StopInCommitJob>) => {
  const job = e.data;
  const words = new Int32Array(job.words);
  if (job.step === "committed" || job.step === "published") {
    commitByHand(job, words);
  }
  const tracer = stopAt(job, words);
  const pool = openBlockPool(job.path, { tracer });
  const data = new Uint8Array(pool.blockSize).fill(job.value);
  tracer.armed = true;
  if (job.op === "setZero") pool.setZero(job.lbas[0]);
  else if (job.lbas.length === 1) pool.write(job.lbas[0], data);
  else await pool.writeMany(job.lbas.map((lba) => ({ lba, data })));
  // not stopped: the step never came (the test fails on words[0] === 2)
  Atomics.store(words, 0, 2);
  Atomics.notify(words, 0);
};
self_.postMessage("ready");
