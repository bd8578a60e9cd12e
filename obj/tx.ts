// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * {@linkcode Transaction}: what a transaction's callback gets. Every
 * change is a redo entry staged into the pool's log; nothing reaches an
 * object's home before the transaction's record is durable. Reads see the
 * transaction's own writes and those of the transactions staged before
 * it. A small object allocated in the transaction is built in memory and
 * logged whole when the callback returns; a large one is logged as its
 * header and a fill of zeros, then its writes.
 *
 * @module
 */
import { ClosedError } from "../errors/mod.ts";
import { StaleObjectError } from "./errors.ts";
import type { Engine, PendingObject, Running } from "./engine.ts";
import { newHandle, type ObjectHandle } from "./handle.ts";
import type { HeapLog } from "./heap.ts";
import {
  OBJECT_HEADER,
  OBJECT_MAGIC,
  OP_COPY,
  TYPE_INTERNAL,
} from "./layout.ts";
import type { Entry, Group } from "./log.ts";

/** What a freed object is, pending. */
const FREED: PendingObject = Object.freeze({ gen: 0, size: 0, type: 0 });

/** Objects up to this size (header included) are built in memory. */
const SHADOW_MAX = 16384;
/** Largest object. */
export const MAX_OBJECT = 2 ** 31;

/** Options of {@linkcode Transaction.alloc}. */
export interface AllocOptions {
  /** A type number kept in the object's header (0 to 2^31-1). @default 0 */
  type?: number;
}

/** An object allocated in the running transaction. */
interface Fresh {
  block: number;
  size: number;
  type: number;
  gen: number;
  /** Small: header and data in memory (created at the first write). */
  shadow: Uint8Array | undefined;
  /** Large: already logged as header + zeros. */
  large: boolean;
}

let beginTx: (engine: Engine, group: Group) => Transaction;
let endTx: (tx: Transaction) => void;
let abortTx: (tx: Transaction) => void;
let failureOf: (tx: Transaction) => unknown;

/**
 * A running transaction, handed to the callback of `pool.tx` and
 * `pool.txAsync`. It is valid only while the callback runs. If the
 * callback throws, nothing it did takes effect.
 *
 * @example Usage
 * ```ts
 * import { ObjectPool } from "@asyncpmem/asyncpmem/obj";
 * import assert from "node:assert/strict";
 *
 * const path = `${await Deno.makeTempDir()}/pool`;
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
  #g: Group;
  #size0: number;
  #count0: number;
  #keys0: number;
  #gens0: number;
  #undo: (() => void)[] = [];
  #fresh = new Map<number, Fresh>();
  #effects: (() => void)[] = [];
  #open = true;
  #failure: unknown;
  #running: Running;
  #heapLog: HeapLog;

  private constructor(engine: Engine, group: Group) {
    this.#e = engine;
    this.#g = group;
    this.#size0 = group.size;
    this.#count0 = group.entries.length;
    this.#keys0 = group.keys.length;
    this.#gens0 = group.gens.length;
    this.#running = {
      doom: (error) => {
        if (this.#failure === undefined) this.#failure = error;
      },
      tx: this,
    };
    const log = engine.log;
    this.#heapLog = {
      copy: (target, bytes) => {
        log.copy(group, target, bytes, 0, bytes.length, "alloc");
      },
      zero: (target, length) => void log.zero(group, target, length, "alloc"),
      mask: (op, target, lo, hi) => {
        log.mask(group, op, target, lo, hi, "alloc");
      },
      undo: (fn) => void this.#undo.push(fn),
    };
  }

  static {
    beginTx = (engine, group) => {
      const tx = new Transaction(engine, group);
      engine.current = tx.#running;
      return tx;
    };
    endTx = (tx) => tx.#end();
    abortTx = (tx) => tx.#abort();
    failureOf = (tx) => tx.#failure;
  }

  #live(op: string): void {
    if (!this.#open) throw new ClosedError("Transaction", op);
    if (this.#failure !== undefined) throw this.#failure;
  }

  /**
   * Allocate a zeroed object of `size` bytes. It is published when the
   * transaction commits; if the transaction aborts or a crash comes
   * first, the space is free again.
   *
   * @throws {RangeError} for a size that is not an integer in [0, 2^31)
   * @throws {OutOfSpaceError} when the pool has no room (nothing changed)
   */
  alloc(size: number, options: AllocOptions = {}): ObjectHandle {
    this.#live("alloc");
    if (!Number.isInteger(size) || size < 0 || size >= MAX_OBJECT) {
      throw new RangeError(
        `Cannot alloc: size must be an integer in [0, 2^31), got ${size}`,
      );
    }
    const type = options?.type ?? 0;
    if (!Number.isInteger(type) || type < 0 || type >= TYPE_INTERNAL) {
      throw new RangeError(
        `Cannot alloc: type must be an integer in [0, 2^31), got ${type}`,
      );
    }
    return this.#alloc(size, type, "alloc");
  }

  /** Allocate an object of an internal type. Internal. */
  allocInternal(size: number, type: number): ObjectHandle {
    this.#live("alloc");
    return this.#alloc(size, type, "alloc");
  }

  #alloc(size: number, type: number, op: string): ObjectHandle {
    const e = this.#e;
    const bytes = OBJECT_HEADER + size;
    const { block } = e.heap.alloc(bytes, this.#heapLog, op);
    const offset = block + OBJECT_HEADER;
    const gen = e.nextGen();
    const large = bytes > SHADOW_MAX;
    const f: Fresh = { block, size, type, gen, shadow: undefined, large };
    if (large) {
      const log = e.log;
      log.copy(this.#g, block, header(size, gen, type), 0, OBJECT_HEADER, op);
      if (size > 0) this.#pending(offset, log.zero(this.#g, offset, size, op));
    }
    this.#fresh.set(offset, f);
    this.#undo.push(() => this.#fresh.delete(offset));
    this.#setGen(offset, { gen, size, type });
    return newHandle(e.token, offset, size, type, gen);
  }

  #setGen(offset: number, object: PendingObject): void {
    const pending = this.#e.pendingGen;
    const before = pending.get(offset);
    pending.set(offset, object);
    this.#g.gens.push({ offset, object });
    this.#undo.push(() => {
      if (before === undefined) pending.delete(offset);
      else pending.set(offset, before);
    });
  }

  /** Add an entry to the pending writes of the object at `offset`. */
  #pending(offset: number, entry: Entry): void {
    const overlay = this.#e.overlay;
    let list = overlay.get(offset);
    if (list === undefined) overlay.set(offset, list = []);
    list.push(entry);
    this.#g.keys.push(offset);
    this.#undo.push(() => {
      list!.pop();
      if (list!.length === 0) overlay.delete(offset);
    });
  }

  /**
   * Free an object. It stays readable until the transaction commits; its
   * handles are stale afterwards.
   *
   * @throws {TypeError} for the root object, or a handle of another pool
   * @throws {StaleObjectError} for an object already freed
   */
  free(o: ObjectHandle): void {
    this.#live("free");
    this.#e.check(o, "free");
    if (o.type >= TYPE_INTERNAL) {
      throw new TypeError(
        "Cannot free: the object belongs to the pool (the root, a map's structure)",
      );
    }
    this.freeInternal(o);
  }

  /** Free any object, an internal one included. Internal. */
  freeInternal(o: ObjectHandle): void {
    this.#live("free");
    const e = this.#e;
    const f = this.#fresh.get(o.offset);
    const block = o.offset - OBJECT_HEADER;
    if (f !== undefined) {
      this.#fresh.delete(o.offset);
      this.#undo.push(() => this.#fresh.set(o.offset, f));
    }
    if (f === undefined || f.large) {
      e.log.zero(this.#g, block, OBJECT_HEADER, "free");
    }
    e.heap.free(block, this.#heapLog);
    this.#setGen(o.offset, FREED);
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
    const p = e.pendingGen.get(offset);
    if (p === undefined) return e.objectAt(offset, "object");
    if (p.gen === 0) throw new StaleObjectError("object", offset);
    return newHandle(e.token, offset, p.size, p.type, p.gen);
  }

  /** Check a handle and a range of its object. */
  #range(o: ObjectHandle, offset: number, length: number, op: string): void {
    this.#live(op);
    this.#e.check(o, op);
    if (
      !Number.isInteger(offset) || !Number.isInteger(length) || offset < 0 ||
      length < 0 || offset + length > o.size
    ) {
      throw new RangeError(
        `Cannot ${op}: [${offset}, ${offset}+${length}) is outside the object's ${o.size} bytes`,
      );
    }
  }

  /**
   * Write `bytes` at `offset` of an object.
   *
   * @throws {RangeError} when the range leaves the object
   * @throws {StaleObjectError} for a freed object
   */
  write(o: ObjectHandle, offset: number, bytes: Uint8Array): void {
    if (!(bytes instanceof Uint8Array)) {
      throw new TypeError("Cannot write: bytes must be a Uint8Array");
    }
    this.#range(o, offset, bytes.length, "write");
    this.#write(o, offset, bytes);
  }

  #write(o: ObjectHandle, offset: number, bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    const f = this.#fresh.get(o.offset);
    if (f !== undefined && !f.large) {
      const shadow = f.shadow ??= this.#shadow(f);
      shadow.set(bytes, OBJECT_HEADER + offset);
      return;
    }
    const e = this.#e;
    this.#pending(
      o.offset,
      e.log.copy(this.#g, o.offset + offset, bytes, 0, bytes.length, "write"),
    );
  }

  #shadow(f: Fresh): Uint8Array {
    const s = new Uint8Array(OBJECT_HEADER + f.size);
    s.set(header(f.size, f.gen, f.type));
    return s;
  }

  /** Store a u64 (below 2^53, or a bigint below 2^64) at `offset`. */
  setU64(o: ObjectHandle, offset: number, value: number | bigint): void {
    this.#range(o, offset, 8, "setU64");
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, toU64(value, "setU64"), true);
    this.#write(o, offset, b);
  }

  /** Store a u32 at `offset`. */
  setU32(o: ObjectHandle, offset: number, value: number): void {
    this.#range(o, offset, 4, "setU32");
    if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
      throw new RangeError(`Cannot setU32: ${value} is not a u32`);
    }
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, value, true);
    this.#write(o, offset, b);
  }

  /**
   * A copy of `length` bytes at `offset` of an object, with the writes of
   * this transaction and of those staged before it.
   */
  read(o: ObjectHandle, offset: number, length: number): Uint8Array {
    this.#range(o, offset, length, "read");
    return this.#read(o, offset, length);
  }

  #read(o: ObjectHandle, offset: number, length: number): Uint8Array {
    const f = this.#fresh.get(o.offset);
    if (f !== undefined && !f.large) {
      const start = OBJECT_HEADER + offset;
      return f.shadow === undefined
        ? new Uint8Array(length)
        : f.shadow.slice(start, start + length);
    }
    const e = this.#e;
    const at = o.offset + offset;
    const out = e.media.copy(at, length);
    const list = e.overlay.get(o.offset);
    if (list !== undefined) {
      const u8 = e.media.u8;
      for (const x of list) {
        const lo = Math.max(at, x.target);
        const hi = Math.min(at + length, x.target + x.length);
        if (lo >= hi) continue;
        if (x.op === OP_COPY) {
          out.set(
            u8.subarray(x.at + lo - x.target, x.at + hi - x.target),
            lo - at,
          );
        } else out.fill(0, lo - at, hi - at);
      }
    }
    return out;
  }

  /** The u64 at `offset` (a number; above 2^53 it loses precision). */
  getU64(o: ObjectHandle, offset: number): number {
    this.#range(o, offset, 8, "getU64");
    const b = this.#read(o, offset, 8);
    const dv = new DataView(b.buffer);
    return dv.getUint32(0, true) + dv.getUint32(4, true) * 2 ** 32;
  }

  /** The u32 at `offset`. */
  getU32(o: ObjectHandle, offset: number): number {
    this.#range(o, offset, 4, "getU32");
    return new DataView(this.#read(o, offset, 4).buffer).getUint32(0, true);
  }

  /** Log a write to the state page (root, catalog). Internal. */
  writeState(target: number, bytes: Uint8Array): void {
    this.#live("write");
    this.#e.log.copy(this.#g, target, bytes, 0, bytes.length, "write");
  }

  /** Run `fn` on abort (undo of volatile changes). Internal. */
  onAbort(fn: () => void): void {
    this.#undo.push(fn);
  }

  /** Run `fn` once the transaction is applied. Internal. */
  onApplied(fn: () => void): void {
    this.#effects.push(fn);
  }

  /** Stage what the callback built in memory; the transaction is done. */
  #end(): void {
    const e = this.#e;
    const g = this.#g;
    try {
      for (const [offset, f] of this.#fresh) {
        if (f.large) continue;
        const s = f.shadow;
        if (s !== undefined) {
          this.#pending(
            offset,
            e.log.copy(g, f.block, s, 0, s.length, "commit"),
          );
        } else {
          e.log.copy(
            g,
            f.block,
            header(f.size, f.gen, f.type),
            0,
            16,
            "commit",
          );
          if (f.size > 0) {
            this.#pending(offset, e.log.zero(g, offset, f.size, "commit"));
          }
        }
      }
    } catch (err) {
      this.#abort();
      throw err;
    }
    this.#open = false;
    g.txs++;
    if (this.#effects.length > 0) g.done.push(...this.#effects);
    e.current = undefined;
  }

  /** Undo everything the transaction staged. */
  #abort(): void {
    const e = this.#e;
    const g = this.#g;
    this.#open = false;
    e.log.truncate(g, this.#size0, this.#count0);
    g.keys.length = this.#keys0;
    g.gens.length = this.#gens0;
    const undo = this.#undo;
    for (let i = undo.length - 1; i >= 0; i--) undo[i]();
    this.#undo = [];
    e.current = undefined;
    e.abandon(g);
  }
}

/** An object header. */
function header(size: number, gen: number, type: number): Uint8Array {
  const b = new Uint8Array(OBJECT_HEADER);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, OBJECT_MAGIC, true);
  dv.setUint32(4, size, true);
  dv.setUint32(8, gen, true);
  dv.setUint32(12, type >>> 0, true);
  return b;
}

function toU64(value: number | bigint, op: string): bigint {
  if (typeof value === "bigint") {
    if (value < 0n || value >= 1n << 64n) {
      throw new RangeError(`Cannot ${op}: ${value} is not a u64`);
    }
    return value;
  }
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(
      `Cannot ${op}: ${value} is not a non-negative safe integer (pass a bigint)`,
    );
  }
  return BigInt(value);
}

/**
 * Run `fn` as a transaction staged into `group`: its result, or, if it
 * threw, its error after everything it staged is undone. Internal.
 */
export function runTransaction<T>(
  engine: Engine,
  group: Group,
  fn: (tx: Transaction) => T,
): T {
  const tx = beginTx(engine, group);
  let value: T;
  try {
    value = fn(tx);
    if (
      value !== null && typeof value === "object" &&
      typeof (value as { then?: unknown }).then === "function"
    ) {
      throw new TypeError(
        "Cannot commit: the transaction's callback returned a promise (it must be synchronous; await after the transaction)",
      );
    }
    const failure = failureOf(tx);
    if (failure !== undefined) throw failure;
  } catch (e) {
    abortTx(tx);
    throw e;
  }
  endTx(tx);
  return value;
}
