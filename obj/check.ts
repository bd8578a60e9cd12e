// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * {@linkcode checkObjectPool}: a consistency check of an open pool's
 * heap: every allocated block has a valid header, every object of the
 * pool's own structures (the root, each map's descriptor, directories,
 * leaves and nodes) is reachable, every pointer among them leads to an
 * allocated object, and, given the objects the application holds, no
 * user object leaks. The CLI's `check` and the crash suite use it.
 *
 * @module
 */
import {
  CATALOG_SLOTS,
  OBJECT_HEADER,
  OBJECT_MAGIC,
  TYPE_INTERNAL,
} from "./layout.ts";
import { readOptions } from "../ffi/validate.ts";
import { u64Text } from "./object_bytes.ts";
import { TYPE_ROOT } from "./open.ts";
import type { ObjectPool } from "./pool.ts";
import { poolEngine } from "./pool_access.ts";

/** Object types of a map's structures. */
const MAP_TYPES: Readonly<Record<number, string>> = {
  0x80000010: "map",
  0x80000011: "directory",
  0x80000012: "leaf",
  0x80000013: "node",
};
const FAN = 508;

/** What {@linkcode checkObjectPool} found. */
export interface PoolCheckReport {
  /** Allocated objects, by kind (user, root, map, directory, leaf, node). */
  objects: Record<string, number>;
  /** Bytes of data in allocated objects. */
  bytes: number;
  /** One sentence per inconsistency (none: consistent). */
  problems: string[];
}

/** Options of {@linkcode checkObjectPool}. */
export interface CheckOptions {
  /**
   * The offsets of every user object the application holds: then a user
   * object not among them is a leak, and one of them not allocated is a
   * dangling pointer.
   */
  live?: Iterable<number>;
}

/**
 * Check an open pool's heap (it must have no transaction in flight).
 *
 * @example Usage
 * ```ts
 * import { checkObjectPool, ObjectPool } from "@asyncpmem/asyncpmem/obj";
 * import assert from "node:assert/strict";
 * import { mkdtempSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 *
 * const path = join(mkdtempSync(join(tmpdir(), "asyncpmem-")), "pool");
 * using pool = ObjectPool.create(path, { size: 8 << 20, layout: "c" });
 * const o = pool.tx((tx) => tx.alloc(10));
 * const report = checkObjectPool(pool, { live: [o.offset] });
 * assert.deepEqual(report.problems, []);
 * assert.equal(report.objects.user, 1);
 * ```
 *
 * @throws {TypeError} for options that are no {@linkcode CheckOptions}: an
 *   unknown key (a misspelt `live` would skip the leak check), or a `live`
 *   that is no iterable of offsets (handles included: pass `h.offset`)
 */
export function checkObjectPool(
  pool: ObjectPool,
  options: CheckOptions = {},
): PoolCheckReport {
  // named for the caller's call (it said "use: ObjectPool is closed")
  const e = poolEngine(pool, "check", "check pool");
  // read before anything runs: a mistake here would otherwise report a
  // healthy pool's objects as dangling and leaked
  const live = liveOffsets(readOptions(options, ["live"], "check pool").live);
  e.flush("check");
  const media = e.media;
  const problems: string[] = [];
  const objects: Record<string, number> = {
    user: 0,
    root: 0,
    map: 0,
    directory: 0,
    leaf: 0,
    node: 0,
  };
  const allocated = new Map<number, number>(); // offset -> type
  let bytes = 0;
  for (const block of e.heap.blocks()) {
    const offset = block + OBJECT_HEADER;
    const cap = e.heap.capacity(block);
    if (media.getU32(block) !== OBJECT_MAGIC || media.getU32(block + 8) === 0) {
      problems.push(`the allocated block at ${block} has no valid header`);
      continue;
    }
    const size = media.getU32(block + 4);
    if (OBJECT_HEADER + size > cap) {
      problems.push(
        `the object at ${offset} claims ${size} bytes in a block of ${cap}`,
      );
      continue;
    }
    const type = media.getU32(block + 12);
    const kind = type < TYPE_INTERNAL
      ? "user"
      : type === TYPE_ROOT
      ? "root"
      : MAP_TYPES[type];
    if (kind === undefined) {
      problems.push(`the object at ${offset} has type 0x${type.toString(16)}`);
      continue;
    }
    objects[kind]++;
    bytes += size;
    allocated.set(offset, type);
  }
  const reached = new Set<number>();
  // `at`: where the offset was read, to show it exactly if it is bad
  const reach = (
    offset: number,
    type: number,
    what: string,
    at?: number,
  ): boolean => {
    if (allocated.get(offset) !== type) {
      const shown = at === undefined ? String(offset) : u64Text(media, at);
      problems.push(`${what} points at ${shown}, which is no such object`);
      return false;
    }
    if (reached.has(offset)) {
      problems.push(`${what} points at ${offset}, reached twice`);
      return false;
    }
    reached.add(offset);
    return true;
  };
  if (e.state.rootOffset !== 0) {
    reach(e.state.rootOffset, TYPE_ROOT, "the root pointer");
  }
  for (let i = 0; i < CATALOG_SLOTS; i++) {
    const c = e.state.catalog[i];
    if (c.name === "") continue;
    const what = `the map ${JSON.stringify(c.name)}`;
    if (!reach(c.offset, 0x80000010, what)) continue;
    for (let m = 0; m < 256; m++) {
      const dirAt = c.offset + 16 + 8 * m;
      const dir = e.media.read64(dirAt);
      if (
        dir === 0 || !reach(dir, 0x80000011, `${what}, directory ${m}`, dirAt)
      ) {
        continue;
      }
      for (let l = 0; l < FAN; l++) {
        const leaf = e.media.read64(dir + 8 * l);
        if (
          leaf === 0 ||
          !reach(leaf, 0x80000012, `${what}, leaf ${m * FAN + l}`, dir + 8 * l)
        ) {
          continue;
        }
        for (let s = 0; s < FAN; s++) {
          const node = e.media.read64(leaf + 8 * s);
          if (node !== 0) {
            reach(
              node,
              0x80000013,
              `${what}, slot ${(m * FAN + l) * FAN + s}`,
              leaf + 8 * s,
            );
          }
        }
      }
    }
  }
  for (const [offset, type] of allocated) {
    if (type >= TYPE_INTERNAL && !reached.has(offset)) {
      problems.push(
        `the ${
          MAP_TYPES[type] ?? "root"
        } object at ${offset} is unreachable (a leak)`,
      );
    }
  }
  if (live !== undefined) {
    for (const offset of live) {
      if (!(allocated.get(offset)! < TYPE_INTERNAL)) {
        problems.push(
          `the user object at ${offset} is not allocated (dangling)`,
        );
      }
    }
    for (const [offset, type] of allocated) {
      if (type < TYPE_INTERNAL && !live.has(offset)) {
        problems.push(
          `the user object at ${offset} is allocated but not held (a leak)`,
        );
      }
    }
  }
  return { objects, bytes, problems };
}

/** The offsets of `live`, read once, each checked to be an offset. */
function liveOffsets(
  live: Iterable<number> | undefined,
): Set<number> | undefined {
  if (live === undefined) return undefined;
  if (
    typeof (live as { [Symbol.iterator]?: unknown })?.[Symbol.iterator] !==
      "function" || typeof live === "string"
  ) {
    throw new TypeError(
      "Cannot check pool: live must be an iterable of object offsets",
    );
  }
  const offsets = new Set<number>();
  for (const offset of live) {
    if (!Number.isSafeInteger(offset) || offset < 0) {
      const got = typeof offset === "number"
        ? String(offset)
        : typeof offset === "object" && offset !== null
        ? `an object (${(offset as object).constructor?.name ?? "null"})`
        : `a ${typeof offset}`;
      throw new TypeError(
        `Cannot check pool: live must hold object offsets, got ${got}${
          got === "an object (ObjectHandle)" ? ": pass a handle's offset" : ""
        }`,
      );
    }
    offsets.add(offset);
  }
  return offsets;
}
