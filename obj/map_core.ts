// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * {@linkcode MapCore}: the state of one `PersistentMap` of one open pool
 * (its objects and its volatile key index) and the transaction bodies of
 * its operations. Internal to `obj/`; `map.ts` holds the public class and
 * the on-media description.
 *
 * @module
 */
import { byteLengthOf, trueBytes } from "../ffi/validate.ts";
import { newHandle, type ObjectHandle } from "./handle.ts";
import type { Engine } from "./engine.ts";
import { CorruptPoolError } from "./errors.ts";
import { OBJECT_HEADER } from "./layout.ts";
import { objectProblem } from "./open.ts";
import type { Future } from "../future/future.ts";
import type { ObjectPool } from "./pool.ts";
import type { Transaction, TxEffects } from "./tx.ts";
import { stagedData } from "./tx_run.ts";

/** Object type of a map's directory. */
const TYPE_DIR = 0x80000011;
/** Object type of a map's leaf. */
const TYPE_LEAF = 0x80000012;
/** Object type of a map's node. */
const TYPE_NODE = 0x80000013;
export const MAP_MAGIC = 0x50414d50;
/** The version of a map's objects, in its descriptor. */
export const MAP_VERSION = 1;
/** Pointers per directory, slots per leaf. */
const FAN = 508;
/** Directories per map. */
const TOP = 256;
export const DESC_SIZE = 16 + TOP * 8;
const NODE_HEADER = 12;
const KEY_STRING = 1;
const VALUE_STRING = 2;
/**
 * Largest key, in bytes (UTF-8 for a string).
 *
 * @example Usage
 * ```ts
 * import { MAX_KEY, ObjectPool, PersistentMap } from "@asyncpmem/asyncpmem/obj";
 * import assert from "node:assert/strict";
 * import { mkdtempSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 *
 * const path = join(mkdtempSync(join(tmpdir(), "asyncpmem-")), "pool");
 * using pool = ObjectPool.create(path, { size: 8 << 20, layout: "k" });
 * using map = PersistentMap.open(pool, "m");
 * assert.throws(() => map.set("k".repeat(MAX_KEY + 1), "v"), RangeError);
 * ```
 */
export const MAX_KEY = 65535;
/**
 * Largest value, in bytes (UTF-8 for a string).
 *
 * @example Usage
 * ```ts
 * import { MAX_VALUE } from "@asyncpmem/asyncpmem/obj";
 * import assert from "node:assert/strict";
 *
 * assert.equal(MAX_VALUE, 1 << 30); // 1 GiB
 * ```
 */
export const MAX_VALUE = 2 ** 30;

/** A key: a string (stored as UTF-8) or bytes; the two never collide. */
export type MapKey = string | Uint8Array;
/** A value: a string (stored as UTF-8) or bytes; read back as given. */
export type MapValue = string | Uint8Array;
/** One operation of {@linkcode PersistentMap.batch}. */
export type MapOp = { set: [MapKey, MapValue] } | { delete: MapKey };

/**
 * Where an entry lives. An index entry is updated in place when its key
 * is set again (it holds numbers only), so a set leaves no long-lived
 * garbage behind.
 */
interface Entry {
  slot: number;
  /** The node's offset. */
  node: number;
  /** File offset of the value's bytes. */
  at: number;
  vlen: number;
  flags: number;
  /**
   * The key's newest staged state not applied yet: kept on its index
   * entry, so an update of a key in the index looks up no other Map.
   */
  pend: Pending | undefined;
}

/**
 * The latest staged state of a key: where its entry will be, unless
 * `deleted`. Applied, a set's state becomes the key's index entry if the
 * key had none (one object per set, not two).
 */
interface Pending extends Entry {
  deleted: boolean;
  isStr: boolean;
  /** The key (a string of char codes for bytes). */
  k: string;
  /** The state staged before, restored if the transaction aborts. */
  before: Pending | undefined;
}

const encoder = new TextEncoder();
// ignoreBOM: by default a leading U+FEFF is dropped, and a key or value
// that began with one would read back as another
const decoder = new TextDecoder("utf-8", { ignoreBOM: true });

/** The length of a string if every char is ASCII (one UTF-8 byte), else -1. */
function asciiLength(s: string): number {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return -1;
  return s.length;
}

/** Store an ASCII string's chars as bytes at `at`. */
function putAscii(u8: Uint8Array, at: number, s: string): void {
  for (let i = 0; i < s.length; i++) u8[at + i] = s.charCodeAt(i);
}

/** Bytes as a string of char codes (a Map key for byte keys). */
export function binKey(b: Uint8Array): string {
  // the engine's bytes (see `trueBytes`), not b.subarray(): a subclass's
  // species makes the chunks, and fromCharCode.apply reads their `length`
  // (JavaScriptCore), a property that keyed the index by fewer bytes than
  // the node stores; one view, like the subarray it replaces
  const t = trueBytes(b);
  const n = t.length;
  if (n <= 8192) {
    return String.fromCharCode.apply(null, t as unknown as number[]);
  }
  let s = "";
  for (let i = 0; i < n; i += 8192) {
    s += String.fromCharCode.apply(
      null,
      t.subarray(i, i + 8192) as unknown as number[],
    );
  }
  return s;
}

/**
 * The state of one map of one open pool, shared by its instances. Its
 * index follows the transactions that stage its operations (as their
 * `TxEffects`): a key's staged state is pending until its transaction is
 * applied, then it enters the index.
 */
export class MapCore implements TxEffects<Pending> {
  readonly name: string;
  #e: Engine;
  #desc: ObjectHandle;
  #dirs: ObjectHandle[] = [];
  #leaves: ObjectHandle[] = [];
  #free: number[] = [];
  #hw = 0;
  /**
   * Whether the transaction that created the map aborted: the map does
   * not exist, and its objects were taken back (the descriptor's block
   * may be another object's by now).
   */
  dropped = false;
  readonly str = new Map<string, Entry>();
  readonly bin = new Map<string, Entry>();
  /** The newest staged states of keys not in the index. */
  #pendStr = new Map<string, Pending>();
  #pendBin = new Map<string, Pending>();
  /** The index entry `#latest` found last (for the `#stage` after it). */
  #found: Entry | undefined = undefined;
  /** The key and value of the `setAsync` running (see `setAsync`). */
  #argK: MapKey = "";
  #argV: MapValue = "";
  /** A set of the stashed key and value: one closure for every `setAsync`. */
  #setArgs = (tx: Transaction) => this.set(tx, this.#argK, this.#argV);

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
    // `at`: where the offset was read, to show it exactly if it is bad
    const handle = (offset: number, at: number, type: number, what: string) => {
      const why = objectProblem(media, e.g, e.heap, offset, type, at);
      if (why !== null) throw bad(what, why);
      const h = offset - OBJECT_HEADER;
      return newHandle(
        e.token,
        offset,
        media.getU32(h + 4),
        type,
        media.getU32(h + 8),
      );
    };
    const d = this.#desc.offset;
    if (media.getU32(d) !== MAP_MAGIC) {
      throw bad("its descriptor", "the magic word is wrong");
    }
    // another version's map (or damage) is not one to read and write as
    // this one's, as the catalog refuses a slot of an unknown kind
    const version = media.getU32(d + 4);
    if (version !== MAP_VERSION) {
      throw bad(
        "its descriptor",
        `its version ${version} is unknown (${MAP_VERSION} is this one's)`,
      );
    }
    // a directory or leaf reached twice would make two slot ranges one:
    // sets in either would overwrite the other's slots
    const seen = new Map<number, string>();
    const once = (offset: number, what: string) => {
      const first = seen.get(offset);
      if (first !== undefined) throw bad(what, `it is ${first} too`);
      seen.set(offset, what);
    };
    let sawEnd = false;
    for (let m = 0; m < TOP; m++) {
      const off = media.read64(d + 16 + 8 * m);
      if (off === 0) {
        sawEnd = true;
        continue;
      }
      if (sawEnd) throw bad(`directory ${m}`, "it follows an empty one");
      const dir = handle(off, d + 16 + 8 * m, TYPE_DIR, `directory ${m}`);
      once(off, `directory ${m}`);
      this.#dirs.push(dir);
      for (let l = 0; l < FAN; l++) {
        const loff = media.read64(dir.offset + 8 * l);
        if (loff === 0) {
          sawEnd = true;
          continue;
        }
        const what = `leaf ${m * FAN + l}`;
        if (sawEnd) throw bad(what, "it follows an empty one");
        this.#leaves.push(handle(loff, dir.offset + 8 * l, TYPE_LEAF, what));
        once(loff, what);
      }
    }
    for (let li = 0; li < this.#leaves.length; li++) {
      const leaf = this.#leaves[li];
      for (let i = 0; i < FAN; i++) {
        const slot = li * FAN + i;
        const off = media.read64(leaf.offset + 8 * i);
        if (off === 0) continue;
        const node = handle(
          off,
          leaf.offset + 8 * i,
          TYPE_NODE,
          `the node of slot ${slot}`,
        );
        const flags = media.getU32(off);
        const klen = media.getU32(off + 4);
        const vlen = media.getU32(off + 8);
        if (flags > 3 || NODE_HEADER + klen + vlen !== node.size) {
          throw bad(
            `the node of slot ${slot}`,
            `flags ${flags}, a key of ${klen} and a value of ${vlen} bytes in ${node.size}`,
          );
        }
        const kb = media.peek(off + NODE_HEADER, klen);
        const entry: Entry = {
          slot,
          node: off,
          at: off + NODE_HEADER + klen,
          vlen,
          flags,
          pend: undefined,
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

  /**
   * The newest state of a key, staged or committed (undefined: none); its
   * index entry stays in `#found` for the `#stage` that follows.
   */
  #latest(isStr: boolean, k: string): Entry | undefined {
    const x = (isStr ? this.str : this.bin).get(k);
    this.#found = x;
    if (x !== undefined) {
      const p = x.pend;
      if (p === undefined) return x;
      return p.deleted ? undefined : p;
    }
    const pend = isStr ? this.#pendStr : this.#pendBin;
    const p = pend.size === 0 ? undefined : pend.get(k);
    return p === undefined || p.deleted ? undefined : p;
  }

  /**
   * Stage a set of `key` in `tx`. The new node is built where the log
   * holds its copy (no intermediate arrays; ASCII strings are stored
   * without an encoder), unless it is too large to be built there.
   */
  set(tx: Transaction, key: MapKey, value: MapValue): void {
    const isStr = typeof key === "string";
    const kAscii = isStr ? asciiLength(key) : -1;
    const kb = isStr ? (kAscii < 0 ? encoder.encode(key) : undefined) : key;
    // the engine's lengths (see `byteLengthOf`): a `length` claiming less
    // sized the node short, and the copies wrote past it
    const klen = kb === undefined ? kAscii : byteLengthOf(kb);
    const k = isStr ? key : binKey(key);
    const vStr = typeof value === "string";
    const vAscii = vStr ? asciiLength(value) : -1;
    const vb = vStr ? (vAscii < 0 ? encoder.encode(value) : undefined) : value;
    const vlen = vb === undefined ? vAscii : byteLengthOf(vb);
    if (vlen > MAX_VALUE) {
      throw new RangeError(
        `Cannot set: the value has more than ${MAX_VALUE} bytes`,
      );
    }
    const cur = this.#latest(isStr, k);
    const node = tx.allocInternalAt(NODE_HEADER + klen + vlen, TYPE_NODE);
    const flags = (isStr ? KEY_STRING : 0) | (vStr ? VALUE_STRING : 0);
    const at = stagedData(tx, node);
    const media = this.#e.media;
    // a node staged in the log is written there: through one view when it
    // lies in one window (putAscii needs one view)
    const n = NODE_HEADER + klen + vlen;
    if (at >= 0 && media.fits(at, n)) {
      media.setU32(at, flags);
      media.setU32(at + 4, klen);
      media.setU32(at + 8, vlen);
      const u8 = media.u8At(at, n);
      const i = media.index(at, n);
      if (kb === undefined) putAscii(u8, i + NODE_HEADER, key as string);
      else u8.set(kb, i + NODE_HEADER);
      if (vb === undefined) {
        putAscii(u8, i + NODE_HEADER + klen, value as string);
      } else u8.set(vb, i + NODE_HEADER + klen);
    } else {
      const o = tx.object(node);
      const head = new Uint8Array(NODE_HEADER);
      const dv = new DataView(head.buffer);
      dv.setUint32(0, flags, true);
      dv.setUint32(4, klen, true);
      dv.setUint32(8, vlen, true);
      const was = tx.beginInternalWrites();
      try {
        tx.write(o, 0, head);
        tx.write(o, NODE_HEADER, kb ?? encoder.encode(key as string));
        tx.write(
          o,
          NODE_HEADER + klen,
          vb ?? encoder.encode(value as string),
        );
      } finally {
        tx.endInternalWrites(was);
      }
    }
    let slot: number;
    if (cur !== undefined) {
      slot = cur.slot;
      tx.freeInternal(cur.node);
    } else slot = this.#takeSlot(tx);
    this.#setSlot(tx, slot, node);
    this.#stage(
      tx,
      isStr,
      k,
      false,
      slot,
      node,
      node + NODE_HEADER + klen,
      vlen,
      flags,
    );
  }

  /**
   * `pool.txAsync` of a set. The pool runs the callback before it returns
   * and never inside another transaction, so the key and value can wait
   * in fields for a callback made once, rather than in a new closure per
   * set.
   */
  setAsync(pool: ObjectPool, key: MapKey, value: MapValue): Future<void> {
    this.#argK = key;
    this.#argV = value;
    try {
      return pool.txAsync(this.#setArgs);
    } finally {
      this.#argK = "";
      this.#argV = "";
    }
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
    this.#stage(tx, isStr, k, true, cur.slot, 0, 0, 0, 0);
    return true;
  }

  #stage(
    tx: Transaction,
    isStr: boolean,
    k: string,
    deleted: boolean,
    slot: number,
    node: number,
    at: number,
    vlen: number,
    flags: number,
  ) {
    // where the key's newest staged state is kept: on its index entry, or
    // in the Map of keys not in the index (the index does not change
    // while a transaction stages)
    const x = this.#found;
    const pend = isStr ? this.#pendStr : this.#pendBin;
    const before = x !== undefined
      ? x.pend
      : pend.size === 0
      ? undefined
      : pend.get(k);
    const p: Pending = {
      slot,
      node,
      at,
      vlen,
      flags,
      pend: undefined,
      deleted,
      isStr,
      k,
      before,
    };
    if (x !== undefined) x.pend = p;
    else pend.set(k, p);
    tx.effect(this, p);
  }

  /**
   * A transaction that staged `p` is applied: the index takes it. A newer
   * staged state of the key stays pending, moved to where the index now
   * says. Internal.
   */
  applied(p: Pending): void {
    const index = p.isStr ? this.str : this.bin;
    const pend = p.isStr ? this.#pendStr : this.#pendBin;
    const k = p.k;
    const x = index.get(k);
    const newest = x !== undefined ? x.pend : pend.get(k);
    const rest = newest === p ? undefined : newest;
    if (p.deleted) {
      // a delete is staged only on a key with a state, applied before it:
      // the key is in the index
      index.delete(k);
      if (rest !== undefined) pend.set(k, rest);
    } else if (x === undefined) {
      index.set(k, p);
      p.pend = rest;
      if (newest !== undefined) pend.delete(k);
    } else {
      x.slot = p.slot;
      x.node = p.node;
      x.at = p.at;
      x.vlen = p.vlen;
      x.flags = p.flags;
      x.pend = rest;
    }
    p.before = undefined;
  }

  /** A transaction that staged `p` aborted: the key's state before returns. Internal. */
  aborted(p: Pending): void {
    const x = (p.isStr ? this.str : this.bin).get(p.k);
    if (x !== undefined) {
      x.pend = p.before;
      return;
    }
    const pend = p.isStr ? this.#pendStr : this.#pendBin;
    if (p.before === undefined) pend.delete(p.k);
    else pend.set(p.k, p.before);
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
      tx.setU64Internal(this.#desc, 16 + 8 * di, dir.offset);
      this.#dirs.push(dir);
      tx.onAbort(() => this.#dirs.pop());
    }
    const leaf = tx.allocInternal(FAN * 8, TYPE_LEAF);
    tx.setU64Internal(this.#dirs[di], 8 * (li % FAN), leaf.offset);
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
    // the map's leaves are never freed: no handle check is needed
    tx.setU64Internal(
      this.#leaves[Math.floor(slot / FAN)],
      8 * (slot % FAN),
      offset,
    );
  }

  /** The value of an entry, as it was given. */
  value(x: Entry): MapValue {
    if (x.flags & VALUE_STRING) {
      return decoder.decode(this.#e.media.peek(x.at, x.vlen));
    }
    return this.#e.media.copy(x.at, x.vlen);
  }

  /** The key of an entry. */
  key(x: Entry): MapKey {
    const media = this.#e.media;
    const off = x.node;
    const klen = media.getU32(off + 4);
    const kb = media.peek(off + NODE_HEADER, klen);
    return x.flags & KEY_STRING ? decoder.decode(kb) : kb.slice();
  }
}
