// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The idle ring of an arena's lanes, in its shared words (`LaneTable`'s
 * region of `PoolShared`): the lanes nobody holds, oldest first, so a lane
 * is reused as late as possible and the map entry of its last update has
 * long been persisted with others. Every function here runs under the
 * ring lock (`RING_LOCK`). Internal to `blk/`.
 *
 * The ring lock holds its holder's token (see `lockWord` in `shared.ts`).
 * When a holder's thread ended before it closed the pool (a Worker
 * terminated), the ring lock is taken over ({@linkcode takeOverRing}) and
 * the ring change it left half done undone or finished (each is logged in
 * the arena's header before the ring changes), so the lanes go round
 * again.
 *
 * @module
 */
import type { ReadTracker } from "./read_tracking.ts";
import {
  LANE_BASE,
  LANE_FREE,
  LANE_OWNER,
  LANE_WORDS,
  LANES,
  RING_BASE,
  RING_HEAD,
  RING_IDLE,
  RING_LOCK,
  RING_OP,
  RING_OP_HEAD,
  RING_OP_IDLE,
  RING_OP_LANE,
  RING_OP_SLOT,
  RING_POP,
  RING_PUSH,
} from "./arena_words.ts";

/**
 * Take the ring lock of `w` over from `holder`, whose thread ended, for
 * the opener of lock token `token`, and repair the ring change the holder
 * left half done; returns false when another waiter took it over first.
 */
export function takeOverRing(
  w: Int32Array,
  holder: number,
  token: number,
): boolean {
  if (Atomics.compareExchange(w, RING_LOCK, holder, token) !== holder) {
    return false; // another waiter took it over
  }
  repairRing(w);
  return true;
}

/**
 * Holding the ring lock taken over from a holder that ended: undo the
 * lane take, or finish the lane return, it logged and left unfinished.
 */
function repairRing(w: Int32Array): void {
  const op = Atomics.load(w, RING_OP);
  if (op === RING_POP) {
    w[LANE_BASE + w[RING_OP_LANE] * LANE_WORDS + LANE_OWNER] = 0;
    w[RING_BASE + w[RING_OP_SLOT]] = w[RING_OP_LANE];
    w[RING_HEAD] = w[RING_OP_HEAD];
    w[RING_IDLE] = w[RING_OP_IDLE];
  } else if (op === RING_PUSH) {
    const head = w[RING_OP_HEAD];
    const idle = w[RING_OP_IDLE];
    w[LANE_BASE + w[RING_OP_LANE] * LANE_WORDS + LANE_OWNER] = 0;
    w[RING_BASE + (head + idle) % w[LANES]] = w[RING_OP_LANE];
    w[RING_HEAD] = head;
    w[RING_IDLE] = idle + 1;
  }
  Atomics.store(w, RING_OP, 0);
}

/**
 * Under the ring lock: pop the oldest idle lane whose free block no
 * reader copies (`reads`), for the opener of lock token `token`, or -1.
 */
export function popLane(
  w: Int32Array,
  token: number,
  reads: ReadTracker,
): number {
  const size = w[LANES];
  const head = w[RING_HEAD];
  const idle = w[RING_IDLE];
  for (let i = 0; i < idle; i++) {
    const slot = RING_BASE + (head + i) % size;
    const lane = w[slot];
    if (reads.tracked(w[LANE_BASE + lane * LANE_WORDS + LANE_FREE])) {
      continue;
    }
    // swap the oldest idle lane into the taken one's place, pop the
    // head (logged first: see repairRing); the taker named before
    w[LANE_BASE + lane * LANE_WORDS + LANE_OWNER] = token;
    w[RING_OP_LANE] = lane;
    w[RING_OP_SLOT] = slot - RING_BASE;
    w[RING_OP_HEAD] = head;
    w[RING_OP_IDLE] = idle;
    Atomics.store(w, RING_OP, RING_POP);
    w[slot] = w[RING_BASE + head];
    w[RING_HEAD] = (head + 1) % size;
    w[RING_IDLE] = idle - 1;
    Atomics.store(w, RING_OP, 0);
    return lane;
  }
  return -1;
}

/** Under the ring lock: push a lane (newest). */
export function pushLane(w: Int32Array, lane: number): void {
  const head = w[RING_HEAD];
  const idle = w[RING_IDLE];
  w[RING_OP_LANE] = lane;
  w[RING_OP_HEAD] = head;
  w[RING_OP_IDLE] = idle;
  Atomics.store(w, RING_OP, RING_PUSH);
  w[LANE_BASE + lane * LANE_WORDS + LANE_OWNER] = 0;
  w[RING_BASE + (head + idle) % w[LANES]] = lane;
  w[RING_IDLE] = idle + 1;
  Atomics.store(w, RING_OP, 0);
}

/** Under the ring lock: whether `lane` is idle on the ring. */
export function onRing(w: Int32Array, lane: number): boolean {
  const size = w[LANES];
  const head = w[RING_HEAD];
  const idle = w[RING_IDLE];
  for (let i = 0; i < idle; i++) {
    if (w[RING_BASE + (head + i) % size] === lane) return true;
  }
  return false;
}
