// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * {@linkcode ViewBuffers}: the ArrayBuffers over a mapping's memory that its
 * views are made from, and their detachment when it unmaps. Internal to
 * `pmem2/`.
 *
 * @module
 */
import { backend, type Ptr, RUNTIME } from "../ffi/lib.ts";

/** Bun refuses ArrayBuffers over external memory larger than 4 GiB. */
const BUN_VIEW_LIMIT = 2 ** 32;
/**
 * On Bun, large mappings are viewed through 2 GiB windows every 1 GiB, so
 * any view of up to 1 GiB lies inside one window.
 */
const WINDOW_STRIDE = 2 ** 30;
const WINDOW_SIZE = 2 ** 31;

/**
 * The buffers handed out over one mapping: one buffer over all of it
 * where the runtime allows (then `whole` is set and a view is one
 * constructor call), else windows, else one buffer per large view. Every
 * buffer is remembered, so {@linkcode ViewBuffers.detachAll} makes every
 * view ever handed out unusable before the memory goes away.
 */
export class ViewBuffers {
  #address: Ptr;
  #size: number;
  #windows = new Map<number, ArrayBuffer>();
  #handedOut: ArrayBuffer[] = [];
  /** The buffer over the whole mapping, once made (null on Bun above 4 GiB). */
  whole: ArrayBuffer | null = null;

  /**
   * @param address the mapping's address
   * @param size its length
   */
  constructor(address: Ptr, size: number) {
    this.#address = address;
    this.#size = size;
  }

  #track(buf: ArrayBuffer): ArrayBuffer {
    this.#handedOut.push(buf);
    return buf;
  }

  /**
   * The buffer that holds `[offset, offset + length)` (a checked range),
   * and where it starts in the mapping.
   *
   * @throws {RangeError} on Bun for a view larger than 4 GiB
   */
  bufferFor(offset: number, length: number): [ArrayBuffer, number] {
    if (RUNTIME === "deno" || this.#size <= BUN_VIEW_LIMIT) {
      this.whole ??= this.#track(backend.view(this.#address, this.#size));
      return [this.whole, 0];
    }
    if (length <= WINDOW_STRIDE) {
      const base = Math.floor(offset / WINDOW_STRIDE) * WINDOW_STRIDE;
      let buf = this.#windows.get(base);
      if (buf === undefined) {
        const len = Math.min(WINDOW_SIZE, this.#size - base);
        buf = this.#track(backend.view(this.#address, len, base));
        this.#windows.set(base, buf);
      }
      return [buf, base];
    }
    if (length > BUN_VIEW_LIMIT) {
      throw new RangeError(
        `Cannot view ${length} bytes: Bun limits one view to 4 GiB`,
      );
    }
    return [this.#track(backend.view(this.#address, length, offset)), offset];
  }

  /** Detach every buffer handed out: their views read as empty. */
  detachAll(): void {
    for (const buf of this.#handedOut) buf.transfer(0);
    this.#handedOut = [];
    this.#windows.clear();
    this.whole = null;
  }
}
