// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * {@linkcode LogCore}: the timestamp engine of one stream file in one
 * isolate: reserve (a timestamp and a place in a region, together),
 * commit (entry headers written in timestamp order: visible) and persist
 * (one fence for every committed entry not yet durable: one persist per
 * group). The counters live in {@linkcode SharedState}, so Workers of the
 * process that opened the same file take part in one order; the futures
 * and reservations of this isolate that own timestamps are known here,
 * so whoever waits behind one can drive it. Driving timestamps to their
 * level (an attempt at progress, the blocking wait, the marks W and R) is
 * `progress.ts`'s, which reaches the core's listeners and owners through
 * the access the core grants it.
 *
 * An entry's header is written at its commit, after its data and after
 * every earlier timestamp's header, and carries a CRC of both: so a crash
 * can leave only whole entries, and recovery (`recovery.ts`) keeps those
 * beyond the settled timestamp W only while their timestamps run on
 * without a gap.
 *
 * @module
 */
import { ClosedError, OutOfSpaceError, PmemError } from "../errors/mod.ts";
import { byteLengthOf } from "../ffi/validate.ts";
import type { FileShare } from "../pmem2/file_share.ts";
import type { Future } from "../future/future.ts";
import {
  BOUND_AT,
  BOUND_STEP,
  ENTRY_HEADER,
  entryTotal,
  type Geometry,
  MAX_TIMESTAMP,
  normalize,
  PAD_BIT,
} from "./layout.ts";
import type { StreamMedia } from "./media.ts";
import { type Owner, OwnerRing, RESERVATION } from "./owners.ts";
import { finish, grantProgressAccess } from "./progress.ts";
import { commitReady, writeHeader } from "./commit.ts";
import { repairHold } from "./takeover.ts";
import {
  COMMITTED_F,
  HOLD_CANCEL,
  NEXT_F,
  PERSISTED_F,
  REGION_ALLOCATED,
  RING_EMPTY,
  RING_READY,
  RING_RESERVED,
  RING_VOID,
  type SharedState,
} from "./shared.ts";
import { EOVERFLOW } from "../errors/errno.ts";

/** A place reserved for one entry. */
export interface Reserved {
  /** Its timestamp. */
  ts: number;
  /** The region slot. */
  region: number;
  /** Logical position of its header in the region. */
  pos: number;
  /** File offset of its header. */
  at: number;
  /** Data bytes. */
  length: number;
}

/** What a wait needs: the entry visible, or also durable. */
export type Level = "committed" | "persisted";

/** The timestamp engine of one stream file in this isolate. */
export class LogCore {
  readonly shared: SharedState;
  readonly media: StreamMedia;
  readonly geometry: Geometry;
  #owners: OwnerRing<Owner>;
  #listeners = new Set<() => void>();
  /** Streams of this isolate using the core. */
  refs = 1;
  #closed = false;

  #share: FileShare;

  /**
   * @param media the stream's mapping (the core closes it)
   * @param shared the coordination state
   * @param geometry the stream's geometry
   * @param share the process-wide share (the core leaves it)
   */
  constructor(
    media: StreamMedia,
    shared: SharedState,
    geometry: Geometry,
    share: FileShare,
  ) {
    this.media = media;
    this.shared = shared;
    this.geometry = geometry;
    this.#share = share;
    this.#owners = new OwnerRing(shared.ringSize);
    shared.repairHold = (hold, k, args) => repairHold(this, hold, k, args);
  }

  /** Whether the core was closed. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Close: the last opener in the process finishes the stream first (see
   * `finish` in `progress.ts`); then unmap and leave the share.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#listeners.clear();
    const s = this.shared;
    let failure: unknown;
    try {
      if (s.dropOpen() === 0) finish(this);
    } catch (e) {
      failure = e;
    }
    const map = this.media.mapping;
    this.media.close();
    try {
      map.close();
    } finally {
      this.#share.close();
    }
    if (failure !== undefined) throw failure;
  }

  /** Operations of this isolate on the stream under way (nested ones too). */
  #depth = 0;
  /** Closes asked for inside an operation, run when the last one ends. */
  #deferred: (() => void)[] = [];

  /**
   * An operation of this isolate on the stream begins (a stream method,
   * a future's step, a close): a close asked for until it ends (by code
   * it runs: a testing tracer's callback) waits for it
   * ({@linkcode LogCore.deferClose}). Paired with {@linkcode LogCore.leave}.
   */
  enter(): void {
    this.#depth++;
  }

  /**
   * An operation ends; the last one to end runs the closes asked for
   * meanwhile, and throws the first of their failures.
   */
  leave(): void {
    if (--this.#depth > 0 || this.#deferred.length === 0) return;
    const closes = this.#deferred;
    this.#deferred = [];
    let failure: unknown;
    for (const close of closes) {
      try {
        close();
      } catch (e) {
        failure ??= e;
      }
    }
    if (failure !== undefined) throw failure;
  }

  /**
   * Whether an operation of this isolate on the stream is under way: a
   * close now is asked for from inside it, and must wait for its end.
   * The operation may hold the reserve or the commit lock, which the
   * close would wait for on the same thread (for good), and it goes on
   * using the mapping after the callback returns.
   */
  get operating(): boolean {
    return this.#depth > 0;
  }

  /** Run `close` once the operations under way have ended. */
  deferClose(close: () => void): void {
    this.#deferred.push(close);
  }

  /** Call `fn` after every commit or persist made in this isolate. */
  listen(fn: () => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  #notify(): void {
    for (const fn of this.#listeners) fn();
  }

  static {
    // progress.ts reaches the listeners and the owners, and nothing else
    // does; its notify is this one's loop, not a call of it, so a commit
    // pass driven from there costs what it cost as a method of the core
    grantProgressAccess({
      notify: (core) => {
        for (const fn of core.#listeners) fn();
      },
      ownerOf: (core, ts) => core.#owners.get(ts),
    });
  }

  /** Reservations (reserve/publish) of this isolate outstanding. */
  reservations = 0;

  /** Record who owns `ts` (so waits behind it can drive it). */
  own(ts: number, owner: Owner): void {
    if (this.#owners.set(ts, owner) === RESERVATION) this.reservations--;
    if (owner === RESERVATION) this.reservations++;
  }

  /** `ts` is no longer owned here. */
  disown(ts: number): void {
    if (this.#owners.delete(ts) === RESERVATION) this.reservations--;
  }

  /** The local reservation (reserve/publish) with the lowest timestamp. */
  oldestReservation(): number {
    let min = Infinity;
    if (this.reservations === 0) return min;
    for (const [ts, o] of this.#owners.entries()) {
      if (o === RESERVATION && ts < min) min = ts;
    }
    return min;
  }

  /** The futures of this isolate that own timestamps. */
  ownedFutures(): Future<unknown>[] {
    const out: Future<unknown>[] = [];
    for (const [, o] of this.#owners.entries()) {
      if (o !== RESERVATION) out.push(o);
    }
    return out;
  }

  /** Timestamps owned by reservations of this isolate. */
  ownedReservations(): number[] {
    const out: number[] = [];
    for (const [ts, o] of this.#owners.entries()) {
      if (o === RESERVATION) out.push(ts);
    }
    return out.sort((a, b) => a - b);
  }

  // ---- reserve ----

  // #place's results (fields, not a returned object: it runs per append)
  #t = 0;
  #pad = 0;
  #start = 0;
  #end = 0;

  /**
   * Where an entry of `total` bytes goes at the end of region `k` (under
   * the reserve lock), into `#t` (the region's end), `#pad` (padding
   * before the entry), `#start` and `#end` (normalised). Throws when it
   * does not fit.
   */
  #place(k: number, total: number, length: number, op: string): void {
    const s = this.shared;
    const size = s.size(k);
    const t = normalize(s.tail(k), size);
    const phys = t % size;
    // an entry that does not fit before the end follows a padding entry
    const pad = phys + total > size ? size - phys : 0;
    const start = t + pad;
    const end = normalize(start + total, size);
    if (end + ENTRY_HEADER > s.head(k) + size) {
      throw new OutOfSpaceError(
        op,
        `region ${k} is full: ${length} bytes need ${total + pad}, ${
          Math.max(0, s.head(k) + size - ENTRY_HEADER - t)
        } are free`,
      );
    }
    this.#t = t;
    this.#pad = pad;
    this.#start = start;
    this.#end = end;
  }

  /** Check region `k` still holds generation `gen` (under the reserve lock). */
  #alive(k: number, gen: number, op: string): void {
    const s = this.shared;
    if (s.regionState(k) !== REGION_ALLOCATED || s.generation(k) !== gen) {
      throw new ClosedError(`region ${k} (freed)`, op);
    }
  }

  /**
   * Reserve a timestamp and a place for `length` data bytes at the end of
   * region `k` (generation `gen`). Returns null when the ring of
   * timestamps in flight is full (drive commits and retry).
   *
   * @throws {ClosedError} when the region was freed
   * @throws {OutOfSpaceError} when the region has no room (nothing is
   *   reserved)
   */
  reserve(k: number, gen: number, length: number, op: string): Reserved | null {
    const s = this.shared;
    const total = entryTotal(length);
    // marked: a thread that ends holding it leaves at most a reservation
    // half made, which the next taker finishes (SharedState.lockReserve)
    s.lockReserve(op, true);
    try {
      this.#alive(k, gen, op);
      this.#place(k, total, length, op);
      const t = this.#t;
      const pad = this.#pad;
      const start = this.#start;
      const end = this.#end;
      const count = pad > 0 ? 2 : 1;
      const ts = s.next;
      if (ts + count - 1 - s.persisted > s.ringSize) return null;
      this.#checkBound(ts + count - 1, op);
      const base = s.offset(k);
      const size = s.size(k);
      if (pad > 0) {
        const word = (PAD_BIT | (pad - ENTRY_HEADER)) >>> 0;
        s.setSlot(ts, k, base + (t % size), start, word, RING_READY);
      }
      const at = base + (start % size);
      s.setSlot(ts + count - 1, k, at, end, length, RING_RESERVED);
      s.setTail(k, start + total);
      s.next = ts + count;
      return { ts: ts + count - 1, region: k, pos: start, at, length };
    } finally {
      s.unlockReserve();
    }
  }

  /**
   * The highest timestamp reserved so far in the process (Workers
   * included), for a wait for `ts`. Timestamps start at 1 (0: none), and
   * an open starts them above the bound R, so every timestamp up to R
   * counts as reserved (it is committed already). `op` is named in errors.
   */
  lastReserved(ts: number, op: string): number {
    const s = this.shared;
    const last = s.next - 1;
    if (ts <= last) return last;
    // a timestamp another Worker reserved reaches here through a message,
    // after its reserve lock was released; re-read under the lock rather
    // than trust an unordered read on the error path (marked as a reserve:
    // it changes nothing)
    s.lockReserve(op, true);
    try {
      return s.f64[NEXT_F] - 1;
    } finally {
      s.unlockReserve();
    }
  }

  /** Raise the bound R before `ts` may reach the media (reserve lock held). */
  #checkBound(ts: number, op: string): void {
    if (ts <= this.shared.bound) return;
    if (ts > MAX_TIMESTAMP) {
      throw new PmemError(op, -EOVERFLOW, "timestamps are exhausted");
    }
    this.#raiseBound(ts);
  }

  /**
   * Append `data` to region `k` when nothing else is in flight in the
   * process: timestamp, place, data, header and terminator, and one
   * persist, all under both locks (no ring slot, no commit pass).
   * Returns the timestamp, or -1 when something else is in flight (take
   * the general path).
   *
   * @throws {ClosedError} / {OutOfSpaceError} as {@linkcode reserve}
   */
  appendAlone(k: number, gen: number, data: Uint8Array, op: string): number {
    const s = this.shared;
    const f64 = s.f64;
    const length = byteLengthOf(data); // the engine's, as checkData's
    const total = entryTotal(length);
    // marked as a reserve's: what a thread that ends holding it leaves is
    // a reservation, in the ring slot filled below
    s.lockReserve(op, true);
    try {
      // plain reads: the lock's compare-and-swap ordered them
      const ts = f64[NEXT_F];
      if (ts - 1 !== f64[PERSISTED_F] || f64[COMMITTED_F] !== ts - 1) {
        return -1;
      }
      this.#alive(k, gen, op);
      const size = s.size(k);
      let t = s.tail(k);
      let phys = t % size;
      if (size - phys < ENTRY_HEADER) {
        t += size - phys;
        phys = 0;
      }
      if (phys + total > size) return -1; // needs padding first
      let end = t + total;
      let nextPhys = phys + total;
      if (size - nextPhys < ENTRY_HEADER) {
        end += size - nextPhys;
        nextPhys = 0;
      }
      if (end + ENTRY_HEADER > s.head(k) + size) {
        this.#place(k, total, length, op); // throws the full region's error
      }
      if (!s.tryLockCommit()) return -1;
      try {
        if (ts > s.bound) this.#checkBound(ts, op);
        const base = s.offset(k);
        const at = base + phys;
        const next = base + nextPhys;
        const media = this.media;
        // a ring slot, as a reserve's: a thread that ends from here on
        // leaves a reservation the next taker of the reserve lock finishes
        // (committed as padding, or once ready as this entry)
        s.setSlot(ts, k, at, end, length, RING_RESERVED);
        try {
          if (next === at + total) {
            // the usual case: data, header and terminator in one native call
            if (media.traced) media.mark(`commit ${ts}`);
            media.writeEntry(at, data, ts, this.geometry.seed, next);
          } else {
            media.set(at + ENTRY_HEADER, data);
            if (media.traced) media.mark(`commit ${ts}`);
            writeHeader(media, at, length, ts, this.geometry.seed);
            media.zero(next, ENTRY_HEADER);
            media.persistRanges([
              { offset: at, length: total },
              { offset: next, length: ENTRY_HEADER },
            ]);
          }
        } catch (e) {
          // (a persist failed) its header may be stored: the timestamp
          // counts, given up as padding written over it, else a later
          // append to another region took it too and a reopen found both;
          // counted in first, as the taker of the lock of a thread that
          // ends here does (a reservation)
          s.setTail(k, end);
          f64[NEXT_F] = ts + 1;
          s.setSlotState(ts, RING_VOID);
          s.bump();
          // committed now (this holds the commit lock), as a cancelled
          // reservation is: left to the next commit pass, the region read
          // as having an append in flight (freeRegion failed with EBUSY)
          // until some later append made one
          try {
            commitReady(s, media, this.geometry.seed);
          } catch {
            // the persist's failure matters more; the next pass commits it
          }
          throw e;
        }
        s.setSlotState(ts, RING_READY);
        s.setTail(k, t + total);
        s.setCommitted(k, end, ts, 1);
        f64[NEXT_F] = ts + 1;
        f64[COMMITTED_F] = ts;
        f64[PERSISTED_F] = ts;
        s.setSlotState(ts, RING_EMPTY);
        s.bump();
        if (media.traced) media.mark(`persisted ${ts}`);
      } finally {
        s.unlockCommit();
      }
      this.#notify();
      return ts;
    } finally {
      s.unlockReserve();
    }
  }

  /**
   * Commit and persist reservation `res` (its data in place) when it is
   * the only timestamp in flight: header, terminator and one persist
   * under the commit lock, no commit pass. Returns false when something
   * else is in flight (take the general path).
   */
  publishAlone(res: Reserved): boolean {
    const s = this.shared;
    const f64 = s.f64;
    if (!s.tryLockCommit()) return false;
    try {
      const ts = res.ts;
      if (f64[COMMITTED_F] !== ts - 1 || f64[PERSISTED_F] !== ts - 1) {
        return false;
      }
      const k = res.region;
      const i = s.slotI(ts);
      const end = f64[s.slotF(ts) + 2];
      const media = this.media;
      if (media.traced) media.mark(`commit ${ts}`);
      writeHeader(media, res.at, res.length, ts, this.geometry.seed);
      const next = s.offset(k) + (end % s.size(k));
      media.zero(next, ENTRY_HEADER);
      const total = entryTotal(res.length);
      if (next === res.at + total) media.persist(res.at, total + ENTRY_HEADER);
      else {
        media.persistRanges([
          { offset: res.at, length: total },
          { offset: next, length: ENTRY_HEADER },
        ]);
      }
      s.setCommitted(k, end, ts, 1);
      f64[COMMITTED_F] = ts;
      f64[PERSISTED_F] = ts;
      // after the counters: a thread that ends before them leaves the slot
      // ready, and a commit pass that takes the lock over commits it again
      Atomics.store(s.i32, i, RING_EMPTY);
      s.bump();
      if (media.traced) media.mark(`persisted ${ts}`);
    } finally {
      s.unlockCommit();
    }
    this.#notify();
    return true;
  }

  /**
   * Raise the timestamp bound R on the media (before any timestamp above
   * it can reach the media): every timestamp ever written stays below R,
   * so after a crash new timestamps start above anything stale.
   */
  #raiseBound(atLeast: number): void {
    const s = this.shared;
    let r = s.bound;
    while (r < atLeast) r += BOUND_STEP;
    this.media.write64(BOUND_AT, r);
    this.media.persist(BOUND_AT, 8);
    s.bound = r;
  }

  /** The data of `res` is in place: it may be committed. */
  ready(ts: number): void {
    this.shared.setSlotState(ts, RING_READY);
  }

  /** Give up a reservation: it is committed as padding (no gap). */
  abandon(ts: number): void {
    this.shared.casSlotState(ts, RING_RESERVED, RING_VOID);
  }

  /**
   * Give reservation `res` up (reserve, then cancel): committed as
   * padding, as {@linkcode abandon}; when it is still its region's last
   * reservation, the padding shrinks to a bare header and the rest of
   * its room goes back to the region (the next reservation starts right
   * after that header). Its timestamp stays taken: a later timestamp may
   * be in flight in another region, and a wait for this one must end.
   * Crash-safe: nothing of the shrunk room was ever covered by a header
   * or a terminator, and the commit writes the padding's header and the
   * terminator after it as for any entry.
   *
   * @throws {PmemError} -130 (EOWNERDEAD) when the reserve lock's holder
   *   ended with its thread in work that cannot be taken over (nothing
   *   changed)
   */
  cancel(res: Reserved, op: string): void {
    const s = this.shared;
    s.lockReserve(op);
    try {
      // a thread that ends from here on leaves the cancel to the next
      // taker of the lock, which does it again (SharedState.hold)
      s.hold(HOLD_CANCEL, res.region, res.ts, res.pos, res.length);
      cancelSlot(s, res.region, res.ts, res.pos, res.length);
    } finally {
      s.unlockReserve();
    }
  }

  /**
   * Give up an append whose data is in place but not committed: it is
   * committed as padding, as a reservation given up is. Returns false
   * when it was committed already (by another Worker's commit pass):
   * nothing is given up.
   */
  abandonReady(ts: number): boolean {
    return this.shared.casSlotState(ts, RING_READY, RING_VOID);
  }

  /** Whether any timestamp of region `k` is reserved and not committed. */
  busy(k: number): boolean {
    const s = this.shared;
    return normalize(s.tail(k), s.size(k)) !== s.committedEnd(k);
  }
}

/**
 * Give up the reservation of `ts` at logical position `pos` of region
 * `k`, `length` data bytes, as {@linkcode LogCore.cancel} says (reserve
 * lock held). Done again from the start, it ends the same: the taker of
 * the lock of a thread that ended in it finishes it so.
 */
export function cancelSlot(
  s: SharedState,
  k: number,
  ts: number,
  pos: number,
  length: number,
): void {
  // under the reserve lock: no reservation can follow it meanwhile,
  // and the commit pass reads the slot only once it is VOID
  if (s.slotState(ts) === RING_RESERVED && length > 0) {
    const shrunk = pos + ENTRY_HEADER;
    const tail = s.tail(k);
    if (tail === pos + entryTotal(length) || tail === shrunk) {
      s.f64[s.slotF(ts) + 2] = normalize(shrunk, s.size(k));
      s.i32[s.slotI(ts) + 2] = 0;
      s.setTail(k, shrunk);
    }
  }
  s.casSlotState(ts, RING_RESERVED, RING_VOID);
}
