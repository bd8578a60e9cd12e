// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * {@linkcode Media}: the block store's only door to the pool file. Loads
 * go through cached views of the {@linkcode Mapping}; every store that
 * must persist goes through the mapping's `persist`, `memcpy` or
 * `memset`, so one tracer on the mapping sees all of them.
 *
 * @module
 */
import type { Mapping } from "../pmem2/mapping.ts";
import { type IndexedReader, MappingReader } from "../pmem2/reader.ts";
import type { Granularity } from "../pmem2/config.ts";
import { VIEW_WINDOWS } from "../pmem2/view_buffers.ts";

/**
 * Views are the mapping's own windows (see `VIEW_WINDOWS`: 1 GiB every
 * 512 MiB on Deno, 4 MiB every 2 MiB on Bun), so any access of up to a
 * stride lies inside one window, and a Bun pool's reads and writes make
 * windows only over its header, info blocks, maps and flogs.
 */
const WINDOW_STRIDE = VIEW_WINDOWS.stride;
const WINDOW_SIZE = VIEW_WINDOWS.size;

/** Whether typed arrays store little-endian here (they do on x86 and ARM). */
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** The largest single access {@linkcode Media} serves. */
export const MAX_ACCESS = WINDOW_STRIDE;

/**
 * The largest pool whose blocks mover batches address in one view (Bun's
 * limit for a view; its u32 words are then indexed by `offset >>> 2`).
 */
const BLOCK_VIEW_LIMIT = 2 ** 32;

/**
 * Byte-level access to a pool mapping: zero-copy loads and durable stores.
 * Views are cached per window for the life of the media and dropped by
 * {@linkcode Media.close}.
 */
export class Media {
  #map: Mapping;
  #size: number;
  #granularity: Granularity;
  #bytes: (Uint8Array | undefined)[] = [];
  #words: (DataView | undefined)[] = [];
  /** The windows as u32 words, on a little-endian host. */
  #u32s: (Uint32Array | undefined)[] = [];
  /**
   * The whole pool as u32 words when it fits one window on a
   * little-endian host: the map and flog accesses of every block
   * operation then skip the window arithmetic and DataView calls.
   */
  #u32: Uint32Array | undefined;
  #reader: MappingReader;
  /** One view of the pool for mover batches (null: windows), once made. */
  #blocks: Uint8Array | null | undefined;

  /** @param map the pool's mapping; it stays owned by the caller */
  constructor(map: Mapping) {
    this.#map = map;
    this.#size = map.size;
    this.#granularity = map.granularity;
    this.#reader = new MappingReader(map);
    if (LITTLE_ENDIAN && this.#size <= WINDOW_SIZE) {
      const view = this.#window(0);
      this.#u32 = new Uint32Array(
        view.buffer,
        view.byteOffset,
        view.length >>> 2,
      );
    }
  }

  /** The mapped size. */
  get size(): number {
    return this.#size;
  }

  /** The mapping (for the pool's own bookkeeping). */
  get mapping(): Mapping {
    return this.#map;
  }

  #window(k: number): Uint8Array {
    const start = k * WINDOW_STRIDE;
    const view = this.#map.view(
      start,
      Math.min(WINDOW_SIZE, this.#size - start),
    );
    this.#bytes[k] = view;
    this.#words[k] = new DataView(
      view.buffer,
      view.byteOffset,
      view.byteLength,
    );
    // windows start at multiples of the stride: 4-aligned
    if (LITTLE_ENDIAN) {
      this.#u32s[k] = new Uint32Array(
        view.buffer,
        view.byteOffset,
        view.byteLength >>> 2,
      );
    }
    return view;
  }

  /**
   * A zero-copy view of `[offset, offset + length)`; valid until close.
   * `length` must not exceed {@linkcode MAX_ACCESS}.
   */
  bytes(offset: number, length: number): Uint8Array {
    if (length > MAX_ACCESS || offset + length > this.#size || offset < 0) {
      throw new RangeError(
        `Cannot access [${offset}, ${offset + length}) of the pool mapping`,
      );
    }
    const k = Math.floor(offset / WINDOW_STRIDE);
    const w = this.#bytes[k] ?? this.#window(k);
    const at = offset - k * WINDOW_STRIDE;
    return w.subarray(at, at + length);
  }

  /**
   * The cached view that holds `offset` and the {@linkcode MAX_ACCESS}
   * bytes after it; the range starts at {@linkcode Media.windowOffset} in
   * it. A mover batch entry addresses a block so (`dst` and `dstOffset`)
   * without a view of its own, which is dear to build on Bun. It is one
   * view of the whole pool up to 4 GiB: a batch's blocks lie anywhere,
   * and Bun's windows over all of them would count each byte twice
   * (measured on Bun with 4 MiB windows over a 64 MiB pool: `writeMany`
   * of 32 × 512 B took 1.6–1.7 µs a block through windows, 0.8–1.1
   * through one view).
   */
  windowOf(offset: number): Uint8Array {
    const whole = this.#blocks ?? this.#blockView();
    if (whole !== null) return whole;
    const k = Math.floor(offset / WINDOW_STRIDE);
    return this.#bytes[k] ?? this.#window(k);
  }

  /** Where `offset` lies in {@linkcode Media.windowOf}'s view. */
  windowOffset(offset: number): number {
    return (this.#blocks ?? this.#blockView()) !== null
      ? offset
      : offset % WINDOW_STRIDE;
  }

  /** The view of the whole pool for mover batches, or null above 4 GiB. */
  #blockView(): Uint8Array | null {
    this.#blocks ??= this.#size <= BLOCK_VIEW_LIMIT
      ? this.#map.view(0, this.#size)
      : null;
    const whole = this.#blocks;
    // with the whole pool in view anyway, its words are the shortest way
    // to the map and flog (no window arithmetic per word)
    if (whole !== null && this.#u32 === undefined && LITTLE_ENDIAN) {
      this.#u32 = new Uint32Array(
        whole.buffer,
        whole.byteOffset,
        whole.length >>> 2,
      );
    }
    return whole;
  }

  /**
   * Copy `length` bytes at `offset` into the start of `into`; the caller
   * has checked that the range lies in the pool and fits `into`.
   */
  read(offset: number, into: Uint8Array, length: number): void {
    this.#reader.read(offset, into, length);
  }

  /**
   * Copy `count` blocks of `length` bytes into `into` in one native call,
   * block i from `offsets[i]` (zeros where negative) to `i * length`; the
   * caller has checked the offsets and the room in `into`.
   */
  readBlocks(
    offsets: Float64Array,
    count: number,
    length: number,
    into: Uint8Array,
  ): void {
    this.#reader.readBlocks(offsets, count, length, into);
  }

  /**
   * Prefetch `count` blocks of `length` bytes at `offsets` (none where
   * negative) into the CPU's caches, for copies that follow.
   */
  prefetchBlocks(offsets: Float64Array, count: number, length: number): void {
    this.#reader.prefetchBlocks(offsets, count, length);
  }

  /**
   * A reader of the data blocks that an arena's map entries name, for the
   * read of a block while this opener is alone (see `IndexedReader`).
   */
  indexed(desc: Float64Array, guard: Int32Array): IndexedReader {
    return this.#reader.indexed(desc, guard);
  }

  /** A copy of `[offset, offset + length)`. */
  copy(offset: number, length: number): Uint8Array {
    return this.bytes(offset, length).slice();
  }

  /** Load a little-endian u32 (`offset` 4-aligned). */
  getU32(offset: number): number {
    const u32 = this.#u32;
    if (u32 !== undefined) return u32[offset >>> 2];
    const k = Math.floor(offset / WINDOW_STRIDE);
    // a window's words as a typed array: no DataView call per word
    const w = this.#u32s[k];
    if (w !== undefined) return w[(offset - k * WINDOW_STRIDE) >>> 2];
    if (this.#words[k] === undefined) this.#window(k);
    return this.#words[k]!.getUint32(offset - k * WINDOW_STRIDE, true);
  }

  /** Store a little-endian u32; durable only after {@linkcode persist}. */
  setU32(offset: number, value: number): void {
    const u32 = this.#u32;
    if (u32 !== undefined) {
      u32[offset >>> 2] = value;
      return;
    }
    const k = Math.floor(offset / WINDOW_STRIDE);
    const w = this.#u32s[k];
    if (w !== undefined) {
      w[(offset - k * WINDOW_STRIDE) >>> 2] = value;
      return;
    }
    if (this.#words[k] === undefined) this.#window(k);
    this.#words[k]!.setUint32(offset - k * WINDOW_STRIDE, value, true);
  }

  /** Make `[offset, offset + length)` durable. */
  persist(offset: number, length: number): void {
    this.#map.persist(offset, length);
  }

  /** Persist several ranges with one fence. */
  persistRanges(ranges: readonly { offset: number; length: number }[]): void {
    this.#map.persistRanges(ranges);
  }

  /** The mapping's effective store granularity. */
  get granularity(): Granularity {
    return this.#granularity;
  }

  /** Copy `src` to `offset`, durable on return. */
  memcpy(offset: number, src: Uint8Array): void {
    this.#map.memcpy(offset, src);
  }

  /** Fill `length` bytes at `offset` with `value`, durable on return. */
  memset(offset: number, value: number, length: number): void {
    this.#map.memset(offset, value, length);
  }

  /** Whether `[offset, offset + length)` is all zero bytes. */
  isZero(offset: number, length: number): boolean {
    for (let done = 0; done < length;) {
      const n = Math.min(length - done, MAX_ACCESS);
      const v = this.bytes(offset + done, n);
      if (v.byteOffset % 4 === 0 && n % 4 === 0) {
        const words = new Uint32Array(v.buffer, v.byteOffset, n / 4);
        for (let i = 0; i < words.length; i++) {
          if (words[i] !== 0) return false;
        }
      } else {
        for (let i = 0; i < n; i++) if (v[i] !== 0) return false;
      }
      done += n;
    }
    return true;
  }

  /** Drop every cached view (the mapping itself is closed by its owner). */
  close(): void {
    this.#bytes = [];
    this.#words = [];
    this.#u32s = [];
    this.#u32 = undefined;
    this.#blocks = undefined;
    this.#reader.close();
  }
}
