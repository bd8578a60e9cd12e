// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The small interface each runtime backend implements.
 *
 * @module
 */
import type { NativeSymbols, Ptr } from "./_symbols.ts";

/** What `ffi/_deno.ts` and `ffi/_bun.ts` provide. */
export interface Backend {
  /** Open the shared library and bind every symbol of the table. */
  open(path: string): NativeSymbols;
  /** A zero-copy ArrayBuffer over `length` bytes at `ptr + offset`. */
  view(ptr: Ptr, length: number, offset?: number): ArrayBuffer;
  /**
   * A pointer to `bytes[0]` for a `pointer` parameter, or null where a
   * `buffer` parameter is as fast (then pass the array itself).
   * - Deno: `UnsafePointer.of`. It is dear next to a call, so callers
   *   keep it (`PointerCache`). It pays back in random reads: a `buffer`
   *   argument goes through V8's typed-array call path, long enough that
   *   the CPU no longer overlaps one copy's cache misses with the next
   *   (figures in `bench/NOTES.md`).
   * - Bun: null. `bun:ffi` passes an array as fast as a number, and
   *   JavaScriptCore may move a small array's storage, so no pointer is
   *   kept.
   */
  pointerTo(bytes: Uint8Array): Ptr | null;
  /**
   * The address of `bytes[0]` as a number (exact below 2^53, which user
   * space addresses are), for tests that build raw descriptors; 0 for an
   * empty array.
   */
  addressOf(bytes: Uint8Array): number;
  /**
   * A pointer to `bytes[0]` for a `pointer` parameter, in any runtime;
   * null for an empty array (Deno's `UnsafePointer.of` gives null there,
   * where bun:ffi's `ptr` throws).
   */
  pointerOf(bytes: Uint8Array): Ptr | null;
  /** The pointer stored in a one-element out-parameter cell. */
  fromCell(cell: BigUint64Array): Ptr | null;
  /**
   * Resolve once the device's completion sequence (word 0 of `control`)
   * has moved `minAdvance` past `seq` with true, or after `timeoutMs` with
   * whether it moved.
   * Never blocks the JS thread.
   */
  sleep(
    symbols: NativeSymbols,
    dev: Ptr,
    control: Uint32Array,
    seq: number,
    timeoutMs: number,
    minAdvance: number,
  ): Promise<boolean>;
  /** Forget per-device state kept by `sleep` (called before deletion). */
  forget(symbols: NativeSymbols, dev: Ptr): void;
}
