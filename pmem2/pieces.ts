// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * {@linkcode Pieces}: a mapping of at most `VIEW_WINDOWS.whole` bytes seen
 * through aligned views of `VIEW_WINDOWS.piece` bytes (64 KiB on Bun),
 * each made at its first use, for the paths of a store that touch only a
 * little of it (an open, a recovery, a synchronous read or write). Bun
 * counts a buffer's whole length as allocated memory when it is made, so
 * a buffer over all of a 32 MiB pool at each open set off a garbage
 * collection at two opens in three; the pieces an open uses (a header,
 * info blocks, a flog) count for a few hundred KiB. A store keeps these
 * until a path needs the whole mapping (a scan, a mover batch), then
 * makes its one view of it; a store that passes `spent` also makes it
 * after `USES` loads and stores through its pieces: a piece's access
 * costs Bun about twice a whole view's (an object's u32: 0.08–0.2 µs
 * against 0.04–0.09), which a store in use pays once for its view, and
 * an open and close never. Internal to the stores' media; used on Bun
 * only (`VIEW_WINDOWS.piecesFirst`: V8 does not count such memory).
 *
 * @module
 */
import type { Mapping } from "./mapping.ts";
import { ownView } from "./mapping_access.ts";
import { VIEW_WINDOWS } from "./view_buffers.ts";

/** What a piece not made yet is, in the lists of pieces. */
const NONE = new Uint8Array(0);
const NONE32 = new Uint32Array(0);

/**
 * The loads and stores through pieces after which `spent` is called: an
 * open of a log stream with 1 000 entries makes 5 000, of an object pool
 * 441, a transaction 23.
 */
const USES = 2 ** 16;

/** Bytes of a piece (a power of two, a multiple of 4). */
const PIECE = VIEW_WINDOWS.piece;
const SHIFT = Math.log2(PIECE);
const MASK = PIECE - 1;

/**
 * Byte access to a mapping below 4 GiB through its pieces. Offsets are
 * split with 32-bit operations: the stores use pieces only for mappings
 * they would otherwise view whole, which are below 4 GiB.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { mapFile } from "./map_file.ts";
 * import { Pieces } from "./pieces.ts";
 * import { mkdtempSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 *
 * const path = join(mkdtempSync(join(tmpdir(), "asyncpmem-")), "data");
 * using map = mapFile(path, { size: 1 << 20 });
 * const pieces = new Pieces(map);
 * pieces.setU32(4096, 7);
 * assert.equal(pieces.getU32(4096), 7);
 * assert.equal(pieces.fits(4096, 16), true);
 * assert.equal(pieces.bytes(4096, 4)[0], 7);
 * ```
 */
export class Pieces {
  #map: Mapping;
  #size: number;
  /**
   * The pieces, by index (piece k starts at k × `PIECE`), `NONE` where
   * not made yet: lists of one type, filled from the start, so a load
   * through them is one indexed load and a length test (a synchronous
   * read loads two map entries).
   */
  #u8s: Uint8Array[];
  /** The pieces as u32 words (`NONE32` where not made yet). */
  #u32s: Uint32Array[];

  /** Loads and stores left before `#spent` is called. */
  #left: number;
  #spent: (() => void) | undefined;

  /**
   * @param map the mapping (below 4 GiB); it stays owned by the caller
   * @param spent called once, after `USES` loads and stores through
   * {@linkcode Pieces.bytes}, {@linkcode Pieces.getU32} and
   * {@linkcode Pieces.setU32} (whose own call still goes through the
   * piece): a store makes its whole view there. Never from
   * {@linkcode Pieces.u8At} or {@linkcode Pieces.u32At}, whose view and
   * {@linkcode Pieces.index} a caller takes as a pair.
   */
  constructor(map: Mapping, spent?: () => void) {
    this.#map = map;
    this.#spent = spent;
    this.#left = spent === undefined ? Infinity : USES;
    this.#size = map.size;
    const count = Math.ceil(map.size / PIECE);
    this.#u8s = new Array<Uint8Array>(count).fill(NONE);
    this.#u32s = new Array<Uint32Array>(count).fill(NONE32);
  }

  /** Make piece `k` and its words. */
  #piece(k: number): Uint8Array {
    const start = k * PIECE;
    // a buffer of the store's own, as its whole view would be: a program
    // that transfers a view the mapping handed out does not detach it
    const u8 = ownView(this.#map, start, Math.min(PIECE, this.#size - start));
    this.#u8s[k] = u8;
    this.#u32s[k] = new Uint32Array(u8.buffer, 0, u8.byteLength >>> 2);
    return u8;
  }

  /** Whether `[offset, offset + length)` lies in one piece. */
  fits(offset: number, length: number): boolean {
    return (offset & MASK) + length <= PIECE;
  }

  /**
   * A zero-copy view of `[offset, offset + length)`, a range that
   * {@linkcode Pieces.fits}; valid until the mapping closes.
   */
  bytes(offset: number, length: number): Uint8Array {
    if (--this.#left === 0) this.#spent!();
    const k = offset >>> SHIFT;
    let u8 = this.#u8s[k];
    if (u8.length === 0) u8 = this.#piece(k);
    // a constructor call, not subarray(): it skips the species lookup
    return new Uint8Array(u8.buffer, offset & MASK, length);
  }

  /**
   * The piece that holds `[offset, offset + length)`, a range that
   * {@linkcode Pieces.fits}; `offset` is at {@linkcode Pieces.index} in
   * it (for a store that indexes one view, as through even windows).
   */
  u8At(offset: number): Uint8Array {
    const u8 = this.#u8s[offset >>> SHIFT];
    return u8.length !== 0 ? u8 : this.#piece(offset >>> SHIFT);
  }

  /** {@linkcode Pieces.u8At} as u32 words. */
  u32At(offset: number): Uint32Array {
    const w = this.#u32s[offset >>> SHIFT];
    if (w.length !== 0) return w;
    this.#piece(offset >>> SHIFT);
    return this.#u32s[offset >>> SHIFT];
  }

  /** Where `offset` lies in {@linkcode Pieces.u8At}'s view. */
  index(offset: number): number {
    return offset & MASK;
  }

  /** The u32 at a 4-aligned offset. */
  getU32(offset: number): number {
    if (--this.#left === 0) this.#spent!();
    let w = this.#u32s[offset >>> SHIFT];
    if (w.length === 0) {
      this.#piece(offset >>> SHIFT);
      w = this.#u32s[offset >>> SHIFT];
    }
    return w[(offset & MASK) >>> 2];
  }

  /** Store a u32 at a 4-aligned offset (not persisted). */
  setU32(offset: number, value: number): void {
    if (--this.#left === 0) this.#spent!();
    let w = this.#u32s[offset >>> SHIFT];
    if (w.length === 0) {
      this.#piece(offset >>> SHIFT);
      w = this.#u32s[offset >>> SHIFT];
    }
    w[(offset & MASK) >>> 2] = value;
  }
}
