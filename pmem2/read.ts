// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The native copy behind every read of a mapping ({@linkcode copyOut}),
 * shared by `Mapping.read` and `MappingReader`, and the error that
 * `Mapping.read`'s arguments deserve when they fail its checks
 * ({@linkcode badRead}). Internal to `pmem2/`.
 *
 * @module
 */
import { nativeError, type Ptr } from "../ffi/lib.ts";
import { native } from "../ffi/lib.ts";
import type { PointerCache } from "../ffi/pointer_cache.ts";
import {
  byteLengthOf,
  checkBytes,
  checkRange,
  holds,
} from "../ffi/validate.ts";

/**
 * The native reads, held in constants: V8 then knows the function at the
 * call site and makes it a direct fast API call instead of a property
 * load and a generic call (see `bench/NOTES.md` for what it saves a
 * random block read).
 */
const readBuffer = native.ap_read_range;
const readPointer = native.ap_read_range_to;

/**
 * The native copy behind every read, from the mapping at `base` (`size`
 * bytes), into `into` through `cache`'s pointer when it has one.
 *
 * The capacity the shim checks `length` against is `length` itself when
 * `into` {@linkcode holds} that many bytes, else 0 (the shim then refuses
 * the copy): never `into.byteLength`, which an own property or a
 * subclass's getter answers. A cached pointer is so only used while its
 * array really has the bytes, detached or shrunk arrays included.
 */
export function copyOut(
  base: Ptr,
  size: number,
  cache: PointerCache,
  offset: number,
  into: Uint8Array,
  length: number,
): void {
  const cap = holds(into, length) ? length : 0;
  const at = cache.of(into);
  const rc = at === null
    ? readBuffer(base, size, offset, into, cap, length)
    : readPointer(base, size, offset, at, cap, length);
  if (rc !== 0) throw nativeError(rc, "read");
}

/**
 * Throw the error that `Mapping.read`'s arguments deserve (of a mapping
 * of `size` bytes), once its one chain of tests found them wrong.
 *
 * @throws {TypeError} when `into` is not a Uint8Array, or `offset` or
 *   `length` not a number
 * @throws {RangeError} otherwise
 */
export function badRead(
  offset: unknown,
  into: unknown,
  length: unknown,
  size: number,
): never {
  const bytes = checkBytes(into, "into", "read");
  checkRange(offset, length, size, "read");
  throw new RangeError(
    `Cannot read: ${length} bytes do not fit into ${byteLengthOf(bytes)}`,
  );
}
