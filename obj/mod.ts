// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * A transactional object store with asynchronous redo logs, and a durable
 * key-value map on it: libpmemobj's model (a pool file, a root object,
 * all-or-nothing transactions over any objects), rebuilt on asyncpmem's
 * mappings, movers and futures.
 *
 * ```ts
 * import { ObjectPool, PersistentMap } from "@asyncpmem/asyncpmem/obj";
 * import { mkdtempSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 *
 * const path = join(mkdtempSync(join(tmpdir(), "asyncpmem-")), "pool");
 * using pool = ObjectPool.create(path, { size: 16 << 20, layout: "app" });
 * using users = PersistentMap.open(pool, "users");
 * users.set("ada", "lovelace");
 * await users.setAsync("alan", "turing");
 * console.log(users.get("ada"), users.size);
 * ```
 *
 * @module
 */
export { ObjectPool } from "./pool.ts";
export type {
  ObjectPoolCreateOptions,
  ObjectPoolOpenOptions,
  ObjectPoolStats,
} from "./pool_options.ts";
export { type AllocOptions, Transaction } from "./tx.ts";
export { ObjectHandle } from "./handle.ts";
export type { RecoveryReport } from "./open.ts";
export type { HeapUsage } from "./heap.ts";
export {
  CorruptPoolError,
  LayoutMismatchError,
  StaleObjectError,
} from "./errors.ts";
export {
  type MapKey,
  type MapOp,
  type MapValue,
  MAX_KEY,
  MAX_VALUE,
  PersistentMap,
} from "./map.ts";
export {
  checkObjectPool,
  type CheckOptions,
  type PoolCheckReport,
} from "./check.ts";
