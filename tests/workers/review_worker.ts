// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The Worker of `tests/workers_review_test.ts`: it opens a block pool by
 * path and runs one job at a time, posting `{ ok }` or `{ error }` for
 * each. Every block it writes is a `stamp` (`blk_blocks.ts`), and every
 * block it reads is checked whole (or zeros, or in the error state where
 * the job sets flags).
 *
 * @module
 */
import { BlockPool, type BlockWrite } from "../../blk/mod.ts";
import { BadBlockError, PmemError } from "../../errors/mod.ts";
import { all, wait } from "../../future/mod.ts";
import { CpuMover, ThreadMover, type Vdm } from "../../mover/mod.ts";
import { LogStream } from "../../stream/mod.ts";
import { xorshift } from "../crash/random.ts";
import { decode, type Seen, stamp } from "./blk_blocks.ts";
import { tagged } from "./review_entries.ts";

/** A job of this Worker. */
export type ReviewJob =
  /**
   * `count` random operations over blocks `0 .. lbas - 1`: write,
   * writeAsync, writeMany (groups of `group`), read, readMany, readAsync
   * and, with `flags`, setZero and setError.
   */
  | {
    kind: "mixed";
    path: string;
    id: number;
    count: number;
    lbas: number;
    seed: number;
    group: number;
    flags: boolean;
    /** The data mover of its asynchronous updates. @default "cpu" */
    mover?: "cpu" | "threads";
    /** An Int32Array's buffer: word 0 counts the operations done. */
    progress?: SharedArrayBuffer;
  }
  /**
   * `times` times: open the pool, write and read back a few blocks of
   * `lbas`, close it.
   */
  | {
    kind: "reopen";
    path: string;
    id: number;
    times: number;
    lbas: number;
    seed: number;
  }
  /**
   * Append `count` entries tagged `id` to the stream's first region
   * (append, appendAsync in fours, reserve and publish), closing and
   * opening the stream again after every `reopenEvery`; the timestamps.
   */
  | {
    kind: "streamAppend";
    path: string;
    id: number;
    count: number;
    reopenEvery: number;
    /** An Int32Array's buffer: word 0 counts the entries appended. */
    progress?: SharedArrayBuffer;
  }
  /**
   * Follow the stream's first region until `count` entries were seen;
   * their timestamps and tags (`id * 1e6 + i`).
   */
  | { kind: "streamFollow"; path: string; count: number };

/** What a job saw: its reads, checked. */
export interface Report extends Seen {
  /** Reads of a block in the error state. */
  errors: number;
  /**
   * Updates that failed with EOWNERDEAD (-130): a Worker ended holding
   * what they need.
   */
  ownerDead: number;
}

// deno-lint-ignore no-explicit-any
const self_ = globalThis as any;

/** Check a block read as `lba`; record what is wrong in `seen`. */
function look(block: Uint8Array, lba: number, seen: Report): void {
  seen.reads++;
  const d = decode(block, lba);
  if (d === null) seen.zeros++;
  else if (typeof d === "string") seen.bad.push(d);
}

/** Count `e` if it is EOWNERDEAD (-130), else throw it. */
function ownerDead(seen: Report, e: unknown): void {
  if (!(e instanceof PmemError) || e.code !== -130) throw e;
  seen.ownerDead++;
}

/** Run `read`, counting a BadBlockError as a read of an error block. */
function guarded(seen: Report, read: () => void): void {
  try {
    read();
  } catch (e) {
    if (!(e instanceof BadBlockError)) throw e;
    seen.errors++;
  }
}

/** A report of nothing seen yet. */
function emptyReport(): Report {
  return { reads: 0, zeros: 0, bad: [], errors: 0, ownerDead: 0 };
}

async function mixed(
  job: Extract<ReviewJob, { kind: "mixed" }>,
): Promise<Report> {
  using mover: Vdm = job.mover === "threads"
    ? new ThreadMover({ threads: 1, inlineThreshold: 0 })
    : new CpuMover();
  using pool = BlockPool.open(job.path, { mover });
  const size = pool.blockSize;
  const rand = xorshift(job.seed);
  const pick = () => Math.floor(rand() * job.lbas);
  const seen = emptyReport();
  const into = new Uint8Array(size);
  let seq = 0;
  const progress = job.progress && new Int32Array(job.progress);
  for (let i = 0; i < job.count; i++) {
    if (progress) {
      Atomics.add(progress, 0, 1);
      // a turn of the event loop: Deno ends a terminated Worker only
      // there, and awaits of futures that complete at once never reach
      // it: the CPU mover's, and in a Worker the thread mover's too (it
      // copies the Worker's own arrays inline, see mover/_device_mover.ts)
      await new Promise((r) => setTimeout(r, 0));
    }
    const r = rand();
    if (r < 0.2) {
      const lba = pick();
      try {
        pool.write(lba, stamp(job.id, lba, ++seq, size));
      } catch (e) {
        ownerDead(seen, e);
      }
    } else if (r < 0.35) {
      const fs = [];
      for (let k = 0; k < job.group; k++) {
        const lba = pick();
        fs.push(pool.writeAsync(lba, stamp(job.id, lba, ++seq, size)));
      }
      for (const g of await Promise.allSettled(fs)) {
        if (g.status === "rejected") ownerDead(seen, g.reason);
      }
    } else if (r < 0.5) {
      const entries: BlockWrite[] = [];
      for (let k = 0; k < job.group; k++) {
        const lba = pick();
        entries.push({ lba, data: stamp(job.id, lba, ++seq, size) });
      }
      try {
        if (rand() < 0.5) wait(pool.writeMany(entries));
        else await pool.writeMany(entries);
      } catch (e) {
        ownerDead(seen, e);
      }
    } else if (r < 0.6 && job.flags) {
      const lba = pick();
      try {
        if (rand() < 0.7) pool.setZero(lba);
        else pool.setError(lba);
      } catch (e) {
        ownerDead(seen, e);
      }
    } else if (r < 0.75) {
      const lba = pick();
      guarded(seen, () => look(pool.read(lba, into), lba, seen));
    } else if (r < 0.88) {
      const lbas = [pick(), pick(), pick(), pick()];
      guarded(seen, () => {
        const many = pool.readMany(lbas);
        lbas.forEach((lba, k) =>
          look(many.subarray(k * size, (k + 1) * size), lba, seen)
        );
      });
    } else {
      const lbas = [pick(), pick(), pick()];
      const got = await Promise.allSettled(
        lbas.map((lba) => pool.readAsync(lba)),
      );
      got.forEach((g, k) => {
        if (g.status === "fulfilled") look(g.value, lbas[k], seen);
        else if (g.reason instanceof BadBlockError) seen.errors++;
        else throw g.reason;
      });
    }
  }
  return seen;
}

function reopen(job: Extract<ReviewJob, { kind: "reopen" }>): Report {
  const rand = xorshift(job.seed);
  const seen = emptyReport();
  let seq = 0;
  for (let t = 0; t < job.times; t++) {
    using pool = BlockPool.open(job.path);
    const size = pool.blockSize;
    for (let k = 0; k < 4; k++) {
      const lba = Math.floor(rand() * job.lbas);
      pool.write(lba, stamp(job.id, lba, ++seq, size));
      look(pool.read(lba), lba, seen);
      const lbas = [lba, (lba + 1) % job.lbas];
      const many = pool.readMany(lbas);
      lbas.forEach((l, i) =>
        look(many.subarray(i * size, (i + 1) * size), l, seen)
      );
    }
  }
  return seen;
}

async function streamAppend(
  job: Extract<ReviewJob, { kind: "streamAppend" }>,
): Promise<number[]> {
  const stamps: number[] = [];
  const progress = job.progress && new Int32Array(job.progress);
  let s = LogStream.open(job.path);
  try {
    for (let i = 0; i < job.count;) {
      if (progress) {
        Atomics.store(progress, 0, i);
        // now and then a turn of the event loop, where Deno ends a
        // terminated Worker (Bun ends it anywhere)
        if (i % 16 === 0) await new Promise((r) => setTimeout(r, 0));
      }
      if (i > 0 && i % job.reopenEvery === 0) {
        s.close();
        s = LogStream.open(job.path);
      }
      const r = s.regions()[0];
      const k = i % 3;
      if (k === 0) stamps.push(s.append(r, tagged(job.id, i++)));
      else if (k === 1) {
        const fs = [];
        for (let j = 0; j < 4 && i < job.count; j++) {
          fs.push(s.appendAsync(r, tagged(job.id, i++)));
        }
        stamps.push(...await all(fs));
      } else {
        const data = tagged(job.id, i++);
        const res = s.reserve(r, data.length);
        res.data.set(data);
        stamps.push(s.publish(res));
      }
    }
  } finally {
    s.close();
  }
  return stamps;
}

async function streamFollow(
  job: Extract<ReviewJob, { kind: "streamFollow" }>,
): Promise<[number, number][]> {
  using s = LogStream.open(job.path);
  const seen: [number, number][] = [];
  for await (const e of s.follow(s.regions()[0])) {
    const dv = new DataView(e.data.buffer, e.data.byteOffset);
    seen.push([
      e.timestamp,
      dv.getUint32(0, true) * 1e6 + dv.getUint32(4, true),
    ]);
    if (seen.length === job.count) break;
  }
  return seen;
}

async function run(job: ReviewJob): Promise<unknown> {
  switch (job.kind) {
    case "mixed":
      return await mixed(job);
    case "reopen":
      return reopen(job);
    case "streamAppend":
      return await streamAppend(job);
    case "streamFollow":
      return await streamFollow(job);
  }
}

self_.onmessage = async (e: MessageEvent<ReviewJob>) => {
  try {
    self_.postMessage({ ok: await run(e.data) });
  } catch (err) {
    self_.postMessage({ error: String((err as Error)?.stack ?? err) });
  }
};
self_.postMessage("ready");
