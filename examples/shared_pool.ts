// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * One block pool shared by Workers, as libpmemblk's handle is shared by
 * threads: each Worker opens the file by path and writes; their writes of
 * the same blocks never tear (each block holds one writer's whole block),
 * and a check from this thread while they write sees a consistent pool.
 * The Worker's code is `shared_pool_worker.ts`.
 *
 *   deno run -A examples/shared_pool.ts     bun examples/shared_pool.ts
 *
 * @module
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BlockPool } from "@asyncpmem/asyncpmem/blk";

const dir = mkdtempSync(join(tmpdir(), "asyncpmem-shared-"));
const path = join(dir, "blocks.pmemblk");
const WORKERS = 2;
const BLOCKS = 64;

/** Start a Worker and give it its job; resolves with its write count. */
function writer(id: number): Promise<number> {
  const w = new Worker(new URL("./shared_pool_worker.ts", import.meta.url), {
    type: "module",
  });
  return new Promise<number>((resolve, reject) => {
    w.onmessage = (e) => {
      if (e.data === "ready") {
        w.postMessage({ path, id, blocks: BLOCKS, rounds: 20 });
        return;
      }
      w.terminate();
      if (typeof e.data === "number") resolve(e.data);
      else reject(new Error(String(e.data)));
    };
    w.onerror = (e) => reject(e);
  });
}

try {
  using pool = BlockPool.create(path, { blockSize: 512, poolSize: 32 << 20 });
  let done = false;
  const writes = Promise.all(
    Array.from({ length: WORKERS }, (_, i) => writer(i + 1)),
  ).finally(() => done = true);
  // checks from this thread while the Workers write: their commits wait
  // for each check, which never sees one half done
  let checks = 0;
  let consistent = true;
  while (!done) {
    consistent &&= pool.check().consistent;
    checks++;
    await new Promise((r) => setTimeout(r, 1));
  }
  const counts = await writes;
  // every block holds one writer's whole block: its id in every byte
  let whole = 0;
  for (let lba = 0; lba < BLOCKS; lba++) {
    const b = pool.read(lba);
    if (b[0] !== 0 && b.every((v) => v === b[0])) whole++;
  }
  console.log(
    `${WORKERS} Workers wrote ${counts.reduce((a, b) => a + b)} blocks; ` +
      `${whole} of ${BLOCKS} hold one writer's whole block`,
  );
  console.log(
    `consistent: ${consistent && pool.check().consistent} (${
      checks > 0 ? "checked while they wrote" : "checked after"
    })`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
