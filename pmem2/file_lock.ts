// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * {@linkcode FileLock}: an exclusive advisory lock on a file (`flock`), the
 * lock libpmemblk takes on an open pool, so both exclude each other.
 *
 * @module
 */
import { check, cString, native } from "../ffi/lib.ts";

/**
 * An exclusive, non-blocking `flock` on a file. It conflicts with every
 * other open of the file that locks it, in this process or another.
 *
 * @example Usage
 * ```ts
 * import { FileLock, PmemError } from "@asyncpmem/asyncpmem";
 * import assert from "node:assert/strict";
 *
 * const path = await Deno.makeTempFile();
 * using lock = FileLock.acquire(path);
 * assert.throws(() => FileLock.acquire(path), (e) => e instanceof PmemError && e.errno === 11);
 * ```
 */
export class FileLock implements Disposable {
  #fd: number;

  private constructor(fd: number) {
    this.#fd = fd;
  }

  /**
   * Take the lock.
   *
   * @param path the file
   * @param op the operation named in errors @default "lock"
   * @throws {PmemError} code -11 (EAGAIN) when it is held elsewhere; -2
   *   when the file is missing
   */
  static acquire(path: string, op = "lock"): FileLock {
    if (typeof path !== "string") {
      throw new TypeError("Cannot lock: path must be a string");
    }
    const bytes = cString(path);
    return new FileLock(
      check(native.ap_file_lock(bytes, bytes.byteLength), op),
    );
  }

  /** Whether {@linkcode FileLock.release} has run. */
  get released(): boolean {
    return this.#fd < 0;
  }

  /** Drop the lock. Idempotent. */
  release(): void {
    if (this.#fd < 0) return;
    const fd = this.#fd;
    this.#fd = -1;
    check(native.ap_file_unlock(fd), "unlock");
  }

  /** Same as {@linkcode FileLock.release}. */
  [Symbol.dispose](): void {
    this.release();
  }
}
