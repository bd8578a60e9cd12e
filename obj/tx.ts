// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * {@linkcode Transaction}: what a transaction's callback gets. Every
 * change is a redo entry staged into the pool's log; nothing reaches an
 * object's home before the transaction's record is durable. Reads see the
 * transaction's own writes and those of the transactions staged before
 * it (`obj/tx_read.ts`). An object allocated in the transaction is built
 * in the log (`obj/tx_fresh.ts`); the heap's changes of its allocations
 * and frees are entries of its group (`obj/tx_heap.ts`).
 *
 * The common path allocates little: the undo list, the fresh objects and
 * the effects exist only once something needs them, and a handle checked
 * once is not checked again until the transaction frees something.
 *
 * @module
 */
import { ClosedError } from "../errors/mod.ts";
import {
  byteLengthOf,
  checkAttached,
  isBytes,
  notConstructible,
  readOptions,
} from "../ffi/validate.ts";
import { StaleObjectError } from "./errors.ts";
import type { Engine } from "./engine.ts";
import { newHandle, type ObjectHandle } from "./handle.ts";
import {
  badAlloc,
  badRange,
  checkNumber,
  load32,
  numberText,
  toU64,
  u64Big,
  u64Number,
} from "./object_bytes.ts";
import { OBJECT_HEADER, TYPE_INTERNAL, TYPE_ROOT } from "./layout.ts";
import { type Group, NO_KEY } from "./log_group.ts";
import { freedObject } from "./pending.ts";
import {
  freshAt,
  LARGE,
  logFree,
  logUnwritten,
  stageFresh,
  UNWRITTEN,
} from "./tx_fresh.ts";
import { allocFresh, heapLogFor, takeBack } from "./tx_heap.ts";
import { directAt, load32At, readAt } from "./tx_read.ts";
import type { TxControl } from "./tx_run.ts";

/** Largest object. */
export const MAX_OBJECT = 2 ** 31;

/**
 * Volatile state kept in step with transactions (a map's index): told of
 * each item a transaction staged once it is applied, or when it aborts.
 * Objects, not closures: a closure per operation cost more than the
 * operation's bookkeeping on some runtimes. Internal.
 */
export interface TxEffects<T> {
  /** The transaction that staged `item` is applied (in log order). */
  applied(item: T): void;
  /** The transaction that staged `item` aborted (newest first). */
  aborted(item: T): void;
}

/** Options of {@linkcode Transaction.alloc}. */
export interface AllocOptions {
  /** A type number kept in the object's header (0 to 2^31-1). @default 0 */
  type?: number;
}

/** The one {@linkcode TxControl}. Internal. */
export let txControl: TxControl;

/**
 * What the pool's own code (its root, its maps' catalog and objects) does
 * in a transaction beyond the public methods: allocate, free and write
 * its internal objects and the state page, and hear of the transaction's
 * end. Kept off the {@linkcode Transaction} a callback is handed, where a
 * call wrote anywhere in the pool (`writeState(0, ...)` wiped its
 * header) or freed a map's node. Each throws `ClosedError` once the
 * transaction ended. Internal to `obj/`.
 */
export interface TxHooks {
  /** Allocate an object of an internal type. */
  allocInternal(tx: Transaction, size: number, type: number): ObjectHandle;
  /** Allocate an object of an internal type: its offset (no handle). */
  allocInternalAt(tx: Transaction, size: number, type: number): number;
  /** Free the live object at `offset`, an internal one included. */
  freeInternal(tx: Transaction, offset: number): void;
  /**
   * Let the writes that follow reach the pool's own objects until
   * `endInternalWrites` with the value returned.
   */
  beginInternalWrites(tx: Transaction): boolean;
  /** End what `beginInternalWrites` began. */
  endInternalWrites(tx: Transaction, was: boolean): void;
  /**
   * Store a u64 below 2^53 at `offset` of an internal object known live
   * and large enough, with no handle check.
   */
  setU64Internal(
    tx: Transaction,
    o: ObjectHandle,
    offset: number,
    value: number,
  ): void;
  /** Log a write to the state page (root, catalog). */
  writeState(tx: Transaction, target: number, bytes: Uint8Array): void;
  /** Run `fn` on abort (undo of volatile changes), newest first. */
  onAbort(tx: Transaction, fn: () => void): void;
  /** Tell `target` about `item` once the transaction is applied or aborts. */
  effect<T>(tx: Transaction, target: TxEffects<T>, item: T): void;
}

/** The one {@linkcode TxHooks}. Internal. */
export let txHooks: TxHooks;

/**
 * A running transaction, handed to the callback of `pool.tx` and
 * `pool.txAsync`. It is valid only while the callback runs. If the
 * callback throws, nothing it did takes effect.
 *
 * @example Usage
 * ```ts
 * import { ObjectPool } from "@asyncpmem/asyncpmem/obj";
 * import assert from "node:assert/strict";
 * import { mkdtempSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 *
 * const path = join(mkdtempSync(join(tmpdir(), "asyncpmem-")), "pool");
 * using pool = ObjectPool.create(path, { size: 8 << 20, layout: "demo" });
 * const root = pool.root(64);
 * pool.tx((tx) => {
 *   const o = tx.alloc(16);
 *   tx.write(o, 0, new TextEncoder().encode("hello"));
 *   tx.setU64(root, 0, o.offset);
 *   assert.equal(tx.getU64(root, 0), o.offset); // reads see the writes
 * });
 * assert.equal(pool.getU64(root, 0), pool.object(pool.getU64(root, 0)).offset);
 * ```
 */
export class Transaction {
  #e: Engine;
  /** Between `beginInternalWrites` and its end. */
  #internal = false;
  #g: Group;
  #size0: number;
  #count0: number;
  #sync: boolean;
  #undo: (() => void)[] | null = null;
  /** Small objects allocated and not written yet. */
  #unwritten = 0;
  /**
   * Length of the group's effect list when the transaction began: its own
   * effects follow (staged there directly, no list of its own; an abort
   * takes them back out).
   */
  #done0: number;
  #open = true;
  /** Whether what it staged was taken back (an abort, or a cut). */
  #undone = false;
  #failure: unknown = undefined;
  /** A handle found live since the last free (checked again after one). */
  #checked: ObjectHandle | null = null;

  private constructor(engine: Engine, group: Group, sync: boolean) {
    if (engine === undefined) {
      notConstructible(
        "Transaction",
        "transactions are made by ObjectPool.tx() and ObjectPool.txAsync()",
      );
    }
    this.#e = engine;
    this.#g = group;
    this.#size0 = group.end - group.start;
    this.#count0 = group.count;
    this.#done0 = group.done === null ? 0 : group.done.length;
    this.#sync = sync;
  }

  static {
    txControl = {
      begin(engine, group, sync) {
        const tx = new Transaction(engine, group, sync);
        engine.current = tx;
        return tx;
      },
      end: (tx) => tx.#end(),
      abort: (tx) => tx.#abort(),
      failure: (tx) => tx.#failure,
      doom(tx, error) {
        if (tx.#failure === undefined) tx.#failure = error;
      },
      cut(tx, error) {
        if (tx.#failure === undefined) tx.#failure = error;
        try {
          tx.#undoAll();
        } catch {
          // an onAbort callback threw: the others ran, and the
          // transaction already fails with `error` (thrown here, it
          // would fail the poll that seals the group instead)
        }
      },
      stage: (tx, offset, op) => tx.#stage(offset, op),
    };
    txHooks = {
      allocInternal: (tx, size, type) => tx.#allocInternal(size, type),
      allocInternalAt: (tx, size, type) => tx.#allocInternalAt(size, type),
      freeInternal: (tx, offset) => tx.#freeInternal(offset),
      beginInternalWrites: (tx) => tx.#beginInternalWrites(),
      endInternalWrites: (tx, was) => tx.#endInternalWrites(was),
      setU64Internal: (tx, o, offset, value) =>
        tx.#setU64Internal(o, offset, value),
      writeState: (tx, target, bytes) => tx.#writeState(target, bytes),
      onAbort: (tx, fn) => tx.#onAbort(fn),
      effect: (tx, target, item) => tx.#effect(target, item),
    };
  }

  #live(op: string): void {
    this.#ended(op);
    if (this.#failure !== undefined) throw this.#failure;
  }

  /**
   * Throw once the transaction ended. The internal hooks take only this
   * check, not a doomed one's failure: they run in a doomed transaction's
   * cleanup (`endInternalWrites` in a `finally`), where throwing would hide
   * the failure.
   */
  #ended(op: string): void {
    if (!this.#open) throw new ClosedError("Transaction", op);
  }

  #onUndo(fn: () => void): void {
    (this.#undo ??= []).push(fn);
  }

  /**
   * Allocate a zeroed object of `size` bytes. It is published when the
   * transaction commits; if the transaction aborts or a crash comes
   * first, the space is free again.
   *
   * @throws {TypeError} for a size or type that is not a number, or
   *   options that are no object or hold a key other than `type`
   * @throws {RangeError} for a size that is not an integer in [1, 2^31)
   *   (like `pmemobj_tx_alloc`, no object of 0 bytes), or a type that is
   *   not one in [0, 2^31)
   * @throws {OutOfSpaceError} when the pool has no room (nothing changed)
   */
  alloc(size: number, options?: AllocOptions): ObjectHandle {
    this.#live("alloc");
    if (!Number.isInteger(size) || size < 1 || size >= MAX_OBJECT) {
      badAlloc("size", size);
    }
    // checked as every call's options are (an object, no unknown key):
    // `alloc(64, 7)` meant as a type was taken as type 0
    const type = options === undefined
      ? 0
      : readOptions(options, ["type"], "alloc").type ?? 0;
    if (!Number.isInteger(type) || type < 0 || type >= TYPE_INTERNAL) {
      badAlloc("type", type);
    }
    const e = this.#e;
    const f = allocFresh(e, this.#g, size, type, "alloc");
    if (f.rel === UNWRITTEN) this.#unwritten++;
    return newHandle(e.token, f.block + OBJECT_HEADER, size, type, f.gen);
  }

  /** Allocate an object of an internal type. Internal. */
  #allocInternal(size: number, type: number): ObjectHandle {
    this.#live("alloc");
    const e = this.#e;
    const f = allocFresh(e, this.#g, size, type, "alloc");
    if (f.rel === UNWRITTEN) this.#unwritten++;
    return newHandle(e.token, f.block + OBJECT_HEADER, size, type, f.gen);
  }

  /**
   * Allocate an object of an internal type: its offset (no handle is
   * made, for a caller that needs none). Internal.
   */
  #allocInternalAt(size: number, type: number): number {
    this.#live("alloc");
    const f = allocFresh(this.#e, this.#g, size, type, "alloc");
    if (f.rel === UNWRITTEN) this.#unwritten++;
    return f.block + OBJECT_HEADER;
  }

  /**
   * Free an object. The pool's reads (`pool.read`, `pool.view`) still see
   * it until the transaction is applied, and its handles are stale
   * afterwards; to this transaction's own reads and writes (`tx.read`,
   * `tx.write`, the getters) it is gone at once, as to the transactions
   * started after it: they throw `StaleObjectError`.
   *
   * @throws {TypeError} for the root object, or a handle of another pool
   * @throws {StaleObjectError} for an object already freed
   */
  free(o: ObjectHandle): void {
    this.#live("free");
    this.#check(o, "free");
    if (o.type >= TYPE_INTERNAL) {
      throw new TypeError(
        "Cannot free: the object belongs to the pool (the root, a map's structure)",
      );
    }
    this.#freeInternal(o.offset);
  }

  /**
   * Free the live object at `offset`, an internal one included (the
   * caller knows it is live). Internal.
   */
  #freeInternal(offset: number): void {
    this.#live("free");
    const e = this.#e;
    const g = this.#g;
    const f = freshAt(e, offset);
    this.#checked = null;
    // the heap first: `logFree` changes a copy staged in the log in
    // place, which nothing could take back if the heap's entries then
    // found the log out of room; a free that fails is taken back whole
    const size0 = g.end - g.start;
    const count0 = g.count;
    const mark = e.heap.mark;
    try {
      e.heap.free(offset - OBJECT_HEADER, heapLogFor(e, g));
      logFree(e, g, f, offset);
    } catch (err) {
      takeBack(e, g, size0, count0, mark);
      throw err;
    }
    if (f !== undefined && f.rel === UNWRITTEN) this.#unwritten--;
    e.locals.set(offset, freedObject());
  }

  /**
   * A handle to the live object at `offset` as the transactions staged so
   * far leave it (one allocated by this transaction or one started before
   * it included).
   *
   * @throws {StaleObjectError} when no live object starts there
   */
  object(offset: number): ObjectHandle {
    this.#live("object");
    const e = this.#e;
    const p = e.locals.get(offset) ?? e.pendingObject(offset);
    if (p === undefined) return e.objectAt(offset, "object", true);
    if (p.gen === 0) throw new StaleObjectError("object", offset);
    return newHandle(e.token, offset, p.size, p.type, p.gen);
  }

  /** Check a handle (once until the transaction frees something). */
  #check(o: ObjectHandle, op: string): void {
    // (`#checked` starts and is reset as null, which no handle is)
    if (o === this.#checked && o !== null) return;
    this.#e.check(o, op);
    this.#checked = o;
  }

  /**
   * Refuse a write to an object of the pool's own (a map's descriptor,
   * directory, leaf or node; `pool.object(offset)` hands out handles to
   * them) unless the pool's code writes it: a stray write broke a map. The
   * root is the user's.
   */
  #ours(o: ObjectHandle, op: string): void {
    if (this.#internal || o.type === TYPE_ROOT) return;
    throw new TypeError(
      `Cannot ${op}: the object belongs to the pool (a map's structure)`,
    );
  }

  /**
   * Let the writes that follow reach the pool's own objects (a map's
   * structure) until `endInternalWrites` with the value returned.
   */
  #beginInternalWrites(): boolean {
    this.#ended("beginInternalWrites");
    const was = this.#internal;
    this.#internal = true;
    return was;
  }

  /** End what `beginInternalWrites` began. */
  #endInternalWrites(was: boolean): void {
    this.#ended("endInternalWrites");
    this.#internal = was;
  }

  /** Check a handle and a range of its object. */
  #range(o: ObjectHandle, offset: number, length: number, op: string): void {
    this.#live(op);
    this.#check(o, op);
    // the integer tests first: a bigint must not reach the sum
    if (
      !Number.isInteger(offset) || !Number.isInteger(length) ||
      !(offset >= 0 && length >= 0 && offset + length <= o.size)
    ) badRange(o.size, offset, length, op);
  }

  /**
   * Where the data of a small object allocated by this transaction lies
   * in the log (its copy staged now if it was not written yet), or -1 for
   * any other object. Valid until the next entry is staged.
   */
  #stage(offset: number, op: string): number {
    const e = this.#e;
    const f = freshAt(e, offset);
    if (f === undefined || f.rel === LARGE) return -1;
    if (f.rel === UNWRITTEN) {
      const at = stageFresh(e, this.#g, f, offset, op);
      this.#unwritten--;
      return at;
    }
    return e.log.at(this.#g, f.rel) + OBJECT_HEADER;
  }

  /**
   * Write `bytes` at `offset` of an object.
   *
   * @throws {RangeError} when the range leaves the object
   * @throws {StaleObjectError} for a freed object
   * @throws {TypeError} for an object of the pool's own (a map's structure)
   * @throws {TypeError} when `bytes` is detached (its buffer transferred,
   *   or a view of a closed pool): a bad argument
   */
  write(o: ObjectHandle, offset: number, bytes: Uint8Array): void {
    if (!isBytes(bytes)) {
      throw new TypeError("Cannot write: bytes must be a Uint8Array");
    }
    // a detached array has no bytes: it would write nothing and commit
    checkAttached(bytes, "bytes", "write");
    // the engine's length (see `byteLengthOf`), not `bytes.length`: a
    // subclass claiming fewer bytes passed the bounds check, then the copy
    // wrote all of them past the object (or its log entry)
    const n = byteLengthOf(bytes);
    this.#range(o, offset, n, "write");
    if (o.type >= TYPE_INTERNAL) this.#ours(o, "write");
    if (n === 0) return;
    const at = this.#stage(o.offset, "write");
    if (at >= 0) {
      this.#e.media.set(bytes, at + offset);
      return;
    }
    this.#e.log.copy(
      this.#g,
      o.offset + offset,
      bytes,
      0,
      n,
      "write",
      o.offset,
    );
  }

  /**
   * Store a u64 (a number below 2^53, or a bigint below 2^64) at `offset`.
   * Read one above 2^53 back with `getBigU64`.
   *
   * @throws {TypeError} for a value that is neither a number nor a bigint
   * @throws {RangeError} for a value that is no u64, a number past 2^53,
   *   or a range that leaves the object
   * @throws {TypeError} for an object of the pool's own (a map's structure)
   */
  setU64(o: ObjectHandle, offset: number, value: number | bigint): void {
    this.#range(o, offset, 8, "setU64");
    if (o.type >= TYPE_INTERNAL) this.#ours(o, "setU64");
    let lo: number;
    let hi: number;
    if (typeof value === "number") {
      if (!Number.isSafeInteger(value) || value < 0) toU64(value, "setU64");
      lo = value >>> 0;
      hi = (value - lo) / 2 ** 32;
    } else {
      const v = toU64(value, "setU64");
      lo = Number(v & 0xffffffffn);
      hi = Number(v >> 32n);
    }
    const at = this.#stage(o.offset, "setU64");
    if (at >= 0) {
      this.#e.media.store32(at + offset, lo);
      this.#e.media.store32(at + offset + 4, hi);
      return;
    }
    this.#e.log.word(this.#g, o.offset + offset, lo, hi, "setU64", o.offset);
  }

  /**
   * Store a u64 below 2^53 at `offset` of an internal object the caller
   * knows is live and large enough (a map's leaf): no handle check, so no
   * pending object is looked up. Internal.
   */
  #setU64Internal(o: ObjectHandle, offset: number, value: number): void {
    this.#live("setU64");
    const lo = value >>> 0;
    const hi = (value - lo) / 2 ** 32;
    const at = this.#stage(o.offset, "setU64");
    if (at >= 0) {
      this.#e.media.store32(at + offset, lo);
      this.#e.media.store32(at + offset + 4, hi);
      return;
    }
    this.#e.log.word(this.#g, o.offset + offset, lo, hi, "setU64", o.offset);
  }

  /**
   * Store a u32 at `offset`.
   *
   * @throws {TypeError} for an object of the pool's own (a map's structure)
   */
  setU32(o: ObjectHandle, offset: number, value: number): void {
    this.#range(o, offset, 4, "setU32");
    if (o.type >= TYPE_INTERNAL) this.#ours(o, "setU32");
    if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
      checkNumber(value, "setU32: value");
      throw new RangeError(`Cannot setU32: ${numberText(value)} is not a u32`);
    }
    const at = this.#stage(o.offset, "setU32");
    const e = this.#e;
    if (at >= 0) {
      e.media.store32(at + offset, value);
      return;
    }
    const p = e.log.open(this.#g, o.offset + offset, 4, "setU32", o.offset);
    e.media.setU32(p, value);
  }

  /**
   * A copy of `length` bytes at `offset` of an object, with the writes of
   * this transaction and of those staged before it.
   */
  read(o: ObjectHandle, offset: number, length: number): Uint8Array {
    this.#range(o, offset, length, "read");
    return readAt(this.#e, this.#g, o, offset, length);
  }

  /**
   * The u64 at `offset`, as a number, as this transaction sees it. A u64
   * above `Number.MAX_SAFE_INTEGER` (2^53 - 1) has no exact number: read
   * it with {@linkcode Transaction.getBigU64}.
   *
   * @throws {RangeError} when the range leaves the object, or the value
   *   is above `Number.MAX_SAFE_INTEGER`
   */
  getU64(o: ObjectHandle, offset: number): number {
    this.#range(o, offset, 8, "getU64");
    const direct = directAt(this.#e, this.#g, o, offset);
    if (direct === -2) return 0;
    if (direct >= 0) {
      const media = this.#e.media;
      return u64Number(
        media.load32(direct),
        media.load32(direct + 4),
        "getU64",
      );
    }
    const b = readAt(this.#e, this.#g, o, offset, 8);
    return u64Number(load32(b, 0), load32(b, 4), "getU64");
  }

  /**
   * The u64 at `offset`, as a bigint, as this transaction sees it: exact
   * for every u64.
   *
   * @example Usage
   * ```ts
   * import { ObjectPool } from "@asyncpmem/asyncpmem/obj";
   * import assert from "node:assert/strict";
   * import { mkdtempSync } from "node:fs";
   * import { tmpdir } from "node:os";
   * import { join } from "node:path";
   *
   * const path = join(mkdtempSync(join(tmpdir(), "asyncpmem-")), "pool");
   * using pool = ObjectPool.create(path, { size: 8 << 20, layout: "demo" });
   * const root = pool.root(8);
   * pool.tx((tx) => {
   *   tx.setU64(root, 0, 2n ** 64n - 1n);
   *   assert.equal(tx.getBigU64(root, 0), 18446744073709551615n);
   * });
   * ```
   *
   * @throws {RangeError} when the range leaves the object
   */
  getBigU64(o: ObjectHandle, offset: number): bigint {
    this.#range(o, offset, 8, "getBigU64");
    const direct = directAt(this.#e, this.#g, o, offset);
    if (direct === -2) return 0n;
    if (direct >= 0) {
      const media = this.#e.media;
      return u64Big(media.load32(direct), media.load32(direct + 4));
    }
    const b = readAt(this.#e, this.#g, o, offset, 8);
    return u64Big(load32(b, 0), load32(b, 4));
  }

  /** The u32 at `offset`. */
  getU32(o: ObjectHandle, offset: number): number {
    this.#range(o, offset, 4, "getU32");
    return load32At(this.#e, this.#g, o, offset);
  }

  /** Log a write to the state page (root, catalog). Internal. */
  #writeState(target: number, bytes: Uint8Array): void {
    this.#live("write");
    this.#e.log.copy(this.#g, target, bytes, 0, bytes.length, "write", NO_KEY);
  }

  /**
   * Run `fn` on abort (undo of volatile changes), newest first. Internal.
   *
   * @throws {TypeError} when `fn` is no function
   */
  #onAbort(fn: () => void): void {
    // kept past its end, the callback would never run
    this.#ended("onAbort");
    // refused here: at the abort it would fail it in the abort's words
    if (typeof fn !== "function") {
      throw new TypeError("Cannot onAbort: fn must be a function");
    }
    this.#onUndo(fn);
  }

  /**
   * Tell `target` about `item` once the transaction is applied, or when
   * it aborts (effects abort newest first). Internal.
   *
   * @internal
   */
  #effect<T>(target: TxEffects<T>, item: T): void {
    // kept past its end, the effect would join the group of later
    // transactions (an asynchronous one stages several), and be told of
    // their outcome
    this.#ended("effect");
    (this.#g.done ??= []).push(target, item);
  }

  /**
   * Log the small objects never written, publish the objects allocated
   * and freed (asynchronous: transactions staged after it see them); the
   * transaction is done.
   */
  #end(): void {
    const e = this.#e;
    const g = this.#g;
    if (this.#unwritten > 0) {
      try {
        logUnwritten(e, g);
      } catch (err) {
        this.#abort();
        throw err;
      }
    }
    this.#open = false;
    g.txs++;
    e.heap.settle();
    if (!this.#sync) e.pending.publish(g, e.locals);
    e.locals.clear();
    e.current = undefined;
  }

  /** Undo everything the transaction staged; it is over. */
  #abort(): void {
    const e = this.#e;
    this.#open = false;
    try {
      this.#undoAll();
    } finally {
      // an onAbort callback that threw fails the transaction with its
      // error, but the pool's running transaction must end all the same:
      // kept, every later one failed and the pool could not be closed
      e.current = undefined;
      e.locals.clear();
      e.abandon(this.#g);
    }
  }

  /**
   * Take back everything the transaction staged (once: a transaction cut
   * while its callback runs is not undone again when it ends).
   */
  #undoAll(): void {
    if (this.#undone) return;
    this.#undone = true;
    const e = this.#e;
    const g = this.#g;
    e.pending.truncate(g, this.#size0, this.#count0);
    e.heap.rollback();
    const done = g.done;
    if (done !== null && done.length > this.#done0) {
      for (let i = done.length - 2; i >= this.#done0; i -= 2) {
        (done[i] as TxEffects<unknown>).aborted(done[i + 1]);
      }
      done.length = this.#done0;
    }
    const undo = this.#undo;
    if (undo !== null) {
      this.#undo = null;
      // every callback runs (each undoes its own volatile change), then
      // the first error of one is thrown
      let failed = false, error: unknown;
      for (let i = undo.length - 1; i >= 0; i--) {
        try {
          undo[i]();
        } catch (err) {
          if (!failed) [failed, error] = [true, err];
        }
      }
      if (failed) throw error;
    }
  }
}
