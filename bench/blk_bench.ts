// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The `blk` suite on the current runtime: {@linkcode BlockPool} against
 * libpmemblk (`bench/c/blk_baseline.c`), by the method of
 * shared/reference/pmemblk.md §4: a pre-filled pool, random LBAs from a
 * xorshift32 generator (the C program's seed), one thread.
 *
 * For each block size n (512 B and 4 KiB) a 64 MiB pool is created in
 * `/dev/shm` and every block written once; the pool is then reopened, in
 * a process of its own (this file run again), with each mover: `cpu`
 * ({@linkcode CpuMover}), `threads` ({@linkcode ThreadMover} with default
 * options, so copies, or batches, under 256 KiB run inline on the polling
 * thread) and `threads-offload` (`inlineThreshold: 0`: every copy goes to
 * the workers). Cases:
 *
 * - `write <n>`: `pool.write(lba, data)`; C: `pmemblk_write`.
 * - `read <n>`: `pool.read(lba, into)` into one reused buffer;
 *   C: `pmemblk_read`.
 * - `read <n> new array`: `pool.read(lba)` (a new `Uint8Array` per read);
 *   compared with `read <n>`.
 * - `writeAsync <n> QD32 <mover> waitAll`: rounds of 32 `writeAsync`
 *   built, then `waitAll(fs)`; compared with `write <n>`.
 * - `writeAsync <n> QD32 <mover> await all`: the same with
 *   `await all(fs)`; compared with `write <n>`.
 * - `writeMany <n> x32|x256 <mover>`: `wait(pool.writeMany(entries))`
 *   with 32 or 256 blocks (group commit: one fence per phase for up to 64
 *   blocks); compared with `write <n>`.
 * - `readAsync <n> QD32 <mover> waitAll`: rounds of 32 `readAsync` into 32
 *   reused buffers, then `waitAll(fs)`; compared with `read <n>`.
 *
 * The data written and the buffers read into are 64-byte aligned, as the C
 * program's are ({@linkcode alignedBytes}).
 *
 * Every ns/op is per block, also for the batched cases. The random LBAs of
 * one round or batch may repeat a block (then `writeMany` writes it once,
 * and `writeAsync`s of it queue behind each other): with 4 KiB blocks
 * (16 103 of them) 3 % of 32-block rounds repeat one, and a 256-block
 * batch repeats about 2; with 512 B blocks (129 728) an eighth of that. The
 * pool file is a page-granularity tmpfs mapping, so "durable" means msync
 * (as libpmemblk's default msync mode on tmpfs). After its cases each
 * pool must pass {@linkcode BlockPool.check} and a round trip of each
 * operation (correctness, never timings). Prints one JSON line per case
 * (`bench/lib.ts`).
 *
 *   deno run -A bench/blk_bench.ts     bun bench/blk_bench.ts
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { BlockPool, type BlockWrite } from "../blk/mod.ts";
import { all, type Future, wait, waitAll } from "../future/mod.ts";
import {
  alignedBytes,
  bench,
  benchAsync,
  MOVERS,
  rerunArgs,
  scratchDir,
} from "./lib.ts";

const SUITE = "blk";
const POOL_SIZE = 64 << 20;
/** The first state of the xorshift32 generator, as in blk_baseline.c. */
const SEED = 2463534242;
/** Writes or reads in flight in the QD32 cases. */
const QD = 32;
const BATCHES = [32, 256] as const;
const SIZES: readonly (readonly [string, number])[] = [
  ["512 B", 512],
  ["4 KiB", 4096],
];

/** Random LBAs below `count`: xorshift32, `x % count`, as in C. */
function randomLbas(count: number): () => number {
  let x = SEED;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) % count;
  };
}

/** Write every block of a fresh pool once, in batches of 256. */
function preFill(pool: BlockPool, data: Uint8Array): void {
  const entries: BlockWrite[] = [];
  for (let lba = 0; lba < pool.blockCount; lba++) {
    entries.push({ lba, data });
    if (entries.length === 256 || lba === pool.blockCount - 1) {
      wait(pool.writeMany(entries));
      entries.length = 0;
    }
  }
}

/** Throw unless each operation round-trips and the pool is consistent. */
function verify(pool: BlockPool, label: string): void {
  const size = pool.blockSize;
  const fail = (what: string) => {
    throw new Error(`blk bench: ${label}: ${what}`);
  };
  const a = new Uint8Array(size).fill(1);
  const b = new Uint8Array(size).fill(2);
  const c = new Uint8Array(size).fill(3);
  pool.write(0, a);
  wait(pool.writeAsync(1, b));
  wait(pool.writeMany([{ lba: 2, data: c }, { lba: 3, data: c }]));
  const into = new Uint8Array(size);
  if (pool.read(0, into)[size - 1] !== 1) fail("read after write");
  if (wait(pool.readAsync(1))[size - 1] !== 2) fail("readAsync");
  if (pool.read(3)[0] !== 3) fail("read after writeMany");
  const report = pool.check();
  if (!report.consistent) fail(`inconsistent: ${report.problems.join("; ")}`);
}

/** The synchronous cases of one pool. */
function syncCases(pool: BlockPool, label: string, data: Uint8Array): void {
  const size = pool.blockSize;
  const opts = { bytes: size };
  const write = `write ${label}`;
  const read = `read ${label}`;
  let next = randomLbas(pool.blockCount);
  bench(SUITE, write, (n) => {
    for (let i = 0; i < n; i++) pool.write(next(), data);
  }, opts);
  const into = alignedBytes(size);
  next = randomLbas(pool.blockCount);
  bench(SUITE, read, (n) => {
    for (let i = 0; i < n; i++) pool.read(next(), into);
  }, opts);
  next = randomLbas(pool.blockCount);
  bench(SUITE, `${read} new array`, (n) => {
    for (let i = 0; i < n; i++) pool.read(next());
  }, { ...opts, reference: read });
}

/** The asynchronous and batched cases of one pool and its mover. */
async function asyncCases(
  pool: BlockPool,
  label: string,
  mover: string,
  data: Uint8Array,
): Promise<void> {
  const size = pool.blockSize;
  const write = { bytes: size, reference: `write ${label}` };
  const read = { bytes: size, reference: `read ${label}` };
  const next = randomLbas(pool.blockCount);
  const fs: Future<void>[] = new Array(QD);

  bench(SUITE, `writeAsync ${label} QD${QD} ${mover} waitAll`, (n) => {
    for (let i = 0; i < n; i++) {
      for (let k = 0; k < QD; k++) fs[k] = pool.writeAsync(next(), data);
      waitAll(fs);
    }
  }, { ...write, opsPerIteration: QD });
  await benchAsync(
    SUITE,
    `writeAsync ${label} QD${QD} ${mover} await all`,
    async (n) => {
      for (let i = 0; i < n; i++) {
        for (let k = 0; k < QD; k++) fs[k] = pool.writeAsync(next(), data);
        await all(fs);
      }
    },
    { ...write, opsPerIteration: QD },
  );
  for (const count of BATCHES) {
    const entries: BlockWrite[] = Array.from(
      { length: count },
      () => ({ lba: 0, data }),
    );
    bench(SUITE, `writeMany ${label} x${count} ${mover}`, (n) => {
      for (let i = 0; i < n; i++) {
        for (const e of entries) e.lba = next();
        wait(pool.writeMany(entries));
      }
    }, { ...write, opsPerIteration: count });
  }
  const outs = Array.from({ length: QD }, () => alignedBytes(size));
  const reads: Future<Uint8Array>[] = new Array(QD);
  bench(SUITE, `readAsync ${label} QD${QD} ${mover} waitAll`, (n) => {
    for (let i = 0; i < n; i++) {
      for (let k = 0; k < QD; k++) reads[k] = pool.readAsync(next(), outs[k]);
      waitAll(reads);
    }
  }, { ...read, opsPerIteration: QD });
}

/**
 * Every case of one block size: a fresh pre-filled pool in `dir`, then
 * each mover's cases in a process of its own, as an application uses one
 * mover: run in one process, the movers met at the same call sites, and
 * the JIT code that the first one's cases left slowed the later ones
 * (measured: `writeAsync` of 4 KiB at 620 ns after the 512 B cases, 410
 * ns alone).
 */
function suite(dir: string, label: string, size: number): void {
  const path = join(dir, `blk-${size}.pool`);
  const data = new Uint8Array(size).fill(0xa5);
  try {
    {
      using pool = BlockPool.create(path, {
        blockSize: size,
        poolSize: POOL_SIZE,
      });
      preFill(pool, data);
    }
    for (const mover of Object.keys(MOVERS)) {
      const child = spawnSync(
        process.execPath,
        [...SELF, "--pool", path, label, String(size), mover],
        { stdio: "inherit" },
      );
      if (child.status !== 0) {
        throw new Error(`blk bench: ${label} ${mover} exited ${child.status}`);
      }
    }
  } finally {
    rmSync(path, { force: true });
  }
}

/** One mover's cases on the pre-filled pool at `path` (a child process). */
async function moverCases(
  path: string,
  label: string,
  size: number,
  mover: string,
): Promise<void> {
  using vdm = MOVERS[mover]();
  using pool = BlockPool.open(path, { blockSize: size, mover: vdm });
  const data = alignedBytes(size).fill(0xa5);
  if (mover === "cpu") syncCases(pool, label, data);
  await asyncCases(pool, label, mover, data);
  verify(pool, `${label} ${mover}`);
}

/** How to run this file again. */
const SELF = rerunArgs(import.meta.url);

const args = process.argv.slice(2);
if (args[0] === "--pool") {
  await moverCases(args[1], args[2], Number(args[3]), args[4]);
} else {
  const dir = mkdtempSync(join(scratchDir(), "asyncpmem-bench-"));
  try {
    for (const [label, size] of SIZES) suite(dir, label, size);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
