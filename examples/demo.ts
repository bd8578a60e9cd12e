// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * A tour of asyncpmem with no configuration: a pool file in a temp folder,
 * durable synchronous and asynchronous copies, a thread mover with many
 * copies in flight, and a failure-atomic block store.
 *
 *   deno run -A examples/demo.ts        bun examples/demo.ts
 *
 * @module
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { all, mapFile, RUNTIME, ThreadMover } from "@asyncpmem/asyncpmem";
import { BlockPool } from "@asyncpmem/asyncpmem/blk";

const dir = mkdtempSync(join(tmpdir(), "asyncpmem-demo-"));
const text = (b: Uint8Array) => new TextDecoder().decode(b);

try {
  console.log(`asyncpmem demo on ${RUNTIME}, files in ${dir}`);

  // 1. Map a file (created at 16 MiB); copies are durable when they return.
  {
    using map = mapFile(join(dir, "data.pmem"), { size: 16 << 20 });
    map.memcpy(0, new TextEncoder().encode("hello, persistent memory"));
    console.log(
      `mapped ${map.size >> 20} MiB at ${map.granularity} granularity`,
    );
    console.log(`  sync memcpy  -> "${text(map.view(0, 24))}"`);

    // 2. The async form: resolves only once the bytes are durable.
    await map.memcpyAsync(
      4096,
      new TextEncoder().encode("written asynchronously"),
    );
    console.log(`  memcpyAsync  -> "${text(map.view(4096, 22))}"`);
  }

  // 3. A software DSA device: 16 copies of 1 MiB in flight at once.
  {
    using mover = new ThreadMover();
    using map = mapFile(join(dir, "moved.pmem"), { size: 32 << 20, mover });
    const chunk = new Uint8Array(1 << 20).fill(0x5a);
    const t0 = performance.now();
    await all(
      Array.from({ length: 16 }, (_, i) => map.memcpyAsync(i << 20, chunk)),
    );
    const ms = performance.now() - t0;
    console.log(
      `ThreadMover (${mover.info.threads} workers): 16 MiB durable in ${
        ms.toFixed(1)
      } ms`,
    );
  }

  // 4. A block store: each 4 KiB write is atomic across a crash.
  {
    using pool = BlockPool.create(join(dir, "blocks.pmemblk"), {
      blockSize: 4096,
      poolSize: 32 << 20,
    });
    const block = new Uint8Array(4096);
    block.set(new TextEncoder().encode("block 42"));
    pool.write(42, block);
    console.log(
      `BlockPool: ${pool.blockCount} blocks of ${pool.blockSize} B; ` +
        `block 42 -> "${text(pool.read(42).subarray(0, 8))}"; ` +
        `consistent: ${pool.check().consistent}`,
    );
  }
  console.log("done");
} finally {
  rmSync(dir, { recursive: true, force: true });
}
