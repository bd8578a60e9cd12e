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
export { mark, setTracer, type WriteBack, writeBacks } from "./mapping.ts";
export {
  deviceStats,
  type FaultOptions,
  injectBusy,
  injectFault,
  openTestPortal,
  portalCounters,
  streamedBytes,
} from "./movers.ts";
export {
  type BlockPoolTestOptions,
  createBlockPool,
  createLogStream,
  createObjectPool,
  createPmemLog,
  openBlockPool,
  openLogStream,
  openObjectPool,
} from "./stores.ts";
export type { DeviceStats } from "../mover/_device.ts";
export type {
  DsaTestPortalOptions,
  PortalCounters,
} from "../mover/_dsa_test_portal.ts";
export type { PersistTracer } from "../pmem2/tracer.ts";
