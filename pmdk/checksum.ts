// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * PMDK's Fletcher-64 variant, used by the pool header, the shutdown state
 * and the BTT info blocks.
 *
 * @module
 */
import { checkAttached, checkSize, isBytes } from "../ffi/validate.ts";

/**
 * Compute PMDK's Fletcher-64 checksum of `bytes`.
 *
 * The region is read as little-endian u32 words. Two 32-bit sums start at
 * zero; for each word `lo += w` then `hi += lo`. The 8 bytes of the
 * checksum field itself count as zero, and so does every word at or after
 * `skipFrom` (libpmemblk's `CKSUM_2K` quirk: those words still advance
 * `hi`). The result is `(hi << 32) | lo`.
 *
 * @example Usage
 * ```ts
 * import { fletcher64 } from "@asyncpmem/asyncpmem/blk";
 * import assert from "node:assert/strict";
 *
 * const bytes = new Uint8Array(16);
 * bytes[0] = 1; // words 1, 0, [checksum], [checksum]
 * // lo = 1 after every word; hi = 1 + 1 + 1 + 1
 * assert.equal(fletcher64(bytes, 8), (4n << 32n) | 1n);
 * ```
 *
 * @param bytes the region; its length must be a multiple of 4
 * @param checksumOffset offset of the 8-byte checksum field in `bytes`
 * @param skipFrom words from this offset on count as zero
 *   @default bytes.byteLength (nothing skipped)
 * @returns the checksum as an unsigned 64-bit bigint
 * @throws {TypeError} when `bytes` is not a Uint8Array or is detached, or
 *   an offset is not a number
 * @throws {RangeError} when the length is not a multiple of 4, or an
 *   offset is not a non-negative integer
 */
export function fletcher64(
  bytes: Uint8Array,
  checksumOffset: number,
  skipFrom?: number,
): bigint {
  // checked before the default of skipFrom reads bytes.byteLength
  if (!isBytes(bytes)) {
    throw new TypeError("Cannot checksum: bytes must be a Uint8Array");
  }
  checkAttached(bytes, "bytes", "checksum");
  // an offset that is no number compared false with every word: the
  // checksum counted none of them (or all of them) and looked right
  checkSize(checksumOffset, "checksumOffset", "checksum");
  skipFrom ??= bytes.byteLength;
  checkSize(skipFrom, "skipFrom", "checksum");
  if (bytes.byteLength % 4 !== 0) {
    throw new RangeError(
      `Cannot checksum: length ${bytes.byteLength} is not a multiple of 4`,
    );
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const end = bytes.byteLength;
  let lo = 0;
  let hi = 0;
  for (let off = 0; off < end; off += 4) {
    const counted = off < skipFrom &&
      (off < checksumOffset || off >= checksumOffset + 8);
    if (counted) lo = (lo + dv.getUint32(off, true)) >>> 0;
    hi = (hi + lo) >>> 0;
  }
  return (BigInt(hi) << 32n) | BigInt(lo);
}

/**
 * Store the checksum of `bytes` into its checksum field (little-endian).
 *
 * @param bytes the region, checksummed as by {@linkcode fletcher64}
 * @param checksumOffset offset of the 8-byte checksum field
 * @param skipFrom see {@linkcode fletcher64}
 * @returns the stored checksum
 */
export function storeChecksum(
  bytes: Uint8Array,
  checksumOffset: number,
  skipFrom: number = bytes.byteLength,
): bigint {
  const sum = fletcher64(bytes, checksumOffset, skipFrom);
  new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    .setBigUint64(checksumOffset, sum, true);
  return sum;
}

/**
 * Read the checksum stored in the checksum field of `bytes`.
 *
 * @param bytes the region
 * @param checksumOffset offset of the 8-byte checksum field
 * @returns the stored value
 */
export function storedChecksum(
  bytes: Uint8Array,
  checksumOffset: number,
): bigint {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    .getBigUint64(checksumOffset, true);
}
