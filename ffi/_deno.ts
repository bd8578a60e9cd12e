// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Deno backend: `Deno.dlopen`, `UnsafePointerView` views, and a
 * nonblocking `ap_dev_wait` on Deno's blocking pool for sleeping.
 *
 * @module
 */
import type { Backend } from "./_backend.ts";
import { markNative } from "./_native_memory.ts";
import { type NativeSymbols, type Ptr, SYMBOLS } from "./_symbols.ts";

/**
 * The part of Deno's FFI this backend uses, declared here: the package
 * ships its sources, and a Bun project's `tsc` checks this file with
 * Bun's types, which have no `Deno` namespace.
 */
interface DenoFfi {
  dlopen(path: string, symbols: unknown): { symbols: object };
  UnsafePointerView: {
    getArrayBuffer(ptr: unknown, length: number, offset?: number): ArrayBuffer;
  };
  UnsafePointer: {
    of(bytes: Uint8Array): unknown;
    value(ptr: unknown): number | bigint;
    create(value: bigint): unknown;
  };
}

// this module is loaded on Deno only (ffi/lib.ts picks it by RUNTIME)
const deno = (globalThis as unknown as { Deno: DenoFfi }).Deno;

/** The Deno implementation of {@linkcode Backend}. */
export const backend: Backend = {
  open(path: string): NativeSymbols {
    const lib = deno.dlopen(path, SYMBOLS);
    // Deno hands the symbols over in a dictionary-mode object, where each
    // call starts with a hash lookup; this copy has fast properties. (The
    // hottest callers go further and keep the functions they call in
    // module constants: see `readPointer` in pmem2/mapping.ts.)
    return { ...lib.symbols } as unknown as NativeSymbols;
  },
  view(ptr: Ptr, length: number, offset = 0): ArrayBuffer {
    if (length === 0) return new ArrayBuffer(0);
    return markNative(deno.UnsafePointerView.getArrayBuffer(
      ptr,
      length,
      offset,
    ));
  },
  pointerTo(bytes: Uint8Array): Ptr | null {
    return deno.UnsafePointer.of(bytes) as unknown as Ptr | null;
  },
  // UnsafePointer.of gives null for an empty array at its buffer's start
  // and the end's address for one at its end: null for both, as on Bun
  addressOf(bytes: Uint8Array): number {
    if (bytes.byteLength === 0) return 0;
    return Number(deno.UnsafePointer.value(deno.UnsafePointer.of(bytes)));
  },
  pointerOf(bytes: Uint8Array): Ptr | null {
    if (bytes.byteLength === 0) return null;
    return deno.UnsafePointer.of(bytes) as unknown as Ptr | null;
  },
  fromCell(cell: BigUint64Array): Ptr | null {
    return deno.UnsafePointer.create(cell[0]) as unknown as Ptr | null;
  },
  async sleep(
    symbols: NativeSymbols,
    dev: Ptr,
    _control: Uint32Array,
    seq: number,
    timeoutMs: number,
    minAdvance: number,
  ): Promise<boolean> {
    return (await symbols.ap_dev_wait_nb(dev, seq, timeoutMs, minAdvance)) ===
      0;
  },
  forget(): void {},
};
