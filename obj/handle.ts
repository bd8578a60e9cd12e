// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * {@linkcode ObjectHandle}: a reference to one object of one open pool
 * (libpmemobj's `PMEMoid`, plus what catches its misuse): the object's
 * offset and size, the pool it belongs to, and the generation its header
 * had when the handle was made, so a handle to a freed object is caught.
 *
 * @module
 */
import { notConstructible } from "../ffi/validate.ts";

/** What a handle's pool is, to the handle (an opaque owner token). */
export type PoolToken = object;

let makeHandle: (
  owner: PoolToken,
  offset: number,
  size: number,
  type: number,
  gen: number,
) => ObjectHandle;
let ownerOf: (h: ObjectHandle) => PoolToken;
let genOf: (h: ObjectHandle) => number;

/**
 * A reference to an object of an open {@linkcode ObjectPool}. Store its
 * `offset` in the pool to keep the object reachable; rebuild a handle from
 * a stored offset with `pool.object(offset)`. Handles are only valid for
 * the pool instance that made them.
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
 * const o = pool.tx((tx) => tx.alloc(100));
 * assert.equal(o.size, 100);
 * assert.equal(pool.object(o.offset).size, 100);
 * ```
 */
export class ObjectHandle {
  /** File offset of the object's data (its header lies just before). */
  readonly offset: number;
  /** Bytes of data. */
  readonly size: number;
  /** The type number given at allocation (0 by default). */
  readonly type: number;
  #owner: PoolToken;
  #gen: number;

  private constructor(
    owner: PoolToken,
    offset: number,
    size: number,
    type: number,
    gen: number,
  ) {
    if (owner === undefined) {
      notConstructible(
        "ObjectHandle",
        "handles come from a transaction's alloc(), ObjectPool.root() and ObjectPool.object()",
      );
    }
    this.#owner = owner;
    this.offset = offset;
    this.size = size;
    this.type = type;
    this.#gen = gen;
    // `readonly` binds TypeScript only: a handle whose size or type a
    // program changed passed the range checks past its object (into the
    // next one's header), and `free` of a root typed 0
    Object.freeze(this);
  }

  static {
    makeHandle = (owner, offset, size, type, gen) =>
      new ObjectHandle(owner, offset, size, type, gen);
    ownerOf = (h) => h.#owner;
    genOf = (h) => h.#gen;
  }

  /** `ObjectHandle(offset, size)`. */
  toString(): string {
    return `ObjectHandle(${this.offset}, ${this.size})`;
  }
}

/** Make a handle. Internal. */
export function newHandle(
  owner: PoolToken,
  offset: number,
  size: number,
  type: number,
  gen: number,
): ObjectHandle {
  return makeHandle(owner, offset, size, type, gen);
}

/** A handle's owner token. Internal. */
export function handleOwner(h: ObjectHandle): PoolToken {
  return ownerOf(h);
}

/** A handle's generation. Internal. */
export function handleGen(h: ObjectHandle): number {
  return genOf(h);
}
