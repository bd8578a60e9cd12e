// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Asynchronous copies into a mapping with each data mover: the in-thread
 * CPU mover and the thread mover (a software DSA device). Each future
 * resolves only once its bytes are durable; many are in flight at once.
 *
 *   deno run -A examples/async_copies.ts     bun examples/async_copies.ts
 *
 * @module
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  all,
  CpuMover,
  mapFile,
  ThreadMover,
  type Vdm,
  wait,
} from "@asyncpmem/asyncpmem";

const dir = mkdtempSync(join(tmpdir(), "asyncpmem-copies-"));

try {
  const movers: Vdm[] = [new CpuMover(), new ThreadMover()];
  for (const mover of movers) {
    using _mover = mover;
    using map = mapFile(join(dir, `${mover.name}.pmem`), {
      size: 16 << 20,
      mover,
    });
    const t0 = performance.now();
    // 16 copies of 1 MiB in flight; `all` resolves when every one is
    // durable. Each has its own source: a future reads its buffer when
    // it runs, so a buffer must not change until its future settles.
    await all(
      Array.from(
        { length: 16 },
        (_, i) => map.memcpyAsync(i << 20, new Uint8Array(1 << 20).fill(i + 1)),
      ),
    );
    // the blocking form, for scripts: wait() drives the future to the end
    wait(map.memsetAsync(0, 0xff, 4096));
    const ms = performance.now() - t0;
    console.log(
      `${mover.name}: 16 MiB durable in ${ms.toFixed(1)} ms; ` +
        `byte at 5 MiB = ${map.view(5 << 20, 1)[0]}, first byte = ${
          map.view(0, 1)[0]
        }`,
    );
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
