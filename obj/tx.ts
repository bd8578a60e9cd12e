// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * {@linkcode Transaction}: what a transaction's callback gets. Every
 * change is a redo entry staged into the pool's log; nothing reaches an
 * object's home before the transaction's record is durable. Reads see the
 * transaction's own writes and those of the transactions staged before
 * it (`obj/tx_read.ts`). An object allocated in the transaction is built
 * in the log (`obj/tx_fresh.ts`); the heap's changes of its allocations
 * and frees are entries of its group (`obj/tx_heap.ts`). The class checks
 * its arguments; its state and what changes it, its end included, are
 * its {@linkcode TxCore} (`obj/tx_core.ts`).
 *
 * The common path allocates little: the undo list, the fresh objects and
 * the effects exist only once something needs them, and a handle checked
 * once is not checked again until the transaction frees something.
 *
 * @module
 */
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
  checkNumber,
  load32,
  numberText,
  toU64,
  u64Big,
  u64Number,
} from "./object_bytes.ts";
import { TYPE_INTERNAL } from "./layout.ts";
import type { Group } from "./log_group.ts";
import { TxCore } from "./tx_core.ts";
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
  #c: TxCore;

  private constructor(engine: Engine, group: Group, sync: boolean) {
    if (engine === undefined) {
      notConstructible(
        "Transaction",
        "transactions are made by ObjectPool.tx() and ObjectPool.txAsync()",
      );
    }
    this.#c = new TxCore(engine, group, sync);
  }

  static {
    txControl = {
      begin(engine, group, sync) {
        const tx = new Transaction(engine, group, sync);
        engine.current = tx;
        return tx;
      },
      end: (tx) => tx.#c.end(),
      abort: (tx) => tx.#c.abort(),
      failure: (tx) => tx.#c.failure,
      doom: (tx, error) => tx.#c.doom(error),
      cut: (tx, error) => tx.#c.cut(error),
      stage: (tx, offset, op) => tx.#c.stage(offset, op),
    };
    txHooks = {
      allocInternal(tx, size, type) {
        const c = tx.#c;
        c.live("alloc");
        return c.alloc(size, type);
      },
      allocInternalAt: (tx, size, type) => tx.#c.allocAt(size, type),
      freeInternal: (tx, offset) => tx.#c.free(offset),
      beginInternalWrites: (tx) => tx.#c.beginInternalWrites(),
      endInternalWrites: (tx, was) => tx.#c.endInternalWrites(was),
      setU64Internal: (tx, o, offset, value) =>
        tx.#c.setU64Internal(o, offset, value),
      writeState: (tx, target, bytes) => tx.#c.writeState(target, bytes),
      onAbort: (tx, fn) => tx.#c.onAbort(fn),
      effect: (tx, target, item) => tx.#c.effect(target, item),
    };
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
    const c = this.#c;
    c.live("alloc");
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
    return c.alloc(size, type);
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
    const c = this.#c;
    c.live("free");
    c.check(o, "free");
    if (o.type >= TYPE_INTERNAL) {
      throw new TypeError(
        "Cannot free: the object belongs to the pool (the root, a map's structure)",
      );
    }
    c.free(o.offset);
  }

  /**
   * A handle to the live object at `offset` as the transactions staged so
   * far leave it (one allocated by this transaction or one started before
   * it included).
   *
   * @throws {StaleObjectError} when no live object starts there
   */
  object(offset: number): ObjectHandle {
    const c = this.#c;
    c.live("object");
    const e = c.e;
    const p = e.locals.get(offset) ?? e.pendingObject(offset);
    if (p === undefined) return e.objectAt(offset, "object", true);
    if (p.gen === 0) throw new StaleObjectError("object", offset);
    return newHandle(e.token, offset, p.size, p.type, p.gen);
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
    const c = this.#c;
    if (!isBytes(bytes)) {
      throw new TypeError("Cannot write: bytes must be a Uint8Array");
    }
    // a detached array has no bytes: it would write nothing and commit
    checkAttached(bytes, "bytes", "write");
    // the engine's length (see `byteLengthOf`), not `bytes.length`: a
    // subclass claiming fewer bytes passed the bounds check, then the copy
    // wrote all of them past the object (or its log entry)
    const n = byteLengthOf(bytes);
    c.range(o, offset, n, "write");
    if (o.type >= TYPE_INTERNAL) c.ours(o, "write");
    if (n === 0) return;
    const at = c.stage(o.offset, "write");
    if (at >= 0) {
      c.e.media.set(bytes, at + offset);
      return;
    }
    c.e.log.copy(
      c.g,
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
    const c = this.#c;
    c.range(o, offset, 8, "setU64");
    if (o.type >= TYPE_INTERNAL) c.ours(o, "setU64");
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
    c.storeU64(o, offset, lo, hi);
  }

  /**
   * Store a u32 at `offset`.
   *
   * @throws {TypeError} for an object of the pool's own (a map's structure)
   */
  setU32(o: ObjectHandle, offset: number, value: number): void {
    const c = this.#c;
    c.range(o, offset, 4, "setU32");
    if (o.type >= TYPE_INTERNAL) c.ours(o, "setU32");
    if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
      checkNumber(value, "setU32: value");
      throw new RangeError(`Cannot setU32: ${numberText(value)} is not a u32`);
    }
    const at = c.stage(o.offset, "setU32");
    const e = c.e;
    if (at >= 0) {
      e.media.store32(at + offset, value);
      return;
    }
    const p = e.log.open(c.g, o.offset + offset, 4, "setU32", o.offset);
    e.media.setU32(p, value);
  }

  /**
   * A copy of `length` bytes at `offset` of an object, with the writes of
   * this transaction and of those staged before it.
   */
  read(o: ObjectHandle, offset: number, length: number): Uint8Array {
    const c = this.#c;
    c.range(o, offset, length, "read");
    return readAt(c.e, c.g, o, offset, length);
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
    const c = this.#c;
    c.range(o, offset, 8, "getU64");
    const direct = directAt(c.e, c.g, o, offset);
    if (direct === -2) return 0;
    if (direct >= 0) {
      const media = c.e.media;
      return u64Number(
        media.load32(direct),
        media.load32(direct + 4),
        "getU64",
      );
    }
    const b = readAt(c.e, c.g, o, offset, 8);
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
    const c = this.#c;
    c.range(o, offset, 8, "getBigU64");
    const direct = directAt(c.e, c.g, o, offset);
    if (direct === -2) return 0n;
    if (direct >= 0) {
      const media = c.e.media;
      return u64Big(media.load32(direct), media.load32(direct + 4));
    }
    const b = readAt(c.e, c.g, o, offset, 8);
    return u64Big(load32(b, 0), load32(b, 4));
  }

  /** The u32 at `offset`. */
  getU32(o: ObjectHandle, offset: number): number {
    const c = this.#c;
    c.range(o, offset, 4, "getU32");
    return load32At(c.e, c.g, o, offset);
  }
}
