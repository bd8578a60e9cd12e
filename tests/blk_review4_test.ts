// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// The block pool's asynchronous reads, from a fourth review: each test
// failed before the fix it names.
import { statSync } from "node:fs";
import { BlockPool } from "../blk/mod.ts";
import { maxArenas, PoolShared } from "../blk/shared.ts";
import { READ_BASE, READ_BUCKETS } from "../blk/arena_words.ts";
import { FileShare } from "../pmem2/file_share.ts";
import { all, wait } from "../future/mod.ts";
import { ThreadMover } from "../mover/thread.ts";
import { assert, tempPath, test } from "./_harness.ts";

const MiB = 1 << 20;

test("readAsync into a Uint8Array subclass whose fill or set runs code copies the blocks asked for, as with a ThreadMover", () => {
  // The inline reads of a plain CpuMover kept their blocks' offsets and
  // gathered copies in arrays shared by the isolate, and called `into`'s
  // own `fill` (a zero block) and `set` (the copy out) between taking and
  // using them: a subclass's override that read another pool there
  // overwrote them, and the other reads of the sweep copied the wrong
  // block, untracked. A throwing override left the sweep's other reads
  // published for good. The reads copy with the engine's own methods,
  // as the sync read and the movers do.
  const run = (threads: boolean): number[] => {
    using mover = threads ? new ThreadMover() : undefined;
    using a = BlockPool.create(tempPath(), {
      blockSize: 512,
      poolSize: 32 * MiB,
      ...(mover ? { mover } : {}),
    });
    using b = BlockPool.create(tempPath(), {
      blockSize: 512,
      poolSize: 32 * MiB,
    });
    for (let i = 0; i < 8; i++) {
      a.write(i, new Uint8Array(512).fill(10 + i));
      b.write(i, new Uint8Array(512).fill(100 + i));
    }
    class Fills extends Uint8Array {
      override fill(v: number, s?: number, e?: number): this {
        wait(b.readAsync(7));
        return super.fill(v, s, e);
      }
    }
    class Sets extends Uint8Array {
      override set(_src: ArrayLike<number>, _at?: number): void {
        wait(b.readAsync(7));
        throw new Error("no copy here");
      }
    }
    const outs = Array.from({ length: 6 }, () => new Uint8Array(512));
    const zero = new Fills(512).fill(0xee);
    const other = new Sets(512);
    wait(all([
      a.readAsync(0, outs[0]),
      a.readAsync(1, outs[1]),
      a.readAsync(100, zero),
      a.readAsync(2, other),
      a.readAsync(3, outs[2]),
    ]));
    wait(all([a.readAsync(4, outs[3]), a.readAsync(5, outs[4])]));
    // a write of every block leaves no lane skipped for a read left counted
    for (let round = 0; round < 4; round++) {
      for (let i = 0; i < 8; i++) a.write(i, new Uint8Array(512).fill(i));
    }
    return [...outs.slice(0, 5), zero, other].map((o) => o[0] + o[511]);
  };
  const expected = [20, 22, 26, 28, 30, 0, 24];
  assert.deepEqual(run(true), expected);
  assert.deepEqual(run(false), expected);
});

test("readAsync into a Uint8Array subclass whose set throws leaves no block counted as being read", async () => {
  // The inline reads called `into.set`: when it threw, the sweep's later
  // reads, already published in the read-tracking table, were published
  // again at their next poll, and the first counts stayed for good (the
  // lanes whose free block falls in those buckets skipped by every write).
  const path = tempPath();
  using pool = BlockPool.create(path, { blockSize: 512, poolSize: 32 * MiB });
  for (let i = 0; i < 4; i++) pool.write(i, new Uint8Array(512).fill(i));
  const size = statSync(path).size;
  using share = FileShare.open(path, PoolShared.bytes(size));
  const words = new PoolShared(share.memory, maxArenas(size)).arena(0);
  const counted = () => {
    let n = 0;
    for (let b = 0; b < READ_BUCKETS; b++) n += words[READ_BASE + b];
    return n;
  };
  class Throws extends Uint8Array {
    override set(): void {
      throw new Error("no copy here");
    }
  }
  const reads = [
    pool.readAsync(0, new Throws(512)),
    pool.readAsync(1),
    pool.readAsync(2),
    pool.readAsync(3),
  ];
  const got = await Promise.all(reads.map(async (f) => (await f)[0]));
  assert.deepEqual(got, [0, 1, 2, 3]);
  assert.equal(counted(), 0);
});
