// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * {@linkcode ObjectPool}: a transactional object store in one file, with
 * asynchronous redo logs (libpmemobj's planned design: the entries of a
 * committed log are applied concurrently, by the pool's data mover). Its
 * root object is made and grown by `obj/pool_root.ts`.
 *
 * @module
 */
import { ClosedError } from "../errors/mod.ts";
import { notConstructible } from "../ffi/validate.ts";
import type { Mapping } from "../pmem2/mapping.ts";
import type { FileLock } from "../pmem2/file_lock.ts";
import type { Future, FutureOptions } from "../future/future.ts";
import type { Vdm } from "../mover/vdm.ts";
import type { Engine } from "./engine.ts";
import type { ObjectHandle } from "./handle.ts";
import { FAILED } from "./log_group.ts";
import { badRange, u64Big, u64Number } from "./object_bytes.ts";
import {
  createPool,
  type Opened,
  openPool,
  type RecoveryReport,
} from "./open.ts";
import type {
  ObjectPoolCreateOptions,
  ObjectPoolOpenOptions,
  ObjectPoolStats,
} from "./pool_options.ts";
import { rootObject } from "./pool_root.ts";
import type { Transaction } from "./tx.ts";
import { startTxAsync } from "./tx_async.ts";
import { runNested, runTransaction } from "./tx_run.ts";

/**
 * The engine of an open `pool` (its `#engine`, once `op` found it open),
 * granted by the class's static block; `obj/pool_access.ts` uses it.
 * Internal.
 */
export let engineOf: (pool: ObjectPool, op: string) => Engine;
/**
 * An `ObjectPool` over an opened file (the private constructor), granted
 * by the class's static block; `obj/pool_access.ts` uses it. Internal.
 */
export let construct: (o: Opened) => ObjectPool;

/**
 * A transactional object store: allocate, write and free objects in
 * all-or-nothing transactions that are durable when they return (or, for
 * {@linkcode ObjectPool.txAsync}, when their future completes).
 *
 * A transaction's changes are redo entries: its callback runs at once
 * and stages them into the log; one persist of the log record commits it
 * (with every other transaction staged in the same record); then the
 * entries are applied to the objects, by the pool's mover for
 * asynchronous transactions. Objects' pages are persisted in the
 * background of later transactions, at checkpoints.
 *
 * Outside a transaction, reads see the transactions that completed; inside
 * one, also those started before it.
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
 * {
 *   using pool = ObjectPool.create(path, { size: 8 << 20, layout: "app" });
 *   const root = pool.root(64);
 *   pool.tx((tx) => {
 *     const o = tx.alloc(128);
 *     tx.write(o, 0, new TextEncoder().encode("hello"));
 *     tx.setU64(root, 0, o.offset);
 *   });
 *   await pool.txAsync((tx) => tx.setU64(root, 8, 42));
 * }
 * using pool = ObjectPool.open(path, { layout: "app" });
 * const root = pool.root(64);
 * const o = pool.object(pool.getU64(root, 0));
 * assert.equal(new TextDecoder().decode(pool.read(o, 0, 5)), "hello");
 * assert.equal(pool.getU64(root, 8), 42);
 * ```
 */
export class ObjectPool implements Disposable {
  #path: string;
  #map: Mapping;
  #lock: FileLock;
  #engine: Engine;
  #recovery: RecoveryReport;
  #closed = false;

  private constructor(o: Opened) {
    if (o === undefined) {
      notConstructible(
        "ObjectPool",
        "use ObjectPool.open() or ObjectPool.create()",
      );
    }
    this.#path = o.path;
    this.#map = o.map;
    this.#lock = o.lock;
    this.#engine = o.engine;
    this.#recovery = o.recovery;
  }

  static {
    construct = (o) => new ObjectPool(o);
    engineOf = (pool, op) => {
      pool.#engine.live(op);
      return pool.#engine;
    };
  }

  /**
   * Create a pool file (it must not exist).
   *
   * @throws {TypeError} for options of the wrong type (a size that is
   *   not a number)
   * @throws {RangeError} for a size, log size, mode or layout out of range
   *   (NaN, negative or fractional numbers included)
   * @throws {PmemError} code -17 (EEXIST) when the file exists
   */
  static create(path: string, options: ObjectPoolCreateOptions): ObjectPool {
    return new ObjectPool(createPool(path, options, {}));
  }

  /**
   * Open a pool file, recovering what a crash left (the committed
   * transactions not yet checkpointed are replayed).
   *
   * @throws {LayoutMismatchError} when it was created with another layout
   * @throws {CorruptPoolError} naming the damaged structure
   * @throws {PmemError} code -22 when the file is no object pool (or one
   *   cut short: "the file is truncated"), -11 when it is open already
   */
  static open(path: string, options: ObjectPoolOpenOptions): ObjectPool {
    return new ObjectPool(openPool(path, options, {}));
  }

  /** The file. */
  get path(): string {
    return this.#path;
  }

  /** Whether {@linkcode ObjectPool.close} has run. */
  get closed(): boolean {
    return this.#closed;
  }

  /** The layout name. */
  get layout(): string {
    return this.#engine.g.layout;
  }

  /**
   * Bytes of the pool.
   *
   * @throws {ClosedError} after close (as `LogStream.size`, `Mapping.size`)
   */
  get size(): number {
    const e = this.#engine;
    e.live("size");
    return e.g.size;
  }

  /** What recovery did when this pool was opened. */
  get recovery(): RecoveryReport {
    return { ...this.#recovery };
  }

  /** Bytes of the root object; 0 before {@linkcode ObjectPool.root} made it. */
  get rootSize(): number {
    const e = this.#engine;
    e.live("rootSize");
    return e.state.rootOffset === 0 ? 0 : e.state.rootSize;
  }

  /** The data mover of asynchronous transactions. */
  get mover(): Vdm {
    return this.#map.mover;
  }

  /**
   * Run a transaction: `fn` stages changes through `tx`; when it returns,
   * they are committed (durable) and applied, and its result is returned.
   * If it throws, nothing it did takes effect and the error is rethrown.
   * Inside another transaction's callback, it joins that transaction, and
   * an error it throws dooms the whole transaction, even when the outer
   * callback catches it: the outer one then aborts with that error (so
   * does a `PersistentMap` method that fails inside a transaction, as its
   * methods run as such joined transactions).
   * `fn` must be synchronous: one that returns a promise (an `async`
   * function) is refused with a TypeError, and nothing it did takes
   * effect; await after the transaction.
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
   * assert.throws(() =>
   *   pool.tx((tx) => {
   *     tx.setU64(root, 0, 7);
   *     throw new Error("changed my mind");
   *   })
   * );
   * assert.equal(pool.getU64(root, 0), 0);
   * ```
   *
   * @throws {ClosedError} after close
   * @throws {OutOfSpaceError} when the pool or the log has no room
   * @throws {PmemError} code -5 (EIO) when the pool stopped after a
   *   failure (an earlier transaction's mover batch failed): nothing of
   *   this transaction was committed
   */
  tx<T>(fn: (tx: Transaction) => T): T {
    if (typeof fn !== "function") {
      throw new TypeError("Cannot run a transaction: fn must be a function");
    }
    const e = this.#engine;
    const outer = e.current;
    if (outer !== undefined) return runNested(outer, fn);
    const g = e.begin("tx", true);
    const value = runTransaction(e, g, fn, true);
    try {
      e.seal();
      e.drain();
      if (g.state === FAILED) throw g.error;
    } catch (err) {
      // code the commit ran (a testing tracer's callback) closed the
      // pool: the closed mapping refused the commit's next persist, an
      // error naming the mapping's op, not the transaction's
      throw this.#closed ? new ClosedError("ObjectPool", "tx") : err;
    }
    return value;
  }

  /**
   * Run a transaction whose commit is asynchronous: `fn` runs now (in
   * order with every other transaction; with a signal, at the first
   * poll: see below) and stages its changes; the
   * future completes with its result once the transaction is durable and
   * applied. Transactions started before the future is first polled are
   * committed with one persist, and their entries applied by one batch
   * of the pool's mover. A callback that throws makes the future fail,
   * with nothing changed; so does one that returns a promise (TypeError:
   * `fn` must be synchronous). A transaction whose group was already
   * committed (durable) when an earlier group's mover batch failed fails
   * with that error too, the pool stopping; it is not undone: the next
   * open replays it, as it replays every committed record.
   *
   * With an abort signal (`options.signal`), the transaction waits for
   * its future: `fn` runs at the first poll (or `await`), not at the
   * call, and is then ordered after every transaction started before
   * that poll. Until then the transaction is not staged, and an abort
   * withdraws it: the future fails with the signal's reason, `fn` never
   * runs, nothing changes, and the transactions around it are
   * unaffected (as for the library's other futures, whose signal aborts
   * work not yet started). An abort after the first poll is ignored and
   * the future completes as usual: `fn` ran and staged its entries,
   * which the transactions staged after it may have read (and which
   * may be committed, with its group, already), so taking them back
   * would mean undoing those transactions too. A future never polled
   * does nothing, even at close (which then fails it with a
   * ClosedError when it is polled).
   *
   * @example Usage
   * ```ts
   * import { ObjectPool } from "@asyncpmem/asyncpmem/obj";
   * import { all } from "@asyncpmem/asyncpmem/future";
   * import assert from "node:assert/strict";
   * import { mkdtempSync } from "node:fs";
   * import { tmpdir } from "node:os";
   * import { join } from "node:path";
   *
   * const path = join(mkdtempSync(join(tmpdir(), "asyncpmem-")), "pool");
   * using pool = ObjectPool.create(path, { size: 8 << 20, layout: "demo" });
   * const root = pool.root(64);
   * await all([0, 1, 2, 3].map((i) => pool.txAsync((tx) => tx.setU64(root, 8 * i, i))));
   * assert.equal(pool.getU64(root, 24), 3);
   * ```
   *
   * @example Withdrawing a transaction that has not started
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
   * const ac = new AbortController();
   * const f = pool.txAsync((tx) => tx.setU64(root, 0, 1), { signal: ac.signal });
   * ac.abort(new Error("not needed"));
   * await assert.rejects(async () => await f, /not needed/);
   * assert.equal(pool.getU64(root, 0), 0); // the callback never ran
   * ```
   *
   * @param fn the transaction's callback (synchronous)
   * @param options an abort signal for a transaction not yet started
   * @returns a future of the callback's value, complete once the
   *   transaction is applied and durable. When the mover's batch that
   *   applies a group fails (a device error), the pool stops: the
   *   group's futures, and those of the transactions staged behind it,
   *   fail with the mover's error, and later calls with a PmemError EIO.
   *   Those already committed in the redo log are applied by the next
   *   open of the pool, the others are not: the outcome of each failed
   *   one is known only then, as for writes cut short by a crash.
   * @throws {TypeError} inside another transaction's callback, or for
   *   options that are no {@linkcode FutureOptions} (an unknown key)
   * @throws {ClosedError} after close
   * @throws {PmemError} code -5 (EIO) when the pool stopped after a
   *   failure (an earlier transaction's mover batch failed)
   */
  txAsync<T>(fn: (tx: Transaction) => T, options?: FutureOptions): Future<T> {
    if (typeof fn !== "function") {
      throw new TypeError("Cannot run a transaction: fn must be a function");
    }
    return startTxAsync(this.#engine, fn, options);
  }

  /**
   * The root object: allocated zeroed by the first call, the same object
   * on every later call and open. Asking for more bytes than it has grows
   * it (a new object with the old bytes; its offset changes). Outside a
   * transaction, a root that an asynchronous transaction not complete yet
   * made or grew is applied first (as `tx` would), so the pool's reads
   * work on the handle.
   *
   * @param size bytes (at least 1)
   * @throws {TypeError} for a size that is not a number
   * @throws {RangeError} for a size that is not an integer in [1, 2^31)
   * @throws {OutOfSpaceError} when the heap, or the redo log, has no room
   *   for the root at its new size (nothing changed)
   */
  root(size: number): ObjectHandle {
    return rootObject(this, this.#engine, size);
  }

  /**
   * A handle to the live object at `offset` (an offset stored in the
   * pool).
   *
   * @throws {StaleObjectError} when no live object starts there
   * @throws {TypeError} for an offset that is not a number
   * @throws {RangeError} for one that is not a non-negative safe integer
   */
  object(offset: number): ObjectHandle {
    const e = this.#engine;
    e.live("object");
    e.settle("object");
    return e.objectAt(offset, "object");
  }

  #range(o: ObjectHandle, offset: number, length: number, op: string): void {
    const e = this.#engine;
    e.live(op);
    // never a group half applied (its mover batch in flight)
    e.settle(op);
    e.check(o, op, false);
    if (
      !Number.isInteger(offset) || !Number.isInteger(length) || offset < 0 ||
      length < 0 || offset + length > o.size
    ) badRange(o.size, offset, length, op);
  }

  /**
   * A copy of `length` bytes at `offset` of an object.
   *
   * @throws {StaleObjectError} for a freed object
   * @throws {RangeError} when the range leaves the object
   */
  read(o: ObjectHandle, offset = 0, length?: number): Uint8Array {
    // an offset of the wrong type (a bigint) gets #range's TypeError, not
    // one of mixing it into this subtraction
    const len = length ??
      (typeof offset === "number" ? (o?.size ?? 0) - offset : 0);
    this.#range(o, offset, len, "read");
    return this.#engine.media.copy(o.offset + offset, len);
  }

  /**
   * A live, zero-copy view of an object's data. Change it only through
   * transactions: a store through the view is neither atomic nor durable.
   * It detaches when the pool closes (or, where it cannot be, keeps the
   * pool's memory mapped: see `Mapping.close`). On Bun, in a pool over
   * 64 MiB, it is a view of one of the mapping's 4 MiB windows; for an
   * object over 2 MiB, of a buffer over the whole pool, which Bun then
   * counts as heap (read such an object with {@linkcode ObjectPool.read}
   * instead).
   */
  view(o: ObjectHandle): Uint8Array {
    this.#range(o, 0, o?.size ?? 0, "view");
    return this.#engine.media.shared(o.offset, o.size);
  }

  /**
   * The u64 at `offset` of an object, as a number. A u64 above
   * `Number.MAX_SAFE_INTEGER` (2^53 - 1) has no exact number: read it
   * with {@linkcode ObjectPool.getBigU64}.
   *
   * @throws {RangeError} when the range leaves the object, or the value
   *   is above `Number.MAX_SAFE_INTEGER`
   * @throws {StaleObjectError} for a freed object
   */
  getU64(o: ObjectHandle, offset: number): number {
    this.#range(o, offset, 8, "getU64");
    const at = o.offset + offset;
    const media = this.#engine.media;
    // an object's data is 16-aligned, a field in it need not be
    if ((at & 3) === 0) {
      return u64Number(media.getU32(at), media.getU32(at + 4), "getU64");
    }
    return u64Number(media.load32(at), media.load32(at + 4), "getU64");
  }

  /**
   * The u64 at `offset` of an object, as a bigint: exact for every u64
   * (what {@linkcode Transaction.setU64} stores from a bigint).
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
   * const root = pool.root(16);
   * pool.tx((tx) => tx.setU64(root, 0, 2n ** 63n + 1n));
   * assert.equal(pool.getBigU64(root, 0), 9223372036854775809n);
   * assert.throws(() => pool.getU64(root, 0), RangeError); // no exact number
   * ```
   *
   * @throws {RangeError} when the range leaves the object
   * @throws {StaleObjectError} for a freed object
   */
  getBigU64(o: ObjectHandle, offset: number): bigint {
    this.#range(o, offset, 8, "getBigU64");
    const at = o.offset + offset;
    const media = this.#engine.media;
    return u64Big(media.load32(at), media.load32(at + 4));
  }

  /**
   * The u32 at `offset` of an object, little-endian, as
   * {@linkcode Transaction.setU32} stores it (at any offset: none has to
   * be aligned).
   *
   * @throws {RangeError} when the range leaves the object
   * @throws {StaleObjectError} for a freed object
   */
  getU32(o: ObjectHandle, offset: number): number {
    this.#range(o, offset, 4, "getU32");
    const at = o.offset + offset;
    return this.#engine.media.load32(at);
  }

  /** Occupancy of the heap and the log. */
  stats(): ObjectPoolStats {
    const e = this.#engine;
    e.live("stats");
    return {
      size: e.g.size,
      logSize: e.g.logSize,
      logUsed: e.log.head - e.log.tail,
      heap: e.heap.usage(),
    };
  }

  /**
   * Commit and apply every transaction started, and take a checkpoint
   * (the objects' pages are persisted and the log emptied).
   */
  flush(): void {
    this.#engine.flush("flush");
  }

  /**
   * Close the pool: transactions started are committed and applied, a
   * checkpoint is taken, every view detaches. Idempotent.
   *
   * @throws {TypeError} inside a transaction's callback (the pool stays
   *   open)
   */
  close(): void {
    if (this.#closed) return;
    // closing commits the staging group: inside a callback that would
    // commit the running transaction's entries so far, and the callback
    // would go on over an unmapped pool
    if (this.#engine.current !== undefined) {
      throw new TypeError(
        "Cannot close the pool inside a transaction's callback",
      );
    }
    this.#closed = true;
    try {
      this.#engine.close();
    } finally {
      this.#map.close();
      this.#lock.release();
    }
  }

  /** Same as {@linkcode ObjectPool.close}. */
  [Symbol.dispose](): void {
    this.close();
  }
}
