// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Hooks for testing code built on asyncpmem, and asyncpmem itself: a
 * tracer on a mapping's persistence funnel (what a crash simulator needs),
 * faults injected into the software DSA device, a DSA mover on a test
 * portal (the hardware path without the hardware), and the counters that
 * show a test exercised what it meant to. Nothing here belongs in production
 * code; it lives apart so the main entry points stay what users need.
 *
 * ```ts
 * import { mapFile } from "@asyncpmem/asyncpmem";
 * import { setTracer } from "@asyncpmem/asyncpmem/testing";
 * import assert from "node:assert/strict";
 * import { mkdtempSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 *
 * const events: string[] = [];
 * const path = join(mkdtempSync(join(tmpdir(), "asyncpmem-")), "data");
 * using map = mapFile(path, { size: 1 << 16 });
 * setTracer(map, {
 *   flush: (offset, length) => events.push(`flush ${offset}+${length}`),
 *   drain: () => events.push("drain"),
 * });
 * map.persist(0, 64);
 * assert.deepEqual(events, ["flush 0+64", "drain"]);
 * ```
 *
 * @module
 */
import {
  type BlockPool,
  type BlockPoolCreateOptions,
  type BlockPoolOpenOptions,
  createPoolWith,
  openPoolWith,
} from "../blk/pool.ts";
import { check, native } from "../ffi/lib.ts";
import { checkSize } from "../ffi/validate.ts";
import type { CompletionDevice, DeviceStats } from "../mover/_device.ts";
import {
  DsaMover,
  dsaMoverDevice,
  type DsaTestPortalOptions,
  injectBusy as injectPortalBusy,
  openDsaTestPortal,
  type PortalCounters,
  portalCounters as readPortalCounters,
} from "../mover/dsa.ts";
import { DSA_STATUS_WRITE_FAULT, DsaStatus } from "../mover/dsa_format.ts";
import { ThreadMover, threadMoverDevice } from "../mover/thread.ts";
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
import {
  createPmemLogWith,
  type PmemLog,
  type PmemLogCreateOptions,
} from "../stream/pmemlog.ts";
import {
  createPoolWith as createObjectPoolWith,
  type ObjectPool,
  type ObjectPoolCreateOptions,
  type ObjectPoolOpenOptions,
  openPoolWith as openObjectPoolWith,
} from "../obj/pool.ts";
import { checkTracer } from "./mapping.ts";

export { mark, setTracer, type WriteBack, writeBacks } from "./mapping.ts";
export type {
  DeviceStats,
  DsaTestPortalOptions,
  PersistTracer,
  PortalCounters,
};

/**
 * The device of a ThreadMover or a DsaMover; a TypeError naming both, and
 * the call (`what`: its verb), for anything else.
 */
function deviceOf(mover: unknown, what: string): CompletionDevice {
  if (mover instanceof ThreadMover) return threadMoverDevice(mover);
  if (mover instanceof DsaMover) return dsaMoverDevice(mover);
  throw new TypeError(
    `Cannot ${what}: mover must be a ThreadMover or a DsaMover`,
  );
}

/** Options of {@linkcode injectFault}. */
export interface FaultOptions {
  /** The fault was on a write (status bit 7). @default true */
  write?: boolean;
  /**
   * The status byte to complete with instead of a page fault (then no
   * partial completion is modelled, only the failure): an integer in
   * [1, 255] (0 is no completion).
   */
  status?: number;
  /** How many descriptors fault. @default 1 */
  count?: number;
}

/**
 * Make the next `count` MEMMOVE/MEMFILL/CFLUSH descriptors of a
 * {@linkcode ThreadMover}'s device (or of the software device behind a
 * DsaMover's test portal) that are longer than `atByte` stop after
 * `atByte` bytes with a page-fault status: a partial completion, as DSA
 * hardware reports one. A negative `atByte` disarms it.
 *
 * @example Usage
 * ```ts
 * import { ThreadMover } from "@asyncpmem/asyncpmem";
 * import { deviceStats, injectFault } from "@asyncpmem/asyncpmem/testing";
 * import assert from "node:assert/strict";
 *
 * using mover = new ThreadMover({ threads: 1, inlineThreshold: 0 });
 * injectFault(mover, 100);
 * const dst = new Uint8Array(4096);
 * await mover.memset(dst, 9);
 * assert.equal(dst[4095], 9);
 * assert.equal(deviceStats(mover).partialCompletions, 1);
 * ```
 *
 * @throws {TypeError} when `mover` is neither a ThreadMover nor a DsaMover
 * @throws {RangeError} for an `atByte`, `count` or `status` out of range
 * @throws {ClosedError} when the mover is closed
 * @throws {NotSupportedError} for a DsaMover on real hardware
 */
export function injectFault(
  mover: ThreadMover | DsaMover,
  atByte: number,
  options: FaultOptions = {},
): void {
  const device = deviceOf(mover, "inject a fault");
  if (typeof options !== "object" || options === null) {
    throw new TypeError("Cannot inject a fault: options must be an object");
  }
  // anything else but a boolean read as true (a write fault)
  if (options.write !== undefined && typeof options.write !== "boolean") {
    throw new TypeError("Cannot inject a fault: write must be a boolean");
  }
  if (typeof atByte !== "number" || Number.isNaN(atByte)) {
    throw new TypeError("Cannot inject a fault: atByte must be a number");
  }
  const count = checkSize(options.count ?? 1, "count", "inject a fault");
  // a completion record's status byte: 0 means "not complete yet", so a
  // descriptor completed with it (or with 256, or NaN, both stored as
  // 0) would leave its future pending forever
  if (
    options.status !== undefined &&
    (!Number.isInteger(options.status) || options.status < 1 ||
      options.status > 255)
  ) {
    throw new RangeError(
      `Cannot inject a fault: status must be a completion status byte in [1, 255], got ${options.status}`,
    );
  }
  const status = options.status ?? (DsaStatus.PAGE_FAULT_NOBOF |
    (options.write === false ? 0 : DSA_STATUS_WRITE_FAULT));
  check(
    native.ap_dev_inject_fault(
      device.handle("injectFault"),
      atByte < 0 ? -1 : checkSize(atByte, "atByte", "inject a fault"),
      status,
      count,
    ),
    "injectFault",
  );
}

/**
 * A snapshot of what a {@linkcode ThreadMover}'s or DsaMover's device
 * counted: sleeps and lost wake-ups, partial completions, resubmissions,
 * CPU fallbacks, pages touched, busy answers, CPU persists.
 *
 * @example Usage
 * ```ts
 * import { ThreadMover } from "@asyncpmem/asyncpmem";
 * import { deviceStats } from "@asyncpmem/asyncpmem/testing";
 * import assert from "node:assert/strict";
 *
 * using mover = new ThreadMover({ threads: 1 });
 * assert.equal(deviceStats(mover).lostWakeups, 0);
 * ```
 *
 * @throws {TypeError} when `mover` is neither a ThreadMover nor a DsaMover
 */
export function deviceStats(mover: ThreadMover | DsaMover): DeviceStats {
  return { ...deviceOf(mover, "read device stats").stats };
}

/**
 * Bytes the native side has written with non-temporal stores on the CPU,
 * process-wide: the copies and fills asked not to leave their destination
 * in the cache (`VdmFlags.NO_CACHE_HINT`, a mapping's `NONTEMPORAL`) that
 * took that path, by the CPU mover, a `ThreadMover`'s engines or a
 * mapping. The bytes written are the same either way; this is what tells
 * a test the hint was honoured. Always 0 where the CPU has no such stores
 * (only x86-64 has them here).
 *
 * @example Usage
 * ```ts
 * import { CpuMover, VdmFlags, wait } from "@asyncpmem/asyncpmem";
 * import { streamedBytes } from "@asyncpmem/asyncpmem/testing";
 * import assert from "node:assert/strict";
 *
 * using mover = new CpuMover();
 * const before = streamedBytes();
 * wait(mover.memcpy(new Uint8Array(4096), new Uint8Array(4096), VdmFlags.NO_CACHE_HINT));
 * assert.ok(streamedBytes() >= before);
 * ```
 */
export function streamedBytes(): number {
  return native.ap_streamed_bytes();
}

/**
 * A {@linkcode DsaMover} on a test portal: everything of the hardware
 * path -- the descriptor builder, credits or ENQCMD's retry answers or
 * `write(2)`, the watcher thread that notices completions, the record
 * polling -- with the software device standing in for DSA behind the
 * work queue's interface (a page it watches, written with MOVDIR64B where
 * the CPU has it, or a socket).
 *
 * @example Usage
 * ```ts
 * import { openTestPortal, portalCounters } from "@asyncpmem/asyncpmem/testing";
 * import assert from "node:assert/strict";
 *
 * using dsa = openTestPortal({ mode: "dedicated", queueSize: 4 });
 * const dst = new Uint8Array(1 << 16);
 * await dsa.memset(dst, 5);
 * assert.equal(dst[65535], 5);
 * assert.equal(portalCounters(dsa).drops, 0);
 * ```
 *
 * @throws {RangeError} for an option out of range
 * @throws {TypeError} when `options` is not an object or `overlappingCopies`
 *   not a boolean
 */
export function openTestPortal(options: DsaTestPortalOptions = {}): DsaMover {
  return openDsaTestPortal(options);
}

/**
 * A DsaMover's work-queue counters: refusals for want of credit, retry
 * answers, busy give-ups, descriptors a test portal dropped (a full
 * dedicated WQ drops them: a credit bug), descriptors sent, completions
 * noticed by the watcher or by a submitter, watcher sleeps.
 *
 * @example Usage
 * ```ts
 * import { openTestPortal, portalCounters } from "@asyncpmem/asyncpmem/testing";
 * import assert from "node:assert/strict";
 *
 * using dsa = openTestPortal();
 * await dsa.memset(new Uint8Array(4096), 1);
 * assert.equal(portalCounters(dsa).sent, 1);
 * ```
 *
 * @throws {TypeError} when `mover` is not a DsaMover
 */
export function portalCounters(mover: DsaMover): PortalCounters {
  return readPortalCounters(mover);
}

/**
 * Make a shared test portal answer "retry" to the next `count` attempts
 * to enqueue, as a shared WQ that other processes keep full.
 *
 * @example Usage
 * ```ts
 * import { deviceStats, injectBusy, openTestPortal } from "@asyncpmem/asyncpmem/testing";
 * import assert from "node:assert/strict";
 *
 * using dsa = openTestPortal({ mode: "shared" });
 * injectBusy(dsa, 3); // the shim's own retries absorb these
 * await dsa.memset(new Uint8Array(4096), 1);
 * assert.equal(deviceStats(dsa).busyAnswers, 0);
 * ```
 *
 * @throws {NotSupportedError} unless `mover` is on a shared test portal
 */
export function injectBusy(mover: DsaMover, count: number): void {
  injectPortalBusy(mover, count);
}

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
