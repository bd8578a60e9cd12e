// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The library's ways into an {@linkcode ObjectPool} that are not public:
 * the engine of an open pool, for the map and the checker
 * ({@linkcode poolEngine}), and a create or open with test hooks, for
 * `testing/` and the CLI ({@linkcode createPoolWith},
 * {@linkcode openPoolWith}). `ObjectPool` grants what they need of its
 * private state from its static block (`engineOf` and `construct` in
 * `obj/pool.ts`); none of this is exported by `obj/mod.ts`.
 *
 * @module
 */
import type { Engine } from "./engine.ts";
import { createPool, type ObjTestHooks, openPool } from "./open.ts";
import { construct, engineOf, ObjectPool } from "./pool.ts";
import type {
  ObjectPoolCreateOptions,
  ObjectPoolOpenOptions,
} from "./pool_options.ts";

/**
 * The engine of an open pool (for the map). Internal.
 *
 * @param op the operation named by the ClosedError of a closed pool
 * @param what the call, named by the TypeError of a `pool` that is no
 *   ObjectPool ("open a map")
 */
export function poolEngine(
  pool: ObjectPool,
  op = "use",
  what = "use the pool",
): Engine {
  if (!(pool instanceof ObjectPool)) {
    throw new TypeError(`Cannot ${what}: pool must be an ObjectPool`);
  }
  return engineOf(pool, op);
}

/** Create a pool with test hooks. Internal: tests reach it via testing/. */
export function createPoolWith(
  path: string,
  options: ObjectPoolCreateOptions,
  hooks: ObjTestHooks,
): ObjectPool {
  return construct(createPool(path, options, hooks));
}

/** Open a pool with test hooks. Internal. */
export function openPoolWith(
  path: string,
  options: ObjectPoolOpenOptions,
  hooks: ObjTestHooks,
): ObjectPool {
  return construct(openPool(path, options, hooks));
}
