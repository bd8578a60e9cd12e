// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * {@linkcode LaneRecovery}: what an arena's `LaneTable` does for
 * the lanes and stripes that openers of the pool left when their thread
 * ended before they closed it (a Worker terminated), and for this
 * opener's own when it closes in the middle of one of its updates.
 * Internal to `blk/`.
 *
 * - Lanes an ended opener held: each lane records who took it, and a take
 *   that finds too few idle lanes puts those of ended openers back on the
 *   ring. Between taking a lane and its commit the lane's record and flog
 *   are as before the take (its free block may hold some of the data);
 *   after the commit, as after one.
 * - A commit of an ended opener: it runs holding its blocks' stripes (a
 *   check's are marked read-only, and taken over: see `lanes.ts`), so
 *   an ended opener that holds a stripe may have left one half done (its
 *   flog entry written, its map entry not, its lane's record not
 *   updated). A wait for such a stripe, and a take that runs short of
 *   lanes while such an opener holds some, recover them online: under the
 *   ring lock (no lane of the ended opener is on the ring, so nobody else
 *   runs them, and its stripes keep its blocks' commits out), each of its
 *   lanes is recovered from its flog slot by the code the pool's open
 *   runs for each (`recoverFlogSlot` in `arena_load.ts`: a committed
 *   entry's map entry is finished, an uncommitted one counts as never
 *   written, and the lane's free block and flog position are set from
 *   it), durably; then its lanes go back on the ring and its stripes are
 *   released, and the waiters go on. Where that cannot be done (a flog
 *   slot found invalid or naming blocks beyond the arena, or a persist
 *   that fails: the open would refuse the pool or mark the arena), its
 *   stripes stay held and fail the commits of their blocks with a
 *   `PmemError` -130 (EOWNERDEAD), and its lanes stay out: a new open of
 *   the pool settles them. `LaneTable.lanesLeft` counts the lanes that
 *   still go round, so a group write is cut to them and a write with none
 *   left fails instead of waiting for good. The same take gives back the
 *   read counts such openers left.
 * - This opener's own, as it closes in the middle of one of its updates
 *   (`LaneTable.leave`): holding a stripe, it recovers each of its lanes
 *   so, lane by lane; holding none, it puts them back as they are. Its
 *   stripes are released in any case (once it closed, its token names no
 *   open), and a lane it cannot recover is marked lost, for `lanesLeft`
 *   to count, until a new open of the pool settles it.
 *
 * No copy of an ended opener lands in a lane's free block after the lane
 * went round again: a thread's end stops the devices of its movers (a
 * `ThreadMover`'s engines, a DSA queue), every copy they accepted landed
 * or failed, before its opens count as ended (`c/share.c`), and a copy
 * through the in-thread mover ends with the thread.
 *
 * @module
 */
import type { FileShare } from "../pmem2/file_share.ts";
import { onRing, pushLane } from "./lane_ring.ts";
import type { ReadTracker } from "./read_tracking.ts";
import { unlockWord } from "./shared.ts";
import {
  LANE_BASE,
  LANE_LOST,
  LANE_OWNER,
  LANE_WORDS,
  LANES,
  LANES_LOST,
  RING_LOCK,
  STRIPE_BASE,
  STRIPES,
} from "./arena_words.ts";

/** The opener of an arena's {@linkcode LaneRecovery}, as its table sees it. */
export interface RecoveringOpener {
  /** This opener's lock token (see `lockToken`). */
  readonly token: number;
  /** The share open the words belong to (none for a private state). */
  readonly share: FileShare | undefined;
  /** The reads this opener copies, and every opener's count of them. */
  readonly reads: ReadTracker;
  /** Takes the arena's ring lock. */
  readonly lockRing: () => void;
  /**
   * Recovers one lane from its flog slot (the arena's: see
   * `LaneTable`'s constructor); without it, ended openers'
   * lanes that hold a stripe stay out and such stripes fail their waiters.
   */
  readonly recoverLane: ((lane: number) => boolean) | undefined;
  /**
   * Makes the map entries of a stripe's blocks durable, before a hold of
   * the stripe that an update left is released (the arena's); says
   * whether they are. A setZero or setError stores its block's map entry
   * under the stripe, then persists it: one cut short between the two
   * left an entry that no pending list names.
   */
  readonly settleStripe?: ((stripe: number) => boolean) | undefined;
}

/** The recovery of the lanes and stripes openers of one arena left. */
export class LaneRecovery {
  /** The arena's region of the shared memory. */
  readonly #words: Int32Array;
  readonly #token: number;
  readonly #share: FileShare | undefined;
  readonly #reads: ReadTracker;
  readonly #lockRing: () => void;
  /** Recovers one lane from its flog slot (see the constructor). */
  readonly #recoverLane: ((lane: number) => boolean) | undefined;
  /** Makes a stripe's map entries durable (see the constructor). */
  readonly #settleStripe: ((stripe: number) => boolean) | undefined;
  /** Ended openers whose lanes could not be recovered (tried once here). */
  readonly #unrecoverable = new Set<number>();

  /**
   * @param words the arena's region (`ARENA_WORDS` int32s)
   * @param opener who recovers, and how it recovers a lane
   */
  constructor(words: Int32Array, opener: RecoveringOpener) {
    this.#words = words;
    this.#token = opener.token;
    this.#share = opener.share;
    this.#reads = opener.reads;
    this.#lockRing = opener.lockRing;
    this.#recoverLane = opener.recoverLane;
    this.#settleStripe = opener.settleStripe;
  }

  /**
   * A stripe's holder ended: recover its commits online (see the module
   * doc), taking the ring lock; returns whether its stripes are free now
   * (or taken since), so the wait goes on, or false when they cannot be.
   */
  recoverHolder(holder: number): boolean {
    if (this.#recoverLane === undefined) return false;
    this.#lockRing();
    try {
      return this.#recoverOpener(holder);
    } finally {
      unlockWord(this.#words, RING_LOCK);
    }
  }

  /**
   * Under the ring lock: put back on the ring the lanes whose takers'
   * threads ended before they returned them; a taker that holds a stripe
   * (a commit of its may be half done) first has its lanes recovered
   * (`#recoverOpener`), and where they cannot be, they
   * stay out. Runs only when a take found too few idle lanes, and scans
   * only once an opener ended.
   *
   * @returns whether a lane went back
   */
  reclaimEnded(): boolean {
    const share = this.#share;
    if (share === undefined || share.endedOpens === 0) return false;
    const w = this.#words;
    const lanes = w[LANES];
    let back = this.#reads.reclaimEnded();
    for (let lane = 0; lane < lanes; lane++) {
      const owner = w[LANE_BASE + lane * LANE_WORDS + LANE_OWNER];
      if (owner === 0 || owner === this.#token || !share.ended(owner)) {
        continue;
      }
      if (onRing(w, lane)) continue;
      if (!this.#holdsAStripe(owner)) pushLane(w, lane);
      else if (!this.#recoverOpener(owner)) continue;
      back = true;
    }
    return back;
  }

  /**
   * Under the ring lock: recover online the commits that the ended opener
   * of lock token `owner` left with its stripes held (see the module
   * doc): each lane of its in this arena from its flog slot, then its
   * lanes back on the ring and its stripes of this arena released. Each
   * update's lane and stripe lie in one arena, so arenas recover apart.
   *
   * @returns whether it holds no stripe of this arena now; false when a
   *   lane of its cannot be recovered (its lanes and stripes stay held)
   */
  #recoverOpener(owner: number): boolean {
    if (!this.#holdsAStripe(owner)) return true; // recovered meanwhile
    if (this.#unrecoverable.has(owner)) return false;
    return this.#recoverLanesOf(owner);
  }

  /**
   * Under the ring lock: recover every lane that the opener of lock token
   * `owner` holds in this arena from its flog slot, make the map durable
   * (a setZero or setError of its may have stored an entry and not
   * persisted it), put its lanes back on the ring and release its
   * stripes of this arena (an opener that ended).
   *
   * @returns false when a lane cannot be recovered, or the map not
   *   persisted: its lanes and stripes stay held, and `owner` is not
   *   tried again
   */
  #recoverLanesOf(owner: number): boolean {
    const recover = this.#recoverLane;
    if (recover === undefined) return false;
    const w = this.#words;
    const lanes: number[] = [];
    for (let lane = 0; lane < w[LANES]; lane++) {
      const at = LANE_BASE + lane * LANE_WORDS + LANE_OWNER;
      if (w[at] === owner && !onRing(w, lane)) lanes.push(lane);
    }
    for (const lane of lanes) {
      if (!recover(lane)) {
        this.#unrecoverable.add(owner);
        return false;
      }
    }
    if (!this.#settleStripesOf(owner)) {
      this.#unrecoverable.add(owner);
      return false;
    }
    for (const lane of lanes) pushLane(w, lane);
    for (let s = 0; s < STRIPES; s++) {
      Atomics.compareExchange(w, STRIPE_BASE + s, owner, 0);
    }
    return true;
  }

  /**
   * `LaneTable.lanesLeft`: the lanes not lost (see
   * {@linkcode LaneRecovery.giveBackOwn}), less those ended openers keep
   * (counted under the ring lock).
   */
  lanesLeft(): number {
    const share = this.#share;
    const w = this.#words;
    const lanes = w[LANES];
    const left = lanes - Atomics.load(w, LANES_LOST);
    if (share === undefined || share.endedOpens === 0) return left;
    this.#lockRing();
    try {
      let out = 0;
      const holders = new Map<number, boolean>();
      for (let lane = 0; lane < lanes; lane++) {
        const owner = w[LANE_BASE + lane * LANE_WORDS + LANE_OWNER];
        if (owner === 0 || owner === this.#token || !share.ended(owner)) {
          continue;
        }
        let stuck = holders.get(owner);
        if (stuck === undefined) {
          stuck = !this.#recoverOpener(owner);
          holders.set(owner, stuck);
        }
        if (stuck && !onRing(w, lane)) out++;
      }
      return left - out;
    } finally {
      unlockWord(w, RING_LOCK);
    }
  }

  /**
   * Under the ring lock, as this opener leaves the arena
   * (`LaneTable.leave`): with a stripe held, recover each of its lanes
   * from its flog slot, and make the map durable (a setZero or setError
   * of its may have stored an entry and not persisted it); without one,
   * put its lanes back as they are. Then release its stripes. A lane that cannot be recovered is lost
   * (`LANE_LOST`): once this opener is closed its token names no open,
   * and may name the next one, so a lane left under it would be waited
   * for by the others for good, and given back unrecovered by that next
   * open. Counted in `LANES_LOST`, it is taken from
   * {@linkcode LaneRecovery.lanesLeft}: a group of updates is cut down
   * to the lanes left, and with none left a write fails.
   */
  giveBackOwn(): void {
    const w = this.#words;
    const me = this.#token;
    const holding = this.#holdsAStripe(me);
    const recover = holding ? this.#recoverLane ?? (() => false) : undefined;
    for (let lane = 0; lane < w[LANES]; lane++) {
      const at = LANE_BASE + lane * LANE_WORDS + LANE_OWNER;
      if (w[at] !== me || onRing(w, lane)) continue;
      if (recover === undefined || recover(lane)) pushLane(w, lane);
      else {
        w[at] = LANE_LOST;
        Atomics.add(w, LANES_LOST, 1);
      }
    }
    // (released even where an entry could not be made durable: a
    // persist failed, and the arena refuses writes)
    this.#settleStripesOf(me);
    for (let s = 0; s < STRIPES; s++) {
      Atomics.compareExchange(w, STRIPE_BASE + s, me, 0);
    }
  }

  /**
   * Make durable the map entries of the blocks of every stripe of this
   * arena that the opener of lock token `owner` holds (see
   * `settleEndedStripe`): an update it left may have stored one without
   * persisting it. Returns false when one could not be.
   */
  #settleStripesOf(owner: number): boolean {
    const settle = this.#settleStripe;
    if (settle === undefined) return true;
    const w = this.#words;
    for (let s = 0; s < STRIPES; s++) {
      if (Atomics.load(w, STRIPE_BASE + s) === owner && !settle(s)) {
        return false;
      }
    }
    return true;
  }

  /** Whether the opener of lock token `owner` holds a stripe lock. */
  #holdsAStripe(owner: number): boolean {
    const w = this.#words;
    for (let s = 0; s < STRIPES; s++) {
      if (Atomics.load(w, STRIPE_BASE + s) === owner) return true;
    }
    return false;
  }
}
