// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// The block store's single-opener paths, from a review: each test failed
// (or hung) before the fix it names.
import { all, type Future, type Vdm } from "../mod.ts";
import { BlockPool } from "../blk/mod.ts";
import { assert, moverTest } from "./_harness.ts";
import { tempPath } from "./_harness.ts";

const MiB = 1 << 20;

function filled(size: number, value: number): Uint8Array {
  return new Uint8Array(size).fill(value);
}

function create(mover: Vdm, blockSize = 512): BlockPool {
  return BlockPool.create(tempPath(), {
    blockSize,
    poolSize: 24 * MiB,
    mover,
  });
}

moverTest(
  "a write started after a writeMany of several groups is not overwritten by the writeMany's later groups",
  async (mover) => {
    // writeMany copies and commits 64 blocks at a time, and its later
    // groups joined their blocks' queues only when the earlier ones were
    // done: a write of one of those blocks started after the writeMany
    // queued ahead of it there, and the writeMany's older data replaced
    // it. Every block of a writeMany now queues at its first poll.
    using pool = create(mover);
    const many = Array.from({ length: 200 }, (_, lba) => ({
      lba,
      data: filled(512, 1),
    }));
    // polled by hand: the writeMany first, then writes of blocks of its
    // first group and of a later one
    const first: Future<void>[] = [
      pool.writeMany(many),
      pool.writeAsync(10, filled(512, 2)),
      pool.writeAsync(150, filled(512, 3)),
    ];
    for (const f of first) f.poll();
    await all(first);
    assert.equal(pool.read(10)[0], 2);
    assert.equal(pool.read(150)[0], 3);
    // issued in this order and awaited together
    await all([
      pool.writeMany(many),
      pool.writeAsync(199, filled(512, 4)),
      pool.writeMany([{ lba: 120, data: filled(512, 5) }]),
    ]);
    assert.equal(pool.read(199)[0], 4);
    assert.equal(pool.read(120)[0], 5);
    assert.equal(pool.read(0)[0], 1);
    assert.deepEqual(pool.check().problems, []);
  },
);
