// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The pending map entries of an arena's lanes, in its region of the
 * shared state (see `arena_words.ts`): per lane, the block whose map entry
 * its last update stored without persisting it (`LANE_PENDING`,
 * `LANE_PENDING_PRE`), and a filter of those blocks, so that a commit of
 * a block can tell whether its previous map entry might still be pending
 * without reading every lane. Internal to `blk/`.
 *
 * The filter holds, per bucket of blocks, a bit per lane: the lane's
 * mark. Only the lane's holder writes its mark (a lane is held by one
 * thread at a time), and only in the bucket of the block its record
 * names: an update clears the mark of its lane's previous entry (no
 * longer pending then) and sets its own, before it names its entry in
 * the lane's word. Each step is idempotent, so a thread that ends
 * between two of them leaves at most a mark whose lane names no pending
 * entry, which the lane's next update clears, and which a look-up
 * passes over: a look-up reads the lanes that mark the bucket and asks
 * whether one names a pending entry of a block of it.
 *
 * Before, a count per bucket: a flusher took the count down as it
 * cleared a lane's word, and a thread that ended between an update's
 * count and its lane's word left a count that nothing took down until
 * every opener closed, each commit of a block of that bucket persisting
 * every pending entry first. (A count cannot be given back twice
 * safely, nor a bit be cleared by a flusher: the lane's holder may have
 * set it again for a newer entry of the same bucket.)
 *
 * @module
 */
import {
  LANE_BASE,
  LANE_PENDING,
  LANE_PENDING_GEN,
  LANE_PENDING_PRE,
  LANE_WORDS,
  PENDING_BASE,
  PENDING_BUCKETS,
  PENDING_PLANES,
} from "./arena_words.ts";

/** The word index of the first of the marks of pre-map block `pre`'s bucket. */
function marksOf(pre: number): number {
  return PENDING_BASE +
    (Math.imul(pre, 0x85ebca6b) >>> 22) * PENDING_PLANES;
}

// the bucket function's shift assumes this size
if (PENDING_BUCKETS !== 1024) {
  throw new Error(
    "blk/pending_filter.ts: bucket count changed without the hash",
  );
}

/** The sequence number of `lane`'s pending map entry, or 0 for none. */
export function pendingSeq(w: Int32Array, lane: number): number {
  return Atomics.load(w, LANE_BASE + lane * LANE_WORDS + LANE_PENDING);
}

/**
 * 1 + the block of `lane`'s pending map entry numbered `seq` (as
 * {@linkcode pendingSeq} read it), or 0 when that entry is no longer
 * pending. (An entry is stored block first, number last, and a lane
 * takes a new one only after its last was cleared: the number still
 * there after the block was read vouches for the block.)
 */
export function pendingBlock(w: Int32Array, lane: number, seq: number): number {
  const at = LANE_BASE + lane * LANE_WORDS;
  const pre = Atomics.load(w, at + LANE_PENDING_PRE);
  return Atomics.load(w, at + LANE_PENDING) === seq ? pre : 0;
}

/**
 * Whether a pending map entry of `pre` may exist: a lane that marks its
 * bucket names a pending entry of a block of the bucket.
 */
export function maybePending(w: Int32Array, pre: number): boolean {
  const marks = marksOf(pre);
  for (let plane = 0; plane < PENDING_PLANES; plane++) {
    let bits = Atomics.load(w, marks + plane);
    while (bits !== 0) {
      const bit = bits & -bits;
      bits ^= bit;
      const lane = plane * 32 + 31 - Math.clz32(bit);
      const seq = pendingSeq(w, lane);
      if (seq === 0) continue; // a mark left behind (see the module doc)
      const block = pendingBlock(w, lane, seq);
      if (block !== 0 && marksOf(block - 1) === marks) return true;
    }
  }
  return false;
}

/**
 * Record that `lane` stored `pre`'s map entry without persisting it (the
 * lane's holder, whose last entry is no longer pending): its mark moves
 * to `pre`'s bucket, then the lane's word names the entry.
 */
export function addPending(w: Int32Array, lane: number, pre: number): void {
  const at = LANE_BASE + lane * LANE_WORDS;
  const bit = 1 << (lane & 31);
  const plane = lane >>> 5;
  const last = w[at + LANE_PENDING_PRE];
  const marks = marksOf(pre);
  // the mark of the lane's last entry, persisted since (or left by a
  // thread that ended before it named that entry)
  if (last !== 0 && marksOf(last - 1) !== marks) {
    Atomics.and(w, marksOf(last - 1) + plane, ~bit);
  }
  Atomics.store(w, at + LANE_PENDING_PRE, pre + 1);
  Atomics.or(w, marks + plane, bit);
  const seq = ((w[at + LANE_PENDING_GEN] + 1) & 0x7fffffff) || 1;
  w[at + LANE_PENDING_GEN] = seq;
  Atomics.store(w, at + LANE_PENDING, seq);
}

/**
 * `lane`'s pending entry numbered `seq` was persisted: clear it unless
 * another thread did. (The lane's mark stays: see the module doc.)
 */
export function clearPending(w: Int32Array, lane: number, seq: number): void {
  Atomics.compareExchange(
    w,
    LANE_BASE + lane * LANE_WORDS + LANE_PENDING,
    seq,
    0,
  );
}
