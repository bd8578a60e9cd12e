// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The `pmem2` suite on the current runtime, paired case by case with
 * `bench/c/baseline.c`:
 *
 * - `ffi call`: `native.ap_abi_version()`; C: an empty function call.
 * - `memcpy NOFLUSH n`: `map.memcpy(0, src, MemFlags.NOFLUSH)`;
 *   C: `pmem2_get_memcpy_fn(map)(dst, src, n, PMEM2_F_MEM_NOFLUSH)`.
 * - `memcpy durable n`: `map.memcpy(0, src, 0)`, which the shim does as a
 *   NOFLUSH copy and one msync; C: the same libpmem2 call with flags 0.
 * - `persist 64 B`: `map.persist(0, 64)` (msync);
 *   C: `pmem2_get_persist_fn(map)(dst, 64)`.
 * - `plain copy n`: `view.set(src)` into a mapping view; C: `memcpy()`.
 *
 * Sizes n are 64 B, 4 KiB and 1 MiB, always copied to offset 0. The pool
 * is a page-granularity file in `/dev/shm`, so "durable" means msync of
 * tmpfs pages; `src` is on the JS heap. Prints one JSON line per case
 * (`bench/lib.ts`).
 *
 *   deno run -A bench/pmem2_bench.ts     bun bench/pmem2_bench.ts
 *
 * @module
 */
import { mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { native } from "../ffi/lib.ts";
import { mapFile, MemFlags } from "../pmem2/mod.ts";
import { bench, scratchDir } from "./lib.ts";

const SUITE = "pmem2";
const SIZES = [["64 B", 64], ["4 KiB", 4096], ["1 MiB", 1 << 20]] as const;

const dir = mkdtempSync(join(scratchDir(), "asyncpmem-bench-"));
try {
  using map = mapFile(join(dir, "pool"), { size: 4 << 20 });
  const sources = SIZES.map(([label, size]) =>
    [label, new Uint8Array(size).fill(0xa5)] as const
  );

  bench(SUITE, "ffi call", (n) => {
    for (let i = 0; i < n; i++) native.ap_abi_version();
  });
  for (const [label, src] of sources) {
    bench(SUITE, `memcpy NOFLUSH ${label}`, (n) => {
      for (let i = 0; i < n; i++) map.memcpy(0, src, MemFlags.NOFLUSH);
    });
  }
  for (const [label, src] of sources) {
    bench(SUITE, `memcpy durable ${label}`, (n) => {
      for (let i = 0; i < n; i++) map.memcpy(0, src, 0);
    });
  }
  bench(SUITE, "persist 64 B", (n) => {
    for (let i = 0; i < n; i++) map.persist(0, 64);
  });
  for (const [label, src] of sources) {
    const view = map.view(0, src.byteLength);
    bench(SUITE, `plain copy ${label}`, (n) => {
      for (let i = 0; i < n; i++) view.set(src);
    });
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
