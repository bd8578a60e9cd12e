// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The layout of an arena's region of a pool's shared state (see
 * `shared.ts`): int32 word indexes of its header (the idle-lane ring's
 * lock and its change in progress, the stripe wait marks, the error), of
 * each lane's record, of the idle-lane ring, the read-tracking counters,
 * the pending-map-entry filter, the stripe locks and the read ledgers.
 * Internal to `blk/`.
 *
 * @module
 */
/** Lanes an arena uses at most (libpmemblk's nfree; more go unused). */
export const MAX_LANES = 256;

/** int32 words of a lane's record (one cache line: lanes held by different
 * threads do not share a line). */
export const LANE_WORDS = 16;
/** Lane record word: the lane's free post-map block. */
export const LANE_FREE = 0;
/** Lane record word: index (0/1) of the flog entry its next update writes. */
export const LANE_NEXT = 1;
/** Lane record word: sequence number of its current flog entry. */
export const LANE_SEQ = 2;
/**
 * Lane record word: while the map entry the lane's last update stored is
 * not yet persisted, that update's sequence number (never 0; see
 * {@linkcode LANE_PENDING_GEN}), else 0. A flusher clears it only if it
 * still holds the number it read: a block committed again through the
 * lane meanwhile has a newer one, whose entry the flusher may not have
 * persisted (a word naming the block itself could not tell a newer
 * entry of the same block from the one the flusher persisted).
 */
export const LANE_PENDING = 3;
/**
 * Lane record word: the lock token of the opener that took the lane off
 * the idle ring, or 0 (set before the take is logged, cleared before a
 * return is): a lane whose taker's thread ended goes round again.
 */
export const LANE_OWNER = 4;
/**
 * {@linkcode LANE_OWNER} of a lost lane: one that an opener closing in
 * the middle of its own update (a testing tracer's callback) could not
 * recover from its flog slot. No open has this token, so the lane never
 * goes round again before the pool is opened anew (counted in
 * {@linkcode LANES_LOST}).
 */
export const LANE_LOST = -1;
/** Lane record word: 1 + the pre-map block of the pending map entry. */
export const LANE_PENDING_PRE = 5;
/** Lane record word: the last sequence number given a pending entry. */
export const LANE_PENDING_GEN = 6;

/** Buckets of the read-tracking counters (a power of two). */
export const READ_BUCKETS = 4096;
/** Buckets of the pending-map-entry filter (a power of two). */
export const PENDING_BUCKETS = 1024;
/**
 * int32 words of a bucket of the pending-map-entry filter: a bit per lane
 * (see `pending_filter.ts`), in one cache line.
 */
export const PENDING_PLANES = MAX_LANES / 32;
/** Stripe locks ordering commits of one block (a power of two). */
export const STRIPES = 1024;

// int32 indexes of an arena region's header: two cache lines. The first
// holds what the idle-lane ring's lock guards (written by every take and
// return of a lane); the second what every write reads outside that lock
// (the error code), written only when the arena fails. Apart, a write's
// read of the error code costs no transfer of the ring's line from the
// opener (Worker) that used the ring last.
/** The idle-lane ring's lock. */
export const RING_LOCK = 0;
/** Index of the oldest idle lane in the ring. */
export const RING_HEAD = 1;
/** Idle lanes in the ring. */
export const RING_IDLE = 2;
/** Lanes in use (`min(nfree, MAX_LANES)`; read under the ring lock). */
export const LANES = 5;
/**
 * Lanes lost ({@linkcode LANE_LOST}; changed under the ring lock, read by
 * `LaneTable.lanesLeft`, which a write asks only when no lane is idle).
 */
export const LANES_LOST = 6;
/**
 * The idle-lane ring's change in progress (`RING_POP`, `RING_PUSH`), or
 * 0: logged before the ring changes, so whoever takes the ring lock over
 * from a holder that ended can undo or finish it. The lane, slot, head
 * and idle count it started from follow.
 */
export const RING_OP = 8;
/** The lane of the ring's change in progress. */
export const RING_OP_LANE = 9;
/** The ring slot of the ring's change in progress. */
export const RING_OP_SLOT = 10;
/** The ring head before the change in progress. */
export const RING_OP_HEAD = 11;
/** The idle lanes before the change in progress. */
export const RING_OP_IDLE = 12;
/**
 * The lock token of a commit waiting for a block's stripe lock (asleep in
 * {@linkcode lockWord}), or 0: each such waiter stores its token before
 * each sleep and clears it (if still there) once it holds the stripe or
 * gave up. A check() about to take every stripe defers to it (see
 * `deferToCommits` in `check.ts`): after a check, the stripes are free only
 * until the next check takes them, a moment the waiters' sleeps mostly
 * miss. Written only by waiters, so the write path without a wait pays
 * nothing for it.
 */
export const STRIPE_WANT = 13;
/**
 * Waits for a stripe that ended (the stripe held, or the wait failed)
 * after storing {@linkcode STRIPE_WANT}: a deferring check waits for it to
 * change (wraps).
 */
export const STRIPE_SERVED = 14;
/** `RING_OP`: a lane is being taken off the ring. */
export const RING_POP = 1;
/** `RING_OP`: a lane is being put on the ring. */
export const RING_PUSH = 2;
/** Why the arena refuses writes (an `ARENA_*` code), or 0. */
export const ERROR = 16;
/** A count that goes with the error (flog slots found invalid). */
export const ERROR_COUNT = 17;

const HEADER_WORDS = 32;
/** int32 index of lane 0's record. */
export const LANE_BASE = HEADER_WORDS;
/** int32 index of the idle-lane ring. */
export const RING_BASE = LANE_BASE + MAX_LANES * LANE_WORDS;
/** int32 index of the read-tracking counters. */
export const READ_BASE = RING_BASE + MAX_LANES;
/** int32 index of the pending-map-entry filter. */
export const PENDING_BASE = READ_BASE + READ_BUCKETS;
/** int32 index of the stripe locks. */
export const STRIPE_BASE = PENDING_BASE + PENDING_BUCKETS * PENDING_PLANES;
/** Openers with a read ledger of their own (see `read_tracking.ts`). */
export const LEDGERS = 64;
/** int32 index of the ledgers' owners (lock tokens, 0 for none). */
export const LEDGER_OWNER_BASE = STRIPE_BASE + STRIPES;
/**
 * int32 index of the ledgers: per opener, a u32 count per read-tracking
 * bucket (a u16 wrapped: one opener may have more than 65 535 reads of a
 * bucket in flight, as a `readMany` of one block many times has).
 */
export const LEDGER_BASE = LEDGER_OWNER_BASE + LEDGERS;
/** int32 words of an arena's region. */
export const ARENA_WORDS = LEDGER_BASE + LEDGERS * READ_BUCKETS;
