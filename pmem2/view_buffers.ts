// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * {@linkcode ViewBuffers}: the ArrayBuffers over a mapping's memory that its
 * views are made from, and their detachment when it unmaps. Internal to
 * `pmem2/`.
 *
 * @module
 */
import { backend, type Ptr, RUNTIME } from "../ffi/lib.ts";
import { noteUnmapped } from "../ffi/still_attached.ts";

/** Bun refuses ArrayBuffers over external memory larger than 4 GiB. */
const BUN_VIEW_LIMIT = 2 ** 32;

/**
 * How views of a large mapping are cut into buffers on this runtime:
 * windows of `size` bytes every `stride` bytes, so any view of up to
 * `stride` bytes lies inside one window. Mappings of at most `whole`
 * bytes get one buffer over all of them.
 *
 * On Deno every mapping gets one buffer: V8 does not count external
 * memory it did not allocate. JavaScriptCore counts every ArrayBuffer's
 * length as memory the heap holds and lets the heap grow in proportion
 * before it collects, so the program's garbage lands on pages never
 * touched before (a page fault each) until the first collections: with
 * one buffer over a 1 GiB mapping, a `new Uint8Array(4096)` took 10–18
 * µs instead of 0.3. So on Bun, mappings over 64 MiB get windows of 4
 * MiB every 2 MiB, made only where the program looks, which keeps what
 * Bun counts to the parts in use (a block pool's header, map and flog).
 * Up to 64 MiB one buffer costs less than windows (a 64 MiB block
 * pool's batched writes ran ~10 % slower through windows), though its
 * first ~200 000 reads into new arrays took 2.2–2.9 µs each against
 * ~50 000 with windows, 0.13 µs after (figures in `bench/NOTES.md`).
 *
 * Bun counts a buffer's length when it is made, so even a mapping of at
 * most `whole` bytes is better not seen whole where a path touches only
 * a little of it: a block pool's open made a 32 MiB buffer for a pool
 * whose header, info blocks and flog it reads, and two opens in three
 * collected garbage. On Bun a store's paths that touch little (an open,
 * a recovery, a synchronous read or write) go through `piece`-byte
 * views, each made at its first use (`pieces.ts`), and the buffer over
 * the whole mapping is made when a path needs it (a scan, a mover
 * batch): `piecesFirst`. On Deno the whole view is made at once.
 */
export const VIEW_WINDOWS: {
  readonly whole: number;
  readonly size: number;
  readonly stride: number;
  readonly piece: number;
  readonly piecesFirst: boolean;
} = RUNTIME === "bun"
  ? {
    whole: 2 ** 26,
    size: 2 ** 22,
    stride: 2 ** 21,
    piece: 2 ** 16,
    piecesFirst: true,
  }
  : {
    whole: Infinity,
    size: 2 ** 30,
    stride: 2 ** 29,
    piece: 2 ** 16,
    piecesFirst: false,
  };

/**
 * Whether `buf` was detached: a buffer of a mapping is detached only by
 * a transfer before the mapping closes.
 */
function isDetached(buf: ArrayBuffer): boolean {
  return (buf as { detached?: boolean }).detached === true;
}

/**
 * The buffers handed out over one mapping: one buffer over all of it
 * where {@linkcode VIEW_WINDOWS} allows (then `whole` is set and a view is
 * one constructor call), else windows for the views that fit one, and one
 * buffer over all of it for those that do not (above Bun's 4 GiB, a
 * window of the view's size class, or past 2 GiB one buffer per view).
 * Every buffer is remembered, so {@linkcode ViewBuffers.detachAll}
 * makes every view ever handed out unusable before the memory goes away.
 */
export class ViewBuffers {
  #address: Ptr;
  #size: number;
  #windows = new Map<number, ArrayBuffer>();
  /** Windows of larger size classes (see `#large`), by stride and start. */
  #largeWindows = new Map<string, ArrayBuffer>();
  #handedOut: ArrayBuffer[] = [];
  /** Where in the mapping each buffer handed out starts. */
  #bases = new Map<ArrayBuffer, number>();
  /** The buffer over the whole mapping, once made. */
  whole: ArrayBuffer | null = null;

  /**
   * @param address the mapping's address
   * @param size its length
   */
  constructor(address: Ptr, size: number) {
    this.#address = address;
    this.#size = size;
  }

  /**
   * Bytes of the buffers made so far, each counted once when made (what
   * Bun counts as allocated; for tests, see `viewedBytes`).
   */
  get made(): number {
    return this.#made;
  }
  #made = 0;

  #track(buf: ArrayBuffer, base: number): ArrayBuffer {
    this.#made += buf.byteLength;
    this.#handedOut.push(buf);
    this.#bases.set(buf, base);
    return buf;
  }

  /**
   * Where `bytes` starts in the mapping when it is a view of one of its
   * buffers, else -1 (an array of its own, or of another mapping).
   */
  offsetOf(bytes: Uint8Array): number {
    const base = this.#bases.get(bytes.buffer as ArrayBuffer);
    return base === undefined ? -1 : base + bytes.byteOffset;
  }

  /**
   * The buffer that holds `[offset, offset + length)` (a checked range),
   * and where it starts in the mapping.
   *
   * @throws {RangeError} on Bun for a view larger than 4 GiB
   */
  bufferFor(offset: number, length: number): [ArrayBuffer, number] {
    const size = this.#size;
    if (size <= VIEW_WINDOWS.whole) return [this.#whole(), 0];
    const { stride, size: windowSize } = VIEW_WINDOWS;
    const base = Math.floor(offset / stride) * stride;
    if (offset + length <= base + windowSize) {
      let buf = this.#windows.get(base);
      if (buf === undefined || isDetached(buf)) {
        const len = Math.min(windowSize, size - base);
        buf = this.#track(backend.view(this.#address, len, base), base);
        this.#windows.set(base, buf);
      }
      return [buf, base];
    }
    if (length > BUN_VIEW_LIMIT) {
      throw new RangeError(
        `Cannot view ${length} bytes: Bun limits one view to 4 GiB`,
      );
    }
    if (size <= BUN_VIEW_LIMIT) return [this.#whole(), 0];
    if (length <= BUN_VIEW_LIMIT / 2) return this.#large(offset, length);
    return [
      this.#track(backend.view(this.#address, length, offset), offset),
      offset,
    ];
  }

  /**
   * The buffer for a view of a mapping above 4 GiB that no window holds:
   * a window of its size class (twice the power of two at or above
   * `length`, starting every such power of two), made once and reused.
   * A buffer per view was kept until close (to be detached), so a loop of
   * such views grew the process for as long as the mapping lived.
   */
  #large(offset: number, length: number): [ArrayBuffer, number] {
    let stride = VIEW_WINDOWS.stride;
    while (stride < length) stride *= 2;
    const base = Math.floor(offset / stride) * stride;
    const key = `${stride}:${base}`;
    let buf = this.#largeWindows.get(key);
    if (buf === undefined || isDetached(buf)) {
      const len = Math.min(2 * stride, this.#size - base);
      buf = this.#track(backend.view(this.#address, len, base), base);
      this.#largeWindows.set(key, buf);
    }
    return [buf, base];
  }

  /**
   * The buffer over the whole mapping, made anew when the one before was
   * transferred (its views, and the buffer it moved to, keep working; it
   * stays handed out, so {@linkcode ViewBuffers.detachAll} still sees it).
   */
  #whole(): ArrayBuffer {
    if (this.whole === null || isDetached(this.whole)) {
      this.whole = this.#track(backend.view(this.#address, this.#size), 0);
    }
    return this.whole;
  }

  /**
   * A buffer over `[offset, offset + length)` that is the caller's alone:
   * no view the mapping hands out is made from it. A store keeps its own
   * views of its mapping in such buffers, so a program that transfers the
   * buffer of a view the store handed out (an entry's data posted to a
   * Worker) detaches only the shared one, which the mapping makes anew,
   * and never the store's. It is detached at close with the others.
   */
  own(offset: number, length: number): ArrayBuffer {
    return this.#track(backend.view(this.#address, length, offset), offset);
  }

  /**
   * Detach every buffer handed out: their views read as empty. Returns
   * false when one was detached already: its program transferred it
   * (`transfer()`, `postMessage` with a transfer list), and the buffer it
   * moved to still points at the memory, so the memory must stay mapped.
   * False too when one would not detach: on Bun an asynchronous node:fs
   * write of a view (`fs/promises.writeFile`, `fs.write` with a callback)
   * pins its buffer while it runs, and `transfer` then copies the buffer
   * and leaves it attached, its views reading the memory.
   */
  detachAll(): boolean {
    let all = true;
    for (const buf of this.#handedOut) {
      if (isDetached(buf)) all = false;
      else {
        noteUnmapped(buf); // its views' later copies fail as closed
        buf.transfer(0);
        // (its length, not `detached`: a buffer still attached has it)
        if (buf.byteLength !== 0) all = false;
      }
    }
    this.#handedOut = [];
    this.#bases.clear();
    this.#windows.clear();
    this.#largeWindows.clear();
    this.whole = null;
    return all;
  }
}
