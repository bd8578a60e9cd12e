// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * {@linkcode Engine}: what one open pool runs transactions with: the
 * staging group, the groups sealed and not yet applied, their application
 * (on this thread, or as one batch of the pool's mover), checkpoints, and
 * the volatile views that let a transaction see the transactions staged
 * before it (pending writes by object, pending allocations and frees).
 *
 * A transaction's callback runs when the transaction starts (an
 * asynchronous one with an abort signal starts at its future's first
 * poll), so callbacks run in the order transactions start, which is the
 * log's order. Its
 * entries join the staging group; the group is sealed (one persist: the
 * commit point of all its transactions) when a synchronous transaction
 * ends, or when one of its asynchronous transactions' futures is first
 * polled. Sealed groups are applied in log order. Within a group, entries
 * that overlap (other than two bitmap masks, which commute or are
 * applied in order by this thread) are applied in order on this thread;
 * otherwise the copies and fills go to the mover as one batch while this
 * thread applies the small entries. Internal to `obj/`.
 *
 * @module
 */
import { ClosedError, PmemError } from "../errors/mod.ts";
import { wait } from "../future/blocking.ts";
import type { PollContext } from "../future/future.ts";
import type { Vdm } from "../mover/vdm.ts";
import { Applier } from "./apply.ts";
import { StaleObjectError } from "./errors.ts";
import {
  handleGen,
  handleOwner,
  newHandle,
  ObjectHandle,
  type PoolToken,
} from "./handle.ts";
import type { Heap } from "./heap.ts";
import { type Geometry, OBJECT_HEADER, OBJECT_MAGIC } from "./layout.ts";
import type { RedoLog } from "./log.ts";
import type { Entry } from "./log_entry.ts";
import {
  APPLIED,
  APPLYING,
  COMMITTED,
  FAILED,
  type Group,
} from "./log_group.ts";
import type { ObjMedia } from "./media.ts";
import { checkNumber, numberText } from "./object_bytes.ts";
import { Locals, Pending, type PendingObject } from "./pending.ts";
import type { Transaction, TxEffects } from "./tx.ts";
import { EIO } from "../errors/errno.ts";

/** The root object and the catalog, as the transactions staged so far left them. */
export interface StateView {
  rootOffset: number;
  rootSize: number;
  /** Catalog slots: name ("" when free) and object offset. */
  catalog: { name: string; offset: number; kind: number }[];
}

/** The transaction machinery of one open pool. */
export class Engine {
  readonly media: ObjMedia;
  readonly g: Geometry;
  readonly log: RedoLog;
  readonly heap: Heap;
  readonly mover: Vdm;
  /** The owner token of this pool's handles. */
  readonly token: PoolToken = Object.freeze({});
  /** The root and catalog, staged state. */
  readonly state: StateView;
  /** What the groups not applied yet change (objects and writes). */
  readonly pending: Pending;
  /** The objects the running transaction allocated or freed. */
  readonly locals: Locals = new Locals();
  /** The transaction whose callback is running, if any. */
  current: Transaction | undefined;
  #staging: Group | undefined;
  #applier: Applier;
  #queue: Group[] = [];
  #broken: unknown;
  #closed = false;
  #gen: number;

  constructor(
    media: ObjMedia,
    g: Geometry,
    log: RedoLog,
    heap: Heap,
    mover: Vdm,
    state: StateView,
  ) {
    this.media = media;
    this.g = g;
    this.log = log;
    this.heap = heap;
    this.mover = mover;
    this.state = state;
    this.pending = new Pending(log);
    this.#applier = new Applier(media, log, mover);
    this.#gen = crypto.getRandomValues(new Uint32Array(1))[0];
  }

  /** Whether the pool was closed. */
  get closed(): boolean {
    return this.#closed;
  }

  /** A fresh object generation (never 0). */
  nextGen(): number {
    this.#gen = (this.#gen + 1) >>> 0;
    if (this.#gen === 0) this.#gen = 1;
    return this.#gen;
  }

  /**
   * Throw unless the pool is open and working.
   *
   * @throws {ClosedError} after close
   * @throws {PmemError} code -5 (EIO) after a failed persist or apply
   */
  live(op: string): void {
    if (this.#closed) throw new ClosedError("ObjectPool", op);
    if (this.#broken !== undefined) {
      throw new PmemError(
        op,
        -EIO,
        `the pool stopped after a failure: ${
          (this.#broken as Error)?.message ?? this.#broken
        }`,
        { errno: EIO, cause: this.#broken },
      );
    }
  }

  /**
   * The generation of the live object at `offset`, as the staged
   * transactions leave it (`staged`) or as the applied ones did, or 0
   * when there is none.
   */
  genAt(offset: number, staged = true): number {
    if (staged) {
      const p = this.locals.get(offset) ?? this.pendingObject(offset);
      if (p !== undefined) return p.gen;
    }
    const media = this.media;
    const h = offset - OBJECT_HEADER;
    if (
      offset % 8 !== 0 || h < this.g.heap || offset >= this.g.size ||
      media.getU32(h) !== OBJECT_MAGIC
    ) return 0;
    // the header at home is the object as applied: so must the heap be
    // that says a block starts there (the volatile heap follows the
    // transactions staged: one not applied yet may have freed the block,
    // or given its chunk to another object)
    const capacity = staged
      ? this.heap.capacity(h)
      : this.heap.appliedCapacity(h);
    if (capacity < OBJECT_HEADER + media.getU32(h + 4)) return 0;
    return media.getU32(h + 8);
  }

  /**
   * Check that `o` is a handle of this pool to a live object: live after
   * the transactions staged so far (`staged`, in a transaction), or after
   * those applied (outside one).
   *
   * @throws {TypeError} for anything else than a handle of this pool
   * @throws {StaleObjectError} when its object was freed
   */
  check(o: unknown, op: string, staged = true): ObjectHandle {
    if (!(o instanceof ObjectHandle)) {
      throw new TypeError(`Cannot ${op}: the object must be an ObjectHandle`);
    }
    if (handleOwner(o) !== this.token) {
      throw new TypeError(
        `Cannot ${op}: the handle belongs to another pool (or an earlier open of this one)`,
      );
    }
    const gen = this.genAt(o.offset, staged);
    if (gen === 0 || gen !== handleGen(o)) {
      throw new StaleObjectError(op, o.offset);
    }
    return o;
  }

  /**
   * A handle to the live object at `offset` as applied (home header);
   * with `staged` (a transaction that found no pending object there),
   * one the heap as staged holds too: the pending objects may have lost
   * a free of it (applied, a group takes out the entry of an offset it
   * freed when the entry is a free, and every free's entry is the same
   * object, a later group's free included).
   *
   * @throws {StaleObjectError} when no live object starts there
   */
  objectAt(offset: number, op: string, staged = false): ObjectHandle {
    if (!Number.isSafeInteger(offset) || offset < 0) {
      checkNumber(offset, "get an object: offset");
      throw new RangeError(
        `Cannot get an object: offset must be a non-negative integer, got ${
          numberText(offset)
        }`,
      );
    }
    const gen = this.genAt(offset, staged);
    if (gen === 0) throw new StaleObjectError(op, offset);
    const h = offset - OBJECT_HEADER;
    const media = this.media;
    return newHandle(
      this.token,
      offset,
      media.getU32(h + 4),
      media.getU32(h + 12),
      gen,
    );
  }

  /**
   * The staging group a new outermost transaction joins. A synchronous
   * one gets a group of its own (the one staged before is sealed: the
   * transaction may then use a whole record), once every sealed group is
   * applied; an asynchronous one joins the staging group unless that
   * holds a quarter of a record. Before a new group starts in a log more
   * than a quarter used, every sealed group is applied and a checkpoint
   * taken.
   */
  begin(op: string, sync: boolean): Group {
    this.live(op);
    const s = this.#staging;
    if (
      s !== undefined && (sync ? s.txs > 0 : s.size > this.log.maxRecord / 4)
    ) this.seal();
    if (this.#staging === undefined) {
      // a synchronous transaction applies the groups sealed before it
      // first: one whose mover batch fails then stops the pool before
      // this transaction commits anything (else it committed, and threw
      // that failure)
      if (sync || this.log.full) {
        this.drain();
        if (this.log.full) this.#checkpoint();
        // a group that failed to apply stopped the pool: nothing may
        // begin on it
        this.live(op);
      }
      this.#staging = this.log.begin();
    }
    return this.#staging!;
  }

  /** Drop the staging group when its only transaction aborted. */
  abandon(g: Group): void {
    if (this.#staging === g && g.txs === 0 && g.count === 0) {
      this.#staging = undefined;
    }
  }

  /**
   * The object at `offset` as the groups not applied leave it (the
   * staging one included), if one of them allocated or freed it.
   */
  pendingObject(offset: number): PendingObject | undefined {
    return this.pending.object(this.#queue, this.#staging, offset);
  }

  /**
   * The pending writes to the object at `key`, in log order (undefined:
   * none): those of every group not applied, the staging one included.
   */
  writes(key: number): Entry[] | undefined {
    return this.pending.writes(this.#queue, this.#staging, key);
  }

  /** Seal the staging group: one persist commits its transactions. */
  seal(): void {
    const g = this.#staging;
    if (g === undefined) return;
    this.#staging = undefined;
    if (g.txs === 0) return;
    try {
      this.log.seal(g);
    } catch (e) {
      g.state = FAILED;
      g.error = e;
      this.#fail(e);
      return;
    }
    this.#queue.push(g);
  }

  /**
   * Apply every sealed group on this thread (waiting for a batch in
   * flight). Nothing is staged (callers seal first), so once the queue is
   * empty no write or allocation is pending: the pending views are
   * cleared whole rather than group by group.
   */
  drain(): void {
    const q = this.#queue;
    if (q.length === 0) return;
    const whole = this.#staging === undefined;
    for (let i = 0; i < q.length; i++) {
      const g = q[i];
      if (g.state === APPLYING) {
        try {
          wait(g.apply!);
        } catch (e) {
          if (!this.#appliedHere(g, e)) return;
        }
        this.#moved(g);
      } else if (g.state === COMMITTED) {
        try {
          this.log.applyAll(g);
        } catch (e) {
          this.#fail(e);
          return;
        }
      }
      if (!whole) this.pending.unpend(g);
      this.#done(g);
    }
    this.#queue = [];
    if (whole) this.pending.clear();
  }

  /**
   * Move the apply queue on without blocking: start the oldest group's
   * application, or poll its batch. Returns when a batch is in flight.
   */
  advance(ctx: PollContext): void {
    const q = this.#queue;
    while (q.length > 0) {
      const g = q[0];
      if (g.state === COMMITTED) this.#start(g);
      if (g.state === APPLYING) {
        const state = g.apply!.poll(ctx);
        if (state === "failed") {
          // (a closed mover's batch: applied here instead)
          if (!this.#appliedHere(g, g.apply!.error)) return;
        } else if (state !== "complete") return;
        this.#moved(g);
      } else if (g.state !== APPLIED) return;
      this.pending.unpend(g);
      this.#done(g);
      q.shift();
    }
    if (this.log.full) this.#checkpoint();
  }

  /**
   * Finish applying the oldest group if its mover batch is in flight
   * (waiting for the batch). Its short entries were applied when the batch
   * started and its long ones are being copied: a read outside a
   * transaction meanwhile would see part of its transactions.
   *
   * @throws {PmemError} code -5 (EIO) when the batch failed
   */
  settle(op: string): void {
    const q = this.#queue;
    if (q.length === 0 || q[0].state !== APPLYING) return;
    const g = q[0];
    try {
      wait(g.apply!);
    } catch (e) {
      if (!this.#appliedHere(g, e)) this.live(op);
    }
    this.#moved(g);
    this.pending.unpend(g);
    this.#done(g);
    q.shift();
  }

  /** Start applying a group: on this thread, or partly by one mover batch. */
  #start(g: Group): void {
    try {
      const f = this.#applier.start(g);
      if (f === undefined) g.state = APPLIED;
      else {
        g.apply = f;
        g.state = APPLYING;
      }
    } catch (e) {
      this.#fail(e);
    }
  }

  /**
   * A group's mover batch failed with `e`: whether the group was applied
   * on this thread instead (a closed mover's refusal: see
   * `Applier.appliedHere`). Otherwise the pool is stopped, with `e`, or
   * with the failure of that application (the pool's own mapping
   * broken): it escaped the drain, advance or settle, and left the
   * group queued, half applied, for the next call to apply again.
   */
  #appliedHere(g: Group, e: unknown): boolean {
    let failure = e;
    try {
      if (this.#applier.appliedHere(g, e)) return true;
    } catch (applying) {
      failure = applying;
    }
    this.#fail(failure);
    return false;
  }

  /** A group's mover batch completed: its homes are dirty. */
  #moved(g: Group): void {
    this.#applier.moved(g);
    g.apply = undefined;
  }

  /** A group is applied: its transactions' effects run. */
  #done(g: Group): void {
    g.state = APPLIED;
    g.items = null;
    g.gens = null;
    g.gensIndexed = 0;
    const done = g.done;
    if (done !== null) {
      g.done = null;
      for (let i = 0; i < done.length; i += 2) {
        (done[i] as TxEffects<unknown>).applied(done[i + 1]);
      }
    }
  }

  /**
   * Persist the homes and move the checkpoint past every record, unless
   * the pool stopped: a group that failed to apply may be half applied,
   * and its record must stay in the log for recovery to replay whole.
   */
  #checkpoint(): void {
    if (this.#broken !== undefined) return;
    try {
      this.log.checkpoint();
    } catch (e) {
      this.#fail(e);
    }
  }

  /** Stop the pool: every group not applied fails with `e`. */
  #fail(e: unknown): void {
    if (this.#broken === undefined) this.#broken = e;
    for (const g of this.#queue) {
      // (a drain leaves the groups it applied queued until its end: one
      // applied before the failure stays so, its transactions done)
      if (g.state === APPLIED) continue;
      g.state = FAILED;
      g.error = e;
    }
    this.#queue = [];
    if (this.#staging !== undefined) {
      this.#staging.state = FAILED;
      this.#staging.error = e;
      this.#staging = undefined;
    }
  }

  /** Seal, apply and checkpoint everything, then refuse further work. */
  close(): void {
    if (this.#closed) return;
    try {
      if (this.#broken === undefined) {
        this.seal();
        this.drain();
        if (this.#broken === undefined) this.log.checkpoint();
      }
    } finally {
      this.#closed = true;
    }
  }

  /** Apply and checkpoint everything now (the pool stays open). */
  flush(op: string): void {
    this.live(op);
    if (this.current !== undefined) {
      throw new TypeError(`Cannot ${op} inside a transaction`);
    }
    this.seal();
    this.drain();
    this.#checkpoint();
    this.live(op);
  }
}
