// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * {@linkcode crc32c}: CRC-32C (Castagnoli) in the native shim: AVX-512
 * carry-less folding or three SSE4.2 streams where the CPU has them. The log store checksums every
 * entry with it in the append path, whose cost is one persist plus this:
 * a TypeScript hash of a 4 KiB entry cost several times the native one.
 *
 * @module
 */
import { native } from "../ffi/lib.ts";
import {
  byteLengthOf,
  checkBytes,
  checkRange,
  holds,
} from "../ffi/validate.ts";

const ap_crc32c = native.ap_crc32c;

/** Use the byte-wise table even where SSE4.2 exists (for tests). */
export const CRC_SOFTWARE = 1;
/**
 * Use the three SSE4.2 streams even where AVX-512 folding exists (for
 * tests and benches: the path of CPUs without VPCLMULQDQ).
 */
export const CRC_STREAMS = 2;

/**
 * The CRC-32C of `length` bytes of `bytes` from `offset`, continuing from
 * `crc` (0 starts a new checksum; passing a result on chains them).
 *
 * @example Usage
 * ```ts
 * import { crc32c } from "./crc32c.ts";
 * import assert from "node:assert/strict";
 *
 * const text = new TextEncoder().encode("123456789");
 * assert.equal(crc32c(text), 0xe3069283); // the standard check value
 * const head = crc32c(text, 0, 4);
 * assert.equal(crc32c(text, 4, 5, head), 0xe3069283);
 * ```
 *
 * @param bytes the data (any Uint8Array, a view of a mapping included)
 * @param offset where to start @default 0
 * @param length bytes @default to the end of `bytes`
 * @param crc the CRC to continue from @default 0
 * @param flags {@linkcode CRC_SOFTWARE}, {@linkcode CRC_STREAMS} or 0
 *   @default 0
 * @returns the CRC, an unsigned 32-bit integer
 * @throws {TypeError} when `bytes` is not a Uint8Array, or `flags` not an
 *   integer
 * @throws {RangeError} when the range leaves `bytes`, or for unknown flags
 */
export function crc32c(
  bytes: Uint8Array,
  offset = 0,
  length?: number,
  crc = 0,
  flags = 0,
): number {
  checkBytes(bytes, "bytes", "crc32c");
  if (flags !== 0 && flags !== CRC_SOFTWARE && flags !== CRC_STREAMS) {
    checkFlags(flags);
  }
  // -0 as 0: Deno's FFI refuses -0 for a u32 (see `checkByte`)
  const f = flags === 0 ? 0 : flags;
  // a `byteLength` property claiming 1 MiB over 16 bytes had the shim
  // hash the heap past them. A range given is checked by its last
  // element (see `holds`), and the shim told the array ends there: the
  // engine's length (`byteLengthOf`) costs several property reads on
  // JavaScriptCore, per entry of the log store
  if (
    length !== undefined && length > 0 && offset >= 0 &&
    Number.isInteger(offset) && Number.isInteger(length) &&
    holds(bytes, offset + length)
  ) {
    return ap_crc32c(
      bytes,
      offset + length,
      offset,
      length,
      crc >>> 0,
      f,
    );
  }
  const size = byteLengthOf(bytes);
  const n = length ?? size - offset;
  if (
    !(offset >= 0 && n >= 0) || offset + n > size ||
    !Number.isInteger(offset) || !Number.isInteger(n)
  ) {
    checkRange(offset, n, size, "crc32c");
  }
  return ap_crc32c(bytes, size, offset, n, crc >>> 0, f);
}

/**
 * Throw for flags other than 0, {@linkcode CRC_SOFTWARE} and
 * {@linkcode CRC_STREAMS}: the shim
 * takes a u32, so Bun truncated 2^32 + 1 to CRC_SOFTWARE and Deno threw
 * its own untyped error.
 */
function checkFlags(flags: unknown): never {
  if (typeof flags !== "number" || !Number.isInteger(flags)) {
    throw new TypeError("Cannot crc32c: flags must be an integer");
  }
  throw new RangeError(
    `Cannot crc32c: unknown flags 0x${flags.toString(16)}`,
  );
}
