// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The `blk` suite on the current runtime: {@linkcode BlockPool} against
 * libpmemblk (`bench/c/blk_baseline.c`), by the method of
 * shared/reference/pmemblk.md §4: a pre-filled pool, random LBAs from a
 * xorshift32 generator (the C program's seed), one thread unless a case
 * says otherwise.
 *
 * Pools: 64 MiB with 512 B and with 4 KiB blocks, and 1 GiB with 4 KiB
 * blocks (label `4 KiB 1 GiB`), each created in `/dev/shm` and every block
 * written once; the pool is then reopened, in a process of its own (this
 * file run again), with each mover: `cpu` ({@linkcode CpuMover}),
 * `threads` ({@linkcode ThreadMover} with default options: it decides per
 * operation whether to copy inline) and `threads-offload`
 * (`inlineThreshold: 0`: every copy goes to the workers). Cases, for a
 * pool's label `<n>`:
 *
 * - `write <n>`: `pool.write(lba, data)`; C: `pmemblk_write`.
 * - `read <n>`: `pool.read(lba, into)` into one reused 64-byte-aligned
 *   buffer ({@linkcode alignedBytes}), as the C program's; C:
 *   `pmemblk_read`.
 * - `read <n> plain`: into one reused `new Uint8Array(n)` (16-byte
 *   aligned on Deno, page-aligned on Bun); compared with `read <n>`.
 * - `read <n> plain cycled`: into 8 plain arrays in turn (none reused
 *   twice in a row); compared with `read <n>`.
 * - `read <n> new array`: `pool.read(lba)` (a new array per read).
 * - `new Uint8Array <n>`: the allocation alone, with the pool open (what
 *   the row above pays the runtime; compared with `read <n>` too).
 * - `readMany <n> x32`: `pool.readMany(lbas, into)`, 32 random blocks into
 *   one reused array; compared with `read <n>` per block.
 * - `writeAsync <n> QD32 <mover> waitAll` / `await all`: rounds of 32
 *   `writeAsync` built, then `waitAll(fs)` or `await all(fs)`; compared
 *   with `write <n>`.
 * - `writeMany <n> x32|x256 <mover>`: `wait(pool.writeMany(entries))`
 *   with 32 or 256 blocks; compared with `write <n>`.
 * - `readAsync <n> QD32 <mover> waitAll`: rounds of 32 `readAsync` into 32
 *   reused aligned buffers, then `waitAll(fs)`; compared with `read <n>`.
 * - `write 4 KiB 1 Worker` / `2 Workers` (64 MiB pool): Workers of one
 *   process each open the pool by path and write synchronously, the
 *   operations of a run split between them; compared with `write 4 KiB`
 *   and with libpmemblk's `write 4 KiB 2 threads` on one pool. The same
 *   for `read`.
 *
 * The asynchronous cases run on the 64 MiB pools only. Every ns/op is per
 * block, also for the batched cases. The random LBAs of one round or batch
 * may repeat a block (then `writeMany` writes it once, and `writeAsync`s
 * of it queue behind each other). The pool file is a page-granularity
 * tmpfs mapping, so "durable" means msync (as libpmemblk's default msync
 * mode on tmpfs). After its cases each pool must pass
 * {@linkcode BlockPool.check} and a round trip of each operation
 * (correctness, never timings). Prints one JSON line per case
 * (`bench/lib.ts`).
 *
 *   deno run -A bench/blk_bench.ts [case...]     bun bench/blk_bench.ts
 *
 * With case names (`x`, or `x*` for the cases starting with x, or `*x*`
 * for those containing x), only those run.
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { BlockPool, type BlockWrite } from "../blk/mod.ts";
import { all, type Future, wait, waitAll } from "../future/mod.ts";
import { RUNTIME } from "../ffi/_runtime.ts";
import {
  alignedBytes,
  bench,
  benchAsync,
  MOVERS,
  rerunArgs,
  scratchDir,
} from "./lib.ts";
import type { WorkerRun, WorkerSetup } from "./blk_worker.ts";
import { prefault } from "./blk_lib.ts";

const SUITE = "blk";
const MiB = 2 ** 20;
/** The first state of the xorshift32 generator, as in blk_baseline.c. */
const SEED = 2463534242;
/** Writes or reads in flight in the QD32 cases. */
const QD = 32;
const BATCHES = [32, 256] as const;

/** A pool the suite measures: its label, size and block size. */
interface PoolKind {
  label: string;
  size: number;
  blockSize: number;
  /** Whether the asynchronous cases (per mover) run on it. */
  async: boolean;
  /** Whether the Worker cases run on it. */
  workers: boolean;
}

const POOLS: readonly PoolKind[] = [
  {
    label: "512 B",
    size: 64 * MiB,
    blockSize: 512,
    async: true,
    workers: false,
  },
  {
    label: "4 KiB",
    size: 64 * MiB,
    blockSize: 4096,
    async: true,
    workers: true,
  },
  {
    label: "4 KiB 1 GiB",
    size: 1024 * MiB,
    blockSize: 4096,
    async: false,
    workers: false,
  },
];

/** Case names (or prefixes ending in `*`) to run; empty: all. */
let only: string[] = [];

/** Whether the case named runs (`x`: that case; `x*`: cases starting with
 * x; `*x*`: cases containing x). */
function wanted(name: string): boolean {
  return only.length === 0 ||
    only.some((o) =>
      o.startsWith("*") && o.endsWith("*")
        ? name.includes(o.slice(1, -1))
        : o.endsWith("*")
        ? name.startsWith(o.slice(0, -1))
        : name === o
    );
}

/** The cases of one pool, by the child process that runs them. */
function caseNames(p: PoolKind): Record<string, string[]> {
  const l = p.label;
  const byChild: Record<string, string[]> = {
    cpu: [
      `write ${l}`,
      `read ${l}`,
      `read ${l} plain`,
      `read ${l} plain cycled`,
      `read ${l} new array`,
      `new Uint8Array ${l}`,
      `readMany ${l} x32`,
    ],
  };
  if (p.async) {
    for (const m of Object.keys(MOVERS)) {
      (byChild[m] ??= []).push(
        `writeAsync ${l} QD${QD} ${m} waitAll`,
        `writeAsync ${l} QD${QD} ${m} await all`,
        ...BATCHES.map((n) => `writeMany ${l} x${n} ${m}`),
        `readAsync ${l} QD${QD} ${m} waitAll`,
      );
    }
  }
  if (p.workers) {
    byChild.workers = [1, 2].flatMap((n) => {
      const w = n === 1 ? "1 Worker" : `${n} Workers`;
      return [`write ${l} ${w}`, `read ${l} ${w}`];
    });
  }
  return byChild;
}

/** Random LBAs below `count`: xorshift32, `x % count`, as in C. */
function randomLbas(count: number, seed = SEED): () => number {
  let x = seed;
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
  const many = pool.readMany([3, 0, 1]);
  if (many[0] !== 3 || many[size] !== 1 || many[2 * size] !== 2) {
    fail("readMany");
  }
  const report = pool.check();
  if (!report.consistent) fail(`inconsistent: ${report.problems.join("; ")}`);
}

/**
 * Untimed runs before an asynchronous case: JavaScriptCore reaches the
 * steady rate of these loops only after two or three seconds of them,
 * improving by 10-20 % a run, so the harness's warm-up (which stops at the
 * first run not 5 % faster) would time an intermediate tier (as in
 * `stream_bench.ts`). V8 settles sooner.
 */
const ASYNC_WARM_MS = RUNTIME === "bun" ? 2500 : 500;

/** `bench` of a case, if it is wanted, after `warmMs` of its loop. */
function measure(
  name: string,
  loop: (n: number) => void,
  options: Parameters<typeof bench>[3],
  warmMs = 0,
): void {
  if (!wanted(name)) return;
  const until = performance.now() + warmMs;
  while (performance.now() < until) loop(16);
  bench(SUITE, name, loop, options);
}

/** The synchronous cases of one pool. */
function syncCases(pool: BlockPool, label: string, data: Uint8Array): void {
  const size = pool.blockSize;
  const opts = { bytes: size };
  const write = `write ${label}`;
  const read = `read ${label}`;
  const ref = { ...opts, reference: read };
  let next = randomLbas(pool.blockCount);
  measure(write, (n) => {
    for (let i = 0; i < n; i++) pool.write(next(), data);
  }, opts);
  const into = alignedBytes(size);
  next = randomLbas(pool.blockCount);
  measure(read, (n) => {
    for (let i = 0; i < n; i++) pool.read(next(), into);
  }, opts);
  const plain = new Uint8Array(size);
  next = randomLbas(pool.blockCount);
  measure(`${read} plain`, (n) => {
    for (let i = 0; i < n; i++) pool.read(next(), plain);
  }, ref);
  const cycled = Array.from({ length: 8 }, () => new Uint8Array(size));
  next = randomLbas(pool.blockCount);
  measure(`${read} plain cycled`, (n) => {
    for (let i = 0; i < n; i++) pool.read(next(), cycled[i & 7]);
  }, ref);
  next = randomLbas(pool.blockCount);
  measure(`${read} new array`, (n) => {
    for (let i = 0; i < n; i++) pool.read(next());
  }, ref);
  let sink = 0;
  measure(`new Uint8Array ${label}`, (n) => {
    for (let i = 0; i < n; i++) sink += new Uint8Array(size).length;
  }, ref);
  if (sink < 0) console.log(sink);
  const lbas = new Array<number>(QD);
  const many = alignedBytes(QD * size);
  next = randomLbas(pool.blockCount);
  measure(`readMany ${label} x${QD}`, (n) => {
    for (let i = 0; i < n; i++) {
      for (let k = 0; k < QD; k++) lbas[k] = next();
      pool.readMany(lbas, many);
    }
  }, { ...ref, opsPerIteration: QD });
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

  measure(
    `writeAsync ${label} QD${QD} ${mover} waitAll`,
    (n) => {
      for (let i = 0; i < n; i++) {
        for (let k = 0; k < QD; k++) fs[k] = pool.writeAsync(next(), data);
        waitAll(fs);
      }
    },
    { ...write, opsPerIteration: QD },
    ASYNC_WARM_MS,
  );
  const awaitName = `writeAsync ${label} QD${QD} ${mover} await all`;
  if (wanted(awaitName)) {
    const loop = async (n: number) => {
      for (let i = 0; i < n; i++) {
        for (let k = 0; k < QD; k++) fs[k] = pool.writeAsync(next(), data);
        await all(fs);
      }
    };
    const until = performance.now() + ASYNC_WARM_MS;
    while (performance.now() < until) await loop(16);
    await benchAsync(SUITE, awaitName, loop, { ...write, opsPerIteration: QD });
  }
  for (const count of BATCHES) {
    const entries: BlockWrite[] = Array.from(
      { length: count },
      () => ({ lba: 0, data }),
    );
    measure(
      `writeMany ${label} x${count} ${mover}`,
      (n) => {
        for (let i = 0; i < n; i++) {
          for (const e of entries) e.lba = next();
          wait(pool.writeMany(entries));
        }
      },
      { ...write, opsPerIteration: count },
      ASYNC_WARM_MS,
    );
  }
  const outs = Array.from({ length: QD }, () => alignedBytes(size));
  const reads: Future<Uint8Array>[] = new Array(QD);
  measure(
    `readAsync ${label} QD${QD} ${mover} waitAll`,
    (n) => {
      for (let i = 0; i < n; i++) {
        for (let k = 0; k < QD; k++) reads[k] = pool.readAsync(next(), outs[k]);
        waitAll(reads);
      }
    },
    { ...read, opsPerIteration: QD },
    ASYNC_WARM_MS,
  );
}

/** Send a message to a Worker and wait for its reply. */
function ask(
  w: Worker,
  message: WorkerSetup | WorkerRun | "close",
): Promise<unknown> {
  return new Promise((resolve, reject) => {
    w.onmessage = (e) => resolve(e.data);
    w.onerror = (e) => reject(new Error(`blk bench worker: ${e.message}`));
    w.postMessage(message);
  });
}

/**
 * The Worker cases: 1 and 2 Workers, each with the pool open, writing or
 * reading synchronously; a run's operations are split between them.
 */
async function workerCases(path: string, p: PoolKind): Promise<void> {
  const url = new URL("./blk_worker.ts", import.meta.url).href;
  for (const count of [1, 2]) {
    const suffix = count === 1 ? "1 Worker" : `${count} Workers`;
    const names = ["write", "read"].map((op) => `${op} ${p.label} ${suffix}`);
    if (!names.some(wanted)) continue;
    const workers = Array.from(
      { length: count },
      () => new Worker(url, { type: "module" }),
    );
    try {
      await Promise.all(workers.map((w) =>
        new Promise((resolve, reject) => {
          w.onmessage = resolve;
          w.onerror = (e) =>
            reject(new Error(`blk bench worker: ${e.message}`));
        })
      ));
      await Promise.all(
        workers.map((w, i) => ask(w, { path, seed: SEED + i })),
      );
      for (const op of ["write", "read"] as const) {
        const name = `${op} ${p.label} ${suffix}`;
        if (!wanted(name)) continue;
        const ref = count === 1
          ? `${op} ${p.label}`
          : `${op} ${p.label} 2 threads`;
        const run = async (n: number) => {
          await Promise.all(
            workers.map((w, i) =>
              ask(w, { op, n: Math.floor(n / count) + (i < n % count ? 1 : 0) })
            ),
          );
        };
        // each Worker's JIT compiles its own loop: on Bun, with the harness's
        // warm-up alone, the compiler thread took about a third of both
        // CPUs while 2 Workers were timed (perf), as for the async cases
        const until = performance.now() + ASYNC_WARM_MS;
        while (performance.now() < until) await run(512 * count);
        await benchAsync(SUITE, name, run, {
          bytes: p.blockSize,
          reference: ref,
        });
      }
      await Promise.all(workers.map((w) => ask(w, "close")));
    } finally {
      for (const w of workers) w.terminate();
    }
  }
}

/**
 * Every case of one pool: a fresh pre-filled pool in `dir`, then each
 * child's cases in a process of its own, as an application uses one
 * mover: run in one process, the movers met at the same call sites, and
 * the JIT code that the first one's cases left slowed the later ones
 * (measured: `writeAsync` of 4 KiB at 620 ns after the 512 B cases, 410
 * ns alone).
 */
function suite(dir: string, p: PoolKind): void {
  const children = Object.entries(caseNames(p)).filter(([, names]) =>
    names.some(wanted)
  );
  if (children.length === 0) return;
  const path = join(dir, `blk-${p.blockSize}-${p.size}.pool`);
  const data = new Uint8Array(p.blockSize).fill(0xa5);
  try {
    {
      using pool = BlockPool.create(path, {
        blockSize: p.blockSize,
        poolSize: p.size,
      });
      preFill(pool, data);
    }
    for (const [child] of children) {
      const r = spawnSync(
        process.execPath,
        [...SELF, "--pool", path, p.label, child, ...only],
        { stdio: "inherit" },
      );
      if (r.status !== 0) {
        throw new Error(`blk bench: ${p.label} ${child} exited ${r.status}`);
      }
    }
  } finally {
    rmSync(path, { force: true });
  }
}

/** One child's cases on the pre-filled pool at `path` (a child process). */
async function childCases(
  path: string,
  label: string,
  child: string,
): Promise<void> {
  const p = POOLS.find((k) => k.label === label)!;
  if (child === "workers") {
    await workerCases(path, p);
    return;
  }
  using vdm = MOVERS[child]();
  using pool = BlockPool.open(path, { blockSize: p.blockSize, mover: vdm });
  prefault(pool);
  const data = alignedBytes(p.blockSize).fill(0xa5);
  if (child === "cpu") syncCases(pool, label, data);
  if (p.async) await asyncCases(pool, label, child, data);
  verify(pool, `${label} ${child}`);
}

/** How to run this file again. */
const SELF = rerunArgs(import.meta.url);

const args = process.argv.slice(2);
if (args[0] === "--pool") {
  only = args.slice(4);
  await childCases(args[1], args[2], args[3]);
} else {
  only = args;
  const dir = mkdtempSync(join(scratchDir(), "asyncpmem-bench-"));
  try {
    for (const p of POOLS) suite(dir, p);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
