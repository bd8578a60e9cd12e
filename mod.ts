// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * asyncpmem: PMDK's asynchronous persistent-memory stack for Deno and Bun.
 *
 * ```ts
 * import { mapFile } from "@asyncpmem/asyncpmem";
 *
 * const path = await Deno.makeTempFile();
 * using map = mapFile(path, { size: 1 << 20 });
 * map.memcpy(0, new TextEncoder().encode("durable"));
 * ```
 *
 * @module
 */
export * from "./ffi/mod.ts";
export * from "./pmem2/mod.ts";
export * from "./future/mod.ts";
export * from "./mover/mod.ts";
export * from "./blk/mod.ts";
