// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// The block store's single-opener paths, from a review: each test failed
// (or hung) before the fix it names.
import {
  all,
  ClosedError,
  type Future,
  PmemError,
  type Vdm,
  wait,
} from "../mod.ts";
import { BlockPool, poolGeometry } from "../blk/mod.ts";
import { assert, moverTest, patch, peek, tempPath, test } from "./_harness.ts";

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

test("info()'s progress callback, like check()'s, may read the pool, but not update or check it", () => {
  // a close in info()'s callback unmapped the pool under the scan: the
  // next map entry read failed with a ClosedError naming the op "access".
  // info() now runs its callback under check()'s rule (a close there is
  // the next test's).
  using pool = BlockPool.create(tempPath(), {
    blockSize: 512,
    poolSize: 24 * MiB,
  });
  for (let lba = 0; lba < 300; lba++) pool.write(lba, filled(512, 1));
  let calls = 0;
  const info = pool.info({
    onProgress: () => {
      calls++;
      assert.equal(pool.read(3)[0], 1);
      assert.equal(pool.info().fill.written, 300);
      const tries: [string, () => unknown][] = [
        ["check", () => pool.check()],
        ["write", () => pool.write(1, filled(512, 2))],
        ["setZero", () => pool.setZero(2)],
        ["writeAsync", () => wait(pool.writeAsync(3, filled(512, 2)))],
      ];
      for (const [name, f] of tries) {
        assert.throws(
          f,
          (e) =>
            e instanceof TypeError &&
            /inside info\(\)'s progress callback/.test(e.message),
          name,
        );
      }
    },
  });
  assert.ok(calls > 0);
  assert.equal(info.fill.written, 300);
  assert.equal(pool.closed, false);
  // check()'s callback may call info(), and still refuses a write after it
  pool.check({
    onProgress: () => {
      pool.info();
      assert.throws(
        () => pool.write(1, filled(512, 2)),
        /inside check\(\)'s progress/,
      );
    },
  });
  pool.write(1, filled(512, 3));
  assert.equal(pool.read(1)[0], 3);
  pool.close();
  assert.equal(pool.closed, true);
});

test("check()'s progress callback may read the pool, but not update or check it", () => {
  // check() holds the pool's layout lock and every block's commit lock
  // while it calls onProgress: a close() or check() there waited for the
  // layout lock, a setZero() for a commit lock (both held by the caller:
  // a hang), and a write committed in the middle of the scan (check()
  // reported blocks referenced twice). They now throw a TypeError (a
  // close is the next test's: it waits for the end of the check).
  using pool = BlockPool.create(tempPath(), {
    blockSize: 512,
    poolSize: 24 * MiB,
  });
  for (let lba = 0; lba < 300; lba++) pool.write(lba, filled(512, 1));
  const pending = pool.writeAsync(7, filled(512, 9));
  // copied, waiting for its commit: not the callback's to fail
  const other = pool.writeAsync(8, filled(512, 8));
  other.poll();
  other.poll();
  const seen: string[] = [];
  let calls = 0;
  const report = pool.check({
    onProgress: () => {
      calls++;
      assert.equal(pool.read(3)[0], 1);
      assert.equal(pool.readMany([4, 5])[512], 1);
      const tries: [string, () => unknown][] = [
        ["check", () => pool.check()],
        ["write", () => pool.write(1, filled(512, 2))],
        ["setZero", () => pool.setZero(2)],
        ["setError", () => pool.setError(2)],
        ["writeAsync", () => wait(pool.writeAsync(3, filled(512, 2)))],
        [
          "writeMany",
          () => wait(pool.writeMany([{ lba: 3, data: filled(512, 2) }])),
        ],
        ["pending", () => wait(pending)],
      ];
      for (const [name, f] of tries) {
        assert.throws(f, TypeError, name);
        seen.push(name);
      }
    },
  });
  assert.ok(calls > 0);
  assert.equal(seen.length, 7 * calls);
  assert.deepEqual(report.problems, []);
  assert.equal(pool.closed, false);
  for (const lba of [1, 2, 3, 7]) assert.equal(pool.read(lba)[0], 1);
  wait(other);
  assert.equal(pool.read(8)[0], 8);
  // the pool works on: the locks were let go, the lanes given back
  for (let lba = 0; lba < 300; lba++) pool.write(lba, filled(512, 5));
  wait(pool.writeMany([{ lba: 3, data: filled(512, 6) }]));
  assert.equal(pool.read(3)[0], 6);
  assert.deepEqual(pool.check().problems, []);
});

test("a close in check()'s or info()'s progress callback makes it fail with ClosedError naming the op; the pool closes once the scan lets go", () => {
  // the close was refused with a TypeError (check() holds the pool's
  // locks, which the close would wait for; info() reads the map on after
  // the callback), and the pool stayed open. Now the pool reads as closed
  // at once, closes when the scan has let go of its locks, and the scan
  // fails with ClosedError naming it
  const scans: [string, (p: BlockPool, onProgress: () => void) => unknown][] = [
    ["check", (p, onProgress) => p.check({ onProgress })],
    ["info", (p, onProgress) => p.info({ onProgress })],
    // a close in an info() inside check()'s callback: both fail
    ["info", (p, onProgress) => {
      let inner: unknown;
      assert.throws(
        () =>
          p.check({
            onProgress: () => {
              if (inner !== undefined) return;
              try {
                p.info({ onProgress });
                inner = "returned";
              } catch (e) {
                inner = e;
                throw e;
              }
            },
          }),
        (e) => e instanceof ClosedError && e.op === "check",
      );
      throw inner;
    }],
  ];
  for (const [op, scan] of scans) {
    const path = tempPath();
    const pool = BlockPool.create(path, {
      blockSize: 512,
      poolSize: 24 * MiB,
    });
    for (let lba = 0; lba < 300; lba++) pool.write(lba, filled(512, 1));
    let calls = 0;
    assert.throws(
      () =>
        scan(pool, () => {
          if (calls++ > 0) return;
          pool.close();
          assert.equal(pool.closed, true);
          assert.throws(() => pool.read(3), ClosedError);
          pool.close(); // idempotent there too
        }),
      (e) => e instanceof ClosedError && e.op === op,
      op,
    );
    assert.ok(calls > 0);
    assert.equal(pool.closed, true);
    assert.throws(() => pool.check(), ClosedError);
    // closed for good: unlocked, and consistent
    using again = BlockPool.open(path);
    assert.deepEqual(again.check().problems, []);
    assert.equal(again.read(3)[0], 1);
    again.write(3, filled(512, 2));
    assert.equal(again.read(3)[0], 2);
  }
});

moverTest(
  "writes polled by hand and then dropped give their lanes back to the writes awaited after them",
  async (mover) => {
    // Writes started (polled: queued, then copying) hold a lane
    // each until they commit, and only their own polls committed them.
    // With every lane so held by futures no longer polled, an awaited
    // write waited for a lane forever (a synchronous write drove them).
    // A write waiting for lanes now finishes the writes whose copies are
    // done, whoever owns them.
    using pool = create(mover);
    let dropped: Future<void>[] = [];
    for (let lba = 0; lba < 256; lba++) {
      dropped.push(pool.writeAsync(lba, filled(512, 1)));
    }
    for (const f of dropped) f.poll(); // queued
    dropped[0].poll(); // all started, as one copy
    dropped = [];
    await pool.writeAsync(300, filled(512, 2));
    await pool.writeMany([{ lba: 301, data: filled(512, 3) }]);
    assert.equal(pool.read(300)[0], 2);
    assert.equal(pool.read(301)[0], 3);
    for (let lba = 0; lba < 256; lba++) assert.equal(pool.read(lba)[0], 1);
    assert.deepEqual(pool.check().problems, []);
  },
  { timeout: 15_000 },
);

moverTest(
  "reads polled by hand and then dropped do not keep the writes awaited after them from every lane",
  async (mover) => {
    // A read started (queued, then copying) keeps its block published as
    // being read until its future settles, and only its own polls settled
    // it. Once the blocks of such reads were the lanes' free blocks (their
    // LBAs written since), an awaited write found no lane it could take,
    // forever. A write waiting for lanes now also finishes the reads whose
    // copies are done.
    using pool = create(mover);
    for (let lba = 0; lba < 256; lba++) pool.write(lba, filled(512, 1));
    let dropped: Future<Uint8Array>[] = [];
    for (let lba = 0; lba < 256; lba++) dropped.push(pool.readAsync(lba));
    for (const f of dropped) f.poll(); // queued
    dropped[0].poll(); // all started, as one copy
    dropped = [];
    // (a synchronous write waits for this opener's operations itself)
    for (let lba = 0; lba < 256; lba++) pool.write(lba, filled(512, 2));
    await pool.writeAsync(300, filled(512, 3));
    await pool.writeMany([{ lba: 301, data: filled(512, 4) }]);
    assert.equal(pool.read(300)[0], 3);
    assert.equal(pool.read(301)[0], 4);
    assert.deepEqual(pool.check().problems, []);
  },
  { timeout: 15_000 },
);

test("an open that fails leaves the pool header's shutdown state clean, as libpmemblk does", () => {
  // The open marks the shutdown state dirty (the pool is open) before it
  // reads the descriptor and the BTT; an open that failed there (a wrong
  // block size, a corrupt BTT) left it dirty, and libpmemblk, whose failed
  // open cleans it, would after an unsafe shutdown take the pool for one
  // that was open then. The state is cleaned again when the open fails.
  const path = tempPath();
  BlockPool.create(path, { blockSize: 512, poolSize: 24 * MiB }).close();
  const clean = peek(path, 4024, 64);
  assert.equal(clean[16], 0); // the dirty flag
  assert.throws(
    () => BlockPool.open(path, { blockSize: 4096 }),
    (e) => e instanceof PmemError && e.code === -22,
  );
  assert.deepEqual(peek(path, 4024, 64), clean);
  // both BTT info blocks corrupt: the BTT is refused after the header
  const info = peek(path, 8192, 4096);
  info[100] ^= 1;
  patch(path, 8192, info);
  const geometry = poolGeometry(24 * MiB, 512).arenas[0];
  const backup = peek(path, 8192 + geometry.infoOff, 4096);
  backup[100] ^= 1;
  patch(path, 8192 + geometry.infoOff, backup);
  assert.throws(
    () => BlockPool.open(path),
    (e) => e instanceof PmemError && e.code === -22,
  );
  assert.deepEqual(peek(path, 4024, 64), clean);
});

moverTest(
  "many writes of one block in flight take work linear in their number, and land in issue order",
  async (mover) => {
    // Each write waiting behind another of its block was looked at again
    // by every start pass -- each poll of any write ran one, and drove the
    // head's owner from each waiting write -- so N writes of one block
    // polled the writes ahead N²/2 times (20 000 in flight took 32 s).
    // Waiting writes now park until their turn: with the in-thread mover
    // the polls (counted, not timed) stay a few per write. (A mover that
    // copies elsewhere completes a write's copy in a later sweep, and
    // each sweep polls every write in flight: there the polls still grow
    // with N², three to five times fewer than before.)
    using pool = create(mover);
    const n = 400;
    let polls = 0;
    const writes: Future<void>[] = [];
    for (let i = 0; i < n; i++) {
      const f = pool.writeAsync(7, filled(512, i & 255));
      const poll = f.poll.bind(f);
      // every poll, the executor's and those of the writes behind it
      Object.defineProperty(f, "poll", {
        value: (ctx?: Parameters<typeof poll>[0]) => {
          polls++;
          return poll(ctx);
        },
      });
      writes.push(f);
      if (i % 100 === 0) writes.push(pool.writeAsync(8 + i, filled(512, 1)));
    }
    await all(writes);
    if (mover.name === "cpu") {
      assert.ok(polls <= 16 * n, `${polls} polls for ${n} writes of one block`);
    }
    assert.deepEqual(pool.read(7), filled(512, (n - 1) & 255));
  },
);
