// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Joining a pool file's process-wide share ({@linkcode FileShare}): the
 * first open in the process locks the file (`flock`, as libpmemblk does,
 * so another process, libpmemblk included, is refused with EAGAIN) and
 * sets up the shared coordination state ({@linkcode PoolShared}); later
 * opens in the process — other Workers, or the same isolate — join it
 * once the first is ready. Internal to `blk/`.
 *
 * @module
 */
import { PmemError } from "../errors/mod.ts";
import { FileShare } from "../pmem2/file_share.ts";
import { waitForFirstOpener } from "../pmem2/share_wait.ts";
import {
  maxArenas,
  PoolShared,
  STATE_FAILED,
  STATE_LOADING,
  STATE_READY,
} from "./shared.ts";
import { EAGAIN } from "../errors/errno.ts";

/** An open's part in its pool file's share. */
export interface PoolJoin {
  /** The process-wide share (the open leaves it when it closes). */
  readonly share: FileShare;
  /** Its coordination state. */
  readonly shared: PoolShared;
  /** Whether this open created the share: it checks, recovers, sets up. */
  readonly first: boolean;
  /** This open's number among the pool's openers (never 0). */
  readonly token: number;
  /**
   * Whether this open is still counted among the pool's opens (until
   * {@linkcode dropCount}, or {@linkcode leavePool}).
   */
  counted: boolean;
}

/** The error of an open refused because the pool is open elsewhere. */
export function alreadyOpen(
  op: string,
  path: string,
  where: string,
  cause?: unknown,
): PmemError {
  return new PmemError(
    op,
    -EAGAIN,
    `cannot lock '${path}': the pool is already open ${where}`,
    { errno: EAGAIN, cause },
  );
}

/**
 * Join (or create) the share of the pool file at `path`, `fileSize`
 * bytes long. A joiner waits until the first opener is ready.
 *
 * @param readOnly whether this open is read-only: a read-only open never
 *   shares (it maps the file privately), so it must be the first
 * @throws {PmemError} code -11 (EAGAIN) when another process holds the
 *   file, this process has it open as something else (a store of another
 *   kind, a FileLock), or a read-only open meets another open here
 */
export function joinPool(
  path: string,
  fileSize: number,
  op: string,
  readOnly: boolean,
): PoolJoin {
  let share: FileShare;
  try {
    share = FileShare.open(path, PoolShared.bytes(fileSize), op);
  } catch (e) {
    if (e instanceof PmemError && e.code === -EAGAIN) {
      // the share's own message tells this process (open as another
      // kind of store, or a FileLock) from another process
      throw alreadyOpen(
        op,
        path,
        /in this process/.test(e.message)
          ? "in this process as something else (a store of another kind, or a FileLock)"
          : "in another process",
        e,
      );
    }
    throw e;
  }
  const shared = new PoolShared(share, maxArenas(fileSize));
  if (share.first) {
    shared.state = STATE_LOADING;
    shared.readOnly = readOnly;
    return {
      share,
      shared,
      first: true,
      token: shared.addOpen(),
      counted: true,
    };
  }
  try {
    if (readOnly) throw alreadyOpen(op, path, "in this process");
    waitForFirstOpener(
      () => shared.state,
      path,
      op,
      "its first opener in this process",
    );
    if (shared.readOnly) {
      throw alreadyOpen(op, path, "read-only in this process");
    }
    return {
      share,
      shared,
      first: false,
      token: shared.addOpen(),
      counted: true,
    };
  } catch (e) {
    share.close();
    throw e;
  }
}

/**
 * Leave the share: this open no longer counts; when `failed`, the first
 * opener gave up, and openers waiting for it give up too.
 */
export function leavePool(join: PoolJoin, failed: boolean): void {
  if (join.share.closed) return;
  dropCount(join);
  if (failed && join.first) join.shared.state = STATE_FAILED;
  join.share.close();
}

/**
 * This open no longer counts among the pool's opens (once); returns the
 * opens left. A close drops its count holding the shutdown state's lock,
 * so of two closes at once exactly one sees none left.
 */
export function dropCount(join: PoolJoin): number {
  if (!join.counted) return join.shared.opens;
  join.counted = false;
  return join.shared.dropOpen();
}

/** The first opener finished setting the pool up: joiners may go on. */
export function poolReady(join: PoolJoin): void {
  if (join.first) join.shared.state = STATE_READY;
}
