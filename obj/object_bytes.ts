// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Bytes of objects as a transaction builds them: an object's header, and
 * little-endian words at any byte offset (an object's data need not be
 * 4-aligned), the checks of number and u64 arguments, and u64 words as
 * exact numbers, bigints or text. Internal to `obj/`.
 *
 * @module
 */
import { OBJECT_MAGIC } from "./layout.ts";

/** Write an object header at `at` (4-aligned) through `words`. */
export function writeHeader(
  words: { setU32(offset: number, value: number): void },
  at: number,
  size: number,
  gen: number,
  type: number,
): void {
  words.setU32(at, OBJECT_MAGIC);
  words.setU32(at + 4, size);
  words.setU32(at + 8, gen);
  words.setU32(at + 12, type >>> 0);
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

/**
 * `value` as a u64 bigint: a TypeError naming `op` when it is neither a
 * number nor a bigint, a RangeError when it is no u64 (or a number past
 * the safe integers, which may already have lost digits).
 */
export function toU64(value: number | bigint, op: string): bigint {
  if (typeof value === "bigint") {
    if (value < 0n || value >= 1n << 64n) {
      throw new RangeError(`Cannot ${op}: ${value} is not a u64`);
    }
    return value;
  }
  if (typeof value !== "number") {
    throw new TypeError(
      `Cannot ${op}: the value must be a number or a bigint, got ${typeof value}`,
    );
  }
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(
      `Cannot ${op}: ${
        numberText(value)
      } is not a non-negative safe integer (pass a bigint)`,
    );
  }
  return BigInt(value);
}

/**
 * A number as exact decimal text: `String` rounds integers past 2^53 to
 * 17 significant digits (2^64 prints as 18446744073709552000).
 */
export function numberText(n: number): string {
  return Number.isInteger(n) && !Number.isSafeInteger(n)
    ? BigInt(n).toString()
    : String(n);
}

/** The u64 of the words `lo` and `hi` as a bigint (exact for every u64). */
export function u64Big(lo: number, hi: number): bigint {
  return BigInt(hi) << 32n | BigInt(lo);
}

/**
 * The u64 of the words `lo` and `hi` as a number: a RangeError naming
 * `op` and `getBigU64` above `Number.MAX_SAFE_INTEGER`, where a number
 * would silently be another value.
 */
export function u64Number(lo: number, hi: number, op: string): number {
  // hi * 2^32 + lo <= 2^53 - 1 exactly when hi < 2^21
  if (hi >= 0x200000) {
    throw new RangeError(
      `Cannot ${op}: the u64 is ${
        u64Big(lo, hi)
      }, above Number.MAX_SAFE_INTEGER (read it with getBigU64)`,
    );
  }
  return hi * 2 ** 32 + lo;
}

/**
 * The u64 at the 4-aligned `at` as exact decimal text, for messages about
 * a damaged pool (a word read as a double loses digits past 2^53).
 */
export function u64Text(
  words: { getU32(offset: number): number },
  at: number,
): string {
  return u64Big(words.getU32(at), words.getU32(at + 4)).toString();
}

/**
 * A TypeError `Cannot <what> must be a number` unless `v` is a number:
 * the class for an argument of the wrong type; a number out of range is
 * the caller's RangeError.
 */
export function checkNumber(v: unknown, what: string): void {
  if (typeof v !== "number") {
    throw new TypeError(`Cannot ${what} must be a number, got ${typeof v}`);
  }
}

/**
 * Throw for an object size or type that is not an integer in range: a
 * TypeError when it is not a number, else a RangeError (the caller
 * checked it is out of range).
 */
export function badAlloc(what: "size" | "type", v: number): never {
  checkNumber(v, `alloc: ${what}`);
  throw new RangeError(
    what === "size"
      ? `Cannot alloc: size must be a positive integer below 2^31, got ${
        numberText(v)
      }`
      : `Cannot alloc: type must be an integer in [0, 2^31), got ${
        numberText(v)
      }`,
  );
}

/**
 * Throw for `[offset, offset+length)` outside an object of `size` bytes
 * (the caller checked it is): a TypeError when either is not a number,
 * else a RangeError.
 */
export function badRange(
  size: number,
  offset: number,
  length: number,
  op: string,
): never {
  checkNumber(offset, `${op}: offset`);
  checkNumber(length, `${op}: length`);
  const off = numberText(offset);
  throw new RangeError(
    `Cannot ${op}: [${off}, ${off}+${
      numberText(length)
    }) is outside the object's ${size} bytes`,
  );
}
