// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * How the opens of a file's process-wide share (`file_share.ts`) wait for
 * each other: the states of the first opener's setup, which every store
 * keeps in its share's memory; a later open's wait for that setup; and a
 * thread's sleep (`Atomics.wait`, which Workers and main threads of both
 * runtimes allow). Internal.
 *
 * @module
 */
import { PmemError } from "../errors/mod.ts";
import { EINVAL, ETIMEDOUT } from "../errors/errno.ts";

/** Share state: the first opener has not begun its setup. */
export const SHARE_NEW = 0;
/** Share state: the first opener is checking and recovering the file. */
export const SHARE_SETTING_UP = 1;
/** Share state: ready for every opener. */
export const SHARE_READY = 2;
/** Share state: the first opener failed; the file must be opened anew. */
export const SHARE_FAILED = 3;

/** How long a joining open waits for the first opener (ms). */
const JOIN_TIMEOUT_MS = 60_000;

const SLEEPER = new Int32Array(new SharedArrayBuffer(4));

/** Block the thread for about `ms` milliseconds. */
export function sleepMs(ms: number): void {
  Atomics.wait(SLEEPER, 0, 0, ms);
}

/**
 * Wait until the first opener of a share is ready: return then, or throw
 * a `PmemError` -22 (EINVAL) when it failed, -110 (ETIMEDOUT) when it did
 * not finish within a minute (`unfinished` says what did not).
 *
 * @param state reads the share's state word
 */
export function waitForFirstOpener(
  state: () => number,
  path: string,
  op: string,
  unfinished: string,
): void {
  const deadline = performance.now() + JOIN_TIMEOUT_MS;
  let ms = 0.01;
  for (;;) {
    const st = state();
    if (st === SHARE_READY) return;
    if (st === SHARE_FAILED) {
      throw new PmemError(
        op,
        -EINVAL,
        `cannot open '${path}': its first opener in this process failed to open it`,
      );
    }
    if (performance.now() > deadline) {
      throw new PmemError(
        op,
        -ETIMEDOUT,
        `cannot open '${path}': ${unfinished} did not finish`,
      );
    }
    sleepMs(ms);
    ms = Math.min(ms * 2, 5);
  }
}
