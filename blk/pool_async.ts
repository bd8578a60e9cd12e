// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The futures of an open pool's {@linkcode PoolCore}: `BlockPool.writeAsync`,
 * `BlockPool.writeMany` and `BlockPool.readAsync`, their arguments checked
 * at once (the futures run in `async_io.ts` and `async_read.ts`). Internal
 * to `blk/`.
 *
 * @module
 */
import { WriteGroupFuture } from "./async_io.ts";
import { ReadFuture } from "./async_read.ts";
import {
  checkFutureOptions,
  type Future,
  type FutureOptions,
} from "../future/future.ts";
import {
  type BlockWrite,
  checkBlockData,
  checkInto,
  checkLba,
  checkWrites,
} from "./options.ts";
import type { PoolCore } from "./pool_core.ts";

/** Blocks committed together at most by one group of `writeMany`. */
const GROUP_SIZE = 64;

/** `BlockPool.writeAsync` of the pool of `core`. */
export function writeAsyncOf(
  core: PoolCore,
  lba: number,
  data: Uint8Array,
  options: FutureOptions | undefined,
): Future<void> {
  core.live("writeAsync");
  checkLba(lba, core.blockCount, "writeAsync");
  checkBlockData(data, core.blockSize, "writeAsync");
  core.checkWritable("writeAsync");
  return new WriteGroupFuture(
    core.access,
    [lba],
    [data],
    1,
    "writeAsync",
    checkFutureOptions(options, "writeAsync"),
  );
}

/** `BlockPool.writeMany` of the pool of `core`. */
export function writeManyOf(
  core: PoolCore,
  entries: readonly BlockWrite[],
  options: FutureOptions | undefined,
): Future<void> {
  core.live("writeMany");
  core.checkWritable("writeMany");
  const [lbas, data] = checkWrites(
    entries,
    core.blockCount,
    core.blockSize,
  );
  // a group takes a lane per block at once: never more than an arena
  // has, or it would wait for lanes forever
  let group = GROUP_SIZE;
  for (const a of core.arenas) group = Math.min(group, a.lanes);
  return new WriteGroupFuture(
    core.access,
    lbas,
    data,
    group,
    "writeMany",
    checkFutureOptions(options, "writeMany"),
  );
}

/** `BlockPool.readAsync` of the pool of `core`. */
export function readAsyncOf(
  core: PoolCore,
  lba: number,
  into: Uint8Array | undefined,
  options: FutureOptions | undefined,
): Future<Uint8Array> {
  core.live("readAsync");
  checkLba(lba, core.blockCount, "readAsync");
  const size = core.blockSize;
  return new ReadFuture(
    core.access,
    lba,
    checkInto(into, size, "readAsync") ?? new Uint8Array(size),
    checkFutureOptions(options, "readAsync"),
  );
}
