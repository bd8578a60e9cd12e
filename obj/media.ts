// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * {@linkcode ObjMedia}: the object store's only door to its file. Loads
 * and plain stores go through one view of the {@linkcode Mapping} (pools
 * are at most 4 GiB, what one view holds on every runtime); every store
 * that must persist is made durable through the mapping's `persist` or
 * `persistRanges`, so a tracer on the mapping sees it. It also keeps the
 * pages stored to since the last checkpoint (the homes a redo log's
 * entries were applied to), to persist them together.
 *
 * @module
 */
import type { Mapping } from "../pmem2/mapping.ts";
import { crc32c } from "../pmem2/crc32c.ts";

/** Dirty tracking unit (a page: what an msync writes anyway). */
const PAGE_SHIFT = 12;

/** Byte access to an object pool's mapping. */
export class ObjMedia {
  #map: Mapping;
  readonly size: number;
  /** The whole mapping. */
  readonly u8: Uint8Array;
  /** The whole mapping as u32 words. */
  readonly u32: Uint32Array;
  /** One u64 word for 8-byte stores (the checkpoint). */
  #u64: BigUint64Array;
  /** Pages stored to since the last {@linkcode ObjMedia.persistDirty}. */
  #dirty: Uint8Array;
  #dirtyLo = Infinity;
  #dirtyHi = -1;

  /** @param map the pool's mapping; it stays owned by the caller */
  constructor(map: Mapping) {
    this.#map = map;
    this.size = map.size;
    this.u8 = map.view(0, this.size);
    this.u32 = new Uint32Array(
      this.u8.buffer,
      this.u8.byteOffset,
      this.size >>> 2,
    );
    this.#u64 = new BigUint64Array(
      this.u8.buffer,
      this.u8.byteOffset,
      this.size >>> 3,
    );
    this.#dirty = new Uint8Array((this.size >>> PAGE_SHIFT) + 1);
  }

  /** The mapping. */
  get mapping(): Mapping {
    return this.#map;
  }

  /** The u64 (below 2^53) at an 8-aligned offset. */
  read64(offset: number): number {
    return this.u32[offset >>> 2] + this.u32[(offset >>> 2) + 1] * 2 ** 32;
  }

  /** Store a u64 (below 2^53) as one 8-byte store (not persisted). */
  write64(offset: number, value: number): void {
    this.#u64[offset >>> 3] = BigInt(value);
  }

  /**
   * A copy of `[offset, offset + length)`. A long one is not a `slice`:
   * on Bun a slice of a mapping's view copies slowly, and on both
   * runtimes a new array filled by `set` costs less for kilobytes.
   */
  copy(offset: number, length: number): Uint8Array {
    if (length < 1024) return this.u8.slice(offset, offset + length);
    const out = new Uint8Array(length);
    out.set(this.u8.subarray(offset, offset + length));
    return out;
  }

  /** The CRC-32C of `[offset, offset + length)`, continuing from `seed`. */
  crc(offset: number, length: number, seed: number): number {
    return crc32c(this.u8, offset, length, seed);
  }

  /** Note that `[offset, offset + length)` was stored to (a home). */
  dirty(offset: number, length: number): void {
    const first = offset >>> PAGE_SHIFT;
    const last = (offset + length - 1) >>> PAGE_SHIFT;
    const d = this.#dirty;
    for (let p = first; p <= last; p++) d[p] = 1;
    if (first < this.#dirtyLo) this.#dirtyLo = first;
    if (last > this.#dirtyHi) this.#dirtyHi = last;
  }

  /** Whether any page was stored to since the last persistDirty. */
  get hasDirty(): boolean {
    return this.#dirtyHi >= 0;
  }

  /** Make every page stored to since the last call durable (one fence). */
  persistDirty(): void {
    if (this.#dirtyHi < 0) return;
    const d = this.#dirty;
    const ranges: { offset: number; length: number }[] = [];
    let start = -1;
    for (let p = this.#dirtyLo; p <= this.#dirtyHi + 1; p++) {
      if (p <= this.#dirtyHi && d[p] === 1) {
        d[p] = 0;
        if (start < 0) start = p;
      } else if (start >= 0) {
        const offset = start << PAGE_SHIFT;
        ranges.push({
          offset,
          length: Math.min(this.size, p << PAGE_SHIFT) - offset,
        });
        start = -1;
      }
    }
    this.#dirtyLo = Infinity;
    this.#dirtyHi = -1;
    if (ranges.length === 1) {
      this.#map.persist(ranges[0].offset, ranges[0].length);
    } else this.#map.persistRanges(ranges);
  }

  /** Make a range durable. */
  persist(offset: number, length: number): void {
    this.#map.persist(offset, length);
  }

  /** Make several ranges durable with one fence. */
  persistRanges(ranges: readonly { offset: number; length: number }[]): void {
    if (ranges.length === 1) {
      this.#map.persist(ranges[0].offset, ranges[0].length);
    } else this.#map.persistRanges(ranges);
  }
}
