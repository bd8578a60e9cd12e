// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The library's ways into a {@linkcode BlockPool} that are not public: a
 * create or open with test hooks, for `testing/` and the crash tests
 * ({@linkcode createPoolWith}, {@linkcode openPoolWith}), and what tests
 * look at in an open pool ({@linkcode trackedOperations},
 * {@linkcode blockPoolMapping}). `BlockPool` grants what they need of its
 * private state from its static block (`createWith`, `openWith`,
 * `mappingOf` and `inflightOf` in `blk/pool.ts`); none of this is
 * exported by `blk/mod.ts`.
 *
 * @module
 */
import type { Mapping } from "../pmem2/mapping.ts";
import type { PoolTestHooks } from "./open.ts";
import type {
  BlockPoolCreateOptions,
  BlockPoolOpenOptions,
} from "./options.ts";
import {
  type BlockPool,
  createWith,
  inflightOf,
  mappingOf,
  openWith,
} from "./pool.ts";

/** {@linkcode BlockPool.create} with test hooks. Internal. */
export function createPoolWith(
  path: string,
  options: BlockPoolCreateOptions,
  hooks: PoolTestHooks,
): BlockPool {
  return createWith(path, options, hooks);
}

/** {@linkcode BlockPool.open} with test hooks. Internal. */
export function openPoolWith(
  path: string,
  options: BlockPoolOpenOptions,
  hooks: PoolTestHooks,
): BlockPool {
  return openWith(path, options, hooks);
}

/**
 * The operations an open pool keeps for its close() (started, not
 * settled). Internal: for tests.
 */
export function trackedOperations(pool: BlockPool): number {
  return inflightOf(pool).size;
}

/** The mapping of an open pool (tests look at its views). Internal. */
export function blockPoolMapping(pool: BlockPool): Mapping {
  return mappingOf(pool);
}
