// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// BlockPool.readMany and the batched readAsync: blocks looked up first,
// copied together.
import { BlockPool } from "../blk/mod.ts";
import { CountingMover, unformatted } from "./blk_fixtures.ts";
import type { Vdm } from "../mover/mod.ts";
import type { Future } from "../future/mod.ts";
import { BadBlockError, ClosedError, PmemError } from "../errors/mod.ts";
import { all, waitAll } from "../future/mod.ts";
import { assert, moverTest, rng, tempPath, test } from "./_harness.ts";
import { pattern } from "./c/blkutil.ts";

const MiB = 1 << 20;

function fresh(blockSize = 512, mover?: Vdm): BlockPool {
  return BlockPool.create(tempPath(), {
    blockSize,
    poolSize: 32 * MiB,
    mover,
  });
}

test("`BlockPool.readMany()` puts block i at i × blockSize, duplicates included", () => {
  using pool = fresh();
  for (const lba of [3, 7, 8]) pool.write(lba, pattern(lba, 1, 512));
  const lbas = [7, 3, 7, 100, 8];
  const out = pool.readMany(lbas);
  assert.equal(out.length, 5 * 512);
  lbas.forEach((lba, i) => {
    const want = lba === 100 ? new Uint8Array(512) : pattern(lba, 1, 512);
    assert.deepEqual(out.subarray(i * 512, (i + 1) * 512), want, `block ${i}`);
  });
  // into a larger array, and from a typed array of LBAs
  const into = new Uint8Array(3 * 512 + 7).fill(9);
  assert.equal(pool.readMany(new Uint32Array([8, 3]), into), into);
  assert.deepEqual(into.subarray(0, 512), pattern(8, 1, 512));
  assert.deepEqual(into.subarray(512, 1024), pattern(3, 1, 512));
  assert.equal(into[1024], 9); // beyond the blocks: untouched
  assert.deepEqual(pool.readMany([]), new Uint8Array(0));
});

test("`BlockPool.readMany()` reads zero blocks as zeros into a used array", () => {
  using pool = fresh();
  pool.write(1, pattern(1, 1, 512));
  pool.write(2, pattern(2, 1, 512));
  pool.setZero(2);
  const into = new Uint8Array(3 * 512).fill(0xee);
  pool.readMany([0, 1, 2], into); // never written, written, set to zero
  assert.deepEqual(into.subarray(0, 512), new Uint8Array(512));
  assert.deepEqual(into.subarray(512, 1024), pattern(1, 1, 512));
  assert.deepEqual(into.subarray(1024), new Uint8Array(512));
});

test("`BlockPool.readMany()` fails on an error block before copying anything", () => {
  using pool = fresh();
  pool.write(4, pattern(4, 1, 512));
  pool.setError(5);
  const into = new Uint8Array(2 * 512).fill(0xee);
  assert.throws(
    () => pool.readMany([4, 5], into),
    (e) => e instanceof BadBlockError && /5/.test(e.message),
  );
  assert.ok(into.every((b) => b === 0xee), "nothing was copied");
  pool.write(5, pattern(5, 2, 512));
  pool.readMany([4, 5], into);
  assert.deepEqual(into.subarray(512), pattern(5, 2, 512));
});

test("`BlockPool.readMany()` rejects bad arguments before reading anything", () => {
  using pool = fresh();
  pool.write(0, pattern(0, 1, 512));
  const into = new Uint8Array(4 * 512).fill(0xee);
  const untouched = () => assert.ok(into.every((b) => b === 0xee));
  const n = pool.blockCount;
  assert.throws(() => pool.readMany([0, n], into), RangeError);
  untouched();
  assert.throws(() => pool.readMany([0, -1], into), RangeError);
  assert.throws(() => pool.readMany([0, 1.5], into), RangeError);
  assert.throws(
    () => pool.readMany([0, "1" as unknown as number], into),
    TypeError,
  );
  assert.throws(
    () => pool.readMany("01" as unknown as number[], into),
    TypeError,
  );
  assert.throws(
    () => pool.readMany(new Float64Array([0, 2 ** 40]), into),
    RangeError,
  );
  assert.throws(() => pool.readMany([0, 1, 2, 3, 4], into), RangeError);
  assert.throws(
    () => pool.readMany([0], [] as unknown as Uint8Array),
    TypeError,
  );
  untouched();
  // a detached array has no room
  const detached = new Uint8Array(512);
  detached.buffer.transfer();
  assert.equal(detached.byteLength, 0);
  assert.throws(() => pool.readMany([0], detached), RangeError);
  pool.close();
  assert.throws(() => pool.readMany([0]), ClosedError);
});

// Bug: a typed array of LBAs whose buffer was transferred (or resized
// below it) reads as empty, and readMany took it as no block at all: it
// returned an empty array as if asked for none.
test("`BlockPool.readMany()` refuses a typed array of LBAs whose buffer is gone", () => {
  using pool = BlockPool.create(tempPath(), {
    blockSize: 512,
    poolSize: 17 * MiB,
  });
  const detached = new Uint32Array([0, 1]);
  detached.buffer.transfer();
  const rab = new ArrayBuffer(8, { maxByteLength: 16 });
  const shrunk = new Uint32Array(rab, 0, 2);
  rab.resize(4);
  for (const lbas of [detached, shrunk]) {
    assert.throws(
      () => pool.readMany(lbas),
      (e: unknown) =>
        e instanceof TypeError &&
        /^Cannot readMany: lbas is detached or lies past the end of its buffer/
          .test((e as Error).message),
    );
  }
  assert.equal(pool.readMany(new Uint32Array(0)).length, 0);
});

test("`BlockPool.readMany()` of many random blocks matches read() for several block sizes", () => {
  for (const blockSize of [512, 4096, 600]) {
    using pool = fresh(blockSize);
    const next = rng(blockSize);
    const written = new Map<number, number>();
    for (let i = 0; i < 200; i++) {
      const lba = Math.floor(next() * 300);
      pool.write(lba, pattern(lba, i, blockSize));
      written.set(lba, i);
    }
    const lbas = Array.from({ length: 700 }, () => Math.floor(next() * 320));
    const out = pool.readMany(lbas);
    lbas.forEach((lba, i) =>
      assert.deepEqual(
        out.subarray(i * blockSize, (i + 1) * blockSize),
        pool.read(lba),
      )
    );
  }
});

test("`BlockPool.readMany()` and readAsync() read zeros from a pool with no BTT", async () => {
  const path = unformatted();
  using pool = BlockPool.open(path);
  assert.equal(pool.check().formatted, false);
  const into = new Uint8Array(2 * 512).fill(1);
  pool.readMany([0, pool.blockCount - 1], into);
  assert.deepEqual(into, new Uint8Array(2 * 512));
  const out = new Uint8Array(512).fill(1);
  assert.deepEqual(await pool.readAsync(3, out), new Uint8Array(512));
});

test("reads polled in one sweep start as one copy of the mover", () => {
  using mover = new CountingMover();
  using pool = fresh(4096, mover);
  for (let lba = 0; lba < 32; lba++) {
    pool.write(lba * 5, pattern(lba * 5, 1, 4096));
  }
  pool.setZero(5);
  pool.setError(10);
  const mover0 = mover.ops + mover.batches;
  const fs: Future<Uint8Array>[] = [];
  for (let lba = 0; lba < 32; lba++) fs.push(pool.readAsync(lba * 5));
  assert.throws(() => waitAll(fs), BadBlockError); // the error block
  assert.equal(mover.ops + mover.batches - mover0, 1);
  for (let lba = 0; lba < 32; lba++) {
    const f = fs[lba];
    if (lba === 2) assert.ok(f.error instanceof BadBlockError);
    else if (lba === 1) assert.deepEqual(f.value, new Uint8Array(4096));
    else assert.deepEqual(f.value, pattern(lba * 5, 1, 4096), `lba ${lba * 5}`);
  }
});

moverTest(
  "readAsync() batches read what read() reads, into given arrays",
  async (mover) => {
    // 512 B blocks are gathered in one call with the CPU mover, 4 KiB
    // blocks copied one call each: both, with arrays given and not
    for (const size of [512, 4096]) {
      using pool = BlockPool.create(tempPath(), {
        blockSize: size,
        poolSize: 32 * MiB,
        mover,
      });
      const next = rng(5);
      for (let i = 0; i < 100; i++) {
        const lba = Math.floor(next() * 64);
        pool.write(lba, pattern(lba, i, size));
      }
      // 300 reads in one sweep: gathered 128 blocks of 512 B a call
      const outs = Array.from({ length: 300 }, () => new Uint8Array(size + 3));
      const lbas = outs.map(() => Math.floor(next() * 70));
      const got = await all(lbas.map((lba, i) => pool.readAsync(lba, outs[i])));
      lbas.forEach((lba, i) => {
        assert.equal(got[i], outs[i]);
        assert.deepEqual(outs[i].subarray(0, size), pool.read(lba), `${size}`);
      });
      const fresh = await all(lbas.map((lba) => pool.readAsync(lba)));
      lbas.forEach((lba, i) => assert.deepEqual(fresh[i], pool.read(lba)));
    }
  },
);

test("a readAsync() never polled does not start with the others; close() ends them", () => {
  using mover = new CountingMover();
  const pool = fresh(512, mover);
  pool.write(1, pattern(1, 1, 512));
  const polled = pool.readAsync(1);
  const idle = pool.readAsync(1);
  waitAll([polled]);
  assert.equal(idle.state, "idle");
  assert.deepEqual(polled.value, pattern(1, 1, 512));
  pool.close();
  assert.throws(() => waitAll([idle]), (e) => e instanceof PmemError);
});
