// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * A Worker of the block-store tests: it opens the pool by path (a Worker
 * cannot be handed a mapping) and writes or reads as asked, then posts
 * what it did. It posts "ready" once loaded, since a message sent before
 * its handler is set may be lost.
 *
 * Every block written is a `stamp` (`blk_blocks.ts`), so a reader can
 * tell a whole block from a torn one and name the write that put it there.
 *
 * @module
 */
import { BlockPool, type BlockWrite } from "../../blk/mod.ts";
import { all, wait } from "../../future/mod.ts";
import { CpuMover, ThreadMover, type Vdm } from "../../mover/mod.ts";
import { xorshift } from "../crash/random.ts";
import {
  decode,
  type Job,
  type Seen,
  stamp,
  type Written,
} from "./blk_blocks.ts";

/** Check a block read as `lba`; record what is wrong in `seen`. */
function check(block: Uint8Array, lba: number, seen: Seen): void {
  seen.reads++;
  const d = decode(block, lba);
  if (d === null) seen.zeros++;
  else if (typeof d === "string") seen.bad.push(d);
}

/** Write `count` updates: sync writes, groups of writeAsync, writeMany. */
async function writer(job: Extract<Job, { kind: "write" }>): Promise<Written> {
  using mover: Vdm = job.mover === "threads"
    ? new ThreadMover({ threads: 1, inlineThreshold: 0 })
    : new CpuMover();
  using pool = BlockPool.open(job.path, { mover });
  const size = pool.blockSize;
  const rand = xorshift(job.seed);
  const pick = () => Math.floor(rand() * job.lbas);
  const writes: number[][] = Array.from({ length: job.lbas }, () => []);
  let seq = 0;
  const seen: Seen = { reads: 0, zeros: 0, bad: [] };
  const into = new Uint8Array(size);
  for (let done = 0; done < job.count;) {
    const r = rand();
    if (r < 0.35) {
      const lba = pick();
      pool.write(lba, stamp(job.id, lba, ++seq, size));
      writes[lba].push(seq);
      done++;
    } else if (r < 0.6) {
      // async writes of one block take effect in issue order
      const fs = [];
      for (let k = 0; k < 4; k++) {
        const lba = pick();
        fs.push(pool.writeAsync(lba, stamp(job.id, lba, ++seq, size)));
        writes[lba].push(seq);
      }
      await all(fs);
      done += 4;
    } else if (r < 0.8) {
      const entries: BlockWrite[] = [];
      const last = new Map<number, number>();
      for (let k = 0; k < 6; k++) {
        const lba = pick();
        entries.push({ lba, data: stamp(job.id, lba, ++seq, size) });
        last.set(lba, seq);
      }
      wait(pool.writeMany(entries));
      for (const [lba, s] of last) writes[lba].push(s);
      done += 6;
    } else if (r < 0.9) {
      const lba = pick();
      check(pool.read(lba, into), lba, seen);
    } else {
      const lbas = [pick(), pick(), pick()];
      const many = pool.readMany(lbas);
      lbas.forEach((lba, i) =>
        check(many.subarray(i * size, (i + 1) * size), lba, seen)
      );
    }
  }
  if (seen.bad.length > 0) throw new Error(seen.bad.slice(0, 3).join("; "));
  return { id: job.id, writes, reads: seen.reads };
}

/** Read `count` times: read, readMany and readAsync, each block checked. */
async function reader(job: Extract<Job, { kind: "read" }>): Promise<Seen> {
  using pool = BlockPool.open(job.path);
  const size = pool.blockSize;
  const rand = xorshift(job.seed);
  const pick = () => Math.floor(rand() * job.lbas);
  const seen: Seen = { reads: 0, zeros: 0, bad: [] };
  const into = new Uint8Array(size);
  for (let i = 0; i < job.count; i++) {
    const r = rand();
    if (r < 0.4) {
      const lba = pick();
      check(pool.read(lba, into), lba, seen);
    } else if (r < 0.7) {
      const lbas = Array.from({ length: 8 }, pick);
      const many = pool.readMany(lbas);
      lbas.forEach((lba, k) =>
        check(many.subarray(k * size, (k + 1) * size), lba, seen)
      );
    } else {
      const lbas = Array.from({ length: 4 }, pick);
      const blocks = await all(lbas.map((lba) => pool.readAsync(lba)));
      lbas.forEach((lba, k) => check(blocks[k], lba, seen));
    }
  }
  return seen;
}

// deno-lint-ignore no-explicit-any
const self_ = globalThis as any;

self_.onmessage = async (e: MessageEvent<Job>) => {
  try {
    const job = e.data;
    self_.postMessage({
      ok: job.kind === "write" ? await writer(job) : await reader(job),
    });
  } catch (err) {
    self_.postMessage({ error: String((err as Error)?.stack ?? err) });
  }
};
self_.postMessage("ready");
