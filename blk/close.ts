// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The steps of `BlockPool.close()` taken while the pool is still mapped:
 * settle what it has in flight ({@linkcode settleInFlight}), then persist
 * its pending map entries and hand its lanes, stripes and layout lock
 * back to the other openers ({@linkcode leaveShared}: what an update cut
 * short by the close held is recovered from the flog). The pool unmaps
 * after them. Internal to `blk/`.
 *
 * @module
 */
import { ClosedError } from "../errors/mod.ts";
import { waitAll } from "../future/blocking.ts";
import type { FutureRegistry } from "../future/registry.ts";
import type { Arena } from "./arena.ts";
import { type PoolAccess, removeIsolateAccess } from "./async_io.ts";
import { markClosed, type PoolFile } from "./open.ts";
import { removeIsolatePool } from "./sync_update.ts";

/**
 * Settle a closing pool's operations in flight: stop counting them among
 * the isolate's, fail its writes in flight when the close comes from
 * inside one of its updates (`updating`, or a commit running), and wait
 * for the others.
 */
export function settleInFlight(
  inflight: FutureRegistry,
  access: PoolAccess,
  updating: boolean,
): void {
  const running = inflight.running();
  inflight.clear();
  removeIsolatePool(inflight);
  removeIsolateAccess(access);
  if (updating || access.writes.committing) {
    // inside an update: the writes in flight (that update's among them)
    // cannot commit now, nor be waited for
    access.writes.close((op) => new ClosedError("BlockPool", op));
  }
  try {
    waitAll(running);
  } catch {
    // each failure is reported to its own awaiter
  }
}

/**
 * Persist the pending map entries of a closing pool's `arenas` and give
 * back what it holds in shared memory, the pool still mapped; returns the
 * error of that persist, if any, for the close to throw once unmapped
 * (the close goes on: the flog still holds those updates). The shutdown
 * state stays dirty when that persist failed or an arena failed one
 * earlier (a write's, a setZero's): stores may be visible that the media
 * lacks, and marked clean, the next open would not make them durable.
 */
export function leaveShared(arenas: readonly Arena[], file: PoolFile): unknown {
  let failure: unknown;
  try {
    for (const arena of arenas) arena.flushPendingMaps();
  } catch (e) {
    failure = e; // the flog still holds those updates; close anyway
  }
  // (while the pool is mapped: what an update cut short held is
  // recovered from the flog)
  for (const arena of arenas) arena.table.leave();
  file.join.shared.leaveLayout();
  markClosed(
    file,
    failure !== undefined || arenas.some((a) => a.persistFailed),
  );
  return failure;
}
