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
import { ClosedError } from "../errors/mod.ts";
import type { Future } from "../future/future.ts";
import { newHandle, type ObjectHandle } from "./handle.ts";
import type { Engine } from "./engine.ts";
import { CorruptPoolError } from "./errors.ts";
import { CATALOG_AT, CATALOG_SLOT, MAX_NAME, OBJECT_HEADER } from "./layout.ts";
import { objectProblem, TYPE_MAP } from "./open.ts";
import { type ObjectPool, poolEngine } from "./pool.ts";
import type { Transaction } from "./tx.ts";

/** Object type of a map's directory. */
const TYPE_DIR = 0x80000011;
/** Object type of a map's leaf. */
const TYPE_LEAF = 0x80000012;
/** Object type of a map's node. */
const TYPE_NODE = 0x80000013;
const MAP_MAGIC = 0x50414d50;
/** Pointers per directory, slots per leaf. */
const FAN = 508;
/** Directories per map. */
const TOP = 256;
const DESC_SIZE = 16 + TOP * 8;
const NODE_HEADER = 12;
const KEY_STRING = 1;
const VALUE_STRING = 2;
/** Largest key, in bytes. */
export const MAX_KEY = 65535;
/** Largest value, in bytes. */
export const MAX_VALUE = 2 ** 30;

/** A key: a string (stored as UTF-8) or bytes; the two never collide. */
export type MapKey = string | Uint8Array;
/** A value: a string (stored as UTF-8) or bytes; read back as given. */
export type MapValue = string | Uint8Array;
/** One operation of {@linkcode PersistentMap.batch}. */
export type MapOp = { set: [MapKey, MapValue] } | { delete: MapKey };

/** Where an entry lives. */
interface Entry {
  slot: number;
  node: ObjectHandle;
  /** File offset of the value's bytes. */
  at: number;
  vlen: number;
  flags: number;
}

/** The latest staged state of a key (null: deleted). */
interface Pending {
  entry: Entry | null;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Bytes as a string of char codes (a Map key for byte keys). */
function binKey(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i += 8192) {
    s += String.fromCharCode.apply(
      null,
      b.subarray(i, i + 8192) as unknown as number[],
    );
  }
  return s;
}

/** The state of one map of one open pool, shared by its instances. */
class MapCore {
  readonly name: string;
  #e: Engine;
  #desc: ObjectHandle;
  #dirs: ObjectHandle[] = [];
  #leaves: ObjectHandle[] = [];
  #free: number[] = [];
  #hw = 0;
  readonly str = new Map<string, Entry>();
  readonly bin = new Map<string, Entry>();
  #pendStr = new Map<string, Pending>();
  #pendBin = new Map<string, Pending>();

  constructor(e: Engine, name: string, desc: ObjectHandle) {
    this.#e = e;
    this.name = name;
    this.#desc = desc;
  }

  /** Rebuild the volatile index from the map's objects. */
  load(): void {
    const e = this.#e;
    const media = e.media;
    const bad = (what: string, detail: string) =>
      new CorruptPoolError(
        "open",
        `the map ${JSON.stringify(this.name)}: ${what}`,
        detail,
      );
    const handle = (offset: number, type: number, what: string) => {
      const why = objectProblem(media, e.g, e.heap, offset, type);
      if (why !== null) throw bad(what, why);
      const h = (offset - OBJECT_HEADER) >>> 2;
      return newHandle(
        e.token,
        offset,
        media.u32[h + 1],
        type,
        media.u32[h + 2],
      );
    };
    const d = this.#desc.offset;
    if (media.u32[d >>> 2] !== MAP_MAGIC) {
      throw bad("its descriptor", "the magic word is wrong");
    }
    let sawEnd = false;
    for (let m = 0; m < TOP; m++) {
      const off = media.read64(d + 16 + 8 * m);
      if (off === 0) {
        sawEnd = true;
        continue;
      }
      if (sawEnd) throw bad(`directory ${m}`, "it follows an empty one");
      const dir = handle(off, TYPE_DIR, `directory ${m}`);
      this.#dirs.push(dir);
      for (let l = 0; l < FAN; l++) {
        const loff = media.read64(dir.offset + 8 * l);
        if (loff === 0) {
          sawEnd = true;
          continue;
        }
        if (sawEnd) throw bad(`leaf ${m * FAN + l}`, "it follows an empty one");
        this.#leaves.push(handle(loff, TYPE_LEAF, `leaf ${m * FAN + l}`));
      }
    }
    for (let li = 0; li < this.#leaves.length; li++) {
      const leaf = this.#leaves[li];
      for (let i = 0; i < FAN; i++) {
        const slot = li * FAN + i;
        const off = media.read64(leaf.offset + 8 * i);
        if (off === 0) continue;
        const node = handle(off, TYPE_NODE, `the node of slot ${slot}`);
        const w = off >>> 2;
        const flags = media.u32[w];
        const klen = media.u32[w + 1];
        const vlen = media.u32[w + 2];
        if (flags > 3 || NODE_HEADER + klen + vlen !== node.size) {
          throw bad(
            `the node of slot ${slot}`,
            `flags ${flags}, a key of ${klen} and a value of ${vlen} bytes in ${node.size}`,
          );
        }
        const kb = media.u8.subarray(
          off + NODE_HEADER,
          off + NODE_HEADER + klen,
        );
        const entry: Entry = {
          slot,
          node,
          at: off + NODE_HEADER + klen,
          vlen,
          flags,
        };
        const map = flags & KEY_STRING ? this.str : this.bin;
        const key = flags & KEY_STRING ? decoder.decode(kb) : binKey(kb);
        if (map.has(key)) {
          throw bad(
            `the node of slot ${slot}`,
            "its key is in another slot too",
          );
        }
        map.set(key, entry);
      }
    }
    this.#hw = this.#leaves.length * FAN;
    const used = new Set<number>();
    for (const x of this.str.values()) used.add(x.slot);
    for (const x of this.bin.values()) used.add(x.slot);
    for (let s = this.#hw - 1; s >= 0; s--) {
      if (!used.has(s)) this.#free.push(s);
    }
  }

  /** The committed entry of a key. */
  committed(key: MapKey): Entry | undefined {
    return typeof key === "string"
      ? this.str.get(key)
      : this.bin.get(binKey(key));
  }

  #latest(isStr: boolean, k: string): Entry | undefined {
    const p = (isStr ? this.#pendStr : this.#pendBin).get(k);
    if (p !== undefined) return p.entry ?? undefined;
    return (isStr ? this.str : this.bin).get(k);
  }

  /** Stage a set of `key` in `tx`. */
  set(tx: Transaction, key: MapKey, value: MapValue): void {
    const isStr = typeof key === "string";
    const kb = isStr ? encoder.encode(key) : key;
    const k = isStr ? key : binKey(key);
    const vStr = typeof value === "string";
    const vb = vStr ? encoder.encode(value) : value;
    if (vb.length > MAX_VALUE) {
      throw new RangeError(
        `Cannot set: the value has more than ${MAX_VALUE} bytes`,
      );
    }
    const cur = this.#latest(isStr, k);
    const node = tx.allocInternal(
      NODE_HEADER + kb.length + vb.length,
      TYPE_NODE,
    );
    const head = new Uint8Array(NODE_HEADER);
    const dv = new DataView(head.buffer);
    const flags = (isStr ? KEY_STRING : 0) | (vStr ? VALUE_STRING : 0);
    dv.setUint32(0, flags, true);
    dv.setUint32(4, kb.length, true);
    dv.setUint32(8, vb.length, true);
    tx.write(node, 0, head);
    tx.write(node, NODE_HEADER, kb);
    tx.write(node, NODE_HEADER + kb.length, vb);
    let slot: number;
    if (cur !== undefined) {
      slot = cur.slot;
      tx.freeInternal(cur.node);
    } else slot = this.#takeSlot(tx);
    this.#setSlot(tx, slot, node.offset);
    this.#stage(tx, isStr, k, {
      slot,
      node,
      at: node.offset + NODE_HEADER + kb.length,
      vlen: vb.length,
      flags,
    });
  }

  /** Stage a delete of `key` in `tx`; whether it was there. */
  delete(tx: Transaction, key: MapKey): boolean {
    const isStr = typeof key === "string";
    const k = isStr ? key : binKey(key);
    const cur = this.#latest(isStr, k);
    if (cur === undefined) return false;
    tx.freeInternal(cur.node);
    this.#setSlot(tx, cur.slot, 0);
    this.#free.push(cur.slot);
    tx.onAbort(() => this.#free.pop());
    this.#stage(tx, isStr, k, null);
    return true;
  }

  #stage(tx: Transaction, isStr: boolean, k: string, entry: Entry | null) {
    const pend = isStr ? this.#pendStr : this.#pendBin;
    const before = pend.get(k);
    const p: Pending = { entry };
    pend.set(k, p);
    tx.onAbort(() => {
      if (before === undefined) pend.delete(k);
      else pend.set(k, before);
    });
    const index = isStr ? this.str : this.bin;
    tx.onApplied(() => {
      if (entry === null) index.delete(k);
      else index.set(k, entry);
      if (pend.get(k) === p) pend.delete(k);
    });
  }

  #takeSlot(tx: Transaction): number {
    const free = this.#free;
    if (free.length > 0) {
      const s = free.pop()!;
      tx.onAbort(() => free.push(s));
      return s;
    }
    // no free slot: the high-water mark is at a leaf's end; add a leaf
    const s = this.#hw;
    const li = s / FAN;
    if (li === TOP * FAN) {
      throw new RangeError(`Cannot set: the map holds ${TOP * FAN * FAN} keys`);
    }
    const di = Math.floor(li / FAN);
    if (di === this.#dirs.length) {
      const dir = tx.allocInternal(FAN * 8, TYPE_DIR);
      tx.setU64(this.#desc, 16 + 8 * di, dir.offset);
      this.#dirs.push(dir);
      tx.onAbort(() => this.#dirs.pop());
    }
    const leaf = tx.allocInternal(FAN * 8, TYPE_LEAF);
    tx.setU64(this.#dirs[di], 8 * (li % FAN), leaf.offset);
    this.#leaves.push(leaf);
    const added = FAN - 1;
    for (let t = s + FAN - 1; t > s; t--) free.push(t);
    this.#hw = s + FAN;
    tx.onAbort(() => {
      this.#leaves.pop();
      free.length -= added;
      this.#hw = s;
    });
    return s;
  }

  #setSlot(tx: Transaction, slot: number, offset: number): void {
    tx.setU64(this.#leaves[Math.floor(slot / FAN)], 8 * (slot % FAN), offset);
  }

  /** The value of an entry, as it was given. */
  value(x: Entry): MapValue {
    const u8 = this.#e.media.u8;
    if (x.flags & VALUE_STRING) {
      return decoder.decode(u8.subarray(x.at, x.at + x.vlen));
    }
    return u8.slice(x.at, x.at + x.vlen);
  }

  /** The key of an entry. */
  key(x: Entry): MapKey {
    const media = this.#e.media;
    const off = x.node.offset;
    const klen = media.u32[(off + 4) >>> 2];
    const kb = media.u8.subarray(off + NODE_HEADER, off + NODE_HEADER + klen);
    return x.flags & KEY_STRING ? decoder.decode(kb) : kb.slice();
  }
}

/** The names of the maps in a pool's catalog. Internal (the CLI). */
export function catalogNames(pool: ObjectPool): string[] {
  return poolEngine(pool).state.catalog.filter((c) => c.name !== "")
    .map((c) => c.name);
}

/** The map cores of each open pool, by name. */
const cores = new WeakMap<Engine, Map<string, MapCore>>();

/** Check a key's type and length. */
function checkKey(key: unknown, op: string): MapKey {
  if (typeof key === "string") {
    if (key.length > MAX_KEY) {
      throw new RangeError(`Cannot ${op}: the key is longer than ${MAX_KEY}`);
    }
    return key;
  }
  if (key instanceof Uint8Array) {
    if (key.length > MAX_KEY) {
      throw new RangeError(`Cannot ${op}: the key is longer than ${MAX_KEY}`);
    }
    return key;
  }
  throw new TypeError(`Cannot ${op}: a key must be a string or a Uint8Array`);
}

function checkValue(value: unknown, op: string): MapValue {
  if (typeof value === "string" || value instanceof Uint8Array) return value;
  throw new TypeError(
    `Cannot ${op}: a value must be a string or a Uint8Array`,
  );
}

/**
 * A durable map from keys to values inside an {@linkcode ObjectPool}. Keys
 * and values are strings or bytes (read back as given; a string key and a
 * bytes key never collide). Every operation is atomic: `set`, `delete`
 * and `batch` are each one transaction of the pool, and a `set` or
 * `delete` inside a `pool.tx` callback joins that transaction.
 *
 * Reads see operations that completed: a synchronous one on return, an
 * asynchronous one when its future completes.
 *
 * @example Usage
 * ```ts
 * import { ObjectPool, PersistentMap } from "@asyncpmem/asyncpmem/obj";
 * import assert from "node:assert/strict";
 *
 * const path = `${await Deno.makeTempDir()}/pool`;
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
    this.#pool = pool;
    this.#core = core;
  }

  /**
   * The map named `name` in the pool, created empty the first time (a
   * pool holds at most 31 maps).
   *
   * @throws {RangeError} for an empty name, or one longer than 111 bytes
   * @throws {OutOfSpaceError} when the catalog or the pool is full
   * @throws {CorruptPoolError} when the map's objects are damaged
   */
  static open(pool: ObjectPool, name: string): PersistentMap {
    const e = poolEngine(pool);
    if (typeof name !== "string") {
      throw new TypeError("Cannot open a map: name must be a string");
    }
    const bytes = encoder.encode(name);
    if (bytes.length === 0 || bytes.length > MAX_NAME || name.includes("\0")) {
      throw new RangeError(
        `Cannot open a map: the name must have 1 to ${MAX_NAME} UTF-8 bytes, and no NUL`,
      );
    }
    let byName = cores.get(e);
    if (byName === undefined) cores.set(e, byName = new Map());
    let core = byName.get(name);
    if (core === undefined) {
      const slot = e.state.catalog.findIndex((c) => c.name === name);
      if (slot >= 0) {
        const offset = e.state.catalog[slot].offset;
        const h = (offset - OBJECT_HEADER) >>> 2;
        core = new MapCore(
          e,
          name,
          newHandle(
            e.token,
            offset,
            e.media.u32[h + 1],
            TYPE_MAP,
            e.media.u32[h + 2],
          ),
        );
        core.load();
      } else {
        core = PersistentMap.#create(pool, e, name, bytes);
      }
      byName.set(name, core);
    }
    return new PersistentMap(pool, core);
  }

  static #create(
    pool: ObjectPool,
    e: Engine,
    name: string,
    bytes: Uint8Array,
  ): MapCore {
    return pool.tx((tx) => {
      const free = e.state.catalog.findIndex((c) => c.name === "");
      if (free < 0) {
        throw new RangeError(
          `Cannot create the map ${
            JSON.stringify(name)
          }: the pool's catalog holds 31 maps`,
        );
      }
      const desc = tx.allocInternal(DESC_SIZE, TYPE_MAP);
      tx.setU32(desc, 0, MAP_MAGIC);
      tx.setU32(desc, 4, 1);
      const slot = new Uint8Array(CATALOG_SLOT);
      slot.set(bytes);
      const dv = new DataView(slot.buffer);
      dv.setBigUint64(112, BigInt(desc.offset), true);
      dv.setUint32(120, 1, true);
      tx.writeState(CATALOG_AT + free * CATALOG_SLOT, slot);
      const c = e.state.catalog[free];
      c.name = name;
      c.offset = desc.offset;
      c.kind = 1;
      tx.onAbort(() => {
        c.name = "";
        c.offset = 0;
        c.kind = 0;
      });
      return new MapCore(e, name, desc);
    });
  }

  #live(op: string): MapCore {
    if (this.#closed) throw new ClosedError("PersistentMap", op);
    poolEngine(this.#pool).live(op);
    return this.#core;
  }

  /** The map's name in its pool. */
  get name(): string {
    return this.#core.name;
  }

  /** The number of keys. */
  get size(): number {
    const c = this.#live("size");
    return c.str.size + c.bin.size;
  }

  /** The value of `key`, or undefined. */
  get(key: MapKey): MapValue | undefined {
    const c = this.#live("get");
    const x = c.committed(checkKey(key, "get"));
    return x === undefined ? undefined : c.value(x);
  }

  /** Whether `key` is in the map. */
  has(key: MapKey): boolean {
    const c = this.#live("has");
    return c.committed(checkKey(key, "has")) !== undefined;
  }

  /**
   * Set `key` to `value`, durably, before returning.
   *
   * @throws {OutOfSpaceError} when the pool is full (nothing changed)
   */
  set(key: MapKey, value: MapValue): void {
    const c = this.#live("set");
    const k = checkKey(key, "set");
    const v = checkValue(value, "set");
    this.#pool.tx((tx) => c.set(tx, k, v));
  }

  /** Delete `key`, durably; whether it was there. */
  delete(key: MapKey): boolean {
    const c = this.#live("delete");
    const k = checkKey(key, "delete");
    return this.#pool.tx((tx) => c.delete(tx, k));
  }

  /**
   * {@linkcode PersistentMap.set} as an asynchronous transaction: sets
   * started together commit with one persist.
   */
  setAsync(key: MapKey, value: MapValue): Future<void> {
    const c = this.#live("setAsync");
    const k = checkKey(key, "setAsync");
    const v = checkValue(value, "setAsync");
    return this.#pool.txAsync((tx) => c.set(tx, k, v));
  }

  /** {@linkcode PersistentMap.delete} as an asynchronous transaction. */
  deleteAsync(key: MapKey): Future<boolean> {
    const c = this.#live("deleteAsync");
    const k = checkKey(key, "deleteAsync");
    return this.#pool.txAsync((tx) => c.delete(tx, k));
  }

  /**
   * Apply several sets and deletes as one asynchronous transaction: all
   * or none of them.
   */
  batch(ops: readonly MapOp[]): Future<void> {
    const c = this.#live("batch");
    if (!Array.isArray(ops)) {
      throw new TypeError("Cannot batch: ops must be an array");
    }
    const checked = ops.map((op) => {
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
    return this.#pool.txAsync((tx) => {
      for (const { k, v } of checked) {
        if (v === undefined) c.delete(tx, k);
        else c.set(tx, k, v);
      }
    });
  }

  /** Every key and value (a snapshot of the completed operations). */
  *entries(): Generator<[MapKey, MapValue]> {
    const c = this.#live("entries");
    const all = [...c.str.values(), ...c.bin.values()];
    for (const x of all) {
      this.#live("entries");
      yield [c.key(x), c.value(x)];
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
