// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Argument checks run before any native call: `TypeError` for the wrong
 * kind of value, `RangeError` for a value out of range.
 *
 * @module
 */

/** Largest offset or length that crosses the FFI boundary exactly. */
export const MAX_SAFE_SIZE = Number.MAX_SAFE_INTEGER;

/** Assert `value` is a non-negative safe integer and return it. */
export function checkSize(value: unknown, name: string, op: string): number {
  if (typeof value !== "number") {
    throw new TypeError(
      `Cannot ${op}: ${name} must be a number, got ${typeof value}`,
    );
  }
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(
      `Cannot ${op}: ${name} ${notSize(value)}, got ${value}`,
    );
  }
  return value;
}

/**
 * What is wrong with a number that is no size: say so for an integer
 * above 2^53 - 1 (printed rounded, it would look like a valid one).
 */
export function notSize(value: number): string {
  return Number.isInteger(value) && value > 0
    ? "must be at most 2^53 - 1 (Number.MAX_SAFE_INTEGER)"
    : "must be a non-negative integer";
}

/** Assert `[offset, offset+length)` lies inside `[0, size)`. */
export function checkRange(
  offset: unknown,
  length: unknown,
  size: number,
  op: string,
): void {
  const o = checkSize(offset, "offset", op);
  const n = checkSize(length, "length", op);
  if (o > size || n > size - o) {
    throw new RangeError(
      `Cannot ${op}: range [${o}, ${o + n}) exceeds the size ${size}`,
    );
  }
}

/** Assert `value` is a Uint8Array and return it. */
export function checkBytes(
  value: unknown,
  name: string,
  op: string,
): Uint8Array {
  if (!(value instanceof Uint8Array)) {
    throw new TypeError(`Cannot ${op}: ${name} must be a Uint8Array`);
  }
  return value;
}

/** Assert `value` is a byte value 0..255 and return it. */
export function checkByte(value: unknown, name: string, op: string): number {
  if (typeof value !== "number") {
    throw new TypeError(`Cannot ${op}: ${name} must be a number`);
  }
  if (!Number.isInteger(value) || value < 0 || value > 255) {
    throw new RangeError(
      `Cannot ${op}: ${name} must be an integer in [0, 255], got ${value}`,
    );
  }
  return value;
}

/**
 * Assert `path` is a non-empty string; the message names the call
 * (`op` of a `noun`: "Cannot open pool: path must be ...").
 */
export function checkPath(path: unknown, op: string, noun: string): void {
  if (typeof path !== "string" || path.length === 0) {
    throw new TypeError(
      `Cannot ${op} ${noun}: path must be a non-empty string`,
    );
  }
}

/**
 * The first checks of a store's create or open: `path` a non-empty
 * string, then `options` an object; the messages name the call
 * (`op` of a `noun`: "Cannot create pool: options must be an object").
 */
export function checkOpenArgs(
  path: unknown,
  options: unknown,
  op: string,
  noun: string,
): void {
  checkPath(path, op, noun);
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`Cannot ${op} ${noun}: options must be an object`);
  }
}
