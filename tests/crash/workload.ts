// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The block workloads the crash simulator traces, and the driver that
 * runs operations while recording them: every operation is marked when
 * issued and when acknowledged (a synchronous call returned, a future
 * completed), so each crash point knows what must survive it.
 *
 * @module
 */
import type { BlockPool } from "../../blk/mod.ts";
import { type Future, waitAll } from "../../future/mod.ts";
import type { BlockOp } from "./ledger.ts";
import type { Payloads } from "./payload.ts";
import { pick, shuffle } from "./random.ts";

/** Receives every operation when it is issued and when acknowledged. */
export interface Recorder {
  /** `op` was issued (a call started, a future was made). */
  issue(op: BlockOp): void;
  /** `op` was acknowledged (the call returned, the future completed). */
  ack(op: BlockOp): void;
}

/** Runs block operations on a pool, recording them. */
export class Driver {
  #pool: BlockPool;
  /** Every pool the driver writes through (the first is `#pool`'s default). */
  #pools: BlockPool[];
  #rec: Recorder;
  #payloads: Payloads;
  #rand: () => number;
  #version: number;

  /**
   * @param pool the pool
   * @param rec where operations are recorded
   * @param payloads the block contents
   * @param rand a seeded random source (for polling order)
   * @param firstVersion the first payload version to write
   */
  constructor(
    pool: BlockPool,
    rec: Recorder,
    payloads: Payloads,
    rand: () => number,
    firstVersion = 1,
  ) {
    this.#pool = pool;
    this.#pools = [pool];
    this.#rec = rec;
    this.#payloads = payloads;
    this.#rand = rand;
    this.#version = firstVersion;
  }

  /**
   * Add a pool of the same file opened again (another opener, as a Worker
   * would be); {@linkcode Driver.use} picks which one later operations go
   * through.
   */
  addOpener(pool: BlockPool): void {
    this.#pools.push(pool);
  }

  /** Send later operations through opener `k` (0: the first). */
  use(k: number): void {
    this.#pool = this.#pools[k % this.#pools.length];
  }

  /** Openers the driver writes through. */
  get openers(): number {
    return this.#pools.length;
  }

  /**
   * `writeAsync`s through several openers at once, polled together in a
   * random order: `groups[k]` are opener k's blocks. Updates of one block
   * take effect in issue order only within one opener, so the groups'
   * blocks must be disjoint.
   */
  writeAsyncFrom(groups: readonly (readonly number[])[]): void {
    const futures: Future<void>[] = [];
    const ops: BlockOp[][] = [];
    groups.forEach((lbas, k) => {
      const pool = this.#pools[k % this.#pools.length];
      for (const lba of lbas) {
        const op = this.#op(lba);
        futures.push(
          pool.writeAsync(op.lba, this.#payloads.get(op.lba, op.version)),
        );
        ops.push([op]);
      }
    });
    this.#drive(futures, ops);
  }

  /** The next payload version the driver will write. */
  get nextVersion(): number {
    return this.#version;
  }

  #op(lba: number): BlockOp {
    return { op: "write", lba, version: this.#version++ };
  }

  /** `pool.write` of a fresh version of `lba`. */
  write(lba: number): void {
    const op = this.#op(lba);
    this.#rec.issue(op);
    this.#pool.write(lba, this.#payloads.get(lba, op.version));
    this.#rec.ack(op);
  }

  /** `pool.setZero(lba)`. */
  zero(lba: number): void {
    const op: BlockOp = { op: "zero", lba, version: 0 };
    this.#rec.issue(op);
    this.#pool.setZero(lba);
    this.#rec.ack(op);
  }

  /** `pool.setError(lba)`. */
  error(lba: number): void {
    const op: BlockOp = { op: "error", lba, version: 0 };
    this.#rec.issue(op);
    this.#pool.setError(lba);
    this.#rec.ack(op);
  }

  /**
   * One `writeAsync` per LBA (repeats allowed), polled round-robin in a
   * random order. Updates of one block take effect in the order their
   * futures start (are first polled), so each is issued then, and
   * acknowledged when its future is seen complete.
   */
  writeAsync(lbas: readonly number[]): void {
    const ops = lbas.map((lba) => this.#op(lba));
    const futures = ops.map((op) =>
      this.#pool.writeAsync(op.lba, this.#payloads.get(op.lba, op.version))
    );
    this.#drive(futures, ops.map((op) => [op]));
  }

  /**
   * One `writeMany` of a fresh version per LBA. A block listed twice gets
   * its last entry, so only the last is recorded as issued.
   */
  writeMany(lbas: readonly number[]): void {
    const ops = lbas.map((lba) => this.#op(lba));
    const last = new Map(ops.map((op) => [op.lba, op]));
    const effective = [...last.values()];
    const future = this.#pool.writeMany(
      ops.map((op) => ({
        lba: op.lba,
        data: this.#payloads.get(op.lba, op.version),
      })),
    );
    this.#drive([future], [effective]);
  }

  /**
   * Poll futures to completion: each one's ops are issued at its first
   * poll and acknowledged when it is seen complete.
   */
  #drive(futures: Future<void>[], ops: BlockOp[][]): void {
    const open = new Set(futures.keys());
    const started = new Set<number>();
    for (let round = 0; open.size > 0 && round < 10_000; round++) {
      const order = shuffle(open, this.#rand);
      for (const i of order) {
        if (!started.has(i)) {
          started.add(i);
          for (const op of ops[i]) this.#rec.issue(op);
        }
        const state = futures[i].poll();
        if (state === "failed") throw futures[i].error;
        if (state === "complete") {
          open.delete(i);
          for (const op of ops[i]) this.#rec.ack(op);
        }
      }
    }
    if (open.size > 0) {
      waitAll([...open].map((i) => futures[i]));
      for (const i of open) for (const op of ops[i]) this.#rec.ack(op);
    }
  }
}

/** A workload: what to prepare untraced, and what to run traced. */
export interface Workload {
  /** Its name (a command-line choice). */
  readonly name: string;
  /** What it exercises. */
  readonly description: string;
  /** Block size of its pool. */
  readonly blockSize: number;
  /** The blocks it touches (every one is read back at every image). */
  readonly lbas: readonly number[];
  /** Whether the trace starts with the pool's creation. */
  readonly fromCreate: boolean;
  /**
   * Synchronous writes run traced before `run`, whose crash points are not
   * checked: they bring the pool's lanes around (a lane is reused only
   * after every other lane was used once).
   */
  readonly warmup: number;
  /**
   * `BlockPool`s of the pool open in the process while traced (each a
   * separate opener, as Workers are), all traced. @default 1
   */
  readonly openers?: number;
  /** Size of its pool. @default MIN_POOL_SIZE (`record.ts`) */
  readonly poolSize?: number;
  /**
   * Lanes each arena uses (a `PoolTestHooks` hook): with one lane a write
   * lands in the block the previous write freed. @default 256
   */
  readonly lanes?: number;
  /**
   * The ranges its trace stores to, when that is a small part of a large
   * pool: the tracers scan only those (`CrashTracer`'s `scan`). Unset:
   * the whole file.
   */
  scan?(): { offset: number; length: number }[];
  /** Untraced set-up, after create (its writes form the starting state). */
  prepare(d: Driver, rand: () => number): void;
  /** The traced operations; `ops` scales the amount of work. */
  run(d: Driver, rand: () => number, ops: number): void;
}

/** One of a workload's blocks. */
function anyOf(w: Workload, rand: () => number): number {
  return w.lbas[pick(rand, w.lbas.length)];
}

/** `k` of a workload's blocks (repeats allowed). */
function someOf(w: Workload, rand: () => number, k: number): number[] {
  return Array.from({ length: k }, () => anyOf(w, rand));
}

/**
 * `ops` block writes of `w`: each step a sync write (with probability
 * `syncShare`) or a `writeAsync` group of 2 .. `maxExtra + 1` blocks.
 */
function syncAndAsync(
  w: Workload,
  d: Driver,
  rand: () => number,
  ops: number,
  syncShare: number,
  maxExtra: number,
): void {
  for (let i = 0; i < ops;) {
    if (rand() < syncShare) {
      d.write(anyOf(w, rand));
      i++;
    } else {
      const k = 2 + pick(rand, maxExtra);
      d.writeAsync(someOf(w, rand, k));
      i += k;
    }
  }
}

/** Blocks `0 .. n - 1`. */
function first(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

/** Synchronous writes and flag updates over few blocks (many overwrites). */
const SYNC: Workload = {
  name: "sync",
  description: "write/setZero/setError over 8 blocks of 4096 bytes",
  blockSize: 4096,
  lbas: first(8),
  fromCreate: false,
  warmup: 0,
  prepare(d) {
    for (let lba = 0; lba < 4; lba++) d.write(lba);
  },
  run(d, rand, ops) {
    for (let i = 0; i < ops; i++) {
      const lba = anyOf(this, rand);
      const r = rand();
      if (r < 0.08) d.zero(lba);
      else if (r < 0.14) d.error(lba);
      else d.write(lba);
    }
  },
};

/** Concurrent asynchronous writes (many lanes, repeats of one block). */
const ASYNC: Workload = {
  name: "async",
  description: "groups of writeAsync (some to one block) and sync writes",
  blockSize: 4096,
  lbas: first(12),
  fromCreate: false,
  warmup: 0,
  prepare(d) {
    d.writeMany([0, 2, 4, 6, 8, 10]);
  },
  run(d, rand, ops) {
    syncAndAsync(this, d, rand, ops, 0.2, 6);
  },
};

/** Group commit: writeMany batches (duplicates, odd block size). */
const BATCH: Workload = {
  name: "batch",
  description: "writeMany batches of 520-byte blocks, with repeats",
  blockSize: 520,
  lbas: first(20),
  fromCreate: false,
  warmup: 0,
  prepare(d) {
    d.writeMany(first(8));
  },
  run(d, rand, ops) {
    for (let i = 0; i < ops;) {
      const k = 1 + pick(rand, 10);
      if (rand() < 0.25) d.writeAsync(someOf(this, rand, Math.min(k, 4)));
      else d.writeMany(someOf(this, rand, k));
      if (rand() < 0.1) d.zero(anyOf(this, rand));
      i += k;
    }
  },
};

/**
 * Lanes coming around: after 250 writes, updates reuse lanes whose last
 * map entry may still be pending. The blocks' map entries lie in
 * different cache lines and pages, so no flush covers them by chance.
 */
const WRAP: Workload = {
  name: "wrap",
  description: "512-byte writes after 250 others, map entries far apart",
  blockSize: 512,
  lbas: [0, 1, 17, 1030, 2050, 4100, 8200, 16400, 24600, 32000],
  fromCreate: false,
  warmup: 250,
  prepare() {},
  run(d, rand, ops) {
    for (let i = 0; i < ops;) {
      const r = i < 12 ? 0 : rand();
      if (r < 0.6) {
        d.write(anyOf(this, rand));
        i++;
      } else if (r < 0.7) {
        d.zero(anyOf(this, rand));
        i++;
      } else {
        const k = 2 + pick(rand, 4);
        d.writeAsync(someOf(this, rand, k));
        i += k;
      }
    }
  },
};

/** First writes into a fresh pool: initial map entries and flog slots. */
const FRESH: Workload = {
  name: "fresh",
  description: "sync and async writes of 512-byte blocks into a fresh pool",
  blockSize: 512,
  lbas: first(24),
  fromCreate: false,
  warmup: 0,
  prepare() {},
  run(d, rand, ops) {
    syncAndAsync(this, d, rand, ops, 0.5, 4);
  },
};

/** A crash while the pool is created, then its first writes. */
const CREATE: Workload = {
  name: "create",
  description: "BlockPool.create (layout) and its first writes",
  blockSize: 4096,
  lbas: first(4),
  fromCreate: true,
  warmup: 0,
  prepare() {},
  run(d, rand, ops) {
    for (let i = 0; i < Math.min(ops, 6); i++) d.write(anyOf(this, rand));
  },
};

/**
 * Two openers of one pool (as two Workers are): synchronous writes and
 * flag updates through either on the same blocks, and asynchronous
 * writes through both at once, polled together, on disjoint blocks (the
 * ledger needs the issue order of a block's updates; across openers only
 * their commits are ordered). Lanes, free blocks, pending map entries and
 * stripes pass from one opener to the other.
 */
const SHARED: Workload = {
  name: "shared",
  description: "two openers: sync writes on shared blocks, async on their own",
  blockSize: 512,
  lbas: first(16),
  fromCreate: false,
  // lanes come around during the run: a lane last used by one opener,
  // its map entry perhaps pending, is taken by the other
  warmup: 250,
  openers: 2,
  prepare(d) {
    d.writeMany([0, 1, 2, 3, 8, 9]);
  },
  run(d, rand, ops) {
    for (let i = 0; i < ops;) {
      const r = rand();
      d.use(pick(rand, 2));
      if (r < 0.45) {
        d.write(anyOf(this, rand));
        i++;
      } else if (r < 0.55) {
        d.zero(anyOf(this, rand));
        i++;
      } else {
        // opener 0 writes even blocks, opener 1 odd ones
        const k = 1 + pick(rand, 3);
        const mine = (o: number) =>
          Array.from({ length: k }, () => 2 * pick(rand, 8) + o);
        d.writeAsyncFrom([mine(0), mine(1)]);
        i += 2 * k;
      }
    }
    d.use(0);
  },
};

/** Every workload, in sweep order. */
export const WORKLOADS: readonly Workload[] = [
  SYNC,
  ASYNC,
  BATCH,
  WRAP,
  FRESH,
  CREATE,
  SHARED,
];
