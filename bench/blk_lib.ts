// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * What the `blk` bench's processes and Workers share.
 *
 * @module
 */
import type { BlockPool } from "../blk/mod.ts";

/**
 * Touch every page of the pool's mapping that the cases use, by reading
 * every block once. A process maps the pool afresh, and on this VM a
 * page's first touch costs a fault of 10–15 µs (more than a write), while
 * the C program measures in the process that pre-filled its pool: the
 * cases compare the steady state of both.
 */
export function prefault(pool: BlockPool): void {
  const lbas = new Array<number>(256);
  const into = new Uint8Array(256 * pool.blockSize);
  for (let first = 0; first < pool.blockCount; first += 256) {
    const n = Math.min(256, pool.blockCount - first);
    lbas.length = n;
    for (let i = 0; i < n; i++) lbas[i] = first + i;
    pool.readMany(lbas, into);
  }
}
