// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * {@linkcode MappingReader}: reads of one mapping for a caller that checks
 * its own arguments. Internal to the library (the block store's reads).
 *
 * @module
 */
import { ClosedError } from "../errors/mod.ts";
import { native, nativeError, type Ptr } from "../ffi/lib.ts";
import { PointerCache } from "../ffi/pointer_cache.ts";
import { type Mapping, registerReader } from "./mapping.ts";
import { copyOut } from "./read.ts";

/** The native gather and prefetch, in constants (see `read.ts`). */
const readBlocks = native.ap_read_blocks;
const prefetchBlocks = native.ap_prefetch_blocks;

/**
 * A reader of one mapping for a caller that checks its own arguments: the
 * block store, whose `read` is one block copy and must stay short. A loop
 * of small reads from random places overlaps one copy's cache misses with
 * the next only while each iteration's instructions fit the CPU's reorder
 * window, and a second round of checks (`Mapping.read`'s, after the block
 * store's own) makes the iteration too long for that.
 *
 * The mapping closes its readers when it closes, so a reader never
 * reaches unmapped memory: its reads throw {@linkcode ClosedError} then.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { mapFile } from "./mapping.ts";
 * import { MappingReader } from "./reader.ts";
 * const path = await Deno.makeTempFile();
 * using map = mapFile(path, { size: 4096 });
 * map.memset(0, 7, 16);
 * const reader = new MappingReader(map);
 * const into = new Uint8Array(16);
 * reader.read(0, into, 16);
 * assert.equal(into[15], 7);
 * ```
 */
export class MappingReader {
  /** The mapping's address; null once closed. */
  #base: Ptr | null;
  #size: number;
  #into = new PointerCache();

  /**
   * @param map an open mapping
   * @throws {ClosedError} when `map` is closed
   */
  constructor(map: Mapping) {
    this.#base = registerReader(map, this);
    this.#size = map.size;
  }

  /**
   * Copy `length` bytes at `offset` into the start of `into`. The caller
   * has checked that `offset` and `length` are non-negative integers with
   * `offset + length` inside the mapping, and that `into` is a Uint8Array
   * of at least `length` bytes; the native side checks the range again.
   *
   * @throws {ClosedError} after {@linkcode MappingReader.close} or the
   *   mapping's close
   */
  read(offset: number, into: Uint8Array, length: number): void {
    const base = this.#base;
    if (base === null) throw new ClosedError("MappingReader", "read");
    copyOut(base, this.#size, this.#into, offset, into, length);
  }

  /**
   * Copy `count` blocks of `length` bytes into `into`, block i from
   * `offsets[i]` (zeros where it is negative) to `i * length`, in one
   * native call that overlaps the blocks' cache misses. The caller has
   * checked the offsets and that `into` holds `count * length` bytes; the
   * native side checks them again before copying anything.
   *
   * @throws {ClosedError} after {@linkcode MappingReader.close} or the
   *   mapping's close
   * @throws {PmemError} when an offset leaves the mapping
   */
  readBlocks(
    offsets: Float64Array,
    count: number,
    length: number,
    into: Uint8Array,
  ): void {
    const base = this.#base;
    if (base === null) throw new ClosedError("MappingReader", "read");
    const rc = readBlocks(
      base,
      this.#size,
      offsets,
      offsets.byteLength,
      count,
      length,
      into,
      into.byteLength,
    );
    if (rc !== 0) throw nativeError(rc, "read");
  }

  /**
   * Prefetch `count` blocks of `length` bytes (at `offsets[i]`; none where
   * negative) into the CPU's caches and return: copies of them that follow
   * read from the cache. The caller has checked the offsets.
   *
   * @throws {ClosedError} after {@linkcode MappingReader.close} or the
   *   mapping's close
   */
  prefetchBlocks(offsets: Float64Array, count: number, length: number): void {
    const base = this.#base;
    if (base === null) throw new ClosedError("MappingReader", "read");
    const rc = prefetchBlocks(
      base,
      this.#size,
      offsets,
      offsets.byteLength,
      count,
      length,
    );
    if (rc !== 0) throw nativeError(rc, "read");
  }

  /** Stop reading; later reads throw. Idempotent. */
  close(): void {
    this.#base = null;
    this.#into.clear();
  }
}
