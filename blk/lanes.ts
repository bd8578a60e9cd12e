// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * {@linkcode LaneTable}: an arena's coordination state in shared memory
 * (its region of `PoolShared`), seen alike by every `BlockPool` of the
 * pool in the process. Internal to `blk/`.
 *
 * - Lanes: per flog slot, its free block and flog position. A lane is
 *   owned by whoever took it from the idle ring until it goes back, so
 *   its record is read and written plainly by its owner.
 * - The idle ring, oldest first, under a small lock: a lane is reused as
 *   late as possible, so the map entry of its last update has long been
 *   persisted with others.
 * - Read tracking (`read_tracking.ts`): a lane whose free block a reader
 *   copies is skipped.
 * - Pending map entries (`pending_filter.ts`): per lane, the block whose
 *   map entry its last update stored without persisting, and a filter of
 *   those blocks (a bit per lane and bucket of blocks), so a commit of a
 *   block can tell whether its previous map entry might still be
 *   pending. No count of all pending entries: every write would change
 *   it, and the openers (Workers) writing the pool would pass its cache
 *   line between them on every write; the lane's word and the block's
 *   bucket, which a commit reads anyway, say all it needs.
 * - Stripe locks: a commit of a block holds its stripe from reading the
 *   old map entry to storing the new one, so two commits of one block
 *   from different threads never interleave. A check() holds them all
 *   (marked read-only: taken over from a check whose thread ended); a
 *   commit asleep waiting for one marks the arena, and the next check
 *   lets one such wait end before it takes them again.
 * - The arena's error code: why it refuses writes.
 *
 * The ring lock and the stripe locks hold their holder's token (see
 * `lockWord` in `shared.ts`). When a holder's thread ended before it
 * closed the pool (a Worker terminated), the ring lock is taken over and
 * the ring change it left half done repaired (`lane_ring.ts`), so the
 * lanes go round again.
 *
 * Lanes and stripes that an opener left when its thread ended, and this
 * opener's own when it closes in the middle of an update, are recovered
 * online by its {@linkcode LaneRecovery} (`lane_recovery.ts`).
 *
 * @module
 */
import type { PmemError } from "../errors/mod.ts";
import { FileShare, lockToken } from "../pmem2/file_share.ts";
import { popLane, pushLane, takeOverRing } from "./lane_ring.ts";
import { LaneRecovery } from "./lane_recovery.ts";
import {
  addPending,
  clearPending,
  maybePending,
  pendingBlock,
  pendingSeq,
} from "./pending_filter.ts";
import { ReadTracker } from "./read_tracking.ts";
import {
  lanesLost,
  lockWord,
  ownerEnded,
  READ_ONLY_HOLD,
  releaseStripes,
  unlockWord,
} from "./shared.ts";
import {
  ERROR,
  ERROR_COUNT,
  LANE_BASE,
  LANE_FREE,
  LANE_NEXT,
  LANE_SEQ,
  LANE_WORDS,
  LANES,
  LANES_LOST,
  RING_IDLE,
  RING_LOCK,
  STRIPE_BASE,
  STRIPE_SERVED,
  STRIPE_WANT,
  STRIPES,
} from "./arena_words.ts";

/** Index of the stripe lock of pre-map block `pre`. */
export function stripeOf(pre: number): number {
  return STRIPE_BASE + (pre & (STRIPES - 1));
}

/** One arena's shared coordination words. */
export class LaneTable {
  /** The arena's region of the shared memory. */
  readonly words: Int32Array;
  /** The reads this opener copies, and every opener's count of them. */
  readonly reads: ReadTracker;
  /**
   * What this opener's locks hold (never 0): its share token, which
   * names it to the others (see `lockToken`).
   */
  readonly #token: number;
  /** The share open the words belong to (none for a private state). */
  readonly #share: FileShare | undefined;
  /** Takes the ring lock over from a holder that ended. */
  readonly #ringEnded = (holder: number): boolean =>
    takeOverRing(this.words, holder, this.#token);
  /** The operation taking a stripe now, named in the error of its wait. */
  #stripeOp = "write";
  /** A commit's wait found the stripe's holder ended: see `#holderEnded`. */
  readonly #stripeEnded = (holder: number, at: number): boolean =>
    this.#holderEnded(holder, at, this.#token);
  /** A check's wait found the stripe's holder ended (it holds them marked). */
  readonly #checkStripeEnded = (holder: number, at: number): boolean =>
    this.#holderEnded(holder, at, this.#token | READ_ONLY_HOLD);
  /** Whether the stripe wait under way marked the arena (STRIPE_WANT). */
  #wanting = false;
  /** Mark the arena wanted by this opener's commit (before each sleep). */
  readonly #want = (): void => {
    if (Atomics.load(this.words, STRIPE_WANT) !== this.#token) {
      Atomics.store(this.words, STRIPE_WANT, this.#token);
    }
    this.#wanting = true;
  };
  /** Recovers the lanes and stripes of ended openers, and its own. */
  readonly #recovery: LaneRecovery;
  /** Whether {@linkcode LaneTable.leave} ran. */
  #left = false;

  /**
   * @param words the arena's region (`ARENA_WORDS` int32s, or its words up
   *   to the read ledgers: a part of a share, `PoolShared.arena`)
   * @param token this opener's number, unique among the pool's openers
   *   (used where the words are no share's)
   * @param recoverLane recovers a lane of an opener that ended mid-commit
   *   from its flog slot, as the pool's open does, and says whether it
   *   may go round again (the arena's; without it, such lanes stay out
   *   and such stripes fail their waiters)
   * @param settleStripe makes the map entries of a stripe's blocks durable
   *   before an ended opener's hold of it, or this opener's own at its
   *   close, is released (the arena's; see `settleEndedStripe`), and says
   *   whether they are
   */
  constructor(
    words: Int32Array,
    token: number,
    recoverLane?: (lane: number) => boolean,
    settleStripe?: (stripe: number) => boolean,
  ) {
    this.words = words;
    this.#share = FileShare.of(words.buffer);
    this.#token = lockToken(this.#share, token);
    this.reads = new ReadTracker(words, this.#share, this.#token);
    this.#recovery = new LaneRecovery(words, {
      token: this.#token,
      share: this.#share,
      reads: this.reads,
      lockRing: () => this.#lockRing(),
      recoverLane,
      settleStripe,
    });
    if (this.#share !== undefined) {
      this.#lockRing();
      this.reads.claim();
      unlockWord(words, RING_LOCK);
    }
  }

  /** Take the ring lock. */
  #lockRing(): void {
    lockWord(this.words, RING_LOCK, this.#token, this.#share, this.#ringEnded);
  }

  /** Lanes in use. */
  get lanes(): number {
    return this.words[LANES];
  }

  /** Set the lanes in use (by the first opener, before others join). */
  set lanes(n: number) {
    this.words[LANES] = n;
  }

  // ---- lane records (owned by the lane's holder) ----

  /** The free block of `lane`. */
  free(lane: number): number {
    return this.words[LANE_BASE + lane * LANE_WORDS + LANE_FREE];
  }

  /** Set the free block of `lane`. */
  setFree(lane: number, block: number): void {
    this.words[LANE_BASE + lane * LANE_WORDS + LANE_FREE] = block;
  }

  /** Index (0/1) of the flog entry `lane`'s next update writes. */
  next(lane: number): number {
    return this.words[LANE_BASE + lane * LANE_WORDS + LANE_NEXT];
  }

  /** Sequence number of `lane`'s current flog entry. */
  seq(lane: number): number {
    return this.words[LANE_BASE + lane * LANE_WORDS + LANE_SEQ];
  }

  /** Set `lane`'s flog position. */
  setFlog(lane: number, next: number, seq: number): void {
    const at = LANE_BASE + lane * LANE_WORDS;
    this.words[at + LANE_NEXT] = next;
    this.words[at + LANE_SEQ] = seq;
  }

  // ---- the idle ring ----

  /** Idle lanes (a snapshot). */
  get idle(): number {
    return Atomics.load(this.words, RING_IDLE);
  }

  /**
   * Take `n` idle lanes, oldest first, skipping those whose free block a
   * reader is copying, into `out[at ..]`: all or none.
   *
   * @returns whether `n` lanes were taken
   */
  take(n: number, out: number[], at = 0): boolean {
    const w = this.words;
    this.#lockRing();
    let got = 0;
    while (got < n) {
      let lane = popLane(w, this.#token, this.reads);
      if (lane < 0 && this.#recovery.reclaimEnded()) {
        lane = popLane(w, this.#token, this.reads);
      }
      if (lane < 0) break;
      out[at + got++] = lane;
    }
    if (got < n) {
      for (let k = 0; k < got; k++) pushLane(w, out[at + k]);
    }
    unlockWord(w, RING_LOCK);
    return got === n;
  }

  /** Take one idle lane whose free block no reader copies; -1 if none. */
  takeOne(): number {
    const w = this.words;
    this.#lockRing();
    let lane = popLane(w, this.#token, this.reads);
    if (lane < 0 && this.#recovery.reclaimEnded()) {
      lane = popLane(w, this.#token, this.reads);
    }
    unlockWord(w, RING_LOCK);
    return lane;
  }

  /**
   * Lanes that can still go round: all but those taken by ended openers
   * that hold a stripe and whose lanes cannot be recovered online, and
   * those lost by a close that could not recover them (see
   * {@linkcode LaneTable.leave}). They stay out until a new open of the
   * pool recovers them; the others are recovered here, see
   * {@linkcode LaneTable.take}. A write that needs more lanes at once
   * than this never gets them: a group of updates is cut down to this
   * size, and with none left a write fails.
   */
  lanesLeft(): number {
    return this.#recovery.lanesLeft();
  }

  /**
   * The error of a write that needs a lane when none can go round (every
   * lane was taken by ended openers that hold a stripe, or lost by a
   * close, and could not be recovered online): code -130
   * (EOWNERDEAD), as for a write of a block whose stripe they hold.
   */
  noLanesLeft(op: string): PmemError {
    const path = this.#share?.path ?? "";
    if (Atomics.load(this.words, LANES_LOST) !== 0) return lanesLost(path, op);
    return ownerEnded(
      path,
      "every lane of an arena, and the commit lock of a block",
      op,
    );
  }

  /** Give lanes back (newest last). */
  give(lanes: readonly number[], from = 0, to = lanes.length): void {
    if (this.#left) return; // (see leave: they went back then)
    const w = this.words;
    this.#lockRing();
    for (let k = from; k < to; k++) pushLane(w, lanes[k]);
    unlockWord(w, RING_LOCK);
  }

  /** Give one lane back. */
  giveOne(lane: number): void {
    if (this.#left) return; // (see leave: it went back then)
    const w = this.words;
    this.#lockRing();
    pushLane(w, lane);
    unlockWord(w, RING_LOCK);
  }

  // ---- read tracking ----

  /**
   * This opener is done with the arena: whatever it still holds in the
   * shared state goes back, for the other openers (Workers) of the pool
   * to go on. Run once no read of its is in flight, while the pool is
   * still mapped.
   *
   * It holds lanes and stripes here only when the pool is closed from
   * inside one of its own updates (a testing tracer's callback): that
   * update stops where it is, as an opener whose thread ended there
   * would, and its commit is settled the same way (`lane_recovery.ts`):
   * with a stripe held, a commit of its may be half done, and each of its
   * lanes is recovered from its flog slot; without one, its lanes go
   * back as they are (their records and flog slots untouched since the
   * take). Its stripes are released even when a lane cannot be recovered:
   * once closed, its token names no open, and a waiter would wait for
   * them for good. Such a lane is lost: it stays out, as an ended
   * opener's does, until the pool is opened again, and
   * {@linkcode LaneTable.lanesLeft} counts it out, so no write of the
   * other openers waits for it (a slot found invalid or a persist that
   * failed also makes the arena refuse writes). Then its read
   * ledger goes back. From here on its returns of lanes and stripes do
   * nothing: the update that resumes after the close must not put them
   * back a second time.
   *
   * A close from inside this opener's own hold of the ring lock (a
   * tracer's callback at a persist of the online recovery of an ended
   * opener's lanes) finds the lock held by itself: it goes on under it,
   * between two of the recovery's steps (each lane's recovery is whole
   * or redone by the next opener that needs it), and lets it go for the
   * recovery, which never touches the shared state again (the close
   * detaches this opener's view of it).
   */
  leave(): void {
    if (this.#left) return;
    const w = this.words;
    if (Atomics.load(w, RING_LOCK) !== this.#token) this.#lockRing();
    try {
      this.#recovery.giveBackOwn();
      this.reads.leave();
    } finally {
      this.#left = true;
      unlockWord(w, RING_LOCK);
    }
  }

  // ---- pending map entries (pending_filter.ts) ----

  /** The sequence number of `lane`'s pending map entry, or 0 for none. */
  pending(lane: number): number {
    return pendingSeq(this.words, lane);
  }

  /**
   * 1 + the block of `lane`'s pending map entry numbered `seq` (as
   * {@linkcode LaneTable.pending} read it), or 0 when that entry is no
   * longer pending.
   */
  pendingBlock(lane: number, seq: number): number {
    return pendingBlock(this.words, lane, seq);
  }

  /** Whether a pending map entry of `pre` may exist. */
  maybePending(pre: number): boolean {
    return maybePending(this.words, pre);
  }

  /**
   * Record that `lane` stored `pre`'s map entry without persisting it (the
   * lane's holder, whose last entry is no longer pending).
   */
  addPending(lane: number, pre: number): void {
    addPending(this.words, lane, pre);
  }

  /**
   * `lane`'s pending entry numbered `seq` (as
   * {@linkcode LaneTable.pending} read it) was persisted: clear it unless
   * another thread did.
   */
  clearPending(lane: number, seq: number): void {
    clearPending(this.words, lane, seq);
  }

  // ---- stripes ----

  /** Take the stripe lock of `pre` if it is free. */
  tryLockStripe(pre: number): boolean {
    return Atomics.compareExchange(
      this.words,
      stripeOf(pre),
      0,
      this.#token,
    ) ===
      0;
  }

  /**
   * Whether this opener holds the stripe of `pre` (its commits run one at
   * a time, so that is the commit running now).
   */
  holdsStripe(pre: number): boolean {
    return Atomics.load(this.words, stripeOf(pre)) === this.#token;
  }

  /**
   * Take the stripe lock of `pre`, waiting for it.
   *
   * @param op the operation named in errors @default "write"
   * @throws {PmemError} code -130 (EOWNERDEAD) when its holder's thread
   *   ended before it closed the pool and the commits it left cannot be
   *   recovered online (`lane_recovery.ts`: otherwise they are, and the
   *   wait goes on); every stripe this opener holds is released first
   * @throws {TypeError} when a check() of this thread holds it (the same)
   */
  lockStripe(pre: number, op = "write"): void {
    this.#stripeOp = op;
    const w = this.words;
    // (a wait of a commit that the recovery of an ended opener runs, in a
    // testing tracer's callback, comes inside this one)
    const outer = this.#wanting;
    this.#wanting = false;
    try {
      // a wait that sleeps marks the arena, for the next check() to let
      // it through first (see `deferToCommits` in check.ts)
      lockWord(
        w,
        stripeOf(pre),
        this.#token,
        this.#share,
        this.#stripeEnded,
        op,
        undefined,
        this.#want,
      );
    } catch (e) {
      // (a stripe a check of this thread holds) what this commit took, it
      // gives back: it fails
      releaseStripes(w.buffer, this.#token);
      throw e;
    } finally {
      if (this.#wanting) {
        this.#wanting = false;
        // cleared before it counts: a check that saw this mark sees the
        // count change
        Atomics.compareExchange(w, STRIPE_WANT, this.#token, 0);
        Atomics.add(w, STRIPE_SERVED, 1);
      }
      this.#wanting = outer;
    }
  }

  /**
   * The holder of stripe word `at` ended (word `holder`), and the waiter
   * takes it as `token`. A check's (marked {@linkcode READ_ONLY_HOLD})
   * committed nothing: taken over. A commit's may be half done: its
   * commits are recovered online (`lane_recovery.ts`) and the wait goes
   * on, or, when they cannot be, the wait fails, every stripe the waiter
   * took released first.
   */
  #holderEnded(holder: number, at: number, token: number): boolean {
    if ((holder & READ_ONLY_HOLD) !== 0) {
      return Atomics.compareExchange(this.words, at, holder, token) === holder;
    }
    // its stripes are free (or taken since): the wait goes on
    if (this.#recovery.recoverHolder(holder)) return false;
    releaseStripes(this.words.buffer, token);
    throw ownerEnded(
      this.#share?.path ?? "",
      "the commit lock of a block",
      this.#stripeOp,
    );
  }

  /** This opener's lock token (see `lockToken`). */
  get token(): number {
    return this.#token;
  }

  /** Release the stripe lock of `pre` (see leave: not once it ran). */
  unlockStripe(pre: number): void {
    if (!this.#left) unlockWord(this.words, stripeOf(pre));
  }

  /**
   * Take every stripe lock, in stripe order (the order a commit that
   * waits takes them in, so the two never wait on each other in a cycle):
   * no commit of any opener runs until {@linkcode LaneTable.unlockStripes}.
   * For a check(): held marked {@linkcode READ_ONLY_HOLD}, so a waiter
   * takes them over if this thread ends holding them (a commit's waiter
   * would recover this opener's lanes first, and fail where one cannot
   * be, though the check committed nothing).
   *
   * @param op the operation named in errors @default "check"
   * @throws {PmemError} code -130 (EOWNERDEAD) when a stripe's holder's
   *   thread ended before it closed the pool and the commits it left
   *   cannot be recovered online
   */
  lockStripes(op = "check"): void {
    this.#stripeOp = op;
    const token = this.#token | READ_ONLY_HOLD;
    for (let s = 0; s < STRIPES; s++) {
      // a stripe whose holder ended mid-commit, which cannot be recovered,
      // fails the wait, every stripe this check holds (of every arena)
      // released first
      lockWord(
        this.words,
        STRIPE_BASE + s,
        token,
        this.#share,
        this.#checkStripeEnded,
      );
    }
  }

  /**
   * Release every stripe lock taken by {@linkcode LaneTable.lockStripes}
   * (of every arena).
   */
  unlockStripes(): void {
    releaseStripes(this.words.buffer, this.#token | READ_ONLY_HOLD);
  }

  // ---- error ----

  /** The arena's error code (0: none). */
  get error(): number {
    return Atomics.load(this.words, ERROR);
  }

  /** The count that goes with the error. */
  get errorCount(): number {
    return Atomics.load(this.words, ERROR_COUNT);
  }

  /** Set the error code unless one is set; returns whether this set it. */
  setError(code: number, count = 0): boolean {
    if (Atomics.compareExchange(this.words, ERROR, 0, code) !== 0) return false;
    Atomics.store(this.words, ERROR_COUNT, count);
    return true;
  }
}
