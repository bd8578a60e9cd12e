// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// The block store's futures: writeAsync, writeMany (group commit), readAsync.
import {
  all,
  BadBlockError,
  ClosedError,
  type Future,
  PmemError,
  ThreadMover,
  type Vdm,
  wait,
  waitAll,
} from "../mod.ts";
import { BlockPool } from "../blk/mod.ts";
import { CountingMover } from "./blk_fixtures.ts";
import {
  assert,
  countingThreadMover,
  moverTest,
  rng,
  tempPath,
  test,
} from "./_harness.ts";
import {
  blkutil,
  LIBPMEMBLK_SKIP,
  pattern,
  PMEMPOOL_SKIP,
  pmempoolCheck,
  type SpecLine,
  writeSpec,
} from "./c/blkutil.ts";

const MiB = 1 << 20;

/** A block that names its LBA and version and is checksummed. */
function stamped(size: number, lba: number, version: number): Uint8Array {
  const b = new Uint8Array(size);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, lba, true);
  dv.setUint32(4, version, true);
  for (let i = 12; i < size; i++) b[i] = (lba * 31 + version * 7 + i) & 255;
  let sum = 0;
  for (let i = 0; i < size; i++) {
    if (i < 8 || i >= 12) sum = (sum * 33 + b[i]) >>> 0;
  }
  dv.setUint32(8, sum, true);
  return b;
}

/** The (lba, version) of a whole stamped block, or throw if torn. */
function unstamp(b: Uint8Array): { lba: number; version: number } {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const lba = dv.getUint32(0, true);
  const version = dv.getUint32(4, true);
  assert.deepEqual(b, stamped(b.byteLength, lba, version), "a torn block");
  return { lba, version };
}

function create(mover: Vdm, bsize = 4096): BlockPool {
  return BlockPool.create(tempPath(), {
    blockSize: bsize,
    poolSize: 24 * MiB,
    mover,
  });
}

moverTest(
  "async and batched writes match a model; libpmemblk and pmempool agree",
  async (mover) => {
    const path = tempPath();
    const bsize = 512;
    const model = new Map<number, SpecLine>();
    const rand = rng(4242);
    let nblock: number;
    {
      using pool = BlockPool.create(path, {
        blockSize: bsize,
        poolSize: 24 * MiB,
        mover,
      });
      nblock = pool.blockCount;
      const pick = () => Math.floor(rand() * 300);
      for (let round = 0; round < 30; round++) {
        const kind = round % 5;
        if (kind === 0) {
          const fs: Future<void>[] = [];
          for (let i = 0; i < 20; i++) {
            const lba = pick();
            const seed = round * 100 + i;
            model.set(lba, { op: "W", lba, seed });
            fs.push(pool.writeAsync(lba, pattern(lba, seed, bsize)));
          }
          await all(fs);
        } else if (kind === 1) {
          const batch = [];
          for (let i = 0; i < 90; i++) {
            const lba = pick();
            const seed = round * 100 + i;
            model.set(lba, { op: "W", lba, seed });
            batch.push({ lba, data: pattern(lba, seed, bsize) });
          }
          await pool.writeMany(batch);
        } else if (kind === 2) {
          const lba = pick();
          pool.setZero(lba);
          if (model.has(lba)) model.set(lba, { op: "Z", lba });
          const e = pick();
          pool.setError(e);
          model.set(e, { op: "E", lba: e });
        } else if (kind === 3) {
          const lba = pick();
          const seed = round * 100;
          model.set(lba, { op: "W", lba, seed });
          pool.write(lba, pattern(lba, seed, bsize));
        } else {
          for (const [lba, st] of model) {
            if (st.op === "E") {
              await assert.rejects(
                async () => await pool.readAsync(lba),
                BadBlockError,
              );
            } else if (st.op === "Z") {
              assert.deepEqual(
                await pool.readAsync(lba),
                new Uint8Array(bsize),
              );
            } else {
              assert.deepEqual(
                await pool.readAsync(lba),
                pattern(lba, st.seed, bsize),
              );
            }
          }
        }
      }
      assert.deepEqual(pool.check().problems, []);
    }
    const check = pmempoolCheck(path);
    assert.equal(check.status, 0, check.stdout + check.stderr);
    const verify = blkutil("verify", path, writeSpec([...model.values()]));
    assert.equal(verify.status, 0, verify.stdout + verify.stderr);
    assert.ok(nblock > 300);
  },
  { skip: LIBPMEMBLK_SKIP || PMEMPOOL_SKIP },
);

moverTest(
  "hundreds of overlapping async writes and reads to few blocks serialize",
  async (mover) => {
    using pool = create(mover);
    const bsize = pool.blockSize;
    const lbas = [3, 4, 5, 6];
    const lastIssued = new Map<number, number>();
    const writes: Future<void>[] = [];
    const reads: Future<Uint8Array>[] = [];
    for (let v = 1; v <= 300; v++) {
      const lba = lbas[v % lbas.length];
      lastIssued.set(lba, v);
      writes.push(pool.writeAsync(lba, stamped(bsize, lba, v)));
      if (v % 3 === 0) reads.push(pool.readAsync(lbas[(v * 7) % lbas.length]));
    }
    // interleave: drive reads and writes together through one executor
    await all([...writes, ...reads] as Future<unknown>[]);
    for (const r of reads) {
      const b = r.value!;
      if (b.every((x) => x === 0)) continue; // read before any write landed
      const { lba, version } = unstamp(b);
      assert.ok(lbas.includes(lba) && version >= 1 && version <= 300);
    }
    for (const lba of lbas) {
      assert.equal(
        unstamp(pool.read(lba)).version,
        lastIssued.get(lba),
        `lba ${lba}`,
      );
    }
    assert.deepEqual(pool.check().problems, []);
  },
);

moverTest(
  "readAsync sweeps of pools with different block sizes each read whole blocks",
  (mover) => {
    // small blocks are gathered into one scratch array and copied out of
    // views of it made once per size: a view of the wrong size or of a
    // scratch array since replaced would hand back another block's bytes
    const sizes = [512, 1024, 512, 256];
    const pools = sizes.map((size) => {
      const pool = create(mover, size);
      for (let lba = 0; lba < 200; lba++) {
        pool.write(lba, stamped(size, lba, size));
      }
      return pool;
    });
    try {
      // batches of growing length: the scratch array grows between them
      for (const batch of [3, 40, 7, 200, 64]) {
        for (const pool of pools) {
          const lbas = Array.from(
            { length: batch },
            (_, i) => (i * 13 + batch) % 200,
          );
          const reads = lbas.map((lba) => pool.readAsync(lba));
          waitAll(reads);
          reads.forEach((r, i) => {
            const { lba, version } = unstamp(r.value!);
            assert.equal(lba, lbas[i]);
            assert.equal(version, pool.blockSize);
          });
        }
      }
    } finally {
      for (const pool of pools) pool.close();
    }
  },
);

test("small readAsync sweeps of a ThreadMover below its inline threshold skip its batch", () => {
  // the copies a ThreadMover would make on the polling thread anyway are
  // gathered by the pool itself; above the threshold they go to its batch
  for (const [threshold, batches] of [[1 << 20, 0], [0, 1]] as const) {
    const { mover, batches: calls } = countingThreadMover(threshold);
    using _mover = mover;
    using pool = create(mover, 512);
    for (let lba = 0; lba < 32; lba++) pool.write(lba, stamped(512, lba, 3));
    const reads = Array.from({ length: 32 }, (_, lba) => pool.readAsync(lba));
    waitAll(reads);
    reads.forEach((r, lba) => assert.equal(unstamp(r.value!).lba, lba));
    assert.equal(calls(), batches, `inlineThreshold ${threshold}`);
  }
});

test("more async writes than lanes all complete (ThreadMover)", async () => {
  using mover = new ThreadMover({ threads: 2, inlineThreshold: 0 });
  using pool = create(mover);
  const fs = [];
  for (let lba = 0; lba < 700; lba++) {
    fs.push(pool.writeAsync(lba, stamped(4096, lba, 1)));
  }
  await all(fs);
  for (let lba = 0; lba < 700; lba += 37) {
    assert.equal(unstamp(pool.read(lba)).lba, lba);
  }
  const many = [];
  for (let lba = 0; lba < 600; lba++) {
    many.push({ lba, data: stamped(4096, lba, 2) });
  }
  const reads = [];
  const f = pool.writeMany(many);
  for (let lba = 0; lba < 600; lba += 50) reads.push(pool.readAsync(lba));
  await all([f, ...reads] as Future<unknown>[]);
  for (const r of reads) unstamp(r.value!);
  for (let lba = 0; lba < 600; lba++) {
    assert.equal(unstamp(pool.read(lba)).version, 2);
  }
  assert.deepEqual(pool.check().problems, []);
});

test("writes polled in one sweep start as one copy of the mover", () => {
  using mover = new CountingMover();
  using pool = create(mover);
  const fs = [];
  for (let lba = 0; lba < 32; lba++) {
    fs.push(pool.writeAsync(lba * 3, stamped(4096, lba * 3, 1)));
  }
  waitAll(fs);
  assert.equal(mover.ops + mover.batches, 1);
  for (let lba = 0; lba < 32; lba++) {
    assert.equal(unstamp(pool.read(lba * 3)).lba, lba * 3);
  }
});

test("a write that was never polled is not started by the others", () => {
  using mover = new CountingMover();
  using pool = create(mover);
  const polled = pool.writeAsync(1, stamped(4096, 1, 1));
  const idle = pool.writeAsync(2, stamped(4096, 2, 1));
  wait(polled);
  assert.equal(idle.state, "idle");
  assert.deepEqual(pool.read(2), new Uint8Array(4096));
  wait(idle);
  assert.equal(unstamp(pool.read(2)).lba, 2);
});

test("a synchronous update waits for queued async writes of its block", () => {
  using mover = new ThreadMover({ threads: 1, inlineThreshold: 0 });
  using pool = create(mover);
  const a = pool.writeAsync(9, stamped(4096, 9, 1));
  const b = pool.writeAsync(9, stamped(4096, 9, 2));
  a.poll();
  b.poll();
  pool.write(9, stamped(4096, 9, 3)); // after a and b
  assert.equal(a.state, "complete");
  assert.equal(b.state, "complete");
  assert.equal(unstamp(pool.read(9)).version, 3);
  const c = pool.writeAsync(9, stamped(4096, 9, 4));
  c.poll();
  pool.setZero(9);
  assert.deepEqual(pool.read(9), new Uint8Array(4096));
});

test("close() finishes async writes in flight; the pool reopens with them", () => {
  const path = tempPath();
  const mover = new ThreadMover({ threads: 2, inlineThreshold: 0 });
  try {
    const pool = BlockPool.create(path, {
      blockSize: 4096,
      poolSize: 24 * MiB,
      mover,
    });
    const fs = [];
    for (let lba = 0; lba < 100; lba++) {
      fs.push(pool.writeAsync(lba, stamped(4096, lba, 5)));
    }
    fs.push(pool.writeMany([{ lba: 200, data: stamped(4096, 200, 5) }]));
    for (const f of fs) f.poll();
    pool.close();
    for (const f of fs) assert.ok(f.state === "complete" || f.state === "idle");
    const started = fs.filter((f) => f.state === "complete").length;
    assert.ok(started > 0);
    using again = BlockPool.open(path, { mover });
    for (let lba = 0; lba < 100; lba++) {
      if (fs[lba].state === "complete") {
        assert.equal(unstamp(again.read(lba)).version, 5);
      }
    }
    assert.deepEqual(again.check().problems, []);
    const late = fs.find((f) => f.state === "idle");
    if (late) assert.throws(() => wait(late), PmemError);
  } finally {
    mover.close();
  }
});

moverTest(
  "writeMany/readAsync/writeAsync validate their arguments",
  async (mover) => {
    using pool = create(mover, 512);
    const ok = new Uint8Array(512);
    assert.throws(() => pool.writeAsync(-1, ok), RangeError);
    assert.throws(() => pool.writeAsync(pool.blockCount, ok), RangeError);
    assert.throws(() => pool.writeAsync(1.5, ok), RangeError);
    assert.throws(() => pool.writeAsync(0, new Uint8Array(511)), RangeError);
    assert.throws(
      () => pool.writeAsync(0, [] as unknown as Uint8Array),
      TypeError,
    );
    assert.throws(() => pool.writeMany("x" as unknown as []), TypeError);
    assert.throws(
      () =>
        pool.writeMany([null as unknown as { lba: number; data: Uint8Array }]),
      TypeError,
    );
    assert.throws(
      () => pool.writeMany([{ lba: 0, data: ok }, { lba: -2, data: ok }]),
      RangeError,
    );
    assert.throws(() => pool.readAsync(0, new Uint8Array(10)), RangeError);
    assert.throws(() => pool.readAsync(0, {} as Uint8Array), TypeError);
    await pool.writeMany([]);
    await pool.writeMany([
      { lba: 1, data: stamped(512, 1, 1) },
      { lba: 1, data: stamped(512, 1, 2) }, // the last entry wins
    ]);
    assert.equal(unstamp(await pool.readAsync(1)).version, 2);
    const into = new Uint8Array(600);
    assert.equal(await pool.readAsync(1, into), into);
    assert.equal(unstamp(into.subarray(0, 512)).version, 2);
    pool.close();
    assert.throws(() => pool.writeAsync(0, ok), /closed/);
    assert.throws(() => pool.readAsync(0), /closed/);
  },
);

moverTest(
  "a write whose data shrinks or is detached before it starts fails and leaves the block",
  async (mover) => {
    // Copying what is left of the data would commit a block whose tail
    // is whatever the free block held (another LBA's old bytes).
    using pool = create(mover, 512);
    const seven = new Uint8Array(512).fill(7);
    pool.write(5, seven);
    for (let l = 10; l < 40; l++) pool.write(l, new Uint8Array(512).fill(l));
    const resizable = new ArrayBuffer(512, { maxByteLength: 512 });
    const f = pool.writeAsync(5, new Uint8Array(resizable).fill(55));
    resizable.resize(100);
    await assert.rejects(
      async () => await f,
      /^RangeError: Cannot writeAsync: the data shrank to 100 bytes/,
    );
    assert.deepEqual(pool.read(5), seven);
    const moved = new ArrayBuffer(512);
    const g = pool.writeMany([{
      lba: 5,
      data: new Uint8Array(moved).fill(56),
    }]);
    moved.transfer();
    // detached: the caller's error, as at the call
    await assert.rejects(
      async () => await g,
      /^TypeError: Cannot writeMany: data is detached/,
    );
    assert.deepEqual(pool.read(5), seven);
    const into = new ArrayBuffer(512);
    const r = pool.readAsync(5, new Uint8Array(into));
    into.transfer();
    await assert.rejects(
      async () => await r,
      /^TypeError: Cannot readAsync: into is detached/,
    );
    assert.equal(pool.check().consistent, true);
    // a pool closed before a write's or a read's first poll: each names
    // its own op (they said "write" and "read")
    {
      using other = create(mover, 512);
      const w = other.writeAsync(1, seven);
      const rd = other.readAsync(1);
      other.close();
      await assert.rejects(
        async () => await w,
        (e) => e instanceof ClosedError && e.op === "writeAsync",
      );
      await assert.rejects(
        async () => await rd,
        (e) => e instanceof ClosedError && e.op === "readAsync",
      );
    }
    // the pool goes on
    await pool.writeAsync(5, new Uint8Array(512).fill(9));
    assert.deepEqual(pool.read(5), new Uint8Array(512).fill(9));
  },
);
