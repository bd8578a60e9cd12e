// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Use Intel DSA where a work queue is configured, else the software
 * device: say which mover it got and why, then make one durable
 * asynchronous copy into a mapped file through it.
 *
 *   deno run -A examples/dsa_mover.ts [path]     bun examples/dsa_mover.ts [path]
 *
 * On a machine without DSA (or without the idxd driver, libaccel-config,
 * or permission on /dev/dsa/wqX.Y) it falls back to a ThreadMover and
 * prints the reason; see "DSA hardware" in docs/hardware.md to configure
 * a WQ.
 *
 * @module
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { DsaMover, mapFile } from "@asyncpmem/asyncpmem";

// without a path argument, a file in a temp directory removed at the end
const dir = mkdtempSync(join(tmpdir(), "asyncpmem-"));
const path = process.argv[2] ?? join(dir, "dsa-example.pmem");

using choice = DsaMover.openOrFallback({ fallback: { threads: 2 } });
const { mover } = choice;
if (mover instanceof DsaMover) {
  const q = mover.queue;
  console.log(
    `mover: dsa (${q.device}/${q.name}, ${q.mode}, ${mover.info.submission})`,
  );
} else {
  console.log(`mover: ${mover.name} (no DSA: ${choice.reason})`);
}

const data = new Uint8Array(4096).map((_, i) => i & 255);
{
  using map = mapFile(path, { size: 1 << 20, mover });
  // durable when the future resolves: the mover's own durable write
  // (DSA: destination readback), with a persist added where the mover
  // cannot make this mapping durable itself (msync on page granularity)
  await map.memcpyAsync(8192, data);
}
const back = readFileSync(path).subarray(8192, 8192 + data.length);
if (!back.every((b, i) => b === data[i])) throw new Error("copy mismatch");
console.log(`copied ${data.length} bytes durably into ${path}`);
rmSync(dir, { recursive: true });
