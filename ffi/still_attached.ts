// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The check of a user array when the future that took it starts, after
 * the call: detached meanwhile it is the caller's error, the `TypeError`
 * of {@linkcode checkAttached} (as at the call), unless it is a view of a
 * mapping that closed meanwhile, which is `ClosedError`. Futures copy
 * their arrays when first polled, and each had its own word for an array
 * detached by then: the movers, a mapping's copies and a block pool said
 * ClosedError (as if the store had closed), the log stream a TypeError.
 *
 * @module
 */
import { ClosedError } from "../errors/mod.ts";
import { bufferOf, checkAttached } from "./validate.ts";

/** The buffers a mapping detached at its close (see `noteUnmapped`). */
const unmapped = new WeakSet<ArrayBufferLike>();

/**
 * Remember that a closing mapping detached `buffer`: its views, detached
 * since, are of a closed mapping, not arrays their program transferred.
 */
export function noteUnmapped(buffer: ArrayBuffer): void {
  unmapped.add(buffer);
}

/**
 * The error of `bytes` detached since its operation's call, if it is: a
 * `ClosedError` for a view of a mapping closed since, else the
 * `TypeError` of {@linkcode checkAttached} naming the argument.
 *
 * @param bytes the array the call took
 * @param name its argument's name, for the message
 * @param op the operation, for the error
 */
export function detachedError(
  bytes: Uint8Array,
  name: string,
  op: string,
): TypeError | ClosedError | undefined {
  // element 0 answers from the storage alone: attached arrays cost one read
  if (bytes[0] !== undefined) return undefined;
  if (unmapped.has(bufferOf(bytes))) {
    return new ClosedError(
      "the mapping",
      op,
      `${name} was detached: its mapping closed before the operation started`,
    );
  }
  try {
    checkAttached(bytes, name, op);
  } catch (e) {
    return e as TypeError;
  }
  return undefined;
}

/**
 * Throw {@linkcode detachedError} for `bytes`, if any.
 *
 * @throws {TypeError} when `bytes` was detached (transferred) since the call
 * @throws {ClosedError} when its mapping closed since the call
 */
export function checkStillAttached(
  bytes: Uint8Array,
  name: string,
  op: string,
): void {
  const e = detachedError(bytes, name, op);
  if (e !== undefined) throw e;
}
