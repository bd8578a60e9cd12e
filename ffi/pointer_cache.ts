// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * {@linkcode PointerCache}: the native pointer of the byte array that a
 * caller passes again and again (the reused buffer of a read loop).
 *
 * @module
 */
import type { Ptr } from "./_symbols.ts";
import { backend } from "./lib.ts";

/**
 * Remembers the last array seen and, from its second use in a row, its
 * pointer (see `Backend.pointerTo` for why a pointer beats a `buffer`
 * argument on Deno, and why Bun never gets one).
 *
 * The array is held strongly until another one is seen or
 * {@linkcode PointerCache.clear}, so its storage cannot be freed under the
 * pointer. A detached array keeps its identity but has no elements left
 * (its buffer transferred, or a resizable one shrunk): callers check that
 * the array holds the length they copy before each call (`holds` in
 * `validate.ts`: an element read, which no own `byteLength` property or
 * subclass getter can answer), so a stale pointer is never used for a
 * non-empty copy.
 *
 * @example
 * ```ts
 * import { PointerCache } from "./pointer_cache.ts";
 * const cache = new PointerCache();
 * const into = new Uint8Array(512);
 * console.log(cache.of(into)); // null: first sight, pass `into` itself
 * cache.of(into);              // a pointer on Deno, null on Bun
 * cache.clear();
 * ```
 */
export class PointerCache {
  #last: Uint8Array | null = null;
  #pointer: Ptr | null = null;

  /**
   * The pointer to pass for `bytes`, or null: pass `bytes` as a `buffer`
   * argument (first sight of this array, or Bun).
   */
  of(bytes: Uint8Array): Ptr | null {
    if (bytes !== this.#last) {
      this.#last = bytes;
      this.#pointer = null;
      return null;
    }
    return this.#pointer ??= backend.pointerTo(bytes);
  }

  /** Forget the array (and let it be collected). */
  clear(): void {
    this.#last = null;
    this.#pointer = null;
  }
}
