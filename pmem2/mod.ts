// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * libpmem2 for Deno and Bun: sources, mappings with zero-copy views,
 * persist/flush/drain, durable copies with `PMEM2_F_MEM_*` flags, and RAS.
 *
 * ```ts
 * import { mapFile, MemFlags } from "@asyncpmem/asyncpmem/pmem2";
 * import { mkdtempSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 *
 * const path = join(mkdtempSync(join(tmpdir(), "asyncpmem-")), "data");
 * using map = mapFile(path, { size: 1 << 20 });
 * map.memcpy(0, new Uint8Array([1, 2, 3]), MemFlags.NODRAIN);
 * map.drain();
 * ```
 *
 * @module
 */
export type { Granularity, MapConfig, Protection } from "./config.ts";
export { FileLock } from "./file_lock.ts";
export { MemFlags } from "./flags.ts";
export { mapFile, type MapFileOptions } from "./map_file.ts";
export { Mapping } from "./mapping.ts";
export { type BadBlock, Source, type SourceOpenOptions } from "./source.ts";
