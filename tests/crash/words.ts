// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The crash simulator's unit of store: an aligned 8-byte word, held as two
 * little-endian u32 halves (no bigint on the hot path). {@linkcode Words}
 * is a compact list of them; {@linkcode diffWords} finds the words where a
 * live image and its shadow differ, skipping equal ranges with `memcmp`.
 *
 * @module
 */
import { Buffer } from "node:buffer";

/** Bytes per word. */
export const WORD = 8;

/** Ranges at most this long are compared word by word. */
const LEAF = 512;
/** A range is split into this many pieces when it differs. */
const FANOUT = 16;
/** {@linkcode diffWords} compares ranges of at most this many bytes. */
const CHUNK = 1 << 20;

/** A growable list of words: (index, low half, high half). */
export class Words {
  #index: Uint32Array;
  #lo: Uint32Array;
  #hi: Uint32Array;
  #n = 0;

  /** @param capacity initial room, in words */
  constructor(capacity = 8) {
    this.#index = new Uint32Array(capacity);
    this.#lo = new Uint32Array(capacity);
    this.#hi = new Uint32Array(capacity);
  }

  /** Number of words. */
  get length(): number {
    return this.#n;
  }

  /** Word index (byte offset / 8) of entry `i`. */
  index(i: number): number {
    return this.#index[i];
  }

  /** Low u32 (bytes 0..3) of entry `i`. */
  lo(i: number): number {
    return this.#lo[i];
  }

  /** High u32 (bytes 4..7) of entry `i`. */
  hi(i: number): number {
    return this.#hi[i];
  }

  /** Append a word. */
  push(index: number, lo: number, hi: number): void {
    if (this.#n === this.#index.length) {
      const grow = (a: Uint32Array) => {
        const b = new Uint32Array(a.length * 2);
        b.set(a);
        return b;
      };
      this.#index = grow(this.#index);
      this.#lo = grow(this.#lo);
      this.#hi = grow(this.#hi);
    }
    this.#index[this.#n] = index;
    this.#lo[this.#n] = lo;
    this.#hi[this.#n] = hi;
    this.#n++;
  }

  /** Store every word into an image viewed as u32s. */
  applyTo(image: Uint32Array): void {
    for (let i = 0; i < this.#n; i++) {
      const w = this.#index[i] * 2;
      image[w] = this.#lo[i];
      image[w + 1] = this.#hi[i];
    }
  }
}

/** A u32 view of a byte image (its offset must be 4-aligned). */
export function u32View(bytes: Uint8Array): Uint32Array {
  return new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >> 2);
}

/**
 * Append to `out` every word of `[from, to)` where `live` differs from
 * `shadow`, with its live value; with `sync`, also copy those words into
 * the shadow. Offsets must be multiples of 8.
 *
 * @returns the number of words found
 */
export function diffWords(
  live: Uint8Array,
  shadow: Uint8Array,
  from: number,
  to: number,
  out: Words,
  sync: boolean,
): number {
  const before = out.length;
  const l32 = u32View(live);
  const s32 = u32View(shadow);
  // Chunk by chunk, not the whole range first: a range with a difference
  // is compared again piece by piece, and `memcmp` over the whole file
  // stops at its first difference, so a whole-file compare re-reads all
  // that precedes it (the pool's map and flog, where stores wait to be
  // flushed, are at its end).
  for (let at = from; at < to; at += CHUNK) {
    scan(live, shadow, l32, s32, at, Math.min(to, at + CHUNK), out, sync);
  }
  return out.length - before;
}

function scan(
  live: Uint8Array,
  shadow: Uint8Array,
  l32: Uint32Array,
  s32: Uint32Array,
  from: number,
  to: number,
  out: Words,
  sync: boolean,
): void {
  if (to - from > LEAF) {
    if (
      Buffer.compare(live.subarray(from, to), shadow.subarray(from, to)) === 0
    ) {
      return;
    }
    const piece = Math.max(
      LEAF,
      Math.ceil((to - from) / FANOUT / LEAF) * LEAF,
    );
    for (let at = from; at < to; at += piece) {
      scan(live, shadow, l32, s32, at, Math.min(to, at + piece), out, sync);
    }
    return;
  }
  for (let w = from >> 2; w < to >> 2; w += 2) {
    const lo = l32[w];
    const hi = l32[w + 1];
    if (lo !== s32[w] || hi !== s32[w + 1]) {
      out.push(w >> 1, lo, hi);
      if (sync) {
        s32[w] = lo;
        s32[w + 1] = hi;
      }
    }
  }
}
