// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * {@linkcode SharedBlock}: the layout of the process-wide block of one
 * stream file and its plain accessors, as one open views it: the control
 * block (lifecycle, lock words, timestamp counters), a mirror of the
 * region table with each region's cursors, the ring of the timestamps
 * reserved and not yet persisted, and the table of the opens counted.
 * The locks and the coordination over them are `SharedState`'s
 * (`shared.ts`). Internal.
 *
 * Counters are float64 words written under a lock; a reader that polls
 * one reads an int32 with `Atomics.load` first, which keeps the JIT from
 * hoisting the read out of its loop. A ring slot's state is an int32 read
 * and written with `Atomics`: a writer publishes its copied data with a
 * store of READY.
 *
 * @module
 */

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
export const SLOT_OWNER = 3;
/**
 * int32 words after the ring: the token of each counted open (one per
 * isolate with the stream open: its core), 0 for none. Opens past them
 * are counted in the `OPENS` word alone.
 */
export const OPENERS = 256;

// int32 indexes of the control block
const STATE = 0;
/** int32 index: the reserve lock's word (its holder's token, or 0). */
export const RESERVE_LOCK = 1;
/** int32 index: the commit lock's word (its holder's token, or 0). */
export const COMMIT_LOCK = 2;
const EPOCH = 3;
const INSTANCE = 4;
/** int32 index: the opens counted outside the table of openers. */
export const OPENS = 5;
/** int32 index: regions marked as being freed since the last look for
 * those whose freer ended (see `SharedState.markFreeing`). */
export const FREES = 6;
/** int32 index: the share's count of ended opens at that look. */
export const FREES_SEEN = 7;
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
export const HOLD = 18;
/** int32 index: the region of that hold. */
export const HOLD_REGION = 19;
/** float64 index of that hold's first argument (three in all). */
export const HOLD_ARGS = 10;

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

/** The shared block of one stream, viewed by one open. */
export class SharedBlock {
  readonly i32: Int32Array;
  readonly f64: Float64Array;
  /** Ring slots (a power of two). */
  readonly ringSize: number;
  /** Region table slots. */
  readonly regionSlots: number;
  /** int32 index of the table of openers ({@linkcode OPENERS} words). */
  readonly openersBase: number;
  /**
   * What this open stores in the lock words it holds and the ring slots
   * it reserves (see `SharedState`).
   */
  readonly token: number;
  readonly #mask: number;
  readonly #regionBase: number;
  readonly #ringBase: number;

  /**
   * @param memory the share's block, at least {@linkcode SharedBlock.bytes}
   * @param regionSlots region table slots
   * @param ringSize timestamps in flight at most (a power of two)
   * @param token this open's token
   */
  constructor(
    memory: ArrayBuffer,
    regionSlots: number,
    ringSize: number,
    token: number,
  ) {
    this.token = token;
    this.i32 = new Int32Array(memory);
    this.f64 = new Float64Array(memory);
    this.ringSize = ringSize;
    this.#mask = ringSize - 1;
    this.#regionBase = CONTROL;
    this.regionSlots = regionSlots;
    this.#ringBase = CONTROL + REGION * regionSlots;
    this.openersBase = (this.#ringBase + SLOT * ringSize) >> 2;
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

  /** The token of the open that marked region `k` as being freed. */
  freer(k: number): number {
    return this.i32[this.#ri(k) + REGION_FREER];
  }

  /** Record `token` as the open marking region `k` as being freed. */
  setFreer(k: number, token: number): void {
    this.i32[this.#ri(k) + REGION_FREER] = token;
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

  /** The token of the open that reserved the ring slot of `ts`. */
  slotOwner(ts: number): number {
    return this.i32[this.slotI(ts) + SLOT_OWNER];
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
