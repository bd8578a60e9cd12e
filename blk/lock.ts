// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Exclusive open of a pool file, like libpmemblk's `flock(LOCK_EX |
 * LOCK_NB)`: a second open, in this process or another (libpmemblk
 * included), fails with EAGAIN.
 *
 * @module
 */
import { PmemError } from "../errors/mod.ts";
import { FileLock } from "../pmem2/file_lock.ts";

const EAGAIN = 11;

/** An exclusive hold on a pool file; {@linkcode PoolLock.release} ends it. */
export class PoolLock {
  #lock: FileLock;

  private constructor(lock: FileLock) {
    this.#lock = lock;
  }

  /**
   * Take the lock.
   *
   * @param path the pool file (already opened by the caller)
   * @param op the operation, for errors
   * @throws {PmemError} code -11 (EAGAIN) when the pool is open already
   */
  static acquire(path: string, op: string): PoolLock {
    try {
      return new PoolLock(FileLock.acquire(path, op));
    } catch (e) {
      if (e instanceof PmemError && e.code === -EAGAIN) {
        throw new PmemError(
          op,
          -EAGAIN,
          `cannot lock '${path}': the pool is already open`,
          { errno: EAGAIN, cause: e },
        );
      }
      throw e;
    }
  }

  /** Release the lock. Idempotent. */
  release(): void {
    this.#lock.release();
  }
}
