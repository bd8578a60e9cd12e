// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Reading a `PersistentMap`'s objects back when a pool's map is first
 * opened: its descriptor, directories, leaves and nodes are checked (a
 * {@linkcode CorruptPoolError} names the one damaged), and the volatile
 * index of its `MapCore` (`obj/map_core.ts`) is rebuilt from them.
 * Internal to `obj/`.
 *
 * @module
 */
import type { Engine } from "./engine.ts";
import { CorruptPoolError } from "./errors.ts";
import { newHandle, type ObjectHandle } from "./handle.ts";
import { OBJECT_HEADER } from "./layout.ts";
import {
  binKey,
  decoder,
  FAN,
  KEY_STRING,
  MAP_MAGIC,
  MAP_VERSION,
  NODE_HEADER,
  TOP,
  TYPE_DIR,
  TYPE_LEAF,
  TYPE_NODE,
} from "./map_format.ts";
import type { Entry } from "./map_core.ts";
import { objectProblem } from "./open.ts";

/**
 * What the maps of the pool loaded before hold: a map's directories,
 * leaves and nodes are its own, and one reached by another map too is
 * damage (a set through either frees a node, or overwrites a slot, that
 * the other still reads).
 */
export interface OtherMaps {
  /** Their directories and leaves, each with what it is. */
  structures: ReadonlyMap<number, string>;
  /**
   * What the node at `offset`, of the key `key` (a string of char codes
   * for bytes), is of another map, if it is one's: the same node holds
   * the same key, so a lookup of the key finds it.
   */
  node(isStr: boolean, key: string, offset: number): string | undefined;
}

/** A map's objects as {@linkcode loadMap} found them. */
export interface MapObjects {
  /** Its directories, in order. */
  dirs: ObjectHandle[];
  /** Its leaves, in order. */
  leaves: ObjectHandle[];
  /** Its free slots, the lowest last (taken first). */
  free: number[];
  /** The high-water mark of its slots: every slot of its leaves. */
  hw: number;
}

/**
 * Read the objects of the map `name` (its descriptor `desc`): the
 * entries of its keys go into `str` and `bin`, the index by string and
 * by bytes.
 *
 * @throws {CorruptPoolError} naming the damaged object (one of `others`'
 *   included)
 */
export function loadMap(
  e: Engine,
  name: string,
  desc: ObjectHandle,
  str: Map<string, Entry>,
  bin: Map<string, Entry>,
  others: OtherMaps,
): MapObjects {
  const media = e.media;
  const bad = (what: string, detail: string) =>
    new CorruptPoolError(
      "open",
      `the map ${JSON.stringify(name)}: ${what}`,
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
  const dirs: ObjectHandle[] = [];
  const leaves: ObjectHandle[] = [];
  const free: number[] = [];
  const d = desc.offset;
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
    const first = seen.get(offset) ?? others.structures.get(offset);
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
    dirs.push(dir);
    for (let l = 0; l < FAN; l++) {
      const loff = media.read64(dir.offset + 8 * l);
      if (loff === 0) {
        sawEnd = true;
        continue;
      }
      const what = `leaf ${m * FAN + l}`;
      if (sawEnd) throw bad(what, "it follows an empty one");
      leaves.push(handle(loff, dir.offset + 8 * l, TYPE_LEAF, what));
      once(loff, what);
    }
  }
  for (let li = 0; li < leaves.length; li++) {
    const leaf = leaves[li];
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
      const isStr = (flags & KEY_STRING) !== 0;
      const map = isStr ? str : bin;
      const key = isStr ? decoder.decode(kb) : binKey(kb);
      if (map.has(key)) {
        throw bad(
          `the node of slot ${slot}`,
          "its key is in another slot too",
        );
      }
      const other = others.node(isStr, key, off);
      if (other !== undefined) {
        throw bad(`the node of slot ${slot}`, `it is ${other} too`);
      }
      map.set(key, entry);
    }
  }
  const hw = leaves.length * FAN;
  const used = new Set<number>();
  for (const x of str.values()) used.add(x.slot);
  for (const x of bin.values()) used.add(x.slot);
  for (let s = hw - 1; s >= 0; s--) {
    if (!used.has(s)) free.push(s);
  }
  return { dirs, leaves, free, hw };
}
