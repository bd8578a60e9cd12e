// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The BTT commit: steps 3 and 4 of a block write, for one update (a
 * synchronous write) or many (the writes an executor sweep started
 * together), through the same code. Internal to `blk/`.
 *
 * Each update's data is durable in its lane's free block when this runs.
 * The lane's next flog entry is written in two halves: `{lba, old_map}`,
 * persisted, then `{new_map, seq}`, persisted — the commit point. On page
 * granularity a 16-byte entry lies in one 512-byte sector and reaches the
 * media whole, so it is persisted once. Every update's halves share one
 * fence per phase. Then each map entry is stored (persisted later, with
 * others: recovery redoes it from the flog) and the old block becomes the
 * lane's free block.
 *
 * Other `BlockPool`s of the pool (Workers) commit concurrently: each
 * update holds its block's stripe lock from reading the old map entry to
 * storing the new one. A commit takes its stripes without waiting while
 * holding any (so two commits never wait on each other); when one is
 * taken, it lets go of all and waits for them in stripe order.
 *
 * @module
 */
import { PmemError } from "../errors/mod.ts";
import type { Arena } from "./arena.ts";
import { FLOG_ENTRY_SIZE } from "./layout.ts";
import { FLOG_HALF_SIZE } from "./flog.ts";
import { ARENA_FLOG_PERSIST } from "./arena_errors.ts";
import { stripeOf } from "./lanes.ts";
import type { Media } from "./media.ts";
import { EIO } from "../errors/errno.ts";

/** One block update whose data is durable in its lane's free block. */
export interface LaneUpdate {
  /** The block's arena. */
  readonly arena: Arena;
  /** The lane (flog slot) holding the update's free block. */
  lane: number;
  /** The pre-map block. */
  readonly pre: number;
  /** Set by {@linkcode commitUpdates}: the map entry the update replaced. */
  old: number;
}

/** Ranges of one persist, reused between commits of one size. */
type Ranges = { offset: number; length: number }[];

/**
 * The range of a commit of one update (a synchronous write), reused: its
 * fields are read into the persist's arguments before anything else runs
 * (a testing tracer's callback, which may commit in another pool).
 */
const ONE_RANGE: Ranges = [{ offset: 0, length: 0 }];

/** Set `ranges[i]`, reusing the object where there is one. */
function setRange(ranges: Ranges, i: number, offset: number, length: number) {
  const r = ranges[i];
  if (r === undefined) ranges[i] = { offset, length };
  else {
    r.offset = offset;
    r.length = length;
  }
}

/** Persist one range, or several with one fence. */
function persistAll(media: Media, ranges: Ranges): void {
  if (ranges.length === 1) media.persist(ranges[0].offset, ranges[0].length);
  else media.persistRanges(ranges);
}

/**
 * Commit and publish `updates` (each heading its block's write queue,
 * each block at most once). On return every update is durable, its map
 * entry stored and its lane back in its arena; on a throw none is
 * published and the caller still holds every lane.
 *
 * @param op the operation named in errors @default "write"
 * @throws {ClosedError} when code the commit ran (a testing tracer's
 *   callback) closed the pool: the close settled the lanes and stripes
 *   (see `LaneTable.leave`), and the arenas do not count it a failure
 * @throws {PmemError} code -5 (EIO) when a persist fails; the arenas
 *   involved refuse writes from then on; -130 (EOWNERDEAD) when a block's
 *   stripe lock is held by an opener whose thread ended and the commits it
 *   left cannot be recovered online (see `LaneTable`)
 */
export function commitUpdates(
  media: Media,
  updates: readonly LaneUpdate[],
  op = "write",
): void {
  const held = lockStripes(updates, op);
  try {
    commitFlog(media, updates);
    for (let i = 0; i < updates.length; i++) {
      const u = updates[i];
      u.arena.publishOnly(u.lane, u.pre, u.old);
    }
  } finally {
    for (let i = 0; i < held.length; i++) {
      held[i].arena.table.unlockStripe(held[i].pre);
    }
  }
  giveLanes(updates);
}

/** Give the updates' lanes back to their arenas (one lock per arena run). */
function giveLanes(updates: readonly LaneUpdate[]): void {
  const n = updates.length;
  if (n === 1) {
    updates[0].arena.table.giveOne(updates[0].lane);
    return;
  }
  const lanes = new Array<number>(n);
  let from = 0;
  for (let i = 0; i < n; i++) {
    lanes[i] = updates[i].lane;
    if (i + 1 === n || updates[i + 1].arena !== updates[from].arena) {
      updates[from].arena.table.give(lanes, from, i + 1);
      from = i + 1;
    }
  }
}

/**
 * Take the stripe lock of every update's block; returns one update per
 * stripe taken (to release). Each is tried without waiting (a stripe
 * already held by this commit, for another block, counts as taken); if
 * one is held elsewhere, every stripe taken is let go and all are taken
 * again in (arena, stripe) order, waiting: commits then never wait on
 * each other in a cycle. `op` is named in errors.
 */
function lockStripes(
  updates: readonly LaneUpdate[],
  op: string,
): readonly LaneUpdate[] {
  const n = updates.length;
  // one update (a synchronous write) whose stripe is free: nothing to make
  if (n === 1 && updates[0].arena.table.tryLockStripe(updates[0].pre)) {
    return updates;
  }
  const held: LaneUpdate[] = [];
  let i = 0;
  for (; i < n; i++) {
    const u = updates[i];
    const t = u.arena.table;
    if (t.tryLockStripe(u.pre)) held.push(u);
    else if (!t.holdsStripe(u.pre)) break;
  }
  if (i === n) return held;
  for (const u of held) u.arena.table.unlockStripe(u.pre);
  held.length = 0;
  const order = [...updates].sort((a, b) =>
    a.arena.index - b.arena.index || stripeOf(a.pre) - stripeOf(b.pre)
  );
  for (let k = 0; k < n; k++) {
    const u = order[k];
    const prev = order[k - 1];
    if (
      k > 0 && prev.arena === u.arena && stripeOf(prev.pre) === stripeOf(u.pre)
    ) continue; // blocks of one stripe take it once
    u.arena.table.lockStripe(u.pre, op);
    held.push(u);
  }
  return held;
}

/**
 * Step 3 alone: commit `updates` through their lanes' flog entries (each
 * `old` is set); {@linkcode commitUpdates} then publishes them. Apart for
 * tests that publish in an order of their own.
 *
 * @throws {PmemError} code -5 (EIO) when a persist fails
 */
export function commitFlog(
  media: Media,
  updates: readonly LaneUpdate[],
): void {
  const n = updates.length;
  if (n === 0) return;
  const whole = media.granularity === "page";
  // a lane's or a block's previous map entry must be durable before its
  // flog slot or its block is committed again (see Arena.settleMapsFor)
  for (let i = 0; i < n; i++) {
    const u = updates[i];
    u.arena.settleMapsFor(u.lane, u.pre);
  }
  for (let i = 0; i < n; i++) {
    const u = updates[i];
    u.old = u.arena.stageFlogHead(u.lane, u.pre);
  }
  const ranges: Ranges = n === 1 ? ONE_RANGE : new Array(n);
  try {
    if (!whole) {
      for (let i = 0; i < n; i++) {
        const u = updates[i];
        setRange(ranges, i, u.arena.flogEntryOffset(u.lane), FLOG_HALF_SIZE);
      }
      persistAll(media, ranges);
    }
    for (let i = 0; i < n; i++) {
      const u = updates[i];
      u.arena.stageFlogTail(u.lane);
      const at = u.arena.flogEntryOffset(u.lane);
      if (whole) setRange(ranges, i, at, FLOG_ENTRY_SIZE);
      else setRange(ranges, i, at + FLOG_HALF_SIZE, FLOG_HALF_SIZE);
    }
    persistAll(media, ranges);
  } catch (cause) {
    // the pool was closed from inside this commit (a testing tracer's
    // callback): no media failure, and the close settled the lanes
    if (media.closed) throw cause;
    // the flog on the media may now differ from the arenas' lane state
    for (let i = 0; i < n; i++) {
      updates[i].arena.fail(ARENA_FLOG_PERSIST);
    }
    throw new PmemError("write", -EIO, "cannot persist the flog entries", {
      errno: EIO,
      cause,
    });
  }
  for (let i = 0; i < n; i++) updates[i].arena.committed(updates[i].lane);
}
