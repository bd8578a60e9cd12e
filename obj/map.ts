// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * {@linkcode PersistentMap}: a durable key-value map inside an object
 * pool, every operation a transaction of the pool.
 *
 * On media a map is a descriptor object (named in the pool's catalog)
 * whose 256 pointers lead to directory objects of 508 pointers, which
 * lead to leaves of 508 slots; a slot holds the offset of one node (0:
 * empty), and a node holds one key and its value:
 *
 * ```
 * node: 0 flags u32 (bit 0: the key is a string, bit 1: the value is)
 *       4 key bytes u32    8 value bytes u32    12 key, then value
 * descriptor: 0 magic u32 "PMAP"   4 version u32 = 1   16 256 × u64
 * ```
 *
 * Growth adds one leaf (and now and then one directory) in the
 * transaction that needs a slot: no table is ever rehashed or copied, so
 * there is no pause and no moment where a crash could lose an entry. A
 * set writes a new node, points the slot at it and frees the old node, in
 * one transaction. The index from keys to slots is volatile (a hash map
 * rebuilt by reading the nodes at open), so a lookup touches only the
 * node's bytes.
 *
 * @module
 */
import { ClosedError, OutOfSpaceError } from "../errors/mod.ts";
import { asOp } from "../errors/file.ts";
import {
  byteLengthOf,
  checkAttached,
  isBytes,
  notConstructible,
} from "../ffi/validate.ts";
import {
  checkFutureOptions,
  type Future,
  type FutureOptions,
} from "../future/future.ts";
import { MAX_NAME } from "./layout.ts";
import type { Transaction } from "./tx.ts";
import type { ObjectPool } from "./pool.ts";
import { poolEngine } from "./pool_access.ts";
import type { MapCore } from "./map_core.ts";
import { mapCore } from "./map_catalog.ts";
import {
  type MapKey,
  type MapOp,
  type MapValue,
  MAX_KEY,
  MAX_VALUE,
} from "./map_format.ts";

export {
  type MapKey,
  type MapOp,
  type MapValue,
  MAX_KEY,
  MAX_VALUE,
} from "./map_format.ts";

const encoder = new TextEncoder();

/** Check a key's type, length and buffer. */
/**
 * A copy of a key or value of bytes (a string as it is): an operation
 * that runs later than its call stores what was given at the call.
 */
function ownBytes<T extends MapKey>(x: T): T {
  return (typeof x === "string" ? x : new Uint8Array(x)) as T;
}

const AT = Uint8Array.prototype.at;

/**
 * Assert that `bytes` still has its bytes: a view whose buffer was
 * detached, or resized below it (out of bounds), reads as empty, and an
 * empty key is a key of its own. `at` validates the array as the engine
 * knows it, and throws for both.
 */
function checkWhole(bytes: Uint8Array, what: string, op: string): Uint8Array {
  checkAttached(bytes, what, op);
  if (byteLengthOf(bytes) === 0) {
    try {
      AT.call(bytes, 0);
    } catch {
      throw new TypeError(
        `Cannot ${op}: ${what} lies past the end of its buffer, which was resized`,
      );
    }
  }
  return bytes;
}

function checkKey(key: unknown, op: string): MapKey {
  if (typeof key === "string") {
    // a lone surrogate is stored as U+FFFD: two such keys would be one
    // after a reopen (the map then fails to load), and none reads back
    if (!key.isWellFormed()) {
      throw new RangeError(
        `Cannot ${op}: the key is not well-formed UTF-16 (it holds a lone surrogate)`,
      );
    }
    // MAX_KEY counts the key's UTF-8 bytes, up to 3 per UTF-16 unit: a
    // key of more than a third of it may be too long
    if (
      key.length > MAX_KEY ||
      (key.length > MAX_KEY / 3 && encoder.encode(key).length > MAX_KEY)
    ) {
      throw new RangeError(
        `Cannot ${op}: the key is longer than ${MAX_KEY} UTF-8 bytes`,
      );
    }
    return key;
  }
  if (isBytes(key)) {
    if (byteLengthOf(key) > MAX_KEY) {
      throw new RangeError(`Cannot ${op}: the key is longer than ${MAX_KEY}`);
    }
    // a detached array (a view of a closed pool) reads as empty: it was
    // the empty key, whose entry get, delete and set then reached
    return checkWhole(key, "the key", op);
  }
  throw new TypeError(`Cannot ${op}: a key must be a string or a Uint8Array`);
}

function checkValue(value: unknown, op: string): MapValue {
  if (typeof value === "string") {
    // stored as UTF-8, a lone surrogate would read back as U+FFFD (a
    // one-byte string is well-formed at once; 4096 two-byte units took
    // ~110 ns, against ~1 µs to encode them)
    if (!value.isWellFormed()) {
      throw new RangeError(
        `Cannot ${op}: a string value must be well-formed UTF-16 (it holds a lone surrogate)`,
      );
    }
    return value;
  }
  // a detached array reads as empty: refused as a key is, not stored as
  // an empty value (or failed on the engine's TypeError while staging)
  if (isBytes(value)) {
    checkWhole(value, "the value", op);
    // at the call, as a key too long is: inside the transaction it would
    // reject the future of setAsync or batch, or doom an enclosing tx
    if (byteLengthOf(value) > MAX_VALUE) {
      throw new RangeError(
        `Cannot ${op}: the value has more than ${MAX_VALUE} bytes`,
      );
    }
    return value;
  }
  throw new TypeError(
    `Cannot ${op}: a value must be a string or a Uint8Array`,
  );
}

/**
 * `e` named for the map's `op` when the pool ran out of space: the
 * allocation or log write inside the map's transaction that failed is no
 * call the map's user made (the error said "alloc: ..."). Other errors
 * pass unchanged (their classes matter).
 */
function asMapOp(e: unknown, op: string): unknown {
  return e instanceof OutOfSpaceError ? asOp(e, op) : e;
}

/**
 * A durable map from keys to values inside an {@linkcode ObjectPool}. Keys
 * and values are strings or bytes (read back as given; a string key and a
 * bytes key never collide). Strings are stored as UTF-8: a string key or
 * value must be well-formed (no lone surrogate), a key of at most
 * {@linkcode MAX_KEY} bytes. A key or value array whose buffer is
 * detached (transferred, or a view of a closed pool) is refused with a
 * TypeError, as every call of the library refuses one.
 * Every operation is atomic: `set`, `delete` and `batch` are each one
 * transaction of the pool, and a `set` or `delete` inside a `pool.tx`
 * callback joins that transaction.
 *
 * Reads see operations that completed: a synchronous one on return, an
 * asynchronous one when its future completes. Inside a transaction's
 * callback they also see what it staged and what the transactions started
 * before it staged, as the transaction's own reads (`tx.read`) do: a
 * read-modify-write of a key in one `pool.tx` sees its own update.
 *
 * @example Usage
 * ```ts
 * import { ObjectPool, PersistentMap } from "@asyncpmem/asyncpmem/obj";
 * import assert from "node:assert/strict";
 * import { mkdtempSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 *
 * const path = join(mkdtempSync(join(tmpdir(), "asyncpmem-")), "pool");
 * {
 *   using pool = ObjectPool.create(path, { size: 16 << 20, layout: "kv" });
 *   using users = PersistentMap.open(pool, "users");
 *   users.set("ada", "lovelace");
 *   await users.batch([{ set: ["alan", "turing"] }, { delete: "ada" }]);
 * }
 * using pool = ObjectPool.open(path, { layout: "kv" });
 * using users = PersistentMap.open(pool, "users");
 * assert.deepEqual([...users.entries()], [["alan", "turing"]]);
 * ```
 */
export class PersistentMap implements Disposable, Iterable<[MapKey, MapValue]> {
  #pool: ObjectPool;
  #core: MapCore;
  #closed = false;

  private constructor(pool: ObjectPool, core: MapCore) {
    if (core === undefined) {
      notConstructible("PersistentMap", "use PersistentMap.open()");
    }
    this.#pool = pool;
    this.#core = core;
  }

  /**
   * The map named `name` in the pool, created empty the first time (a
   * pool holds at most 31 maps). Created inside a transaction's callback,
   * it exists once that transaction commits; if the transaction aborts,
   * the maps opened for it are closed (their methods throw ClosedError).
   *
   * @throws {RangeError} for an empty name, one longer than 111 bytes, or
   *   one with a NUL or a lone surrogate; when the pool's catalog holds 31
   *   maps already
   * @throws {OutOfSpaceError} when the pool is full (a new map's
   *   descriptor has no room): nothing was created
   * @throws {CorruptPoolError} when the map's objects are damaged
   */
  static open(pool: ObjectPool, name: string): PersistentMap {
    const e = poolEngine(pool, "open", "open a map");
    if (typeof name !== "string") {
      throw new TypeError("Cannot open a map: name must be a string");
    }
    const bytes = encoder.encode(name);
    if (
      bytes.length === 0 || bytes.length > MAX_NAME || name.includes("\0") ||
      !name.isWellFormed()
    ) {
      throw new RangeError(
        `Cannot open a map: the name must have 1 to ${MAX_NAME} UTF-8 bytes, no NUL and no lone surrogate`,
      );
    }
    let core: MapCore;
    try {
      core = mapCore(pool, e, name, bytes);
    } catch (err) {
      // the allocation of a new map's descriptor said "alloc"
      throw asMapOp(err, "open");
    }
    return new PersistentMap(pool, core);
  }

  #live(op: string): MapCore {
    if (this.#closed) throw new ClosedError("PersistentMap", op);
    poolEngine(this.#pool, op);
    const core = this.#core;
    if (core.dropped) {
      throw new ClosedError(
        "PersistentMap",
        op,
        `the map ${
          JSON.stringify(core.name)
        } does not exist: the transaction that created it aborted`,
      );
    }
    return core;
  }

  /**
   * Whether later calls throw `ClosedError`: {@linkcode PersistentMap.close}
   * has run, its pool closed, or the transaction that created the map
   * aborted.
   */
  get closed(): boolean {
    return this.#closed || this.#pool.closed || this.#core.dropped;
  }

  /** The map's name in its pool. */
  get name(): string {
    return this.#core.name;
  }

  /** The number of keys. */
  get size(): number {
    return this.#live("size").size();
  }

  /** The value of `key`, or undefined. */
  get(key: MapKey): MapValue | undefined {
    const c = this.#live("get");
    const x = c.visible(checkKey(key, "get"));
    return x === undefined ? undefined : c.value(x);
  }

  /** Whether `key` is in the map. */
  has(key: MapKey): boolean {
    const c = this.#live("has");
    return c.visible(checkKey(key, "has")) !== undefined;
  }

  /**
   * Set `key` to `value`, durably, before returning.
   *
   * @throws {RangeError} when the key has more than {@linkcode MAX_KEY}
   *   bytes or the value more than {@linkcode MAX_VALUE} (a string value
   *   whose UTF-8 form is longer fails inside the transaction)
   * @throws {OutOfSpaceError} when the pool is full (nothing changed)
   */
  set(key: MapKey, value: MapValue): void {
    const c = this.#live("set");
    const k = checkKey(key, "set");
    const v = checkValue(value, "set");
    try {
      this.#pool.tx((tx) => c.set(tx, k, v));
    } catch (e) {
      throw asMapOp(e, "set");
    }
  }

  /** Delete `key`, durably; whether it was there. */
  delete(key: MapKey): boolean {
    const c = this.#live("delete");
    const k = checkKey(key, "delete");
    try {
      return this.#pool.tx((tx) => c.delete(tx, k));
    } catch (e) {
      throw asMapOp(e, "delete");
    }
  }

  /**
   * {@linkcode PersistentMap.set} as an asynchronous transaction: sets
   * started together commit with one persist.
   *
   * With an abort signal, the set is a transaction that waits for its
   * future, as {@linkcode ObjectPool.txAsync}'s with one does: it runs at
   * the first poll (a key or value of bytes is copied at the call, so
   * the set stores them as they were then), and an abort before then
   * withdraws it (the future fails with the signal's reason, the map
   * is unchanged). An abort after it is ignored: the set was staged, and
   * later operations may have seen it.
   *
   * @example Withdrawing a set that has not started
   * ```ts
   * import { ObjectPool, PersistentMap } from "@asyncpmem/asyncpmem/obj";
   * import assert from "node:assert/strict";
   * import { mkdtempSync } from "node:fs";
   * import { tmpdir } from "node:os";
   * import { join } from "node:path";
   *
   * const path = join(mkdtempSync(join(tmpdir(), "asyncpmem-")), "pool");
   * using pool = ObjectPool.create(path, { size: 8 << 20, layout: "kv" });
   * using map = PersistentMap.open(pool, "m");
   * const ac = new AbortController();
   * const set = map.setAsync("k", "v", { signal: ac.signal });
   * ac.abort();
   * await assert.rejects(async () => await set, { name: "AbortError" });
   * assert.equal(map.has("k"), false);
   * await map.setAsync("k", "v", { signal: ac.signal }).catch(() => {});
   * assert.equal(map.has("k"), false); // aborted already: never runs
   * ```
   *
   * @param options an abort signal for a set not yet started
   * @throws {TypeError} for options that are no {@linkcode FutureOptions}
   *   (an unknown key), at the call
   * @throws {OutOfSpaceError} (the future fails) when the pool has no room
   *   for the value, or the set needs more redo log than an asynchronous
   *   transaction may take: a little under 3/8 of `logSize`, less what the
   *   transactions staged with it took (so a set that fits alone may not
   *   fit beside others in flight); nothing changed
   */
  setAsync(
    key: MapKey,
    value: MapValue,
    options?: FutureOptions,
  ): Future<void> {
    const c = this.#live("setAsync");
    const k = checkKey(key, "setAsync");
    const v = checkValue(value, "setAsync");
    const signal = checkFutureOptions(options, "setAsync")?.signal;
    if (signal === undefined) return c.setAsync(this.#pool, k, v);
    const own = { k: ownBytes(k), v: ownBytes(v) };
    return this.#later("setAsync", signal, (tx) => c.set(tx, own.k, own.v));
  }

  /**
   * {@linkcode PersistentMap.delete} as an asynchronous transaction;
   * whether the key was there. A signal aborts it while it has not
   * started, as {@linkcode PersistentMap.setAsync}'s does.
   *
   * @param options an abort signal for a delete not yet started
   * @throws {TypeError} for options that are no {@linkcode FutureOptions}
   *   (an unknown key), at the call
   */
  deleteAsync(key: MapKey, options?: FutureOptions): Future<boolean> {
    const c = this.#live("deleteAsync");
    const k = checkKey(key, "deleteAsync");
    const signal = checkFutureOptions(options, "deleteAsync")?.signal;
    if (signal === undefined) {
      return this.#pool.txAsync((tx) => {
        try {
          return c.delete(tx, k);
        } catch (e) {
          throw asMapOp(e, "deleteAsync");
        }
      });
    }
    const own = ownBytes(k);
    return this.#later("deleteAsync", signal, (tx) => c.delete(tx, own));
  }

  /**
   * An asynchronous transaction of `fn` that starts at its future's first
   * poll (`pool.txAsync` with a signal), on a map still open then.
   */
  #later<T>(
    op: string,
    signal: AbortSignal,
    fn: (tx: Transaction) => T,
  ): Future<T> {
    return this.#pool.txAsync((tx) => {
      this.#live(op);
      try {
        return fn(tx);
      } catch (e) {
        throw asMapOp(e, op);
      }
    }, { signal });
  }

  /**
   * Apply several sets and deletes as one asynchronous transaction: all
   * or none of them. Being one transaction, a batch must fit in the pool's
   * redo log (a little under 3/8 of `logSize`: each set logs its new node,
   * key and value included): a larger one fails with an
   * `OutOfSpaceError` that says so, and changes nothing; split it, or
   * create the pool with a larger `logSize`. Sets made with `setAsync`
   * have no such bound together: they commit in as many groups as needed.
   *
   * A signal aborts the batch while it has not started, as
   * {@linkcode PersistentMap.setAsync}'s does: all of it, or, once
   * started, none of it.
   *
   * @param options an abort signal for a batch not yet started
   * @throws {OutOfSpaceError} (the future fails) when the pool, or the
   *   redo log, has no room for the batch: nothing changed
   * @throws {TypeError} at the call, before anything is staged, for ops
   *   that are not an array of `{ set: [key, value] }` and `{ delete: key }`
   *   (holes included), or options that are no {@linkcode FutureOptions}
   */
  batch(ops: readonly MapOp[], options?: FutureOptions): Future<void> {
    const c = this.#live("batch");
    const signal = checkFutureOptions(options, "batch")?.signal;
    if (!Array.isArray(ops)) {
      throw new TypeError("Cannot batch: ops must be an array");
    }
    // (Array.from visits a sparse array's holes, which map() skips)
    const checked = Array.from(ops, (op) => {
      // one key exactly: a second one beside it ({ set, delete }, or a
      // misspelt one) was ignored, and what it asked for never happened
      if (op !== null && typeof op === "object") {
        const keys = Object.keys(op);
        if (keys.length > 1) {
          throw new TypeError(
            `Cannot batch: each op is { set } or { delete }, got one with ${
              keys.map((k) => `'${k.slice(0, 64)}'`).join(", ")
            }`,
          );
        }
      }
      if (op !== null && typeof op === "object" && "set" in op) {
        if (!Array.isArray(op.set) || op.set.length !== 2) {
          throw new TypeError("Cannot batch: set takes [key, value]");
        }
        return {
          k: checkKey(op.set[0], "batch"),
          v: checkValue(op.set[1], "batch") as MapValue | undefined,
        };
      }
      if (op !== null && typeof op === "object" && "delete" in op) {
        return { k: checkKey(op.delete, "batch"), v: undefined };
      }
      throw new TypeError("Cannot batch: each op is { set } or { delete }");
    });
    // a getter of the ops may have closed the map (or its pool): the
    // transaction went on through the closed map
    this.#live("batch");
    const run = (tx: Transaction) => {
      for (const { k, v } of checked) {
        if (v === undefined) c.delete(tx, k);
        else c.set(tx, k, v);
      }
    };
    if (signal === undefined) {
      return this.#pool.txAsync((tx) => {
        try {
          run(tx);
        } catch (e) {
          throw asMapOp(e, "batch");
        }
      });
    }
    for (const op of checked) {
      op.k = ownBytes(op.k);
      if (op.v !== undefined) op.v = ownBytes(op.v);
    }
    return this.#later("batch", signal, run);
  }

  /**
   * Every key and value: the keys the map held when the iteration began
   * (as completed operations left it), skipping those deleted before they
   * are reached, each with its value when reached.
   */
  *entries(): Generator<[MapKey, MapValue]> {
    const c = this.#live("entries");
    // the keys are the snapshot; each entry is looked up again when it is
    // yielded: one deleted meanwhile has a freed node (whose block a later
    // set may have taken), one deleted and set again a new index entry
    for (const [k, isStr] of c.visibleKeys()) {
      this.#live("entries");
      const x = c.visibleAt(k, isStr);
      if (x !== undefined) yield [c.key(x), c.value(x)];
    }
  }

  /** Every key. */
  *keys(): Generator<MapKey> {
    for (const [k] of this.entries()) yield k;
  }

  /** Every value. */
  *values(): Generator<MapValue> {
    for (const [, v] of this.entries()) yield v;
  }

  /** Same as {@linkcode PersistentMap.entries}. */
  [Symbol.iterator](): Generator<[MapKey, MapValue]> {
    return this.entries();
  }

  /** Stop using this map object (the pool stays open). Idempotent. */
  close(): void {
    this.#closed = true;
  }

  /** Same as {@linkcode PersistentMap.close}. */
  [Symbol.dispose](): void {
    this.close();
  }
}
