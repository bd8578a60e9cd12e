// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * {@linkcode EvenWindows}: a mapping larger than `VIEW_WINDOWS.whole` (on
 * Bun, over 64 MiB) seen through its view windows of 4 MiB every 2 MiB,
 * made where a store looks, so Bun counts only the parts in use as heap
 * (figures in docs/architecture.md, "Views by runtime"). Internal to the
 * stores (`blk/media.ts`, `obj/media.ts`, `stream/media.ts`), which keep
 * one view of a mapping of at most `VIEW_WINDOWS.whole` bytes and use
 * this otherwise.
 *
 * Only the even windows are used for loads and stores: they tile the
 * mapping, so one used all over is counted once by Bun, not twice.
 * Copies, fills, CRCs and mover batch entries go a window at a time (a
 * range across two is handled in pieces), and an odd window is made only
 * for a zero-copy view asked of a range across an even one's end; a view
 * of more than a stride (2 MiB) is the mapping's, over a buffer of the
 * whole mapping.
 *
 * @module
 */
import type { BatchEntry } from "../mover/vdm.ts";
import type { Mapping } from "./mapping.ts";
import { ownView } from "./mapping_access.ts";
import { crc32c } from "./crc32c.ts";
import { byteLengthOf } from "../ffi/validate.ts";
import { VIEW_WINDOWS } from "./view_buffers.ts";

/** Windows start every stride. */
const STRIDE = VIEW_WINDOWS.stride;
/**
 * A window is two strides long (`VIEW_WINDOWS.size`), so any range of up
 * to a stride lies in one; the even ones tile the mapping, 2^SIZE_SHIFT
 * bytes each.
 */
const SIZE = VIEW_WINDOWS.size;
const SIZE_SHIFT = Math.log2(SIZE);
const SIZE_MASK = SIZE - 1;
/** Offsets below this are split with 32-bit operations. */
const SMALL = 2 ** 32;

/** The index of the even window that holds `offset`. */
function evenOf(offset: number): number {
  return offset < SMALL
    ? (offset >>> SIZE_SHIFT) << 1
    : Math.floor(offset / SIZE) * 2;
}

/** Where `offset` lies in its even window. */
export function inEven(offset: number): number {
  return offset < SMALL ? offset & SIZE_MASK : offset % SIZE;
}

/** Bytes from `offset` to the end of its even window, at most `length`. */
export function evenRun(offset: number, length: number): number {
  return Math.min(length, SIZE - inEven(offset));
}

/**
 * Byte access to a large mapping through its windows.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { mapFile } from "./map_file.ts";
 * import { EvenWindows } from "./even_windows.ts";
 * import { mkdtempSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 *
 * const path = join(mkdtempSync(join(tmpdir(), "asyncpmem-")), "data");
 * using map = mapFile(path, { size: 8 << 20 });
 * const win = new EvenWindows(map);
 * // 8 bytes across the end of the first even window (4 MiB)
 * win.set(Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8), (4 << 20) - 4);
 * const out = new Uint8Array(8);
 * win.copyInto((4 << 20) - 4, 8, out, 0);
 * assert.deepEqual([...out], [1, 2, 3, 4, 5, 6, 7, 8]);
 * ```
 */
export class EvenWindows {
  #map: Mapping;
  /** Mapped bytes. */
  readonly size: number;
  /** The windows, by index (window k starts at k × stride). */
  #u8s: (Uint8Array | undefined)[] = [];
  /** The windows as u32 words. */
  #u32s: (Uint32Array | undefined)[] = [];
  /**
   * Views of the mapping's shared windows, by index: what views handed
   * out are made of (see {@linkcode EvenWindows.bytes}).
   */
  #outs: (Uint8Array | undefined)[] = [];

  /** @param map the mapping; it stays owned by the caller */
  constructor(map: Mapping) {
    this.#map = map;
    this.size = map.size;
  }

  /** Make window `k` and its words. */
  #window(k: number): Uint8Array {
    const start = k * STRIDE;
    // a buffer of the store's own: no view handed out shares it, so a
    // program that transfers one does not detach the windows
    const view = ownView(this.#map, start, Math.min(SIZE, this.size - start));
    this.#u8s[k] = view;
    // windows start at multiples of the stride: 8-aligned
    this.#u32s[k] = new Uint32Array(
      view.buffer,
      view.byteOffset,
      view.byteLength >>> 2,
    );
    return view;
  }

  /**
   * The window for `[offset, offset + length)` (`length` at most a
   * stride): the even window that holds `offset` unless the range
   * crosses its end, then the odd one it lies in.
   */
  static #slot(offset: number, length: number): number {
    const k = evenOf(offset);
    return inEven(offset) + length > SIZE ? k + 1 : k;
  }

  /**
   * The window that holds `[offset, offset + length)` (`length` at most
   * a stride); `offset` is at {@linkcode EvenWindows.index}`(offset,
   * length)` in it. Valid until the mapping closes.
   */
  u8At(offset: number, length: number): Uint8Array {
    const k = EvenWindows.#slot(offset, length);
    return this.#u8s[k] ?? this.#window(k);
  }

  /** The even window that holds `offset` (it starts at `offset - inEven(offset)`). */
  even(offset: number): Uint8Array {
    const k = evenOf(offset);
    return this.#u8s[k] ?? this.#window(k);
  }

  /**
   * {@linkcode EvenWindows.u8At} as u32 words (`offset` 4-aligned); the
   * word at `offset` is at index `index(offset, length) >>> 2`.
   */
  u32At(offset: number, length: number): Uint32Array {
    const k = EvenWindows.#slot(offset, length);
    if (this.#u32s[k] === undefined) this.#window(k);
    return this.#u32s[k]!;
  }

  /** Where `offset` lies in {@linkcode EvenWindows.u8At}'s view. */
  index(offset: number, length: number): number {
    return offset - EvenWindows.#slot(offset, length) * STRIDE;
  }

  /** Whether `[offset, offset + length)` lies in one even window. */
  fits(offset: number, length: number): boolean {
    return inEven(offset) + length <= SIZE;
  }

  /** The u32 at a 4-aligned offset (never across an even window's end). */
  getU32(offset: number): number {
    if (offset < SMALL) {
      const w = this.#u32s[(offset >>> SIZE_SHIFT) << 1] ??
        this.u32At(offset, 4);
      return w[(offset & SIZE_MASK) >>> 2];
    }
    return this.u32At(offset, 4)[inEven(offset) >>> 2];
  }

  /** Store a u32 at a 4-aligned offset (not persisted). */
  setU32(offset: number, value: number): void {
    if (offset < SMALL) {
      const w = this.#u32s[(offset >>> SIZE_SHIFT) << 1] ??
        this.u32At(offset, 4);
      w[(offset & SIZE_MASK) >>> 2] = value;
    } else this.u32At(offset, 4)[inEven(offset) >>> 2] = value;
  }

  /**
   * A zero-copy view of `[offset, offset + length)` to hand out, valid
   * until the mapping closes: over the mapping's shared buffers, not the
   * windows kept here (a program may transfer them; the mapping makes new
   * ones).
   */
  bytes(offset: number, length: number): Uint8Array {
    if (length > STRIDE) return this.#map.view(offset, length);
    const k = EvenWindows.#slot(offset, length);
    let w = this.#outs[k];
    // a view of a transferred buffer is empty: the mapping makes a new one
    if (w === undefined || w.byteLength === 0) {
      const start = k * STRIDE;
      w = this.#map.view(start, Math.min(SIZE, this.size - start));
      this.#outs[k] = w;
    }
    // a constructor call, not subarray() nor the mapping's view(): an
    // entry read of a stream past 64 MiB on Bun took 20 ns more so
    return new Uint8Array(w.buffer, w.byteOffset + offset - k * STRIDE, length);
  }

  /**
   * A zero-copy view of `[offset, offset + length)` for the store's own
   * use, never to hand out: over a window when one holds it (else one the
   * mapping makes, over a buffer of the whole mapping on Bun).
   */
  view(offset: number, length: number): Uint8Array {
    if (length > STRIDE) return this.#map.view(offset, length);
    const k = EvenWindows.#slot(offset, length);
    const w = this.#u8s[k] ?? this.#window(k);
    // a constructor call, not subarray(): it skips the species lookup
    return new Uint8Array(w.buffer, w.byteOffset + offset - k * STRIDE, length);
  }

  /** Copy `[offset, offset + length)` to `into` at `at`. */
  copyInto(offset: number, length: number, into: Uint8Array, at: number) {
    for (let done = 0; done < length;) {
      const n = evenRun(offset + done, length - done);
      into.set(this.bytes(offset + done, n), at + done);
      done += n;
    }
  }

  /** Store `src` at `offset` (not persisted). */
  set(src: Uint8Array, offset: number): void {
    // the engine's length: a property that lies would split the copy
    // short and leave stale bytes at a window's end
    const length = byteLengthOf(src);
    if (this.fits(offset, length)) {
      this.u8At(offset, length).set(src, this.index(offset, length));
      return;
    }
    for (let done = 0; done < length;) {
      const at = offset + done;
      const n = evenRun(at, length - done);
      this.u8At(at, n).set(src.subarray(done, done + n), this.index(at, n));
      done += n;
    }
  }

  /**
   * Push to `ops` the mover batch entries that copy `src` to `at`: one
   * into the even window that holds the range, else one per even window
   * it spans (no view of its own, no odd window: a batch's targets lie
   * anywhere, and odd windows over them would count bytes twice).
   */
  storeOps(at: number, src: Uint8Array, ops: BatchEntry[]): void {
    const length = byteLengthOf(src);
    const index = inEven(at);
    if (index + length <= SIZE) {
      ops.push({ op: "memcpy", dst: this.even(at), dstOffset: index, src });
      return;
    }
    for (let done = 0; done < length;) {
      const offset = at + done;
      const n = evenRun(offset, length - done);
      ops.push({
        op: "memcpy",
        dst: this.even(offset),
        dstOffset: inEven(offset),
        src,
        srcOffset: done,
        length: n,
      });
      done += n;
    }
  }

  /**
   * Push to `ops` the mover batch entries that copy `[at, at + length)`
   * into the start of `dst`, a piece per even window the range spans.
   */
  loadOps(at: number, length: number, dst: Uint8Array, ops: BatchEntry[]) {
    const index = inEven(at);
    if (index + length <= SIZE) {
      ops.push({
        op: "memcpy",
        dst,
        src: this.even(at),
        srcOffset: index,
        length,
      });
      return;
    }
    for (let done = 0; done < length;) {
      const offset = at + done;
      const n = evenRun(offset, length - done);
      ops.push({
        op: "memcpy",
        dst,
        dstOffset: done,
        src: this.even(offset),
        srcOffset: inEven(offset),
        length: n,
      });
      done += n;
    }
  }

  /** Fill `[offset, offset + length)` with `value` (not persisted). */
  fill(value: number, offset: number, length: number): void {
    const at = inEven(offset);
    if (at + length <= SIZE) {
      // no view of its own (a header's terminator, per commit)
      this.even(offset).fill(value, at, at + length);
      return;
    }
    for (let done = 0; done < length;) {
      const n = evenRun(offset + done, length - done);
      this.bytes(offset + done, n).fill(value);
      done += n;
    }
  }

  /** Whether `[offset, offset + length)` is all zero. */
  isZero(offset: number, length: number): boolean {
    for (let done = 0; done < length;) {
      const n = evenRun(offset + done, length - done);
      const b = this.bytes(offset + done, n);
      for (let i = 0; i < n; i++) if (b[i] !== 0) return false;
      done += n;
    }
    return true;
  }

  /** The CRC-32C of `[offset, offset + length)`, continuing from `seed`. */
  crc(offset: number, length: number, seed: number): number {
    const at = inEven(offset);
    if (at + length <= SIZE) return crc32c(this.even(offset), at, length, seed);
    let crc = seed;
    for (let done = 0; done < length;) {
      const at = offset + done;
      const n = evenRun(at, length - done);
      crc = crc32c(this.u8At(at, n), this.index(at, n), n, crc);
      done += n;
    }
    return crc;
  }
}
