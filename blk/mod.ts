// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * A failure-atomic block store, byte-compatible with libpmemblk 1.12.1
 * (PMDK's BTT): each block write survives a crash whole or not at all.
 *
 * ```ts
 * import { BlockPool } from "@asyncpmem/asyncpmem/blk";
 * import { mkdtempSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 *
 * const path = join(mkdtempSync(join(tmpdir(), "asyncpmem-")), "pool");
 * using pool = BlockPool.create(path, { blockSize: 4096, poolSize: 32 << 20 });
 * pool.write(0, new Uint8Array(4096).fill(1));
 * console.log(pool.blockCount, pool.read(0)[0]);
 * ```
 *
 * @module
 */
export { BlockPool } from "./pool.ts";
export type {
  BlockPoolCreateOptions,
  BlockPoolOpenOptions,
  BlockWrite,
  ProgressOptions,
} from "./options.ts";
export type { ArenaInfo, BlockFill, BlockPoolInfo } from "./info.ts";
export type { CheckReport } from "./check.ts";
export { fletcher64 } from "../pmdk/checksum.ts";
export { uuidToBytes, uuidToString } from "../pmdk/pool_header.ts";
export {
  type ArenaGeometry,
  MIN_POOL_SIZE,
  type PoolGeometry,
  poolGeometry,
} from "./layout.ts";
