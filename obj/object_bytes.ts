// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Bytes of objects as a transaction builds them: an object's header, and
 * little-endian words at any byte offset (an object's data need not be
 * 4-aligned), and the check of a u64 argument. Internal to `obj/`.
 *
 * @module
 */
import { OBJECT_MAGIC } from "./layout.ts";

/** Write an object header at `at` (4-aligned) through `u32`. */
export function writeHeader(
  u32: Uint32Array,
  at: number,
  size: number,
  gen: number,
  type: number,
): void {
  const w = at >>> 2;
  u32[w] = OBJECT_MAGIC;
  u32[w + 1] = size;
  u32[w + 2] = gen;
  u32[w + 3] = type >>> 0;
}

/** Store a little-endian u32 at any byte offset. */
export function store32(u8: Uint8Array, at: number, v: number): void {
  u8[at] = v;
  u8[at + 1] = v >>> 8;
  u8[at + 2] = v >>> 16;
  u8[at + 3] = v >>> 24;
}

/** Load a little-endian u32 from any byte offset. */
export function load32(u8: Uint8Array, at: number): number {
  return (u8[at] | u8[at + 1] << 8 | u8[at + 2] << 16 | u8[at + 3] << 24) >>>
    0;
}

/** `value` as a u64 bigint; a RangeError naming `op` when it is not one. */
export function toU64(value: number | bigint, op: string): bigint {
  if (typeof value === "bigint") {
    if (value < 0n || value >= 1n << 64n) {
      throw new RangeError(`Cannot ${op}: ${value} is not a u64`);
    }
    return value;
  }
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(
      `Cannot ${op}: ${value} is not a non-negative safe integer (pass a bigint)`,
    );
  }
  return BigInt(value);
}
