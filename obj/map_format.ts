// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * A `PersistentMap`'s objects on media (`obj/map.ts` draws them): their
 * types, sizes and node flags, the limits of keys and values, and how a
 * key or value is stored (UTF-8, or its bytes; ASCII without an encoder).
 * Internal to `obj/`; `map.ts` exports the public names.
 *
 * @module
 */
import { trueBytes } from "../ffi/validate.ts";

/** Object type of a map's directory. */
export const TYPE_DIR = 0x80000011;
/** Object type of a map's leaf. */
export const TYPE_LEAF = 0x80000012;
/** Object type of a map's node. */
export const TYPE_NODE = 0x80000013;
/** The magic word of a map's descriptor ("PMAP"). */
export const MAP_MAGIC = 0x50414d50;
/** The version of a map's objects, in its descriptor. */
export const MAP_VERSION = 1;
/** Pointers per directory, slots per leaf. */
export const FAN = 508;
/** Directories per map. */
export const TOP = 256;
/** Bytes of a map's descriptor: its magic, version and directories. */
export const DESC_SIZE = 16 + TOP * 8;
/** Bytes of a node's header: its flags, key length and value length. */
export const NODE_HEADER = 12;
/** A node's flag: its key is a string. */
export const KEY_STRING = 1;
/** A node's flag: its value is a string. */
export const VALUE_STRING = 2;
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

/** Encodes a string key or value (UTF-8). */
export const encoder = new TextEncoder();
/** Decodes a string key or value stored as UTF-8. */
// ignoreBOM: by default a leading U+FEFF is dropped, and a key or value
// that began with one would read back as another
export const decoder = new TextDecoder("utf-8", { ignoreBOM: true });

/** The length of a string if every char is ASCII (one UTF-8 byte), else -1. */
export function asciiLength(s: string): number {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return -1;
  return s.length;
}

/** Store an ASCII string's chars as bytes at `at`. */
export function putAscii(u8: Uint8Array, at: number, s: string): void {
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
