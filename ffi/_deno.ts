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

/** The Deno implementation of {@linkcode Backend}. */
export const backend: Backend = {
  open(path: string): NativeSymbols {
    const lib = Deno.dlopen(
      path,
      SYMBOLS as unknown as Deno.ForeignLibraryInterface,
    );
    // Deno hands the symbols over in a dictionary-mode object, where each
    // call starts with a hash lookup; this copy has fast properties. (The
    // hottest callers go further and keep the functions they call in
    // module constants: see `readPointer` in pmem2/mapping.ts.)
    return { ...lib.symbols } as unknown as NativeSymbols;
  },
  view(ptr: Ptr, length: number, offset = 0): ArrayBuffer {
    if (length === 0) return new ArrayBuffer(0);
    return markNative(Deno.UnsafePointerView.getArrayBuffer(
      ptr as unknown as Deno.PointerObject,
      length,
      offset,
    ));
  },
  pointerTo(bytes: Uint8Array): Ptr | null {
    return Deno.UnsafePointer.of(bytes) as unknown as Ptr | null;
  },
  // UnsafePointer.of gives null for an empty array at its buffer's start
  // and the end's address for one at its end: null for both, as on Bun
  addressOf(bytes: Uint8Array): number {
    if (bytes.byteLength === 0) return 0;
    return Number(Deno.UnsafePointer.value(Deno.UnsafePointer.of(bytes)));
  },
  pointerOf(bytes: Uint8Array): Ptr | null {
    if (bytes.byteLength === 0) return null;
    return Deno.UnsafePointer.of(bytes) as unknown as Ptr | null;
  },
  fromCell(cell: BigUint64Array): Ptr | null {
    return Deno.UnsafePointer.create(cell[0]) as unknown as Ptr | null;
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
