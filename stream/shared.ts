// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * {@linkcode SharedState}: the coordination state of one stream file,
 * kept in the process-wide block of its {@linkcode FileShare} so every
 * opener in the process (Workers included) sees the same: the timestamp
 * counters, a mirror of the region table with each region's cursors, and
 * a ring of the timestamps reserved and not yet persisted.
 *
 * Two spin locks in the block serialise the short critical sections:
 * the reserve lock (a timestamp and a place in a region, taken together
 * so a region's entries lie in timestamp order; region table changes)
 * and the commit lock (entry headers, persists). A lock word holds its
 * holder's token: a lock whose holder's thread ended is taken over, and
 * what that holder left half done is finished or rolled back (see
 * {@linkcode SharedState.lockCommit} and
 * {@linkcode SharedState.lockReserve}). Counters are float64
 * words written under a lock; a reader that polls one reads an int32
 * with `Atomics.load` first, which keeps the JIT from hoisting the read
 * out of its loop. A ring slot's state is an int32 read and written with
 * `Atomics`: a writer publishes its copied data with a store of READY.
 *
 * @module
 */
import { PmemError } from "../errors/mod.ts";
import { FileShare, lockToken } from "../pmem2/file_share.ts";
import { sleepMs } from "../pmem2/share_wait.ts";
import { EOWNERDEAD } from "../errors/errno.ts";

/** Bytes of the control block at the start. */
const CONTROL = 128;
/** Bytes of one region's block: its cursors (64), then the int32 token of
 * the open that marked it as being freed. */
const REGION = 72;
/** int32 offset of a region's freer (see {@linkcode REGION}). */
const REGION_FREER = 16;
/** Bytes of one ring slot: f64 timestamp, header offset, end; i32 state,
 * region, length word, owner. */
const SLOT = 48;
/** int32 offset of a slot's owner (the reserving open's lock token) from
 * its state word. */
const SLOT_OWNER = 3;
/**
 * int32 words after the ring: the token of each counted open (one per
 * isolate with the stream open: its core), 0 for none. Opens past them
 * are counted in the `OPENS` word alone.
 */
const OPENERS = 256;

// int32 indexes of the control block
const STATE = 0;
const RESERVE_LOCK = 1;
const COMMIT_LOCK = 2;
const EPOCH = 3;
const INSTANCE = 4;
/** int32 index: the opens counted outside the table of openers. */
const OPENS = 5;
/** int32 index: regions marked as being freed since the last look for
 * those whose freer ended (see `SharedState.#rollBackEndedFrees`). */
const FREES = 6;
/** int32 index: the share's count of ended opens at that look. */
const FREES_SEEN = 7;
// float64 indexes of the control block
const NEXT = 4;
const COMMITTED = 5;
const PERSISTED = 6;
/** float64 index of the next timestamp (for plain reads under a lock). */
export const NEXT_F = NEXT;
/** float64 index of the committed timestamp (reads under a lock). */
export const COMMITTED_F = COMMITTED;
/** float64 index of the persisted timestamp (reads under a lock). */
export const PERSISTED_F = PERSISTED;
const SETTLED = 7;
const BOUND = 8;
/** int32 index: what an unmarked holder of the reserve lock is doing
 * (a `HOLD_` code; 0: nothing changed yet, or all done). */
const HOLD = 18;
/** int32 index: the region of that hold. */
const HOLD_REGION = 19;
/** float64 index of that hold's first argument (three in all). */
const HOLD_ARGS = 10;

/** Reserve lock hold: cancel of a reservation (timestamp, logical
 * position, length). */
export const HOLD_CANCEL = 1;
/** Reserve lock hold: a region allocated in the slot. */
export const HOLD_ALLOCATE = 2;
/** Reserve lock hold: a region marked as being freed. */
export const HOLD_FREE_BEGIN = 3;
/** Reserve lock hold: a region's slot cleared (its entries settled). */
export const HOLD_FREE = 4;
/** Reserve lock hold: a region's head moved (truncate). */
export const HOLD_TRUNCATE = 5;
/** Reserve lock hold: the last close of the process. */
export const HOLD_CLOSE = 6;

/** What an error names for each `HOLD_` code. */
const HOLD_NAMES = [
  "",
  "cancel a reservation",
  "allocate a region",
  "free a region",
  "free a region",
  "truncate a region",
  "close the stream (the last close)",
];

/**
 * Takes over the reserve lock's work that an unmarked holder whose
 * thread ended left half done (`hold`: its `HOLD_` code, region and
 * arguments): finishes it or rolls it back, or returns false where it
 * cannot be done soundly (the lock then stays held, and waits fail).
 */
export type HoldRepair = (
  hold: number,
  k: number,
  args: readonly number[],
) => boolean;

/**
 * Set in the reserve lock's word while its holder reserves (as the block
 * store marks a read-only hold of its layout lock): that holder can have
 * left only a reservation half made, which the next taker finishes.
 */
const RESERVING = 0x20000000;

export {
  SHARE_FAILED as STATE_FAILED,
  SHARE_NEW as STATE_NEW,
  SHARE_READY as STATE_READY,
  SHARE_SETTING_UP as STATE_RECOVERING,
  sleepMs,
} from "../pmem2/share_wait.ts";

/** Region (mirror) state: free. */
export const REGION_FREE = 0;
/** Region (mirror) state: allocated. */
export const REGION_ALLOCATED = 1;
/** Region (mirror) state: being freed (no new reservations). */
export const REGION_FREEING = 2;

/** Ring slot: no timestamp. */
export const RING_EMPTY = 0;
/** Ring slot: reserved, its data not yet in place. */
export const RING_RESERVED = 1;
/** Ring slot: its data is in place; it may be committed. */
export const RING_READY = 2;
/** Ring slot: an aborted reservation, to be committed as padding. */
export const RING_VOID = 3;
/** Ring slot: committed (header written), not yet persisted. */
export const RING_COMMITTED = 4;

/** The shared block of one stream, viewed. */
export class SharedState {
  readonly i32: Int32Array;
  readonly f64: Float64Array;
  /** Ring slots (a power of two). */
  readonly ringSize: number;
  readonly #mask: number;
  readonly #regionBase: number;
  readonly #regionSlots: number;
  readonly #ringBase: number;
  /** int32 index of the table of openers. */
  readonly #openersBase: number;

  /**
   * @param memory the share's block, at least {@linkcode SharedState.bytes}
   * @param regionSlots region table slots
   * @param ringSize timestamps in flight at most (a power of two)
   */
  /** The share of this open (absent for a block not from a share). */
  readonly #share: FileShare | undefined;
  /**
   * What this open stores in the lock words it holds and the ring slots
   * it reserves: its share token, so the others can tell when its thread
   * ended; where it has none (a share whose slots are all taken), a
   * number apart from every token, never taken for ended (token 1 was:
   * for the open with slot 1, once its Worker ended).
   */
  readonly token: number;

  constructor(memory: ArrayBuffer, regionSlots: number, ringSize: number) {
    this.#share = FileShare.of(memory);
    this.token = lockToken(this.#share, 1);
    this.i32 = new Int32Array(memory);
    this.f64 = new Float64Array(memory);
    this.ringSize = ringSize;
    this.#mask = ringSize - 1;
    this.#regionBase = CONTROL;
    this.#regionSlots = regionSlots;
    this.#ringBase = CONTROL + REGION * regionSlots;
    this.#openersBase = (this.#ringBase + SLOT * ringSize) >> 2;
  }

  /** Bytes of shared memory for a geometry. */
  static bytes(regionSlots: number, ringSize: number): number {
    return CONTROL + REGION * regionSlots + SLOT * ringSize + 4 * OPENERS;
  }

  // ---- lifecycle ----

  /** STATE_NEW, STATE_RECOVERING, STATE_READY or STATE_FAILED. */
  get state(): number {
    return Atomics.load(this.i32, STATE);
  }

  set state(s: number) {
    Atomics.store(this.i32, STATE, s);
  }

  /** A number naming this share in the process (set by the first opener). */
  get instance(): number {
    return Atomics.load(this.i32, INSTANCE);
  }

  set instance(n: number) {
    Atomics.store(this.i32, INSTANCE, n);
  }

  /**
   * Count this open of the stream in the process (once per isolate: its
   * core), by its token, in a free entry of the table of openers or one
   * whose open's thread ended: an open that ends with its thread (a
   * Worker terminated before it closed the stream) stops counting, so
   * the others' last close is still the last, as a lock its thread held
   * is taken over. Past the table, in the `OPENS` word alone.
   */
  addOpen(): void {
    const i32 = this.i32;
    const base = this.#openersBase;
    for (let i = 0; i < OPENERS; i++) {
      const e = Atomics.load(i32, base + i);
      if (e !== 0 && !this.#ended(e)) continue;
      if (Atomics.compareExchange(i32, base + i, e, this.token) === e) return;
    }
    Atomics.add(i32, OPENS, 1);
  }

  /**
   * Count this open's close; returns the opens left. Of closes at once,
   * one at least sees none left (each clears its entry before it counts).
   */
  dropOpen(): number {
    const i32 = this.i32;
    const base = this.#openersBase;
    let found = false;
    for (let i = 0; i < OPENERS && !found; i++) {
      found = Atomics.load(i32, base + i) === this.token &&
        Atomics.compareExchange(i32, base + i, this.token, 0) === this.token;
    }
    if (!found) Atomics.sub(i32, OPENS, 1);
    return this.opens;
  }

  /**
   * The opens of the stream in this process, as counted now: those whose
   * thread ended before they closed are not.
   */
  get opens(): number {
    const i32 = this.i32;
    const base = this.#openersBase;
    let n = Atomics.load(i32, OPENS);
    for (let i = 0; i < OPENERS; i++) {
      const e = Atomics.load(i32, base + i);
      if (e !== 0 && !this.#ended(e)) n++;
    }
    return n;
  }

  // ---- locks ----

  /**
   * Take the reserve lock (spinning, then sleeping briefly). A holder
   * whose thread ended in a reserve or a lone append (`reserving`) is
   * taken over, and the reservation it may have left half made is
   * finished (`#finishReserve`); one that ended elsewhere is taken over
   * once what its hold ({@linkcode hold}) says it was doing is finished
   * or rolled back ({@linkcode repairHold}); where that cannot be done
   * (no repair set: a state not of an open's core) the wait fails,
   * naming it.
   *
   * @param op the operation named in errors
   * @param reserving whether the caller only reserves (see above)
   * @throws {PmemError} -130 (EOWNERDEAD) when its holder's thread ended
   *   in work that cannot be taken over (see above)
   */
  lockReserve(op: string, reserving = false): void {
    const word = reserving ? this.token | RESERVING : this.token;
    this.#lock(RESERVE_LOCK, "the reserve lock", op, (holder) => {
      if ((holder & RESERVING) === 0) {
        return this.#takeOverHold(holder, word, op);
      }
      if (!this.#takeOver(RESERVE_LOCK, holder, word)) return false;
      this.#finishReserve(holder & ~RESERVING);
      return true;
    }, word);
    // a plain read: written only under this lock
    if (this.i32[FREES] !== 0) this.#rollBackEndedFrees();
  }

  /**
   * Mark region `k` as being freed by this open (reserve lock held): no
   * new reservations. The free settles its entries with no lock held; if
   * this open's thread ends before it takes the lock again, the next
   * taker rolls the free back (`#rollBackEndedFrees`).
   */
  markFreeing(k: number): void {
    this.i32[this.#ri(k) + REGION_FREER] = this.token;
    this.i32[FREES]++;
    this.setRegionState(k, REGION_FREEING);
  }

  /**
   * Roll back the frees whose marker's thread ended between their two
   * holds of the reserve lock (reserve lock held), as the takeover rolls
   * back one that ended holding it after the mark ({@linkcode
   * repairHold} with `HOLD_FREE_BEGIN`): nothing of a free reaches the
   * media before its second hold, so the region is allocated again, as a
   * reopen finds it. Looked for only when regions were marked and an
   * open ended since the last look (the share's count of ended opens is
   * read first: it moves after the ended open's slot reads ended); the
   * marks still live are counted again.
   */
  #rollBackEndedFrees(): void {
    const share = this.#share;
    const ended = share === undefined ? 0 : share.endedOpens;
    const i32 = this.i32;
    if (ended === i32[FREES_SEEN]) return;
    const repair = this.repairHold;
    let left = 0;
    for (let k = 0; k < this.#regionSlots; k++) {
      if (this.regionState(k) !== REGION_FREEING) continue;
      const freer = i32[this.#ri(k) + REGION_FREER];
      if (
        repair === undefined || !this.#ended(freer) ||
        !repair(HOLD_FREE_BEGIN, k, [0, 0, 0])
      ) {
        left++;
      }
    }
    i32[FREES] = left;
    i32[FREES_SEEN] = ended;
  }

  /**
   * Set by the open's core: finishes or rolls back what an unmarked
   * holder of the reserve lock whose thread ended left half done.
   */
  repairHold: HoldRepair | undefined;

  /**
   * Say what this holder of the reserve lock (unmarked) is about to
   * change: `hold`, a `HOLD_` code, its region and arguments. Stored
   * before the first change, the code last (its arguments are in place
   * once it reads set); cleared as the lock is released. A thread that
   * ends before the code is stored changed nothing.
   */
  hold(hold: number, k: number, a = 0, b = 0, c = 0): void {
    const f64 = this.f64;
    f64[HOLD_ARGS] = a;
    f64[HOLD_ARGS + 1] = b;
    f64[HOLD_ARGS + 2] = c;
    this.i32[HOLD_REGION] = k;
    Atomics.store(this.i32, HOLD, hold);
  }

  /**
   * Take over the reserve lock from `holder`, unmarked, whose thread
   * ended: what its hold says it was doing is finished or rolled back
   * ({@linkcode repairHold}) first; where that cannot be done, the wait
   * fails with EOWNERDEAD naming it.
   */
  #takeOverHold(holder: number, word: number, op: string): boolean {
    const hold = Atomics.load(this.i32, HOLD);
    const repair = this.repairHold;
    if (hold !== 0 && repair === undefined) {
      throw this.#ownerEnded("the reserve lock", op, HOLD_NAMES[hold]);
    }
    if (!this.#takeOver(RESERVE_LOCK, holder, word)) return false;
    if (hold !== 0) {
      const f64 = this.f64;
      const k = this.i32[HOLD_REGION];
      const args = [f64[HOLD_ARGS], f64[HOLD_ARGS + 1], f64[HOLD_ARGS + 2]];
      let done = false;
      try {
        done = repair!(hold, k, args);
      } finally {
        // not done (or it threw): left as the ended holder left it, held
        // by that holder, so the waits fail rather than wait for this one
        if (!done) Atomics.store(this.i32, RESERVE_LOCK, holder);
      }
      if (!done) {
        throw this.#ownerEnded("the reserve lock", op, HOLD_NAMES[hold]);
      }
      Atomics.store(this.i32, HOLD, 0);
    }
    return true;
  }

  /**
   * Finish the reservation an open whose thread ended (token `holder`)
   * left half made in `LogCore.reserve` or `LogCore.appendAlone` (reserve
   * lock held): its ring slots at the next timestamp on, filled, are
   * counted in (the next timestamp and the region's reserved end move
   * past each), so no later reservation lands on room one of them took
   * and no timestamp is given twice. A slot still reserved is committed
   * as padding, as any of an ended open (`blocker` in `progress.ts`); one
   * marked ready, as its entry. A slot is filled before anything else
   * moves, and with no call inside (a runtime stops a thread only at a
   * call or a loop's turn).
   */
  #finishReserve(holder: number): void {
    const f64 = this.f64;
    const i32 = this.i32;
    for (;;) {
      const ts = f64[NEXT];
      const f = this.slotF(ts);
      const i = this.slotI(ts);
      const st = Atomics.load(i32, i);
      if (
        f64[f] !== ts || i32[i + SLOT_OWNER] !== holder ||
        (st !== RING_RESERVED && st !== RING_READY)
      ) {
        return;
      }
      this.setTail(i32[i + 1], f64[f + 2]);
      f64[NEXT] = ts + 1;
    }
  }

  /** Release the reserve lock. */
  unlockReserve(): void {
    // only this holder sets it (a plain read sees its own store): a
    // reserve, which sets none, pays no second atomic store
    if (this.i32[HOLD] !== 0) Atomics.store(this.i32, HOLD, 0);
    Atomics.store(this.i32, RESERVE_LOCK, 0);
  }

  /**
   * Take the commit lock if it is free, or if its holder's thread ended
   * (taken over, as {@linkcode lockCommit} does).
   */
  tryLockCommit(): boolean {
    const holder = Atomics.compareExchange(
      this.i32,
      COMMIT_LOCK,
      0,
      this.token,
    );
    if (holder === 0) return true;
    return this.#ended(holder) && this.#takeOver(COMMIT_LOCK, holder);
  }

  /**
   * Take the commit lock (spinning, then sleeping briefly). A holder
   * whose thread ended (a Worker terminated in the middle of a commit) is
   * taken over, as the block store takes over a lock whose holder left
   * nothing half done (`lockWord` in `blk/shared.ts`): what this one can
   * have left half done, the next commit pass finishes. Slots it marked
   * committed past the committed timestamp are committed again (the same
   * headers, from the slots); a region's committed end, last timestamp
   * and live count move in one call with no call inside
   * ({@linkcode setCommitted}: a runtime stops a thread only at a call or
   * a loop's turn), and an entry counts as live only past its region's
   * last committed timestamp; a persist, and the settled timestamp W,
   * are made again from the counters.
   */
  lockCommit(op: string): void {
    this.#lock(
      COMMIT_LOCK,
      "the commit lock",
      op,
      (holder) => this.#takeOver(COMMIT_LOCK, holder),
    );
  }

  /** Take lock word `at` from `holder`, ended; false: another took it. */
  #takeOver(at: number, holder: number, token = this.token): boolean {
    return Atomics.compareExchange(this.i32, at, holder, token) === holder;
  }

  /**
   * Spin for a lock word, then sleep in growing steps. A holder whose
   * thread ended never lets go: `ended(holder)` then takes the lock over
   * (true: the caller holds it) or not (false: wait on), with the
   * contract of the block store's `lockWord`; without it the wait fails
   * with EOWNERDEAD.
   */
  #lock(
    at: number,
    what: string,
    op: string,
    ended?: (holder: number) => boolean,
    token = this.token,
  ): void {
    const i32 = this.i32;
    for (let spin = 0; spin < 256; spin++) {
      if (Atomics.compareExchange(i32, at, 0, token) === 0) return;
    }
    let ms = 0.01;
    for (;;) {
      const holder = Atomics.compareExchange(i32, at, 0, token);
      if (holder === 0) return;
      if (this.#ended(holder & ~RESERVING)) {
        // what it left half done stays so: only a reopen recovers it
        if (ended === undefined) throw this.#ownerEnded(what, op);
        if (ended(holder)) return;
        continue;
      }
      sleepMs(ms);
      ms = Math.min(ms * 2, 1);
    }
  }

  /** Whether the open whose token is `holder` ended with its thread. */
  #ended(holder: number): boolean {
    return holder !== this.token && this.#share !== undefined &&
      this.#share.ended(holder);
  }

  #ownerEnded(what: string, op: string, doing = ""): PmemError {
    const to = doing === "" ? "" : ` to ${doing}`;
    return new PmemError(
      op,
      -EOWNERDEAD,
      `'${this.#share?.path}': an open of the stream in this process ended ` +
        `with its thread (a Worker terminated before it closed the stream) ` +
        `while it held ${what}${to}; close the stream in every thread of this ` +
        "process and open it again (recovery keeps every whole entry)",
    );
  }

  /**
   * Whether the ring slot of `ts` was reserved by an open whose thread
   * ended (its data will never be put in place).
   */
  slotOwnerEnded(ts: number): boolean {
    return this.#ended(this.i32[this.slotI(ts) + SLOT_OWNER]);
  }

  /** Release the commit lock. */
  unlockCommit(): void {
    Atomics.store(this.i32, COMMIT_LOCK, 0);
  }

  /** Changes whenever a commit, persist or table change completes. */
  get epoch(): number {
    return Atomics.load(this.i32, EPOCH);
  }

  /** Announce a change to pollers. */
  bump(): void {
    Atomics.add(this.i32, EPOCH, 1);
  }

  // ---- counters (written under a lock) ----

  /** The next timestamp to reserve. */
  get next(): number {
    Atomics.load(this.i32, EPOCH);
    return this.f64[NEXT];
  }

  set next(ts: number) {
    this.f64[NEXT] = ts;
  }

  /** Every timestamp up to this one is committed (or never existed). */
  get committed(): number {
    Atomics.load(this.i32, EPOCH);
    return this.f64[COMMITTED];
  }

  set committed(ts: number) {
    this.f64[COMMITTED] = ts;
  }

  /** Every timestamp up to this one is durable (or never existed). */
  get persisted(): number {
    Atomics.load(this.i32, EPOCH);
    return this.f64[PERSISTED];
  }

  set persisted(ts: number) {
    this.f64[PERSISTED] = ts;
  }

  /** The settled timestamp W, as on the media. */
  get settled(): number {
    return this.f64[SETTLED];
  }

  set settled(ts: number) {
    this.f64[SETTLED] = ts;
  }

  /** The timestamp bound R, as on the media. */
  get bound(): number {
    return this.f64[BOUND];
  }

  set bound(ts: number) {
    this.f64[BOUND] = ts;
  }

  // ---- regions ----

  #ri(k: number): number {
    return (this.#regionBase >> 2) + k * (REGION >> 2);
  }

  #rf(k: number): number {
    return (this.#regionBase >> 3) + k * (REGION >> 3);
  }

  /** REGION_FREE, REGION_ALLOCATED or REGION_FREEING. */
  regionState(k: number): number {
    return Atomics.load(this.i32, this.#ri(k) + 1);
  }

  /** Set a region's state. */
  setRegionState(k: number, s: number): void {
    Atomics.store(this.i32, this.#ri(k) + 1, s);
  }

  /** A region slot's generation. */
  generation(k: number): number {
    return Atomics.load(this.i32, this.#ri(k));
  }

  /** Set a region slot's generation. */
  setGeneration(k: number, g: number): void {
    Atomics.store(this.i32, this.#ri(k), g | 0);
  }

  /** File offset of a region's space. */
  offset(k: number): number {
    return this.f64[this.#rf(k) + 2];
  }

  /** Bytes of a region's space. */
  size(k: number): number {
    return this.f64[this.#rf(k) + 3];
  }

  /** Logical position of a region's first live entry. */
  head(k: number): number {
    return this.f64[this.#rf(k) + 4];
  }

  /** Logical end of a region's reserved entries. */
  tail(k: number): number {
    return this.f64[this.#rf(k) + 5];
  }

  /** Logical end of a region's committed entries. */
  committedEnd(k: number): number {
    Atomics.load(this.i32, EPOCH);
    const end = this.f64[this.#rf(k) + 6];
    // and after: the caller's loads of the headers before `end` must not
    // be moved above this one by the compiler
    Atomics.load(this.i32, EPOCH);
    return end;
  }

  /** The timestamp of a region's last committed entry (0: none). */
  lastTs(k: number): number {
    return this.f64[this.#rf(k) + 7];
  }

  /** Set a region's place. */
  setPlace(k: number, offset: number, size: number): void {
    const f = this.#rf(k);
    this.f64[f + 2] = offset;
    this.f64[f + 3] = size;
  }

  /** Set a region's head. */
  setHead(k: number, pos: number): void {
    this.f64[this.#rf(k) + 4] = pos;
  }

  /** Set a region's reserved end. */
  setTail(k: number, pos: number): void {
    this.f64[this.#rf(k) + 5] = pos;
  }

  /**
   * The entries (padding not counted) between a region's head and its
   * committed end: what a truncate of all of them drops, without a scan.
   * Changed only under the commit lock.
   */
  live(k: number): number {
    return this.f64[this.#rf(k) + 1];
  }

  /** Set a region's count of live entries (commit lock held). */
  setLive(k: number, n: number): void {
    this.f64[this.#rf(k) + 1] = n;
  }

  /** Add `n` to a region's count of live entries (commit lock held). */
  addLive(k: number, n: number): void {
    this.f64[this.#rf(k) + 1] += n;
  }

  /**
   * Set a region's committed end and its last committed timestamp, and
   * add `added` to its live entries (commit lock held). Plain stores with
   * no call between: a thread that ends (a Worker terminated) ends before
   * or after them all, and a commit pass that finishes its half-done one
   * tells from the last timestamp which entries it counted.
   */
  setCommitted(k: number, end: number, ts: number, added = 0): void {
    const f64 = this.f64;
    const f = this.#rf(k);
    f64[f + 1] += added;
    f64[f + 6] = end;
    f64[f + 7] = ts;
  }

  // ---- ring ----

  /** The float64 index of the ring slot of `ts`. */
  slotF(ts: number): number {
    return (this.#ringBase >> 3) + (ts & this.#mask) * (SLOT >> 3);
  }

  /** The int32 index of the ring slot of `ts` (its state). */
  slotI(ts: number): number {
    return (this.#ringBase >> 2) + (ts & this.#mask) * (SLOT >> 2) + 6;
  }

  /**
   * Fill the ring slot of `ts` (under the reserve lock); `state` is
   * stored last.
   *
   * @param at file offset of the entry's header
   * @param end logical end of the entry in its region (normalised)
   */
  setSlot(
    ts: number,
    region: number,
    at: number,
    end: number,
    lengthWord: number,
    state: number,
  ): void {
    const f = this.slotF(ts);
    const i = this.slotI(ts);
    this.f64[f] = ts;
    this.f64[f + 1] = at;
    this.f64[f + 2] = end;
    this.i32[i + 1] = region;
    this.i32[i + 2] = lengthWord | 0;
    this.i32[i + SLOT_OWNER] = this.token;
    Atomics.store(this.i32, i, state);
  }

  /** The state of the ring slot of `ts`. */
  slotState(ts: number): number {
    return Atomics.load(this.i32, this.slotI(ts));
  }

  /** Set the state of the ring slot of `ts`. */
  setSlotState(ts: number, state: number): void {
    Atomics.store(this.i32, this.slotI(ts), state);
  }

  /** Move the slot of `ts` from `from` to `to`; whether it was in `from`. */
  casSlotState(ts: number, from: number, to: number): boolean {
    return Atomics.compareExchange(this.i32, this.slotI(ts), from, to) ===
      from;
  }
}
