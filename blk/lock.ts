// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Exclusive open of a pool file, like libpmemblk's `flock(LOCK_EX |
 * LOCK_NB)`. Within one process a registry keyed by device and inode
 * refuses a second open. On Deno the file is also `flock`ed
 * (`Deno.FsFile.tryLockSync`), which excludes other processes, libpmemblk
 * included. Bun has no file-lock API, so there the lock is per process
 * only.
 *
 * @module
 */
import { statSync } from "node:fs";
import { PmemError, RUNTIME } from "../ffi/mod.ts";

const EAGAIN = 11;

/** dev:inode of every pool file open in this process. */
const OPEN_FILES = new Set<string>();

/** An exclusive hold on a pool file; {@linkcode PoolLock.release} ends it. */
export class PoolLock {
  #key: string | null;
  #file: Deno.FsFile | null;

  private constructor(key: string, file: Deno.FsFile | null) {
    this.#key = key;
    this.#file = file;
  }

  /**
   * Take the lock.
   *
   * @param path the pool file (already opened by the caller)
   * @param op the operation, for errors
   * @throws {PmemError} code -11 (EAGAIN) when the pool is open already
   */
  static acquire(path: string, op: string): PoolLock {
    let key: string;
    try {
      const st = statSync(path, { bigint: true });
      key = `${st.dev}:${st.ino}`;
    } catch (cause) {
      throw failed(op, `cannot stat '${path}'`, cause);
    }
    if (OPEN_FILES.has(key)) throw busy(op, path, "in this process");
    let file: Deno.FsFile | null = null;
    if (RUNTIME === "deno") {
      let locked = false;
      try {
        file = Deno.openSync(path, { read: true });
        locked = file.tryLockSync(true);
      } catch (cause) {
        throw failed(op, `cannot lock '${path}'`, cause);
      } finally {
        if (!locked) file?.close();
      }
      if (!locked) throw busy(op, path, "by another process");
    }
    OPEN_FILES.add(key);
    return new PoolLock(key, file);
  }

  /** Whether the lock also excludes other processes (Deno only). */
  get crossProcess(): boolean {
    return this.#file !== null;
  }

  /** Release the lock. Idempotent. */
  release(): void {
    if (this.#key === null) return;
    OPEN_FILES.delete(this.#key);
    this.#key = null;
    const file = this.#file;
    this.#file = null;
    file?.close(); // closing the descriptor drops the flock
  }
}

/** A PmemError for a failed stat or lock; permission errors pass as is. */
function failed(op: string, what: string, cause: unknown): unknown {
  const name = (cause as Error)?.name;
  if (name === "NotCapable" || name === "PermissionDenied") return cause;
  return new PmemError(op, -5, `${what}: ${(cause as Error)?.message}`, {
    errno: 5,
    cause,
  });
}

function busy(op: string, path: string, where: string): PmemError {
  return new PmemError(
    op,
    -EAGAIN,
    `cannot lock '${path}': the pool is already open ${where}`,
    { errno: EAGAIN },
  );
}
