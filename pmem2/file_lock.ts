// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * {@linkcode FileLock}: an exclusive lock on a file for one open in one
 * thread — the lock libpmemlog and libpmemobj take on an open pool, so
 * they and this library exclude each other.
 *
 * It lives in the file's process-wide {@linkcode FileShare}, whose first
 * open takes the `flock` that other processes see; one word of the
 * share's memory names the open that holds the lock, so other opens in
 * this process are refused too. A lock taken in a Worker that is
 * terminated before it releases it ends with the Worker's thread, as a
 * lock ends with a crashed process: a plain descriptor's `flock` would
 * hold the file until the process exits.
 *
 * @module
 */
import { checkPath, notConstructible } from "../ffi/validate.ts";
import { PmemError } from "../errors/mod.ts";
import { FileShare } from "./file_share.ts";
import { EAGAIN } from "../errors/errno.ts";

/** Bytes of the share's memory: the holder's token. */
const HOLDER_BYTES = 4;
/** The holder word of an open without a token (it cannot be taken over). */
const NO_TOKEN = -1;

/**
 * An exclusive, non-blocking lock on a file. It conflicts with every
 * other lock or open of the file in this process (any Worker) and with
 * `flock`s in other processes, and ends with the thread that took it.
 *
 * @example Usage
 * ```ts
 * import { FileLock, PmemError } from "@asyncpmem/asyncpmem";
 * import assert from "node:assert/strict";
 * import { mkdtempSync, writeFileSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 *
 * const path = join(mkdtempSync(join(tmpdir(), "asyncpmem-")), "data");
 * writeFileSync(path, ""); // an existing file
 * using lock = FileLock.acquire(path);
 * assert.throws(() => FileLock.acquire(path), (e) => e instanceof PmemError && e.errno === 11);
 * ```
 */
export class FileLock implements Disposable {
  #share: FileShare | null;
  #holder: number;

  private constructor(share: FileShare, holder: number) {
    if (share === undefined) {
      notConstructible("FileLock", "use FileLock.acquire()");
    }
    this.#share = share;
    this.#holder = holder;
  }

  /**
   * Take the lock.
   *
   * @param path the file (it must exist)
   * @param op the operation named in errors @default "lock"
   * @throws {TypeError} for a path that is empty or holds a NUL
   * @throws {PmemError} code -11 (EAGAIN) when it is held elsewhere (or
   *   the file is open in this process as a pool that shares it); -2
   *   when the file is missing
   */
  static acquire(path: string, op = "lock"): FileLock {
    checkPath(path, "lock", "file");
    const share = FileShare.open(path, HOLDER_BYTES, op);
    const word = new Int32Array(share.memory);
    const me = share.token === 0 ? NO_TOKEN : share.token;
    for (;;) {
      const holder = Atomics.compareExchange(word, 0, 0, me);
      if (holder === 0) return new FileLock(share, me);
      // (an open that ended with its thread left the share; the word
      // still names it until an open takes it over)
      if (!share.ended(holder)) break;
      if (Atomics.compareExchange(word, 0, holder, me) === holder) {
        return new FileLock(share, me);
      }
    }
    share.close();
    throw new PmemError(
      op,
      -EAGAIN,
      `cannot lock '${path}': it is locked by another open in this process`,
    );
  }

  /** Whether {@linkcode FileLock.release} has run. */
  get released(): boolean {
    return this.#share === null;
  }

  /** Drop the lock. Idempotent. */
  release(): void {
    const share = this.#share;
    if (share === null) return;
    this.#share = null;
    Atomics.compareExchange(new Int32Array(share.memory), 0, this.#holder, 0);
    share.close();
  }

  /** Same as {@linkcode FileLock.release}. */
  [Symbol.dispose](): void {
    this.release();
  }
}

/**
 * Where a refused store's holder is, from the refusal of its lock: a
 * holder in this process (this thread or a Worker) is named as such, so
 * that nobody reads it as another process, with why a Worker cannot join
 * it (these stores open once per process, unlike a BlockPool or a
 * LogStream); elsewhere, nothing is added (the shim cannot tell another
 * process from another lock of this one on the same file).
 */
function where(e: PmemError, kind: string): string {
  if (/locked by another open in this process/.test(e.message)) {
    const why = kind === "stream"
      ? "this open takes the file for itself"
      : `a${kind === "log" ? " libpmemlog log" : "n object pool"} opens ` +
        "once per process, so Workers cannot share it";
    return ` in this process (by this thread or a Worker: ${why})`;
  }
  if (/in this process/.test(e.message)) {
    return " in this process as something else (a store of another kind, or a FileLock)";
  }
  return "";
}

/**
 * {@linkcode FileLock.acquire} for the open of a store of `kind` ("pool",
 * "log", "stream"): a lock held elsewhere, by another process or another
 * open in this one, is refused as the store being open already, the way
 * PMDK's own opens word it. Internal to the stores.
 *
 * @throws {PmemError} code -11 (EAGAIN) when the store is open elsewhere
 */
export function lockStoreFile(
  path: string,
  op: string,
  kind: string,
): FileLock {
  try {
    return FileLock.acquire(path, op);
  } catch (e) {
    if (e instanceof PmemError && e.code === -EAGAIN) {
      throw new PmemError(
        op,
        -EAGAIN,
        `cannot lock '${path}': the ${kind} is already open${where(e, kind)}`,
        { errno: EAGAIN, cause: e },
      );
    }
    throw e;
  }
}
