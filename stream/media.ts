// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * {@linkcode StreamMedia}: the log store's only door to its file. Loads
 * and plain stores go through views of the {@linkcode Mapping} made from
 * its buffers (see `VIEW_WINDOWS`): one view of the whole stream on Deno,
 * and on Bun for streams of at most 64 MiB. On Bun a larger stream is
 * seen through the mapping's windows of 4 MiB every 2 MiB, made where the
 * store looks, so Bun counts only the parts in use as heap: one buffer
 * over a 256 MiB stream made every allocation of the program slow
 * (figures in docs/architecture.md, "Views by runtime"). As the object
 * store does (`pmem2/even_windows.ts`), it uses the even windows, which
 * tile the stream: headers, copies, fills and CRCs go a window at a time,
 * data across two is stored in pieces (a mover batch copies an entry
 * across two as two pieces), and an odd window is made only for a
 * zero-copy view of an entry across an even one's end (`entries()`,
 * `follow()`, `reserve`); a view of more than 2 MiB is the mapping's,
 * over a buffer of the whole stream. On Bun a stream seen whole is
 * first seen through 64 KiB pieces (`pmem2/pieces.ts`, as the block
 * store's): an open reads the header, the region table and the entries
 * recovery looks at, and a buffer over all of a 32 MiB stream at each
 * open (two: the stream's own and the mapping's shared one) made Bun
 * collect garbage at every open. The stream's own whole view is made
 * when a path needs more than a piece (a range across two, a mover
 * batch), the shared one when a view is handed out. Every store that
 * must persist is made durable through the mapping's
 * `persist`/`persistRanges`, so a tracer on the mapping sees it.
 *
 * @module
 */
import type { Mapping } from "../pmem2/mapping.ts";
import { crc32c } from "../pmem2/crc32c.ts";
import {
  markMapping,
  nativeHandleOf,
  ownView,
  traceDurable,
} from "../pmem2/mapping_access.ts";
import { backend, check, native } from "../ffi/lib.ts";
import { bufferOf, byteLengthOf, trueBytes } from "../ffi/validate.ts";
import type { BatchEntry } from "../mover/vdm.ts";
import { EvenWindows, inEven } from "../pmem2/even_windows.ts";
import { VIEW_WINDOWS } from "../pmem2/view_buffers.ts";
import { Pieces } from "../pmem2/pieces.ts";
import { ClosedError } from "../errors/mod.ts";
import { ENTRY_HEADER } from "./layout.ts";

const ap_log_append = native.ap_log_append;
const ap_log_headers = native.ap_log_headers;

/** The largest stream seen whole (its words are indexed by `>>> 2`). */
const WHOLE_LIMIT = Math.min(VIEW_WINDOWS.whole, 2 ** 32 - 4096);

/** A range to persist. */
export interface Range {
  /** File offset. */
  offset: number;
  /** Bytes. */
  length: number;
}

/** Byte access to a stream's mapping. */
export class StreamMedia {
  #map: Mapping;
  #size: number;
  /**
   * The whole mapping, once it is seen whole (else: pieces or windows),
   * over a buffer of the stream's own (`ownView`): no view handed out
   * shares it, so a program that transfers an entry's buffer does not
   * detach it.
   */
  #u8: Uint8Array | undefined;
  #u32: Uint32Array | undefined;
  /** The buffer of `#u8` (views made over it directly are cheaper). */
  #buf: ArrayBuffer | undefined;
  /**
   * The mapping's shared buffer, for the views handed out (entries'
   * data, reservations, a log's chunks), once one is handed out where
   * it is seen whole: made anew by the mapping when a program
   * transferred it.
   */
  #out: ArrayBuffer | undefined;
  /** The pieces, while a stream to be seen whole is not yet (Bun). */
  #pieces: Pieces | undefined;
  /** The windows, when the mapping is not seen whole. */
  #win: EvenWindows | undefined;
  #closed = false;
  #traced = false;
  /** Headers queued for {@linkcode StreamMedia.writeHeaders}: triples. */
  #headers = new Float64Array(3 * 64);
  #queued = 0;
  /** The address of the mapping's first byte (0 until asked for). */
  #base = 0;
  /** See {@linkcode StreamMedia.persistFailed}. */
  #persistFailed = false;

  /** @param map the stream's mapping; it stays owned by the caller */
  constructor(map: Mapping) {
    this.#map = map;
    this.#size = map.size;
    if (this.#size > WHOLE_LIMIT) this.#win = new EvenWindows(map);
    else if (!VIEW_WINDOWS.piecesFirst) {
      this.#whole();
      this.#out = map.view(0, this.#size).buffer as ArrayBuffer;
    } else this.#pieces = new Pieces(map, () => this.#whole());
  }

  /** Make the stream's own view of the whole mapping (drop the pieces). */
  #whole(): Uint8Array {
    const u8 = ownView(this.#map, 0, this.#size);
    this.#u8 = u8;
    this.#buf = u8.buffer as ArrayBuffer;
    this.#u32 = new Uint32Array(u8.buffer, u8.byteOffset, this.#size >>> 2);
    this.#pieces = undefined;
    return u8;
  }

  /**
   * The stream's own view of the whole mapping, made now where it is
   * seen through pieces; undefined where it is seen through windows.
   */
  #wholeIfPieces(): Uint8Array | undefined {
    if (this.#pieces !== undefined) return this.#whole();
    if (this.#closed) throw closedMedia();
    return undefined;
  }

  /** The mapping. */
  get mapping(): Mapping {
    return this.#map;
  }

  /** Mapped bytes. */
  get size(): number {
    return this.#size;
  }

  /** Emit marks to the mapping's tracer (tests). */
  set traced(on: boolean) {
    this.#traced = on;
  }

  /** Whether marks are emitted. */
  get traced(): boolean {
    return this.#traced;
  }

  /** Record a labelled point with the tracer, when traced. */
  mark(label: string): void {
    if (this.#traced) markMapping(this.#map, label);
  }

  /**
   * A view of the whole mapping, where it is seen whole (so a batch of
   * the mover addresses entries by offset instead of a view each; else
   * see {@linkcode StreamMedia.copyOps}); made now where it is seen
   * through pieces.
   */
  get whole(): Uint8Array | undefined {
    return this.#u8 ?? this.#wholeIfPieces();
  }

  /**
   * A zero-copy view of `[offset, offset + length)` to hand out (an
   * entry's data, a reservation's, a log's chunk), valid until the
   * mapping closes. Its buffer is the mapping's shared one: a program may
   * transfer it (post the data to a Worker) without detaching the
   * stream's own views (see {@linkcode StreamMedia.view}).
   */
  bytes(offset: number, length: number): Uint8Array {
    let out = this.#out;
    if (out === undefined) {
      if (this.#win !== undefined) return this.#win.bytes(offset, length);
      if (this.#closed) throw closedMedia();
      // seen whole or through pieces: the first view handed out
      out = this.#map.view(0, this.#size).buffer as ArrayBuffer;
      this.#out = out;
    } else if (out.byteLength === 0) {
      // a program transferred the buffer of a view handed out (a detached
      // buffer is empty; the mapping is not): the mapping makes a new one.
      // A test, not a try around the constructor: that cost Bun 20 ns an
      // entry read
      out = this.#map.view(0, this.#size).buffer as ArrayBuffer;
      this.#out = out;
    }
    // a constructor call over the cached buffer, not subarray(): it skips
    // the species lookup and the buffer getter, per entry read
    return new Uint8Array(out, offset, length);
  }

  /**
   * A zero-copy view of `[offset, offset + length)` for the stream's own
   * use, never to hand out: over its own buffer when it is seen whole,
   * over a piece where it is seen through pieces and the range fits one.
   */
  view(offset: number, length: number): Uint8Array {
    const buf = this.#buf;
    if (buf !== undefined) return new Uint8Array(buf, offset, length);
    const pieces = this.#pieces;
    if (pieces !== undefined) {
      if (pieces.fits(offset, length)) return pieces.bytes(offset, length);
      return new Uint8Array(this.#whole().buffer, offset, length);
    }
    if (this.#win === undefined) throw closedMedia();
    return this.#win.view(offset, length);
  }

  /**
   * Push to `ops` the mover batch entries that copy `data` to `at`: one
   * into the whole mapping or the even window that holds it, else one
   * per even window it spans (no view of its own, no odd window).
   */
  copyOps(at: number, data: Uint8Array, ops: BatchEntry[]): void {
    const u8 = this.#u8 ?? this.#wholeIfPieces();
    if (u8 !== undefined) {
      ops.push({ op: "memcpy", dst: u8, dstOffset: at, src: data });
      return;
    }
    // the windows split by `src.byteLength`, a property an array may lie
    // in (a short split left stale bytes in the entry): the engine's
    // length, and the array's own bytes where it spans windows
    const win = this.#win!;
    const n = byteLengthOf(data);
    if (win.fits(at, n)) {
      ops.push({
        op: "memcpy",
        dst: win.even(at),
        dstOffset: inEven(at),
        src: data,
      });
    } else win.storeOps(at, trueBytes(data), ops);
  }

  /**
   * Whether the `length` (> 0) bytes of `data` share memory with the
   * mapping's `[offset, offset + span)`: a view of this mapping, such as
   * an entry's view kept across a `truncate()`, may overlap the place an
   * append copies it to (or, `span` longer, the places of the appends
   * copied with it).
   */
  overlaps(
    offset: number,
    data: Uint8Array,
    length: number,
    span = length,
  ): boolean {
    // seen whole, this mapping's views are over its two buffers (see
    // `bytes` and `view`), and a buffer compare spares Deno's address,
    // dear next to a small append; through windows any view may be one
    // (through pieces, the shared buffer's or a piece's)
    const buf = this.#buf;
    if (buf !== undefined) {
      const b = bufferOf(data);
      if (b !== buf && b !== this.#out) return false;
    }
    let base = this.#base;
    if (base === 0) {
      // the mapping is one range of memory, its even windows views of it
      base = backend.addressOf(
        this.#u8 ?? this.#pieces?.bytes(0, 4) ?? this.#win!.even(0),
      );
      this.#base = base;
    }
    const d = base + offset;
    const s = backend.addressOf(data);
    return s < d + span && d < s + length;
  }

  /** A copy of `[offset, offset + length)`. */
  copy(offset: number, length: number): Uint8Array {
    const win = this.#win;
    if (win === undefined) return this.view(offset, length).slice();
    const out = new Uint8Array(length);
    win.copyInto(offset, length, out, 0);
    return out;
  }

  /** The u32 at a 4-aligned offset. */
  read32(offset: number): number {
    const u32 = this.#u32;
    if (u32 !== undefined) return u32[offset >>> 2];
    const pieces = this.#pieces;
    if (pieces !== undefined) return pieces.getU32(offset);
    if (this.#win === undefined) throw closedMedia();
    return this.#win.getU32(offset);
  }

  /** Store a u32 at a 4-aligned offset (not persisted). */
  write32(offset: number, value: number): void {
    const u32 = this.#u32;
    if (u32 !== undefined) u32[offset >>> 2] = value;
    else if (this.#pieces !== undefined) this.#pieces.setU32(offset, value);
    else if (this.#win !== undefined) this.#win.setU32(offset, value);
    else throw closedMedia();
  }

  /** The u64 (below 2^53) at an 8-aligned offset. */
  read64(offset: number): number {
    return this.read32(offset) + this.read32(offset + 4) * 2 ** 32;
  }

  /**
   * The u64 at an 8-aligned offset, exactly: for checks and messages of
   * values that may be damaged (a double prints 2^64 - 8192 as
   * 18446744073709543000).
   */
  readU64(offset: number): bigint {
    return BigInt(this.read32(offset)) |
      (BigInt(this.read32(offset + 4)) << 32n);
  }

  /**
   * Store a u64 (below 2^53) at an 8-aligned offset as one 8-byte store,
   * so a crash leaves the old or the new value (not persisted).
   */
  write64(offset: number, value: number): void {
    const v = this.view(offset, 8);
    new BigUint64Array(v.buffer, v.byteOffset, 1)[0] = BigInt(value);
  }

  /** Store the two u32 halves of a u64 (torn writes are caught by CRC). */
  write64Halves(offset: number, value: number): void {
    const lo = value % 2 ** 32;
    this.write32(offset, lo);
    this.write32(offset + 4, (value - lo) / 2 ** 32);
  }

  /** Store `data` at `offset` (not persisted). */
  set(offset: number, data: Uint8Array): void {
    const u8 = this.#u8;
    if (u8 !== undefined) {
      u8.set(data, offset);
      return;
    }
    // as in copyOps: the windows split by `src.length`, a property
    const n = byteLengthOf(data);
    if (this.#pieces !== undefined) {
      this.view(offset, n).set(data);
      return;
    }
    if (this.#win === undefined) throw closedMedia();
    const win = this.#win;
    if (win.fits(offset, n)) {
      win.u8At(offset, n).set(data, win.index(offset, n));
    } else win.set(trueBytes(data), offset);
  }

  /** Zero `[offset, offset + length)` (not persisted). */
  zero(offset: number, length: number): void {
    const u8 = this.#u8;
    if (u8 !== undefined) u8.fill(0, offset, offset + length);
    else if (this.#pieces !== undefined) this.view(offset, length).fill(0);
    else if (this.#win !== undefined) this.#win.fill(0, offset, length);
    else throw closedMedia();
  }

  /** Whether `[offset, offset + length)` is all zero. */
  isZero(offset: number, length: number): boolean {
    if (this.#win !== undefined) return this.#win.isZero(offset, length);
    const b = this.view(offset, length);
    for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
    return true;
  }

  /** The CRC-32C of `[offset, offset + length)`, continuing from `seed`. */
  crc(offset: number, length: number, seed: number): number {
    const u8 = this.#u8;
    if (u8 !== undefined) return crc32c(u8, offset, length, seed);
    if (this.#pieces !== undefined) {
      return crc32c(this.view(offset, length), 0, length, seed);
    }
    if (this.#win === undefined) throw closedMedia();
    return this.#win.crc(offset, length, seed);
  }

  /**
   * Store a whole entry and persist it in one native call: `data` at
   * `at + ENTRY_HEADER`, its header at `at` (what `writeHeader` stores
   * for a length word of `data.byteLength`), a zero header at `next` (at
   * or after the entry's end), then one persist of `[at, next +
   * ENTRY_HEADER)`, reported to the mapping's tracer as such.
   */
  writeEntry(
    at: number,
    data: Uint8Array,
    ts: number,
    seed: number,
    next: number,
  ): void {
    const map = this.#map;
    check(
      ap_log_append(
        nativeHandleOf(map),
        data,
        byteLengthOf(data), // the engine's (see `byteLengthOf`)
        at,
        next,
        ts,
        seed,
      ),
      "append",
    );
    traceDurable(map, at, next + ENTRY_HEADER - at);
  }

  /**
   * Queue the header of an entry whose data is in place (offset, length
   * word, timestamp), to be stored by {@linkcode StreamMedia.writeHeaders}.
   */
  queueHeader(at: number, word: number, ts: number): void {
    let h = this.#headers;
    const i = 3 * this.#queued++;
    if (i + 3 > h.length) {
      const grown = new Float64Array(2 * h.length);
      grown.set(h);
      this.#headers = h = grown;
    }
    h[i] = at;
    h[i + 1] = word;
    h[i + 2] = ts;
  }

  /**
   * Store every queued header (what `writeHeader` stores for each) with
   * one native call; nothing is persisted.
   */
  writeHeaders(seed: number): void {
    const n = this.#queued;
    if (n === 0) return;
    this.#queued = 0;
    const h = this.#headers;
    check(
      ap_log_headers(
        nativeHandleOf(this.#map),
        h,
        h.byteLength,
        n,
        seed,
      ),
      "commit",
    );
  }

  /** Make a range durable. */
  persist(offset: number, length: number): void {
    try {
      this.#map.persist(offset, length);
    } catch (e) {
      this.#persistFailed = true;
      throw e;
    }
  }

  /** Make several ranges durable with one fence. */
  persistRanges(ranges: readonly Range[]): void {
    try {
      if (ranges.length === 1) {
        this.#map.persist(ranges[0].offset, ranges[0].length);
      } else this.#map.persistRanges(ranges);
    } catch (e) {
      this.#persistFailed = true;
      throw e;
    }
  }

  /**
   * Whether a persist failed (msync's EIO): stores may be visible that
   * the media lacks, so a close must not mark the pool clean.
   */
  get persistFailed(): boolean {
    return this.#persistFailed;
  }

  /** Forget the views (the mapping detaches them when it closes). */
  close(): void {
    this.#u8 = undefined;
    this.#u32 = undefined;
    this.#buf = undefined;
    this.#out = undefined;
    this.#pieces = undefined;
    this.#win = undefined;
    this.#closed = true;
  }
}

/** The error of an access after {@linkcode StreamMedia.close}. */
function closedMedia(): ClosedError {
  return new ClosedError("LogStream", "access");
}
