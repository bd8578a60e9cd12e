// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * `BlockPool.check` and `BlockPool.info` of an open pool's
 * {@linkcode PoolCore}: the scans of the whole map, whose progress
 * callbacks may call the pool back (the rules they set there are the
 * core's `inProgress`; a close asked for there runs as the scan ends).
 * Internal to `blk/`.
 *
 * @module
 */
import { checkPool, type CheckReport, holdingCheckLocks } from "./check.ts";
import { type BlockPoolInfo, poolInfo } from "./info.ts";
import { loadBtt } from "./btt.ts";
import { checkProgress, type ProgressOptions } from "./options.ts";
import type { PoolCore } from "./pool_core.ts";

/** `BlockPool.check` of the pool of `core`. */
export function checkOpenPool(
  core: PoolCore,
  options: ProgressOptions,
): CheckReport {
  core.live("check");
  const onProgress = checkProgress(options, "check");
  // (reading onProgress may have run code that closed the pool)
  const media = core.live("check");
  core.outsideProgress("check the pool");
  // Other openers (Workers) go on writing: a commit changes a flog entry
  // and then a map entry holding its block's stripe lock, and laying the
  // BTT out writes the arenas holding the layout lock. The check holds
  // all of them, so it never sees half of a commit (a block referenced
  // twice) or of a layout. This opener's own writes are between steps.
  const file = core.file;
  const shared = file.join.shared;
  // (marked read-only: one whose thread ends inside it is taken over)
  shared.lockLayout("check", true);
  let problems;
  core.inProgress =
    "check()'s progress callback: the check holds the pool's locks";
  try {
    problems = holdingCheckLocks(
      shared,
      () => {
        if (core.arenas.length === 0 && shared.laidOut) {
          core.adopt(loadBtt(file, true));
        }
        return core.arenas;
      },
      () =>
        checkPool({
          media,
          blockSize: core.blockSize,
          poolsetUuid: file.poolsetUuid,
          rawSize: file.geometry.rawSize,
          places: core.places,
          arenas: core.arenas,
          device: file.device,
          onProgress,
        }),
    );
  } finally {
    core.inProgress = undefined;
    shared.unlockLayout();
    core.closeAfter("check");
  }
  return {
    consistent: problems.length === 0,
    problems,
    repaired: [...core.repaired],
    formatted: core.arenas.length > 0,
    arenas: core.arenas.length,
    blockCount: core.blockCount,
  };
}

/** `BlockPool.info` of the pool of `core`. */
export function openPoolInfo(
  core: PoolCore,
  options: ProgressOptions,
): BlockPoolInfo {
  core.live("info");
  const onProgress = checkProgress(options, "info");
  // (reading onProgress may have run code that closed the pool)
  const media = core.live("info");
  core.adoptShared("info");
  // (an info() inside check()'s callback leaves check()'s rule on)
  const outer = core.inProgress;
  core.inProgress ??=
    "info()'s progress callback: info() reads the pool's map on after it";
  try {
    return poolInfo({
      path: core.file.path,
      media,
      blockSize: core.blockSize,
      blockCount: core.blockCount,
      readOnly: core.readOnly,
      places: core.places,
      arenas: core.arenas,
      onProgress,
    });
  } finally {
    core.inProgress = outer;
    core.closeAfter("info");
  }
}
