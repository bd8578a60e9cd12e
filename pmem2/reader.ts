// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * {@linkcode MappingReader}: reads of one mapping for a caller that checks
 * its own arguments. Internal to the library (the block store's reads).
 *
 * @module
 */
import { ClosedError } from "../errors/mod.ts";
import { backend, native, nativeError, type Ptr } from "../ffi/lib.ts";
import { PointerCache } from "../ffi/pointer_cache.ts";
import { byteLengthOf, holds, trueBytes } from "../ffi/validate.ts";
import { RUNTIME } from "../ffi/_runtime.ts";
import type { Mapping } from "./mapping.ts";
import { registerReader } from "./mapping_access.ts";
import { copyOut } from "./read.ts";

/** The native gather and prefetch, in constants (see `read.ts`). */
const readBlocks = native.ap_read_blocks;
const prefetchBlocks = native.ap_prefetch_blocks;
const readIndexed = native.ap_read_indexed;
const readIndexedTo = native.ap_read_indexed_to;

/**
 * Whether the Uint8Array `bytes` has room for `length` bytes (a positive
 * integer), checked the way this runtime's JIT compiles into the caller:
 * a loop of reads from random blocks runs at the speed of memory only
 * while nothing in it is a call out of the compiled code, which keeps one
 * read's cache misses from overlapping the next one's. V8 compiles the
 * engine's byteLength getter (`byteLengthOf`) to a load; JavaScriptCore
 * calls it, and with it in `BlockPool.read` 512-byte reads took 300 ns
 * against 150 on Bun. There an element read (`holds`) is compiled in,
 * which on V8 made the same reads 410-440 ns against 140.
 */
export const hasRoom: (bytes: Uint8Array, length: number) => boolean =
  RUNTIME === "bun" ? holds : (bytes, length) => byteLengthOf(bytes) >= length;

let baseOf: (reader: MappingReader) => Ptr | null;
let sizeOf: (reader: MappingReader) => number;
let intoOf: (reader: MappingReader) => PointerCache;

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
 * import { mapFile } from "./map_file.ts";
 * import { MappingReader } from "./reader.ts";
 * import { mkdtempSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 *
 * const path = join(mkdtempSync(join(tmpdir(), "asyncpmem-")), "data");
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
    // the engine's lengths (see `byteLengthOf`): one lookup per batch
    const rc = readBlocks(
      base,
      this.#size,
      offsets,
      byteLengthOf(offsets),
      count,
      length,
      into,
      byteLengthOf(into),
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
      byteLengthOf(offsets),
      count,
      length,
    );
    if (rc !== 0) throw nativeError(rc, "read");
  }

  /**
   * A reader of the records that the entries of a table of u32 entries in
   * the mapping name ({@linkcode IndexedReader}): `desc` describes the
   * table and the records, `guard` holds the word that must keep its
   * expected value. Both must stay alive and unmoved while it is used (a
   * Float64Array over an ArrayBuffer of its own; native memory).
   */
  indexed(desc: Float64Array, guard: Int32Array): IndexedReader {
    return new IndexedReader(this, desc, guard);
  }

  static {
    baseOf = (reader) => reader.#base;
    sizeOf = (reader) => reader.#size;
    intoOf = (reader) => reader.#into;
  }

  /** Stop reading; later reads throw. Idempotent. */
  close(): void {
    this.#base = null;
    this.#into.clear();
  }
}

/**
 * Reads of the record that an entry of a table of u32 entries names, in
 * one native call each (`ap_read_indexed`): the block store's read of a
 * block, looked up in its arena's map, while it is its pool's only opener
 * (the guard word counts the openers). Made by
 * {@linkcode MappingReader.indexed}; closed with its reader.
 */
export class IndexedReader {
  #reader: MappingReader;
  #desc: Ptr | null;
  #descLength: number;
  #guard: Ptr | null;
  #guardLength: number;
  /** Holds the arrays whose pointers it passes. */
  #keep: [Float64Array, Int32Array];

  /**
   * @param reader the mapping's reader
   * @param desc the table's offset and entries, the record-bits mask and
   *   the other bits of a present entry, the records' offset, count and
   *   stride, the guard word's index and expected value (9 doubles)
   * @param guard the words holding the guard word
   */
  constructor(reader: MappingReader, desc: Float64Array, guard: Int32Array) {
    this.#reader = reader;
    this.#keep = [desc, guard];
    // pointers and lengths of the arrays' own bytes (see `trueBytes`)
    const d = trueBytes(desc);
    const g = trueBytes(guard);
    this.#desc = backend.pointerOf(d);
    this.#descLength = d.byteLength;
    this.#guard = backend.pointerOf(g);
    this.#guardLength = g.byteLength;
  }

  /**
   * Copy `length` bytes of the record that entry `index` names into
   * `into`, if the entry marks it present and the guard word holds its
   * expected value before the lookup and after the copy. The caller has
   * checked `index` and that `into` holds `length` bytes; the native side
   * checks every range again.
   *
   * @returns whether the record was copied (else take the general path)
   * @throws {ClosedError} after the reader's or the mapping's close
   */
  read(index: number, into: Uint8Array, length: number): boolean {
    const reader = this.#reader;
    const base = baseOf(reader);
    if (base === null) throw new ClosedError("MappingReader", "read");
    // the capacity checked against `length`: see `copyOut`
    const cap = holds(into, length) ? length : 0;
    const at = intoOf(reader).of(into);
    const rc = at === null
      ? readIndexed(
        base,
        sizeOf(reader),
        this.#desc,
        this.#descLength,
        index,
        into,
        cap,
        length,
        this.#guard,
        this.#guardLength,
      )
      : readIndexedTo(
        base,
        sizeOf(reader),
        this.#desc,
        this.#descLength,
        index,
        at,
        cap,
        length,
        this.#guard,
        this.#guardLength,
      );
    if (rc === 0) return true;
    if (rc === 1) return false;
    void this.#keep;
    throw nativeError(rc, "read");
  }
}
