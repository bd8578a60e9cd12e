// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// The object store under a fourth review: each test is the probe that
// found a bug (red before its fix on at least one runtime), kept as a
// regression test.
import { PmemError } from "../errors/mod.ts";
import { DsaStatus, ThreadMover } from "../mover/mod.ts";
import { type ObjectHandle, ObjectPool } from "../obj/mod.ts";
import { injectFault } from "../testing/mod.ts";
import { assert, tempPath, test } from "./_harness.ts";

const MiB = 1 << 20;
/** Bytes of the long write the mover batch applies (and fails). */
const LONG = 1_000_000;

/**
 * A pool whose last `txAsync` (the root's u64 at 0 from 1 to 2, its bytes
 * at 64 from 0x11 to 0x22) is committed and half applied: its short entry
 * by this thread, its long one by a ThreadMover batch that fails half-way
 * (still running when returned). Undefined when the batch had already
 * finished at the first poll (the caller tries again).
 */
function halfApplied(path: string, mover: ThreadMover, first = true):
  | { pool: ObjectPool; root: ObjectHandle; done: Promise<unknown> }
  | undefined {
  const pool = ObjectPool.create(path, { size: 64 * MiB, layout: "r4", mover });
  const root = pool.root(MiB);
  // (`first`: a first transaction fills a quarter of the log with it)
  if (first) {
    pool.tx((tx) => {
      tx.setU64(root, 0, 1);
      tx.write(root, 64, new Uint8Array(LONG).fill(0x11));
    });
  }
  const f = pool.txAsync((tx) => {
    tx.setU64(root, 0, 2);
    tx.write(root, 64, new Uint8Array(LONG).fill(0x22));
  });
  injectFault(mover, LONG / 2, { status: DsaStatus.HW_ERR1 });
  // sealed (committed) and its application started: the short entry is
  // applied, the batch is in flight
  const state = f.poll();
  const done = Promise.resolve(f).catch((e) => e);
  if (state === "running") return { pool, root, done };
  pool.close();
  return undefined;
}

/** The root after a reopen: its u64 and the values of its long range. */
function reopened(path: string): { u64: number; bytes: number[] } {
  using pool = ObjectPool.open(path, { layout: "r4" });
  const root = pool.root(MiB);
  return {
    u64: pool.getU64(root, 0),
    bytes: [...new Set(pool.read(root, 64, LONG))].sort(),
  };
}

const EIO = (e: unknown) =>
  e instanceof PmemError && e.errno === 5 &&
  /stopped after a failure/.test(e.message);

// A group whose mover batch failed stops the pool, and its committed
// record must stay in the log (replayed at the next open, which applies
// it whole). `flush()` and a transaction begun in a log a quarter used
// drained the queue, and when the drain failed, took the checkpoint
// anyway: the homes, half applied, were persisted and the checkpoint
// moved past the record, so the reopened pool showed half a transaction
// (the u64 of 2 beside bytes half 0x22, half 0x11). And the transaction
// begun then ran, committed and returned on the stopped pool.
for (const how of ["flush", "tx"] as const) {
  test(`a \`txAsync\` whose mover batch fails half-way is whole after a reopen, even when ${how === "flush" ? "`flush()`" : "a transaction that checkpoints"} follows`, async () => {
    using mover = new ThreadMover({ threads: 1, inlineThreshold: 0 });
    const path = tempPath();
    let got: ReturnType<typeof halfApplied>;
    for (let i = 0; i < 5 && got === undefined; i++) {
      got = halfApplied(`${path}${i}`, mover);
      if (got === undefined) continue;
      const { pool, root, done } = got;
      let ran = false;
      assert.throws(
        () =>
          how === "flush" ? pool.flush() : pool.tx((tx) => {
            ran = true;
            tx.setU64(root, 8, 5);
          }),
        EIO,
      );
      assert.equal(ran, false, "the transaction ran on a stopped pool");
      assert.ok(EIO(await done) || (await done) instanceof PmemError);
      pool.close();
      assert.deepEqual(reopened(`${path}${i}`), { u64: 2, bytes: [0x22] });
    }
    assert.ok(got !== undefined, "the batch never was in flight at a poll");
  });
}

// A synchronous transaction begun while an earlier group's mover batch
// was in flight ran its callback, committed (its record persisted), and
// only then waited for that batch: when the batch failed, `tx` threw the
// batch's error, yet its changes were there after a reopen (the record
// replayed). A synchronous transaction now applies the groups before it
// first, so one that throws has committed nothing.
test("a `tx` that throws because an earlier `txAsync`'s mover batch failed has committed nothing", async () => {
  using mover = new ThreadMover({ threads: 1, inlineThreshold: 0 });
  const path = tempPath();
  let got: ReturnType<typeof halfApplied>;
  for (let i = 0; i < 5 && got === undefined; i++) {
    got = halfApplied(`${path}${i}`, mover, false);
    if (got === undefined) continue;
    const { pool, root, done } = got;
    assert.throws(() => pool.tx((tx) => tx.setU64(root, 8, 5)), EIO);
    assert.ok((await done) instanceof PmemError);
    pool.close();
    using reopened = ObjectPool.open(`${path}${i}`, { layout: "r4" });
    const r = reopened.root(MiB);
    assert.equal(reopened.getU64(r, 0), 2); // the txAsync, replayed whole
    assert.equal(reopened.getU64(r, 8), 0, "the tx that threw took effect");
  }
  assert.ok(got !== undefined, "the batch never was in flight at a poll");
});
