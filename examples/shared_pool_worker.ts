// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The Worker of `shared_pool.ts`: it opens the pool by path (a Worker
 * cannot be handed a pool), writes every block `rounds` times with its id
 * in every byte, synchronously and asynchronously, closes the pool and
 * posts how many blocks it wrote.
 *
 * @module
 */
import { all } from "@asyncpmem/asyncpmem";
import { BlockPool } from "@asyncpmem/asyncpmem/blk";

interface Job {
  path: string;
  id: number;
  blocks: number;
  rounds: number;
}

// deno-lint-ignore no-explicit-any
const self_ = globalThis as any;

self_.onmessage = async (e: MessageEvent<Job>) => {
  const { path, id, blocks, rounds } = e.data;
  let n = 0;
  try {
    using pool = BlockPool.open(path);
    const data = new Uint8Array(pool.blockSize).fill(id);
    for (let r = 0; r < rounds; r++) {
      if (r % 2 === 0) {
        for (let lba = 0; lba < blocks; lba++, n++) pool.write(lba, data);
      } else {
        const writes = [];
        for (let lba = 0; lba < blocks; lba++, n++) {
          writes.push(pool.writeAsync(lba, data));
        }
        await all(writes);
      }
    }
  } catch (err) {
    self_.postMessage(String(err));
    return;
  }
  // posted once the pool is closed (the block above disposed it): the
  // main thread terminates this Worker when the message arrives
  self_.postMessage(n);
};
// a message sent before the handler is set may be lost (Bun): say ready
self_.postMessage("ready");
