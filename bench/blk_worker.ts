// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * A Worker of the `blk` bench suite (`blk_bench.ts`): it opens the pool
 * by path and, for each message `{ op, n }`, does `n` synchronous writes
 * or reads at random LBAs from its own xorshift32 generator (the seed it
 * was given, as `blk_baseline.c`'s threads do), then replies. It posts
 * "loaded" once its handler is set (a message sent before may be lost on
 * Bun), and "ready" once the pool is open.
 *
 * @module
 */
import { BlockPool } from "../blk/mod.ts";
import { alignedBytes } from "./lib.ts";
import { prefault } from "./blk_lib.ts";

/** The first message: which pool, and the generator's seed. */
export interface WorkerSetup {
  path: string;
  seed: number;
}

/** A run: `n` operations. */
export interface WorkerRun {
  op: "write" | "read";
  n: number;
}

// deno-lint-ignore no-explicit-any
const self_ = globalThis as any;

let pool: BlockPool | undefined;
let x = 0;
let buf: Uint8Array;

self_.onmessage = (e: MessageEvent<WorkerSetup | WorkerRun | "close">) => {
  const m = e.data;
  if (m === "close") {
    pool?.close();
    self_.postMessage("closed");
    return;
  }
  if ("path" in m) {
    pool = BlockPool.open(m.path);
    prefault(pool); // each Worker maps the pool: its pages fault once
    x = m.seed;
    buf = alignedBytes(pool.blockSize).fill(0xa5);
    self_.postMessage("ready");
    return;
  }
  const p = pool!;
  const count = p.blockCount;
  if (m.op === "write") {
    for (let i = 0; i < m.n; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      p.write((x >>> 0) % count, buf);
    }
  } else {
    for (let i = 0; i < m.n; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      p.read((x >>> 0) % count, buf);
    }
  }
  self_.postMessage("done");
};
self_.postMessage("loaded");
