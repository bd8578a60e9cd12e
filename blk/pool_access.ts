// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The library's ways into a {@linkcode BlockPool} that are not public: a
 * create or open with test hooks, for `testing/` and the crash tests
 * ({@linkcode createPoolWith}, {@linkcode openPoolWith}), and what tests
 * look at in an open pool ({@linkcode trackedOperations},
 * {@linkcode blockPoolMapping}). `BlockPool` grants what they need of its
 * private state from its static block (`poolOver` and `coreOf` in
 * `blk/pool.ts`); none of this is exported by `blk/mod.ts`.
 *
 * @module
 */
import type { Mapping } from "../pmem2/mapping.ts";
import { createPoolFile, openPoolFile, type PoolTestHooks } from "./open.ts";
import { layOutBtt, loadBtt } from "./btt.ts";
import type {
  BlockPoolCreateOptions,
  BlockPoolOpenOptions,
} from "./options.ts";
import { type BlockPool, coreOf, poolOver } from "./pool.ts";

/** {@linkcode BlockPool.create} with test hooks. Internal. */
export function createPoolWith(
  path: string,
  options: BlockPoolCreateOptions,
  hooks: PoolTestHooks,
): BlockPool {
  return poolOver(createPoolFile(path, options, hooks), layOutBtt);
}

/** {@linkcode BlockPool.open} with test hooks. Internal. */
export function openPoolWith(
  path: string,
  options: BlockPoolOpenOptions,
  hooks: PoolTestHooks,
): BlockPool {
  return poolOver(openPoolFile(path, options, hooks), loadBtt);
}

/**
 * The operations an open pool keeps for its close() (started, not
 * settled). Internal: for tests.
 */
export function trackedOperations(pool: BlockPool): number {
  return coreOf(pool).inflight.size;
}

/** The mapping of an open pool (tests look at its views). Internal. */
export function blockPoolMapping(pool: BlockPool): Mapping {
  return coreOf(pool).media.mapping;
}
