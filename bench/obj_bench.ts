// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The `obj` suite on the current runtime: {@linkcode ObjectPool}
 * transactions against libpmemobj's (`bench/c/obj_baseline.c`), on a
 * 64 MiB pool in `/dev/shm` (page granularity: a persist is an msync, as
 * libpmemobj's on tmpfs), one thread:
 *
 * - `tx <k> x 64 B`: `pool.tx` writing k ranges of 64 B of one object,
 *   256 B apart (k = 1, 8, 64); C: `pmemobj_tx_add_range` + memset.
 * - `tx alloc+free <n>`: a transaction allocating n bytes, then one
 *   freeing the object (its handle kept in memory); one op is the pair.
 * - `txAsync QD32 ... <mover>`: the same transactions, 32 started
 *   together (each on an object of its own), then `await all`; compared
 *   with the synchronous case's C reference.
 *
 *   deno run -A bench/obj_bench.ts     bun bench/obj_bench.ts
 *
 * @module
 */
import { mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { all, type Future } from "../future/mod.ts";
import { type ObjectHandle, ObjectPool } from "../obj/mod.ts";
import { bench, benchAsync, MOVERS, scratchDir } from "./lib.ts";

const SUITE = "obj";
const QD = 32;
const RANGES = [1, 8, 64];
const ALLOCS: readonly (readonly [string, number])[] = [["64 B", 64], [
  "4 KiB",
  4096,
]];

const dir = mkdtempSync(join(scratchDir(), "asyncpmem-bench-"));
try {
  for (const moverName of ["cpu", "threads"]) {
    using mover = MOVERS[moverName]();
    const path = join(dir, `pool-${moverName}`);
    using pool = ObjectPool.create(path, {
      size: 64 << 20,
      layout: "bench",
      mover,
    });
    const objs: ObjectHandle[] = pool.tx((tx) => {
      const out = [];
      for (let i = 0; i < QD; i++) out.push(tx.alloc(16384));
      return out;
    });
    const data = new Uint8Array(64).fill(0xa5);
    if (moverName === "cpu") {
      for (const k of RANGES) {
        bench(SUITE, `tx ${k} x 64 B`, (n) => {
          const o = objs[0];
          for (let i = 0; i < n; i++) {
            pool.tx((tx) => {
              for (let r = 0; r < k; r++) tx.write(o, r * 256, data);
            });
          }
        });
      }
      for (const [label, size] of ALLOCS) {
        bench(SUITE, `tx alloc+free ${label}`, (n) => {
          for (let i = 0; i < n; i++) {
            const o = pool.tx((tx) => tx.alloc(size));
            pool.tx((tx) => tx.free(o));
          }
        });
      }
    }
    for (const k of RANGES) {
      await benchAsync(
        SUITE,
        `txAsync QD32 ${k} x 64 B ${moverName}`,
        async (n) => {
          for (let i = 0; i < n; i += QD) {
            const fs: Future<void>[] = [];
            for (let j = 0; j < QD; j++) {
              const o = objs[j];
              fs.push(pool.txAsync((tx) => {
                for (let r = 0; r < k; r++) tx.write(o, r * 256, data);
              }));
            }
            await all(fs);
          }
        },
        { reference: `tx ${k} x 64 B` },
      );
    }
    for (const [label, size] of ALLOCS) {
      await benchAsync(
        SUITE,
        `txAsync QD32 alloc+free ${label} ${moverName}`,
        async (n) => {
          for (let i = 0; i < n; i += QD) {
            const made: Future<ObjectHandle>[] = [];
            for (let j = 0; j < QD; j++) {
              made.push(pool.txAsync((tx) => tx.alloc(size)));
            }
            const os = await all(made);
            await all(os.map((o) => pool.txAsync((tx) => tx.free(o))));
          }
        },
        { reference: `tx alloc+free ${label}` },
      );
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
