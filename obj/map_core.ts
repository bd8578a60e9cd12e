// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * {@linkcode MapCore}: the state of one `PersistentMap` of one open pool
 * (its objects and its volatile key index) and the transaction bodies of
 * its operations. Internal to `obj/`; `map.ts` holds the public class and
 * the on-media description, `map_format.ts` the objects' constants and
 * the keys' encoding, `map_load.ts` the reading of the objects at open.
 *
 * @module
 */
import { OutOfSpaceError } from "../errors/mod.ts";
import { asOp } from "../errors/file.ts";
import { byteLengthOf } from "../ffi/validate.ts";
import type { ObjectHandle } from "./handle.ts";
import type { Engine } from "./engine.ts";
import type { Future } from "../future/future.ts";
import {
  asciiLength,
  binKey,
  decoder,
  encoder,
  FAN,
  KEY_STRING,
  type MapKey,
  type MapValue,
  MAX_VALUE,
  NODE_HEADER,
  putAscii,
  TOP,
  TYPE_DIR,
  TYPE_LEAF,
  TYPE_NODE,
  VALUE_STRING,
} from "./map_format.ts";
import { loadMap, type OtherMaps } from "./map_load.ts";
import type { ObjectPool } from "./pool.ts";
import { type Transaction, type TxEffects, txHooks } from "./tx.ts";
import { stagedData } from "./tx_run.ts";

/**
 * Where an entry lives. An index entry is updated in place when its key
 * is set again (it holds numbers only), so a set leaves no long-lived
 * garbage behind.
 */
export interface Entry {
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
  /** How the key count changes when it is applied: -1, 0 or 1. */
  delta: number;
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
  /**
   * Keys staged and not applied yet, less those deleted so: the count a
   * transaction's reads see is the index's size plus this.
   */
  #delta = 0;
  /** The index entry `#latest` found last (for the `#stage` after it). */
  #found: Entry | undefined = undefined;
  /** The key and value of the `setAsync` running (see `setAsync`). */
  #argK: MapKey = "";
  #argV: MapValue = "";
  /**
   * A set of the stashed key and value: one closure for every `setAsync`.
   * A full pool's error names `setAsync` (see `asMapOp` in map.ts).
   */
  #setArgs = (tx: Transaction) => {
    try {
      this.set(tx, this.#argK, this.#argV);
    } catch (e) {
      throw e instanceof OutOfSpaceError ? asOp(e, "setAsync") : e;
    }
  };

  constructor(e: Engine, name: string, desc: ObjectHandle) {
    this.#e = e;
    this.name = name;
    this.#desc = desc;
  }

  /**
   * Rebuild the volatile index from the map's objects, none of which may
   * be one of `others`'.
   */
  load(others: OtherMaps): void {
    const m = loadMap(
      this.#e,
      this.name,
      this.#desc,
      this.str,
      this.bin,
      others,
    );
    this.#dirs = m.dirs;
    this.#leaves = m.leaves;
    this.#free = m.free;
    this.#hw = m.hw;
  }

  /** Note its directories and leaves in `into`, each with what it is. */
  structures(into: Map<number, string>): void {
    const map = `the map ${JSON.stringify(this.name)}'s`;
    this.#dirs.forEach((d, i) => into.set(d.offset, `${map} directory ${i}`));
    this.#leaves.forEach((l, i) => into.set(l.offset, `${map} leaf ${i}`));
  }

  /**
   * The entry of a key that a read sees (undefined: none). Outside a
   * transaction's callback, the committed one; inside one, the newest
   * staged, as reads in a transaction see its own writes and those of the
   * transactions staged before it (a read-modify-write of a key done twice
   * in one transaction lost the first write).
   */
  visible(key: MapKey): Entry | undefined {
    return typeof key === "string"
      ? this.visibleAt(key, true)
      : this.visibleAt(binKey(key), false);
  }

  /**
   * The entry a read sees of the key `k` of the index (a string of char
   * codes for bytes), as `visible`.
   */
  visibleAt(k: string, isStr: boolean): Entry | undefined {
    const x = (isStr ? this.str : this.bin).get(k);
    if (this.#e.current === undefined) return x;
    const p = x !== undefined
      ? x.pend
      : (isStr ? this.#pendStr : this.#pendBin).get(k);
    if (p === undefined) return x;
    return p.deleted ? undefined : p;
  }

  /** The number of keys a read sees (see `visible`). */
  size(): number {
    const n = this.str.size + this.bin.size;
    return this.#e.current === undefined ? n : n + this.#delta;
  }

  /**
   * The keys a read sees (see `visible`), each as the index's key (a
   * string of char codes for bytes) with whether it is a string.
   */
  visibleKeys(): [string, boolean][] {
    const keys: [string, boolean][] = [];
    for (const k of this.str.keys()) keys.push([k, true]);
    for (const k of this.bin.keys()) keys.push([k, false]);
    if (this.#e.current === undefined) return keys;
    // keys staged that the index lacks (their deletes, if staged later,
    // are skipped when reached)
    for (const k of this.#pendStr.keys()) keys.push([k, true]);
    for (const k of this.#pendBin.keys()) keys.push([k, false]);
    return keys;
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
    const node = txHooks.allocInternalAt(
      tx,
      NODE_HEADER + klen + vlen,
      TYPE_NODE,
    );
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
      const was = txHooks.beginInternalWrites(tx);
      try {
        tx.write(o, 0, head);
        tx.write(o, NODE_HEADER, kb ?? encoder.encode(key as string));
        tx.write(
          o,
          NODE_HEADER + klen,
          vb ?? encoder.encode(value as string),
        );
      } finally {
        txHooks.endInternalWrites(tx, was);
      }
    }
    let slot: number;
    if (cur !== undefined) {
      slot = cur.slot;
      txHooks.freeInternal(tx, cur.node);
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
      cur === undefined ? 1 : 0,
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
    txHooks.freeInternal(tx, cur.node);
    this.#setSlot(tx, cur.slot, 0);
    this.#free.push(cur.slot);
    txHooks.onAbort(tx, () => this.#free.pop());
    this.#stage(tx, isStr, k, true, cur.slot, 0, 0, 0, 0, -1);
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
    delta: number,
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
      delta,
    };
    if (x !== undefined) x.pend = p;
    else pend.set(k, p);
    this.#delta += delta;
    txHooks.effect(tx, this, p);
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
    // the index now counts it
    this.#delta -= p.delta;
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
    this.#delta -= p.delta;
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
      txHooks.onAbort(tx, () => free.push(s));
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
      const dir = txHooks.allocInternal(tx, FAN * 8, TYPE_DIR);
      txHooks.setU64Internal(tx, this.#desc, 16 + 8 * di, dir.offset);
      this.#dirs.push(dir);
      txHooks.onAbort(tx, () => this.#dirs.pop());
    }
    const leaf = txHooks.allocInternal(tx, FAN * 8, TYPE_LEAF);
    txHooks.setU64Internal(tx, this.#dirs[di], 8 * (li % FAN), leaf.offset);
    this.#leaves.push(leaf);
    const added = FAN - 1;
    for (let t = s + FAN - 1; t > s; t--) free.push(t);
    this.#hw = s + FAN;
    txHooks.onAbort(tx, () => {
      this.#leaves.pop();
      free.length -= added;
      this.#hw = s;
    });
    return s;
  }

  #setSlot(tx: Transaction, slot: number, offset: number): void {
    // the map's leaves are never freed: no handle check is needed
    txHooks.setU64Internal(
      tx,
      this.#leaves[Math.floor(slot / FAN)],
      8 * (slot % FAN),
      offset,
    );
  }

  /** The value of an entry, as it was given. */
  value(x: Entry): MapValue {
    const tx = this.#e.current;
    if (tx !== undefined) {
      // (a node staged and not applied has its bytes in the log)
      const vb = tx.read(tx.object(x.node), x.at - x.node, x.vlen);
      return x.flags & VALUE_STRING ? decoder.decode(vb) : vb;
    }
    if (x.flags & VALUE_STRING) {
      return decoder.decode(this.#e.media.peek(x.at, x.vlen));
    }
    return this.#e.media.copy(x.at, x.vlen);
  }

  /** The key of an entry. */
  key(x: Entry): MapKey {
    const tx = this.#e.current;
    if (tx !== undefined) {
      const o = tx.object(x.node);
      const kb = tx.read(o, NODE_HEADER, tx.getU32(o, 4));
      return x.flags & KEY_STRING ? decoder.decode(kb) : kb;
    }
    const media = this.#e.media;
    const off = x.node;
    const klen = media.getU32(off + 4);
    const kb = media.peek(off + NODE_HEADER, klen);
    return x.flags & KEY_STRING ? decoder.decode(kb) : kb.slice();
  }
}
