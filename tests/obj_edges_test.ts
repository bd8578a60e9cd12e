// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// The object store at its edges: aborts, a close at the wrong time, a
// map changed while it is iterated, keys and arguments at their limits.
// Each test is the probe that found a bug, or pins a contract no other
// test file checks.
import { checkObjectPool, ObjectPool } from "../obj/mod.ts";
import { assert, tempPath, test } from "./_harness.ts";

const MiB = 1 << 20;

// 60 000 bytes and a header take a block of the 64 KiB class: 3 a run
const BIG_BLOCK = 60_000;

test("an aborted transaction that filled a run and began another leaves the first run's block allocatable", () => {
  using pool = ObjectPool.create(tempPath(), { size: 8 * MiB, layout: "a" });
  // a run of the class with one block left
  pool.tx((tx) => {
    tx.alloc(BIG_BLOCK);
    tx.alloc(BIG_BLOCK);
  });
  const before = pool.stats().heap;
  assert.equal(before.runChunks, 1);
  // the first takes the run's last block, the second makes a new run;
  // the abort frees both, and the first run must be offered again (it
  // was dropped from its class's list as full)
  assert.throws(() =>
    pool.tx((tx) => {
      tx.alloc(BIG_BLOCK);
      tx.alloc(BIG_BLOCK);
      throw new Error("abort");
    }), /abort/);
  assert.deepEqual(pool.stats().heap, before);
  pool.tx((tx) => tx.alloc(BIG_BLOCK));
  const after = pool.stats().heap;
  assert.equal(after.runChunks, 1, "the run's free block was used");
  assert.equal(after.freeChunks, before.freeChunks);
  assert.equal(after.objects, before.objects + 1);
});

test("an object freed by an aborted transaction stays live, and its block is not handed out again", () => {
  using pool = ObjectPool.create(tempPath(), { size: 8 * MiB, layout: "a" });
  const keep = pool.tx((tx) => {
    const o = tx.alloc(100);
    tx.write(o, 0, new Uint8Array(100).fill(7));
    return o;
  });
  // freed, its block taken again by the same transaction, then aborted:
  // the undo must leave the block allocated (undone newest first)
  assert.throws(() =>
    pool.tx((tx) => {
      tx.free(keep);
      const again = tx.alloc(100);
      assert.equal(again.offset, keep.offset);
      throw new Error("abort");
    }), /abort/);
  assert.deepEqual(pool.read(keep), new Uint8Array(100).fill(7));
  const other = pool.tx((tx) => tx.alloc(100));
  assert.notEqual(other.offset, keep.offset);
  assert.deepEqual(pool.read(keep), new Uint8Array(100).fill(7));
  assert.deepEqual(checkObjectPool(pool).problems, []);
});
