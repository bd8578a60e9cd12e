// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The synchronous updates of a block (`BlockPool.write`, `setZero`,
 * `setError`): ordered after the asynchronous updates of the same block
 * that this opener queued, then run to the end on the calling thread.
 * Internal to `blk/`.
 *
 * @module
 */
import { PmemError } from "../errors/mod.ts";
import { wait } from "../future/blocking.ts";
import type { Future } from "../future/future.ts";
import type { FutureRegistry } from "../future/registry.ts";
import type { Arena } from "./arena.ts";
import { commitUpdates, type LaneUpdate } from "./commit.ts";
import type { Media } from "./media.ts";
import { alone } from "./reads.ts";
import { sleepMs } from "./shared.ts";
import { EBUSY } from "../errors/errno.ts";

/** How long a synchronous write waits for a lane held by other openers. */
const LANE_WAIT_MS = 30_000;

/**
 * The operations in flight of every open `BlockPool` of this isolate: a
 * synchronous write short of lanes drives them too, as only this thread
 * can finish them (another open of the pool here may hold the lanes).
 */
const isolatePools = new Set<FutureRegistry>();

/** Count a pool's operations among this isolate's (at its open). */
export function addIsolatePool(inflight: FutureRegistry): void {
  isolatePools.add(inflight);
}

/** Stop counting them (at its close). */
export function removeIsolatePool(inflight: FutureRegistry): void {
  isolatePools.delete(inflight);
}

/** What a synchronous update needs of its pool. */
export interface SyncUpdateContext {
  media: Media;
  /** The pool's shared control words (who else has it open). */
  control: Int32Array;
  /** This opener's asynchronous operations in flight. */
  inflight: FutureRegistry;
}

/**
 * Write block `pre` of `arena` now: after this opener's queued updates
 * of the block, the BTT's four steps.
 */
export function writeNow(
  ctx: SyncUpdateContext,
  arena: Arena,
  pre: number,
  data: Uint8Array,
): void {
  if (!arena.hasQueuedUpdates) {
    // nothing asynchronous in flight: this update cannot be overtaken
    writeSteps(ctx, arena, pre, data);
    return;
  }
  settleBlock(arena, pre);
  const ticket = arena.enterNow(pre, "write");
  try {
    writeSteps(ctx, arena, pre, data);
  } finally {
    arena.leave(ticket);
  }
}

/**
 * Set a map flag (zero or error) of block `pre` now, after this opener's
 * queued updates of the block.
 */
export function setFlagNow(
  arena: Arena,
  pre: number,
  flag: number,
  op: string,
): void {
  settleBlock(arena, pre);
  const ticket = arena.enterNow(pre, op);
  try {
    // the stripe orders it with commits of the block by other openers; a
    // stripe whose holder ended throws, and the ticket must still go
    arena.table.lockStripe(pre, op);
    try {
      arena.setFlag(pre, flag, op);
    } finally {
      arena.table.unlockStripe(pre);
    }
  } finally {
    arena.leave(ticket);
  }
}

/** The four steps of a synchronous write (the caller orders it). */
function writeSteps(
  ctx: SyncUpdateContext,
  arena: Arena,
  pre: number,
  data: Uint8Array,
): void {
  // step 1: a lane whose free block no read in flight is copying
  const lane = takeFreeBlock(ctx, arena);
  // a write that code run by this one starts (a testing tracer's) makes
  // its own
  const one = spare ?? [new SoleUpdate()];
  spare = undefined;
  try {
    // step 2: the data, durably, into the lane's free block
    ctx.media.memcpy(arena.blockOffset(arena.freeBlock(lane)), data);
    // steps 3 and 4: the commit every write goes through
    const u = one[0];
    u.arena = arena;
    u.lane = lane;
    u.pre = pre;
    u.old = 0;
    commitUpdates(ctx.media, one);
  } catch (e) {
    arena.releaseLane(lane);
    throw e;
  } finally {
    one[0].arena = NO_ARENA; // a closed pool's arena is not kept alive
    spare = one;
  }
}

/** What a spare update holds between writes. */
const NO_ARENA = undefined as unknown as Arena;

/**
 * The update of a synchronous write, made once and reused: an update
 * made per write (with its array and the commit's ranges) was most of
 * the ~460 bytes a 4 KiB write allocated on Deno, and the collections
 * they cost ran on the CPU a second Worker writes on.
 */
class SoleUpdate implements LaneUpdate {
  arena: Arena = NO_ARENA;
  lane = 0;
  pre = 0;
  old = 0;
}

/** The update the next synchronous write of this isolate uses. */
let spare: [SoleUpdate] | undefined = [new SoleUpdate()];

/**
 * Take an idle lane whose free block no read in flight is copying,
 * waiting for this opener's asynchronous operations while none is, then
 * for those of the other openers in this isolate (another open of the
 * pool here may hold the lanes, and only this thread can finish its
 * writes), and then, while other openers of the pool hold the lanes, for
 * them.
 */
function takeFreeBlock(ctx: SyncUpdateContext, arena: Arena): number {
  let lane = arena.takeLane();
  while (
    lane < 0 && (waitForOne(ctx.inflight) || waitForOther(ctx.inflight))
  ) {
    lane = arena.takeLane();
  }
  // lanes an ended opener kept mid-commit that cannot be recovered online
  // stay out until the pool is opened again (lanesLeft recovers the
  // others): with none left, none comes
  if (lane < 0 && arena.table.lanesLeft() === 0) {
    throw arena.table.noLanesLeft("write");
  }
  if (lane < 0 && !alone(ctx.control)) {
    const deadline = performance.now() + LANE_WAIT_MS;
    let ms = 0.005;
    while (lane < 0 && performance.now() < deadline) {
      if (arena.table.lanesLeft() === 0) {
        throw arena.table.noLanesLeft("write");
      }
      sleepMs(ms);
      ms = Math.min(ms * 2, 1);
      lane = arena.takeLane();
    }
  }
  if (lane < 0) {
    throw new PmemError(
      "write",
      -EBUSY,
      `arena ${arena.index} has no idle lane (${arena.lanes} updates in flight)`,
    );
  }
  return lane;
}

/** Wait for one operation in flight; false when there is none. */
function waitForOne(inflight: FutureRegistry): boolean {
  const f = inflight.firstRunning();
  if (f === undefined) return false;
  try {
    wait(f);
  } catch {
    // reported to whoever awaits it
  }
  return true;
}

/**
 * Wait for one operation in flight of another open pool of this isolate;
 * false when there is none.
 */
function waitForOther(mine: FutureRegistry): boolean {
  for (const inflight of isolatePools) {
    if (inflight !== mine && waitForOne(inflight)) return true;
  }
  return false;
}

/**
 * Block until asynchronous updates queued on `pre` have finished, so a
 * synchronous update can follow them in order.
 */
function settleBlock(arena: Arena, pre: number): void {
  for (
    let head = arena.head(pre);
    head !== undefined;
    head = arena.head(pre)
  ) {
    const owner = head.owner as Future<unknown> | undefined;
    if (owner === undefined) return;
    try {
      wait(owner);
    } catch {
      // its own awaiter sees the failure; the queue moved on regardless
    }
    if (arena.head(pre) === head) return;
  }
}
