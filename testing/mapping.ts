// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * What tests see of a {@linkcode Mapping}'s persistence: a tracer on its
 * persistence funnel (what a crash simulator needs), labelled marks among
 * its traced events, and the native shim's log of its write-backs.
 * Re-exported by the testing entry point.
 *
 * @module
 */
import { ClosedError } from "../errors/mod.ts";
import { native } from "../ffi/lib.ts";
import { Mapping } from "../pmem2/mapping.ts";
import {
  markMapping,
  nativeHandleOf,
  setMappingTracer,
} from "../pmem2/mapping_access.ts";
import type { PersistTracer } from "../pmem2/tracer.ts";

/**
 * Refuse a tracer that is not an object with `flush` and `drain`
 * functions (and `mark`, when present, a function): given one, every
 * persist of the mapping would throw later, far from the mistake.
 * `undefined` passes (no tracer).
 */
export function checkTracer(tracer: unknown): void {
  if (tracer === undefined) return;
  const t = tracer as Partial<Record<keyof PersistTracer, unknown>> | null;
  if (
    typeof t !== "object" || t === null || typeof t.flush !== "function" ||
    typeof t.drain !== "function" ||
    (t.mark !== undefined && typeof t.mark !== "function")
  ) {
    throw new TypeError(
      "Cannot set a tracer: tracer must be an object with flush and drain functions (and mark, if given, a function)",
    );
  }
}

/**
 * Attach a {@linkcode PersistTracer} to a mapping's persistence funnel, or
 * detach it with `undefined`. Every flush, persist, drain and durable copy
 * of the mapping is reported, asynchronous copies included: a durable
 * copy done by a mover, started while the tracer is attached, is reported
 * as a flush and a drain of its range when its future completes (the
 * mover made it durable by then), so the traced program runs the same
 * path as an untraced one.
 *
 * @example Usage
 * ```ts
 * import { mapFile } from "@asyncpmem/asyncpmem";
 * import { setTracer } from "@asyncpmem/asyncpmem/testing";
 * import assert from "node:assert/strict";
 * import { mkdtempSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 *
 * let flushes = 0;
 * const path = join(mkdtempSync(join(tmpdir(), "asyncpmem-")), "data");
 * using map = mapFile(path, { size: 1 << 16 });
 * setTracer(map, { flush: () => flushes++, drain() {} });
 * await map.memcpyAsync(0, new Uint8Array(100));
 * setTracer(map, undefined);
 * assert.equal(flushes, 1);
 * ```
 *
 * @throws {TypeError} when `tracer` is not an object with `flush` and
 *   `drain` functions
 * @throws {ClosedError} when the mapping is closed
 */
export function setTracer(
  map: Mapping,
  tracer: PersistTracer | undefined,
): void {
  checkMapping(map, "set a tracer");
  checkTracer(tracer);
  setMappingTracer(map, tracer);
}

/** Throw a TypeError unless `map` is a Mapping (`what`: the call's verb). */
function checkMapping(map: unknown, what: string): void {
  if (!(map instanceof Mapping)) {
    throw new TypeError(`Cannot ${what}: map must be a Mapping`);
  }
}

/**
 * Record a labelled point (an operation issued, acknowledged) with the
 * tracer of a mapping; nothing when it has none.
 *
 * @example Usage
 * ```ts
 * import { mapFile } from "@asyncpmem/asyncpmem";
 * import { mark, setTracer } from "@asyncpmem/asyncpmem/testing";
 * import assert from "node:assert/strict";
 * import { mkdtempSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 *
 * const labels: string[] = [];
 * const path = join(mkdtempSync(join(tmpdir(), "asyncpmem-")), "data");
 * using map = mapFile(path, { size: 1 << 16 });
 * setTracer(map, { flush() {}, drain() {}, mark: (l) => labels.push(l) });
 * mark(map, "ack 1");
 * assert.deepEqual(labels, ["ack 1"]);
 * ```
 *
 * @throws {TypeError} when `label` is not a string
 * @throws {ClosedError} when the mapping is closed
 */
export function mark(map: Mapping, label: string): void {
  checkMapping(map, "mark");
  if (typeof label !== "string") {
    throw new TypeError("Cannot mark: label must be a string");
  }
  // as setTracer: a closed mapping is refused, not silently passed over
  if (map.closed) throw new ClosedError("Mapping", "mark");
  markMapping(map, label);
}

/** One write-back of a mapping's bytes, as the native shim saw it. */
export interface WriteBack {
  /** Where in the mapping (0 for a drain). */
  offset: number;
  /** How many bytes (0 for a drain). */
  length: number;
  /**
   * `"durable"`: persisted now; `"flushed"`: written back, durable at the
   * next `"drain"` (a fence).
   */
  kind: "durable" | "flushed" | "drain";
}

const WRITE_BACK_KINDS = ["durable", "flushed", "drain"] as const;
const LOG_CAP = 64;

/**
 * The write-backs of a mapping since `since` (a count this returned
 * before; by default the newest ones kept), oldest first, as the native
 * shim recorded them: every path
 * that persists a mapping's bytes (msync, cache-line flushes, libpmem2's
 * durable copies, a mover's worker) notes its range there. Reading a file
 * back shows what was written, not what was persisted; this shows what
 * was persisted. The shim keeps the last 64 notes, and notes a mapping's
 * write-backs only from the first call of this function on (noting every
 * persist of every mapping would slow cache-line flushes): call it once
 * before the operation under test, as below.
 *
 * @example Usage
 * ```ts
 * import { mapFile } from "@asyncpmem/asyncpmem";
 * import { writeBacks } from "@asyncpmem/asyncpmem/testing";
 * import assert from "node:assert/strict";
 * import { mkdtempSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 *
 * const path = join(mkdtempSync(join(tmpdir(), "asyncpmem-")), "data");
 * using map = mapFile(path, { size: 1 << 16 });
 * const { count } = writeBacks(map);
 * await map.memcpyAsync(100, new Uint8Array(10));
 * const after = writeBacks(map, count);
 * assert.deepEqual(after.notes, [{ offset: 100, length: 10, kind: "durable" }]);
 * ```
 *
 * @throws {RangeError} when more than 64 notes were made since `since`,
 *   or `since` is no count this returned (not an integer in `[0, count]`)
 * @throws {TypeError} when `since` is given and not a number
 * @throws {ClosedError} when the mapping is closed
 */
export function writeBacks(
  map: Mapping,
  since?: number,
): { count: number; notes: WriteBack[] } {
  checkMapping(map, "list write-backs");
  if (map.closed) throw new ClosedError("Mapping", "writeBacks");
  const out = new Float64Array(3 * LOG_CAP);
  const count = native.ap_map_durable_log(nativeHandleOf(map), out, LOG_CAP);
  if (since !== undefined && typeof since !== "number") {
    throw new TypeError("Cannot list write-backs: since must be a number");
  }
  // a count returned before lies in [0, count]: another would list notes
  // never made (zeros, of no kind) or, above count, silently none
  if (
    since !== undefined &&
    (!Number.isInteger(since) || since < 0 || since > count)
  ) {
    throw new RangeError(
      `Cannot list write-backs: since must be a count writeBacks returned before, in [0, ${count}], got ${since}`,
    );
  }
  const n = since === undefined ? Math.min(count, LOG_CAP) : count - since;
  if (n > LOG_CAP) {
    throw new RangeError(
      `Cannot list write-backs: ${n} were made since ${since}, the log keeps ${LOG_CAP}`,
    );
  }
  const notes: WriteBack[] = [];
  for (let i = n - 1; i >= 0; i--) {
    notes.push({
      offset: out[3 * i],
      length: out[3 * i + 1],
      kind: WRITE_BACK_KINDS[out[3 * i + 2] - 1],
    });
  }
  return { count, notes };
}
