// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// The block store at the edges of its contract: arguments that run code or
// lie about themselves, a mover that refuses work, futures never polled.
// The tests of a bug failed (or crashed, or hung) before its fix; the
// others pin contracts no other test states.
import { ClosedError, type Future } from "../mod.ts";
import { BlockPool } from "../blk/mod.ts";
import { assert, moverTest, tempPath } from "./_harness.ts";

const MiB = 1 << 20;

function filled(size: number, value: number): Uint8Array {
  return new Uint8Array(size).fill(value);
}

/** Poll `fs` in sweeps, as an executor would, at most `sweeps` times. */
function pollAll(fs: Future<unknown>[], sweeps = 100): void {
  for (let i = 0; i < sweeps && !fs.every((f) => f.done); i++) {
    for (const f of fs) f.poll();
  }
}
moverTest(
  "writes started together on a mover that refuses the batch all fail; their blocks and lanes are given back",
  (mover) => {
    // A closed mover throws from batch(): the writes polled in one sweep
    // are started as one batch, and every one of them must fail with that
    // error. Only the poller's failed before; the others waited for a copy
    // never made, holding their lanes and the head of their blocks' queues,
    // so wait() on them and close() hung.
    mover.close();
    const pool = BlockPool.create(tempPath(), {
      blockSize: 512,
      poolSize: 24 * MiB,
      mover,
    });
    pool.write(5, filled(512, 5)); // (a block never written needs no copy)
    const fs: Future<unknown>[] = [
      pool.writeAsync(1, filled(512, 1)),
      pool.writeAsync(2, filled(512, 2)),
      pool.writeMany([
        { lba: 3, data: filled(512, 3) },
        { lba: 4, data: filled(512, 4) },
      ]),
      pool.readAsync(5),
    ];
    pollAll(fs);
    for (const f of fs) {
      assert.equal(f.state, "failed");
      assert.ok(f.error instanceof ClosedError, String(f.error));
    }
    // the blocks are free for the next update, which is not overtaken
    for (let lba = 1; lba <= 4; lba++) {
      assert.deepEqual(pool.read(lba), new Uint8Array(512));
      pool.write(lba, filled(512, 10 + lba));
      assert.equal(pool.read(lba)[0], 10 + lba);
    }
    // every lane came back: a write per lane still finds one at once
    for (let lba = 0; lba < 256; lba++) pool.write(lba, filled(512, 7));
    assert.deepEqual(pool.check().problems, []);
    pool.close();
  },
);
