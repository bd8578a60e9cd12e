// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * A failure-atomic block store (libpmemblk's format): synchronous writes,
 * asynchronous writes with many in flight, a batched group commit, reads,
 * and a reopen that finds everything whole.
 *
 *   deno run -A examples/block_store.ts     bun examples/block_store.ts
 *
 * @module
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { all, ThreadMover } from "@asyncpmem/asyncpmem";
import { BlockPool } from "@asyncpmem/asyncpmem/blk";

const dir = mkdtempSync(join(tmpdir(), "asyncpmem-blk-"));
const path = join(dir, "blocks.pmemblk");
const block = (n: number) => new Uint8Array(4096).fill(n);

try {
  {
    using mover = new ThreadMover();
    using pool = BlockPool.create(path, {
      blockSize: 4096,
      poolSize: 64 << 20,
      mover,
    });
    console.log(`${pool.blockCount} blocks of ${pool.blockSize} B`);
    // synchronous: durable and atomic when it returns
    pool.write(0, block(1));
    // asynchronous: 32 writes in flight share their copies and fences
    await all(
      Array.from({ length: 32 }, (_, i) => pool.writeAsync(1 + i, block(2))),
    );
    // a group commit: one batch of the mover, one persist per phase
    await pool.writeMany(
      Array.from({ length: 64 }, (_, i) => ({ lba: 100 + i, data: block(3) })),
    );
    console.log(
      `read back: ${pool.read(0)[0]}, ${(await pool.readAsync(7))[0]}, ${
        pool.read(150)[0]
      }`,
    );
  }
  using pool = BlockPool.open(path);
  const info = pool.info();
  console.log(
    `reopened: ${info.fill.written} blocks written, consistent: ${pool.check().consistent}`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
