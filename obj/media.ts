// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * {@linkcode ObjMedia}: the object store's only door to its file. Loads
 * and plain stores go through views of the {@linkcode Mapping} made from
 * its buffers (see `VIEW_WINDOWS`): one view of the whole pool on Deno,
 * and on Bun for pools of at most 64 MiB. On Bun a larger pool is seen
 * through the mapping's windows of 4 MiB every 2 MiB, made where the
 * store looks, so Bun counts only the parts in use as heap: one buffer
 * over a 256 MiB pool made every allocation of the program slow (figures
 * in docs/architecture.md, "Views by runtime"). The store uses the
 * even windows, which tile the pool (a pool used all over is counted once,
 * not twice): copies, fills, moves and CRCs go a window at a time, a word,
 * key or string across two is copied in pieces, and an odd window is made only
 * for a view asked of a range across an even one's end (`pool.view` of
 * such an object); a view of more than 2 MiB is the mapping's, over a
 * buffer of the whole pool (`pmem2/even_windows.ts`, shared with the log
 * store). On Bun a pool seen whole is first seen through 64 KiB pieces
 * (`pmem2/pieces.ts`, as the block and log stores'), indexed as the even
 * windows are (`u8At`, `index`, `fits`): an open reads the header, the
 * log and the heap's metadata, and a buffer over all of a 32 MiB pool at
 * each open made Bun collect garbage at every other open. The pool's
 * whole view is made when a path needs a range across two pieces. Every
 * store that must persist is made
 * durable through the mapping's `persist` or `persistRanges`, so a tracer
 * on the mapping sees it. It also keeps the pages stored to since the
 * last checkpoint (the homes a redo log's entries were applied to), to
 * persist them together.
 *
 * @module
 */
import type { Mapping } from "../pmem2/mapping.ts";
import { ownView } from "../pmem2/mapping_access.ts";
import { crc32c } from "../pmem2/crc32c.ts";
import { VIEW_WINDOWS } from "../pmem2/view_buffers.ts";
import { Pieces } from "../pmem2/pieces.ts";
import { evenRun, EvenWindows } from "../pmem2/even_windows.ts";
import { load32, store32 } from "./object_bytes.ts";
import { byteLengthOf, trueBytes } from "../ffi/validate.ts";

/** Dirty tracking unit (a page: what an msync writes anyway). */
const PAGE_SHIFT = 12;

/** Byte access to an object pool's mapping. */
export class ObjMedia {
  #map: Mapping;
  readonly size: number;
  /**
   * The largest range {@linkcode ObjMedia.bytes} views without a buffer
   * over the whole pool, and the span from an offset that
   * {@linkcode ObjMedia.u8At} and {@linkcode ObjMedia.u32At} cover.
   */
  readonly span: number;
  /** The whole mapping, once it is seen whole (null: pieces or windows). */
  #u8: Uint8Array | null = null;
  /** The whole mapping as u32 words, when it is seen whole. */
  #u32: Uint32Array | null = null;
  /** The whole mapping as u64 words (the checkpoint's store), if whole. */
  #u64: BigUint64Array | null = null;
  /** The pieces, while a pool to be seen whole is not yet (Bun). */
  #pieces: Pieces | null = null;
  /** The windows, when the pool is not seen whole. */
  #win: EvenWindows | null = null;
  /** Pages stored to since the last {@linkcode ObjMedia.persistDirty}. */
  #dirty: Uint8Array;
  #dirtyLo = Infinity;
  #dirtyHi = -1;

  /** @param map the pool's mapping; it stays owned by the caller */
  constructor(map: Mapping) {
    this.#map = map;
    this.size = map.size;
    if (this.size <= VIEW_WINDOWS.whole) {
      // (pieces only below 4 GiB, which they split with 32-bit operations)
      if (VIEW_WINDOWS.piecesFirst && this.size < 2 ** 32) {
        this.#pieces = new Pieces(map, () => this.#whole());
      } else this.#whole();
      this.span = this.size;
    } else {
      this.#win = new EvenWindows(map);
      this.span = VIEW_WINDOWS.stride;
    }
    // (a shift of 2^32 is 0: a 4 GiB pool tracked one page, and its
    // checkpoints persisted none of the pages stored to)
    this.#dirty = new Uint8Array(Math.floor(this.size / 2 ** PAGE_SHIFT) + 1);
  }

  /** Make the view of the whole pool (and drop the pieces). */
  #whole(): Uint8Array {
    // a buffer of the pool's own: no view handed out shares it (see
    // `shared`), so a program that transfers one does not detach it
    const u8 = ownView(this.#map, 0, this.size);
    this.#u8 = u8;
    // divisions, not shifts: a shift takes its operand mod 2^32, and a
    // pool of 4 GiB (the largest) had views of no words at all
    this.#u32 = new Uint32Array(
      u8.buffer,
      u8.byteOffset,
      Math.floor(this.size / 4),
    );
    this.#u64 = new BigUint64Array(
      u8.buffer,
      u8.byteOffset,
      Math.floor(this.size / 8),
    );
    this.#pieces = null;
    return u8;
  }

  /** The mapping. */
  get mapping(): Mapping {
    return this.#map;
  }

  /**
   * Whether the pool is seen through one view, or through pieces until
   * then (else through windows).
   */
  get whole(): boolean {
    return this.#win === null;
  }

  /**
   * The view that holds `[offset, offset + length)` (`length` at most
   * {@linkcode ObjMedia.span}); `offset` is at
   * {@linkcode ObjMedia.index}`(offset, length)` in it. Valid until the
   * mapping closes.
   */
  u8At(offset: number, length: number): Uint8Array {
    const u8 = this.#u8;
    if (u8 !== null) return u8;
    const pieces = this.#pieces;
    if (pieces === null) return this.#win!.u8At(offset, length);
    return pieces.fits(offset, length) ? pieces.u8At(offset) : this.#whole();
  }

  /**
   * {@linkcode ObjMedia.u8At} as u32 words (`offset` 4-aligned); the
   * word at `offset` is at index `index(offset, length) >>> 2`.
   */
  u32At(offset: number, length: number): Uint32Array {
    const u32 = this.#u32;
    if (u32 !== null) return u32;
    const pieces = this.#pieces;
    if (pieces === null) return this.#win!.u32At(offset, length);
    if (pieces.fits(offset, length)) return pieces.u32At(offset);
    this.#whole();
    return this.#u32!;
  }

  /** Where `offset` lies in {@linkcode ObjMedia.u8At}'s view. */
  index(offset: number, length: number): number {
    if (this.#u8 !== null) return offset;
    const pieces = this.#pieces;
    // (a range across two pieces: u8At makes the whole view)
    if (pieces === null) return this.#win!.index(offset, length);
    return pieces.fits(offset, length) ? pieces.index(offset) : offset;
  }

  /**
   * Whether `[offset, offset + length)` lies in one even window, or one
   * piece (always when the pool is seen whole): then
   * {@linkcode ObjMedia.bytes} needs no odd window, and no whole view.
   */
  fits(offset: number, length: number): boolean {
    if (this.#u8 !== null) return true;
    const pieces = this.#pieces;
    return pieces !== null
      ? pieces.fits(offset, length)
      : this.#win!.fits(offset, length);
  }

  /**
   * `[offset, offset + length)` to read at once: a view where it lies in
   * one even window (or the pool is seen whole), else a copy.
   */
  peek(offset: number, length: number): Uint8Array {
    return this.fits(offset, length)
      ? this.bytes(offset, length)
      : this.copy(offset, length);
  }

  /** The u32 at a 4-aligned offset. */
  getU32(offset: number): number {
    const u32 = this.#u32;
    if (u32 !== null) return u32[offset >>> 2];
    const pieces = this.#pieces;
    return pieces !== null ? pieces.getU32(offset) : this.#win!.getU32(offset);
  }

  /** Store a u32 at a 4-aligned offset (not persisted). */
  setU32(offset: number, value: number): void {
    const u32 = this.#u32;
    if (u32 !== null) u32[offset >>> 2] = value;
    else if (this.#pieces !== null) this.#pieces.setU32(offset, value);
    else this.#win!.setU32(offset, value);
  }

  /** The little-endian u32 at any offset. */
  load32(offset: number): number {
    const u8 = this.#u8;
    if (u8 !== null) return load32(u8, offset);
    if (this.fits(offset, 4)) {
      return load32(this.u8At(offset, 4), this.index(offset, 4));
    }
    return load32(this.copy(offset, 4), 0);
  }

  /** Store a little-endian u32 at any offset (not persisted). */
  store32(offset: number, value: number): void {
    const u8 = this.#u8;
    if (u8 !== null) store32(u8, offset, value);
    else if (this.fits(offset, 4)) {
      store32(this.u8At(offset, 4), this.index(offset, 4), value);
    } else {
      const b = new Uint8Array(4);
      store32(b, 0, value);
      this.set(b, offset);
    }
  }

  /** The u64 (below 2^53) at a 4-aligned offset. */
  read64(offset: number): number {
    return this.getU32(offset) + this.getU32(offset + 4) * 2 ** 32;
  }

  /** Store a u64 (below 2^53) as one 8-byte store (not persisted). */
  write64(offset: number, value: number): void {
    const u64 = this.#u64;
    if (u64 !== null) {
      u64[offset >>> 3] = BigInt(value);
      return;
    }
    const u8 = this.u8At(offset, 8);
    const at = u8.byteOffset + this.index(offset, 8);
    new BigUint64Array(u8.buffer, at, 1)[0] = BigInt(value);
  }

  /**
   * A zero-copy view of `[offset, offset + length)`, valid until the
   * mapping closes. Past {@linkcode ObjMedia.span} bytes it is a view
   * the mapping makes for it, over a buffer of the whole pool on Bun.
   */
  bytes(offset: number, length: number): Uint8Array {
    const u8 = this.#u8;
    if (u8 !== null) return u8.subarray(offset, offset + length);
    const pieces = this.#pieces;
    if (pieces === null) return this.#win!.view(offset, length);
    return pieces.fits(offset, length)
      ? pieces.bytes(offset, length)
      : this.#whole().subarray(offset, offset + length);
  }

  /**
   * A zero-copy view of `[offset, offset + length)` to hand out (an
   * object's, by `ObjectPool.view`), valid until the mapping closes: one
   * the mapping makes over its shared buffers, which a program may
   * transfer (post to a Worker) without detaching the pool's own views.
   */
  shared(offset: number, length: number): Uint8Array {
    return this.#map.view(offset, length);
  }

  /**
   * A copy of `[offset, offset + length)`. A long one is not a `slice`:
   * on Bun a slice of a mapping's view copies slowly, and on both
   * runtimes a new array filled by `set` costs less for kilobytes.
   */
  copy(offset: number, length: number): Uint8Array {
    const u8 = this.#u8;
    if (u8 !== null && length < 1024) {
      return u8.slice(offset, offset + length);
    }
    const pieces = this.#pieces;
    if (pieces !== null && length < 1024 && pieces.fits(offset, length)) {
      return pieces.bytes(offset, length).slice();
    }
    const out = new Uint8Array(length);
    this.copyInto(offset, length, out, 0);
    return out;
  }

  /** Copy `[offset, offset + length)` to `into` at `at`. */
  copyInto(offset: number, length: number, into: Uint8Array, at: number) {
    const u8 = this.#u8;
    if (u8 !== null) into.set(u8.subarray(offset, offset + length), at);
    else if (this.#win !== null) this.#win.copyInto(offset, length, into, at);
    else into.set(this.bytes(offset, length), at); // pieces
  }

  /** Store `src` at `offset` (not persisted). */
  set(src: Uint8Array, offset: number): void {
    const u8 = this.#u8;
    if (u8 !== null) {
      u8.set(src, offset);
      return;
    }
    // the windows split by `src.length`, a property an array may lie in:
    // the engine's length, and the array's own bytes where it spans them
    const n = byteLengthOf(src);
    if (this.#pieces !== null) {
      this.bytes(offset, n).set(src);
      return;
    }
    const win = this.#win!;
    if (win.fits(offset, n)) win.u8At(offset, n).set(src, win.index(offset, n));
    else win.set(trueBytes(src), offset);
  }

  /** Fill `[offset, offset + length)` with `value` (not persisted). */
  fill(value: number, offset: number, length: number): void {
    const u8 = this.#u8;
    if (u8 === null) {
      if (this.#pieces !== null) this.bytes(offset, length).fill(value);
      else this.#win!.fill(value, offset, length);
    } else if (
      value === 0 && length <= 128 && (offset % 4 | length % 4) === 0
    ) {
      // an object's zeros and a freed header: V8's typed-array `fill` is
      // a call into C++ (79 ns for 64 bytes on Deno, 9 for this loop).
      // Divisions, not shifts: offsets reach 4 GiB
      const u32 = this.#u32!;
      for (let i = offset / 4, end = (offset + length) / 4; i < end; i++) {
        u32[i] = 0;
      }
    } else u8.fill(value, offset, offset + length);
  }

  /**
   * Copy `length` bytes from `from` to `target` (not persisted). Ranges
   * that overlap must both lie in one even window (see `fits`).
   */
  move(target: number, from: number, length: number): void {
    let u8 = this.#u8;
    const pieces = this.#pieces;
    if (u8 === null && pieces !== null) {
      if (pieces.fits(target, length) && pieces.fits(from, length)) {
        // (one piece's views share its buffer: set copies as memmove)
        pieces.bytes(target, length).set(pieces.bytes(from, length));
        return;
      }
      u8 = this.#whole();
    }
    if (u8 !== null) {
      u8.copyWithin(target, from, from + length);
      return;
    }
    for (let done = 0; done < length;) {
      const n = evenRun(from + done, evenRun(target + done, length - done));
      this.bytes(target + done, n).set(this.bytes(from + done, n));
      done += n;
    }
  }

  /** The CRC-32C of `[offset, offset + length)`, continuing from `seed`. */
  crc(offset: number, length: number, seed: number): number {
    const u8 = this.#u8;
    if (u8 !== null) return crc32c(u8, offset, length, seed);
    if (this.#pieces === null) return this.#win!.crc(offset, length, seed);
    return crc32c(this.bytes(offset, length), 0, length, seed);
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
        // products, not shifts: `<<` is of int32s, and a page past 2 GiB
        // gave a negative offset (the checkpoint threw, the pool stopped)
        const offset = start * 2 ** PAGE_SHIFT;
        ranges.push({
          offset,
          length: Math.min(this.size, p * 2 ** PAGE_SHIFT) - offset,
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
