// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * A log store (PMDK's pmemstream, with what its users asked for):
 * regions of timestamp-ordered, checksummed entries, appended
 * synchronously, in place (reserve/publish) or asynchronously through a
 * data mover, with committed and persisted watermarks, waiting
 * iterators, truncation and Workers; plus {@linkcode PmemLog}, a
 * libpmemlog-compatible log, the way off that discontinued library.
 *
 * ```ts
 * import { LogStream } from "@asyncpmem/asyncpmem/stream";
 * import { mkdtempSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 *
 * const path = join(mkdtempSync(join(tmpdir(), "asyncpmem-")), "log");
 * using s = LogStream.create(path, { size: 4 << 20 });
 * const r = s.allocateRegion(1 << 20);
 * const ts = s.append(r, new TextEncoder().encode("hello"));
 * await s.appendAsync(r, new TextEncoder().encode("world"));
 * for (const e of s.entries(r)) console.log(e.timestamp, e.data.length);
 * console.log(ts <= s.persistedTimestamp);
 * ```
 *
 * @module
 */
export { LogStream } from "./stream.ts";
export type {
  AppendOptions,
  LogStreamCreateOptions,
  LogStreamOpenOptions,
} from "./options.ts";
export { type LogEntry, Region, Reservation } from "./region.ts";
export type { AppendFuture } from "./futures.ts";
export type { FollowOptions } from "./iterate.ts";
export type { RecoveredRegion, RecoveryReport } from "./recovery.ts";
export type { InspectedRegion, StreamInspection } from "./inspect.ts";
export type { Level } from "./core.ts";
export { PmemLog } from "./pmemlog.ts";
export type {
  PmemLogCreateOptions,
  PmemLogOpenOptions,
} from "./pmemlog_options.ts";
