// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The stores' create and open with what only tests may add: a tracer on
 * the store's mapping from before its first write (the layout at create,
 * the recovery at open), and for block pools a sparse file or fewer
 * lanes. Re-exported by the testing entry point.
 *
 * @module
 */
import type { BlockPool } from "../blk/pool.ts";
import type {
  BlockPoolCreateOptions,
  BlockPoolOpenOptions,
} from "../blk/options.ts";
import { createPoolWith, openPoolWith } from "../blk/pool_access.ts";
import type { PersistTracer } from "../pmem2/tracer.ts";
import {
  createStreamWith,
  type LogStream,
  openStreamWith,
} from "../stream/stream.ts";
import type {
  LogStreamCreateOptions,
  LogStreamOpenOptions,
} from "../stream/options.ts";
import { createPmemLogWith, type PmemLog } from "../stream/pmemlog.ts";
import type { PmemLogCreateOptions } from "../stream/pmemlog_options.ts";
import type { ObjectPool } from "../obj/pool.ts";
import {
  createPoolWith as createObjectPoolWith,
  openPoolWith as openObjectPoolWith,
} from "../obj/pool_access.ts";
import type {
  ObjectPoolCreateOptions,
  ObjectPoolOpenOptions,
} from "../obj/pool_options.ts";
import { checkTracer } from "./mapping.ts";

/**
 * `options` split into the keys of this entry point (read once each) and
 * the rest, for the store's factory, which refuses a key it does not
 * know. What is no object, or an array, goes on as it is, for the
 * factory to refuse.
 *
 * The rest has the caller's prototype: a factory reads each of its
 * options wherever it is (an own property, or a getter of the caller's
 * class), and refuses only own keys it does not know, so through this
 * entry point it sees what it would have seen called directly. A copy
 * of the own properties alone dropped the inherited ones (`size` given
 * by a getter was "required"). The keys of this entry point are left
 * out of the rest only where they are own: an inherited one is no key
 * the factory checks.
 */
function splitOptions<T, K extends string>(
  options: T,
  keys: readonly K[],
): [{ [P in K]?: P extends keyof T ? T[P] : never }, T] {
  if (
    typeof options !== "object" || options === null || Array.isArray(options)
  ) {
    return [{}, options];
  }
  const own: Record<string, unknown> = {};
  const rest: Record<string, unknown> = Object.create(
    Object.getPrototypeOf(options),
  );
  for (const k of keys) own[k] = (options as Record<string, unknown>)[k];
  for (const k of Object.keys(options)) {
    if (!(keys as readonly string[]).includes(k)) {
      rest[k] = (options as Record<string, unknown>)[k];
    }
  }
  return [own as { [P in K]?: P extends keyof T ? T[P] : never }, rest as T];
}

/** What tests may add to the stores' create and open (`createBlockPool`, `createLogStream`, ...). */
export interface BlockPoolTestOptions {
  /**
   * A tracer attached to the pool's mapping before anything is written,
   * so it sees every flush and fence of the pool, the layout at create
   * and the recovery at open included.
   */
  tracer?: PersistTracer;
}

/**
 * {@linkcode BlockPool.create} with a tracer from the start, or a sparse
 * file (`ftruncate` instead of `posix_fallocate`: a full file system then
 * shows up as SIGBUS on first touch, so only tests should want it).
 *
 * @example Usage
 * ```ts
 * import { createBlockPool } from "@asyncpmem/asyncpmem/testing";
 * import assert from "node:assert/strict";
 * import { mkdtempSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 *
 * let drains = 0;
 * const path = join(mkdtempSync(join(tmpdir(), "asyncpmem-")), "pool");
 * using pool = createBlockPool(path, {
 *   blockSize: 512,
 *   poolSize: 32 << 20,
 *   tracer: { flush() {}, drain: () => void drains++ },
 * });
 * pool.write(0, new Uint8Array(512));
 * assert.ok(drains > 0);
 * ```
 */
export function createBlockPool(
  path: string,
  options: BlockPoolCreateOptions & BlockPoolTestOptions & {
    sparse?: boolean;
    /**
     * Lanes each arena uses, at most, in every opener while this one
     * keeps the pool open: with few lanes a freed block is reused at
     * once, which tests of read tracking need. An integer of at least 1
     * (more than 256, or than the arena's free blocks, counts as that).
     * @default 256
     */
    lanes?: number;
  },
): BlockPool {
  const [{ tracer, sparse, lanes }, rest] = splitOptions(options, [
    "tracer",
    "sparse",
    "lanes",
  ]);
  checkTracer(tracer);
  // "no" would read as true: a sparse file where one was not asked for
  if (sparse !== undefined && typeof sparse !== "boolean") {
    throw new TypeError("Cannot create pool: sparse must be a boolean");
  }
  // NaN would leave every arena with NaN lanes: the pool made, and its
  // first write refused for want of an idle lane
  if (lanes !== undefined && (!Number.isInteger(lanes) || lanes < 1)) {
    throw new RangeError(
      `Cannot create pool: lanes must be an integer of at least 1, got ${lanes}`,
    );
  }
  return createPoolWith(path, rest, { tracer, sparse, lanes });
}

/**
 * {@linkcode BlockPool.open} with a tracer attached before recovery runs.
 *
 * @example Usage
 * ```ts
 * import { BlockPool } from "@asyncpmem/asyncpmem/blk";
 * import { openBlockPool } from "@asyncpmem/asyncpmem/testing";
 * import { mkdtempSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 *
 * const path = join(mkdtempSync(join(tmpdir(), "asyncpmem-")), "pool");
 * BlockPool.create(path, { blockSize: 512, poolSize: 32 << 20 }).close();
 * using pool = openBlockPool(path, { tracer: { flush() {}, drain() {} } });
 * ```
 */
export function openBlockPool(
  path: string,
  options: BlockPoolOpenOptions & BlockPoolTestOptions = {},
): BlockPool {
  const [{ tracer }, rest] = splitOptions(options, ["tracer"]);
  checkTracer(tracer);
  return openPoolWith(path, rest, { tracer });
}

/**
 * `LogStream.create` with a tracer attached to the stream's mapping
 * before anything is written (the layout included).
 *
 * @example Usage
 * ```ts
 * import { createLogStream } from "@asyncpmem/asyncpmem/testing";
 * import assert from "node:assert/strict";
 * import { mkdtempSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 *
 * let drains = 0;
 * const path = join(mkdtempSync(join(tmpdir(), "asyncpmem-")), "log");
 * using s = createLogStream(path, {
 *   size: 1 << 20,
 *   tracer: { flush() {}, drain: () => void drains++ },
 * });
 * s.append(s.allocateRegion(4096), new Uint8Array(8));
 * assert.ok(drains > 0);
 * ```
 */
export function createLogStream(
  path: string,
  options: LogStreamCreateOptions & BlockPoolTestOptions,
): LogStream {
  const [{ tracer }, rest] = splitOptions(options, ["tracer"]);
  checkTracer(tracer);
  return createStreamWith(path, rest, { tracer });
}

/**
 * `LogStream.open` with a tracer attached before recovery runs. A stream
 * already open in this process is refused: its mapping serves every
 * handle, with the tracer its first open gave it, or none.
 *
 * @example Usage
 * ```ts
 * import { LogStream } from "@asyncpmem/asyncpmem/stream";
 * import { openLogStream } from "@asyncpmem/asyncpmem/testing";
 * import assert from "node:assert/strict";
 * import { mkdtempSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 *
 * const path = join(mkdtempSync(join(tmpdir(), "asyncpmem-")), "log");
 * LogStream.create(path, { size: 1 << 20 }).close();
 * let flushes = 0;
 * using s = openLogStream(path, {
 *   tracer: { flush: () => void flushes++, drain() {} },
 * });
 * s.append(s.allocateRegion(4096), new Uint8Array(8));
 * assert.ok(flushes > 0);
 * ```
 *
 * @throws {PmemError} code -16 (EBUSY) when the stream is open in this
 *   process already
 */
export function openLogStream(
  path: string,
  options: LogStreamOpenOptions & BlockPoolTestOptions = {},
): LogStream {
  const [{ tracer }, rest] = splitOptions(options, ["tracer"]);
  checkTracer(tracer);
  return openStreamWith(path, rest, { tracer });
}

/**
 * `PmemLog.create` with a tracer attached to the log's mapping before
 * anything is written (the header included).
 *
 * @example Usage
 * ```ts
 * import { createPmemLog } from "@asyncpmem/asyncpmem/testing";
 * import assert from "node:assert/strict";
 * import { mkdtempSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 *
 * let drains = 0;
 * const path = join(mkdtempSync(join(tmpdir(), "asyncpmem-")), "pool.log");
 * using log = createPmemLog(path, {
 *   poolSize: 2 << 20,
 *   tracer: { flush() {}, drain: () => void drains++ },
 * });
 * log.append(new Uint8Array(8));
 * assert.ok(drains > 0);
 * ```
 */
export function createPmemLog(
  path: string,
  options: PmemLogCreateOptions & BlockPoolTestOptions,
): PmemLog {
  const [{ tracer }, rest] = splitOptions(options, ["tracer"]);
  checkTracer(tracer);
  return createPmemLogWith(path, rest, { tracer });
}

/**
 * `ObjectPool.create` with a tracer attached to the pool's mapping before
 * anything is written (the layout included).
 *
 * @example Usage
 * ```ts
 * import { createObjectPool } from "@asyncpmem/asyncpmem/testing";
 * import assert from "node:assert/strict";
 * import { mkdtempSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 *
 * let drains = 0;
 * const path = join(mkdtempSync(join(tmpdir(), "asyncpmem-")), "pool");
 * using pool = createObjectPool(path, {
 *   size: 8 << 20,
 *   layout: "t",
 *   tracer: { flush() {}, drain: () => void drains++ },
 * });
 * pool.tx((tx) => tx.alloc(8));
 * assert.ok(drains > 0);
 * ```
 */
export function createObjectPool(
  path: string,
  options: ObjectPoolCreateOptions & BlockPoolTestOptions,
): ObjectPool {
  const [{ tracer }, rest] = splitOptions(options, ["tracer"]);
  checkTracer(tracer);
  return createObjectPoolWith(path, rest, { tracer });
}

/**
 * `ObjectPool.open` with a tracer attached before recovery runs.
 *
 * @example Usage
 * ```ts
 * import { ObjectPool } from "@asyncpmem/asyncpmem/obj";
 * import { openObjectPool } from "@asyncpmem/asyncpmem/testing";
 * import { mkdtempSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 *
 * const path = join(mkdtempSync(join(tmpdir(), "asyncpmem-")), "pool");
 * ObjectPool.create(path, { size: 8 << 20, layout: "t" }).close();
 * using pool = openObjectPool(path, { layout: "t", tracer: { flush() {}, drain() {} } });
 * ```
 */
export function openObjectPool(
  path: string,
  options: ObjectPoolOpenOptions & BlockPoolTestOptions,
): ObjectPool {
  const [{ tracer }, rest] = splitOptions(options, ["tracer"]);
  checkTracer(tracer);
  return openObjectPoolWith(path, rest, { tracer });
}
