// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Map a file, write through a view and with a durable copy, persist, close.
 *
 *   deno run -A examples/map_persist.ts [path]     bun examples/map_persist.ts [path]
 *
 * @module
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { mapFile } from "@asyncpmem/asyncpmem";

// without a path argument, a file in a temp directory removed at the end
const dir = mkdtempSync(join(tmpdir(), "asyncpmem-"));
const path = process.argv[2] ?? join(dir, "example.pmem");

{
  using map = mapFile(path, { size: 1 << 20 });
  console.log(
    `mapped ${path}: ${map.size} bytes, granularity ${map.granularity}`,
  );

  // 1. A durable copy: on return the bytes are in the persistence domain.
  map.memcpy(0, new TextEncoder().encode("written by memcpy"));

  // 2. Plain stores through a zero-copy view, then an explicit persist.
  const view = map.view(4096, 32);
  view.set(new TextEncoder().encode("written through a view"));
  map.persist(4096, 32);
} // `using` closes the mapping here

const bytes = readFileSync(path);
const text = (o: number, n: number) =>
  new TextDecoder().decode(bytes.subarray(o, o + n));
console.log(`file holds "${text(0, 17)}" and "${text(4096, 22)}"`);
rmSync(dir, { recursive: true });
