// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * {@linkcode Media}: the block store's only door to the pool file. Loads
 * go through cached views of the {@linkcode Mapping}; every store that
 * must persist goes through the mapping's `persist`, `memcpy` or
 * `memset`, so one tracer on the mapping sees all of them.
 *
 * @module
 */
import { ClosedError } from "../errors/mod.ts";
import type { Mapping } from "../pmem2/mapping.ts";
import { type IndexedReader, MappingReader } from "../pmem2/reader.ts";
import type { Granularity } from "../pmem2/config.ts";
import { VIEW_WINDOWS } from "../pmem2/view_buffers.ts";
import { EvenWindows } from "../pmem2/even_windows.ts";
import { Pieces } from "../pmem2/pieces.ts";
import type { BatchEntry } from "../mover/vdm.ts";

/** The largest single access {@linkcode Media.bytes} serves. */
export const MAX_ACCESS = VIEW_WINDOWS.stride;

/**
 * The largest pool seen through one view: what the runtime allows one
 * buffer over (`VIEW_WINDOWS.whole`: any size on Deno, 64 MiB on Bun),
 * and less than 4 GiB, so that its u32 words are indexed by
 * `offset >>> 2` (and `length >>> 2` of a 4 GiB view is 0). Deno and Bun
 * run on little-endian hosts only (x86-64, aarch64), so the words are the
 * format's.
 */
const WHOLE_LIMIT = Math.min(VIEW_WINDOWS.whole, 2 ** 32 - 4096);

/**
 * Byte-level access to a pool mapping: zero-copy loads and durable stores.
 * A pool up to `WHOLE_LIMIT` is one view, made at once on Deno; on Bun it
 * is made when a path needs it ({@linkcode Media.viewWhole}: a scan, a
 * mover batch), and until then the pool is seen through its 64 KiB pieces
 * (`pmem2/pieces.ts`), so that an open, a recovery and synchronous reads
 * and writes, which touch the header, info blocks, maps and flogs only,
 * make Bun count a few of those instead of the pool (a 32 MiB buffer at
 * each open collected garbage at two opens in three). A larger pool is
 * reached through
 * the mapping's even view windows (`pmem2/even_windows.ts`, shared with
 * the object and log stores), made where the pool is used: on Bun a
 * pool's synchronous reads and writes then hold windows over its header,
 * info blocks, maps and flogs only, and its mover batches address blocks
 * in the even windows that hold them (a block across a window's end is
 * copied in two pieces), which tile the pool, so Bun counts each byte
 * once however many blocks are touched. Views are dropped by
 * {@linkcode Media.close}.
 */
export class Media {
  #map: Mapping;
  #size: number;
  #granularity: Granularity;
  /** The whole pool, once it is one view (else: pieces or windows). */
  #u8: Uint8Array | undefined;
  /** The whole pool as u32 words, once it is one view. */
  #u32: Uint32Array | undefined;
  /** The pieces, while a pool to be viewed whole is not yet (Bun). */
  #pieces: Pieces | undefined;
  /** The windows, when the pool is not one view. */
  #win: EvenWindows | undefined;
  #reader: MappingReader;
  #closed = false;

  /** @param map the pool's mapping; it stays owned by the caller */
  constructor(map: Mapping) {
    this.#map = map;
    this.#size = map.size;
    this.#granularity = map.granularity;
    this.#reader = new MappingReader(map);
    if (this.#size > WHOLE_LIMIT) this.#win = new EvenWindows(map);
    else if (!VIEW_WINDOWS.piecesFirst) this.#whole(map);
    else this.#pieces = new Pieces(map);
  }

  /** Make the view of the whole pool (and drop the pieces). */
  #whole(map: Mapping): Uint8Array {
    const u8 = map.view(0, this.#size);
    this.#u8 = u8;
    this.#u32 = new Uint32Array(u8.buffer, u8.byteOffset, u8.length >>> 2);
    this.#pieces = undefined;
    return u8;
  }

  /**
   * See the pool through one view from now on, where it is one view at
   * all (a pool up to `WHOLE_LIMIT`) and is still seen through pieces: a
   * path that reads much of the pool (check, the fill count) calls this
   * first, so that it pays for no piece per access. Returns the view,
   * undefined where the pool is seen through windows.
   */
  viewWhole(): Uint8Array | undefined {
    const u8 = this.#u8;
    if (u8 !== undefined) return u8;
    if (this.#pieces !== undefined) return this.#whole(this.#map);
    if (this.#win === undefined) throw closedMedia();
    return undefined;
  }

  /**
   * Whether {@linkcode Media.close} ran: an update that a close from
   * inside it (a testing tracer's callback) cut short finds its next
   * persist refused, and that refusal is no media failure.
   */
  get closed(): boolean {
    return this.#closed;
  }

  /** The mapped size. */
  get size(): number {
    return this.#size;
  }

  /** The mapping (for the pool's own bookkeeping). */
  get mapping(): Mapping {
    return this.#map;
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
    const u8 = this.#u8;
    if (u8 !== undefined) {
      return new Uint8Array(u8.buffer, u8.byteOffset + offset, length);
    }
    const pieces = this.#pieces;
    if (pieces !== undefined) {
      if (pieces.fits(offset, length)) return pieces.bytes(offset, length);
      return this.#whole(this.#map).subarray(offset, offset + length);
    }
    if (this.#win === undefined) throw closedMedia();
    return this.#win.view(offset, length);
  }

  /**
   * Push to `ops` the mover batch entries that copy `data` into the pool
   * at `at`: one into the pool's view, or a piece per even window the
   * block spans. A batch so addresses its blocks without a view each,
   * which is dear to build on Bun (and through the whole view where the
   * pool is one: batches of a pool seen through windows ran slower).
   */
  storeOps(at: number, data: Uint8Array, ops: BatchEntry[]): void {
    const u8 = this.#u8 ?? this.#wholeIfPieces();
    if (u8 !== undefined) {
      ops.push({ op: "memcpy", dst: u8, dstOffset: at, src: data });
    } else if (this.#win !== undefined) this.#win.storeOps(at, data, ops);
    else throw closedMedia();
  }

  /**
   * Push to `ops` the mover batch entries that copy `length` bytes of the
   * pool at `at` into the start of `into`.
   */
  loadOps(
    at: number,
    length: number,
    into: Uint8Array,
    ops: BatchEntry[],
  ): void {
    const u8 = this.#u8 ?? this.#wholeIfPieces();
    if (u8 !== undefined) {
      ops.push({ op: "memcpy", dst: into, src: u8, srcOffset: at, length });
    } else if (this.#win !== undefined) {
      this.#win.loadOps(at, length, into, ops);
    } else throw closedMedia();
  }

  /** The whole view, made now where the pool is seen through pieces. */
  #wholeIfPieces(): Uint8Array | undefined {
    return this.#pieces === undefined ? undefined : this.#whole(this.#map);
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
    const pieces = this.#pieces;
    if (pieces !== undefined) return pieces.getU32(offset);
    if (this.#win === undefined) throw closedMedia();
    return this.#win.getU32(offset);
  }

  /** Store a little-endian u32; durable only after {@linkcode persist}. */
  setU32(offset: number, value: number): void {
    const u32 = this.#u32;
    if (u32 !== undefined) u32[offset >>> 2] = value;
    else if (this.#pieces !== undefined) this.#pieces.setU32(offset, value);
    else if (this.#win !== undefined) this.#win.setU32(offset, value);
    else throw closedMedia();
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
    if (this.#win !== undefined) return this.#win.isZero(offset, length);
    const pieces = this.#pieces;
    if (pieces !== undefined && pieces.fits(offset, length)) {
      // (a flog entry at a recovery) no view of the whole pool for it
      const b = pieces.bytes(offset, length);
      for (let i = 0; i < length; i++) if (b[i] !== 0) return false;
      return true;
    }
    const u8 = this.#u8 ?? this.#wholeIfPieces();
    const u32 = this.#u32;
    if (u8 === undefined || u32 === undefined) throw closedMedia();
    let i = offset;
    const end = offset + length;
    // bytes to the first word, the words, the bytes after the last
    for (; i < end && i % 4 !== 0; i++) if (u8[i] !== 0) return false;
    for (; i + 4 <= end; i += 4) if (u32[i >>> 2] !== 0) return false;
    for (; i < end; i++) if (u8[i] !== 0) return false;
    return true;
  }

  /** Drop every cached view (the mapping itself is closed by its owner). */
  close(): void {
    this.#closed = true;
    this.#u8 = undefined;
    this.#u32 = undefined;
    this.#pieces = undefined;
    this.#win = undefined;
    this.#reader.close();
  }
}

/**
 * The error of a use after {@linkcode Media.close}: the pool checks it is
 * open first, so this only guards a view of unmapped memory.
 */
function closedMedia(): ClosedError {
  return new ClosedError("BlockPool", "access");
}
