// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// The object store under a third review: each test is the probe that
// found a bug (red before its fix on at least one runtime), kept as a
// regression test.
import { ClosedError } from "../errors/mod.ts";
import {
  checkObjectPool,
  type ObjectHandle,
  ObjectPool,
  PersistentMap,
  StaleObjectError,
  type Transaction,
} from "../obj/mod.ts";
import { poolEngine } from "../obj/pool_access.ts";
import { wait } from "../future/mod.ts";
import { assert, tempPath, test } from "./_harness.ts";

const MiB = 1 << 20;

// Reads outside a transaction see the transactions that completed; the
// check of a handle there read the object's header as applied, but asked
// the heap's volatile state, which follows transactions as they are
// staged, whether a block starts there: an object an asynchronous
// transaction not complete yet freed was a StaleObjectError, while the
// root, as applied, still pointed at it.
test("reads outside a transaction accept an object a `txAsync` not complete yet frees, as its pointer still leads there", async () => {
  using pool = ObjectPool.create(tempPath(), { size: 8 * MiB, layout: "r3" });
  const root = pool.root(16);
  const [small, huge] = pool.tx((tx) => {
    const s = tx.alloc(100);
    tx.write(s, 0, new Uint8Array([1, 2, 3]));
    tx.setU64(root, 0, s.offset);
    const h = tx.alloc(600_000);
    tx.write(h, 599_990, new Uint8Array([4, 5]));
    tx.setU64(root, 8, h.offset);
    return [s, h];
  });
  const f = pool.txAsync((tx) => {
    const b = tx.alloc(100);
    tx.setU64(root, 0, b.offset);
    tx.free(small);
    tx.setU64(root, 8, 0);
    tx.free(huge);
    // a huge object of one chunk where the freed one began
    return [b.offset, tx.alloc(100_000).offset];
  });
  assert.equal(pool.getU64(root, 0), small.offset);
  assert.deepEqual([...pool.read(small, 0, 3)], [1, 2, 3]);
  assert.equal(pool.object(small.offset).size, 100);
  assert.equal(pool.getU64(root, 8), huge.offset);
  assert.deepEqual([...pool.read(huge, 599_990, 2)], [4, 5]);
  assert.equal(pool.object(huge.offset).size, 600_000);
  const live = await f;
  assert.throws(() => pool.read(small), /no live object/);
  assert.throws(() => pool.object(huge.offset), /no live object/);
  assert.deepEqual(checkObjectPool(pool, { live }).problems, []);
});

/**
 * Three asynchronous transactions on a pool with a 256 KiB log, each a
 * group of its own (writes of over a quarter of a record): `freeA` frees
 * `a`, `allocD` allocates `d` in `a`'s block, `freeD` frees `d`. Made,
 * not staged: the caller's next lookup outside a transaction stages them.
 */
function freeThenReuse(pool: ObjectPool) {
  const filler = pool.tx((tx) => tx.alloc(40_000));
  const a = pool.tx((tx) => tx.alloc(100));
  const long = new Uint8Array(30_000);
  const freeA = pool.txAsync((tx) => {
    tx.free(a);
    tx.write(filler, 0, long);
  });
  const made: { d?: ObjectHandle } = {};
  const allocD = pool.txAsync((tx) => {
    made.d = tx.alloc(100);
    tx.write(filler, 0, long);
  });
  const freeD = pool.txAsync((tx) => tx.free(made.d!));
  return { filler, a, made, freeA, allocD, freeD };
}

// The same check inside a transaction must ask the heap as staged: there
// an object a transaction staged before freed is stale, though its header
// at home is whole and the pending objects may have lost that free (the
// group that freed an earlier object at the offset, applied, took out
// the entry of the later free, the same FREED object). `tx.object` used
// the applied check; with the fix above it then handed out such an
// object (before it, the volatile heap's answer hid the loss).
test("`tx.object` of an object that a `txAsync` not applied yet freed is a StaleObjectError, while reads outside see it", async () => {
  using pool = ObjectPool.create(tempPath(), {
    size: 8 * MiB,
    layout: "r3",
    logSize: 256 << 10,
  });
  const root = pool.root(8);
  const { filler, a, made, freeA: fa, allocD: fd, freeD: ff } = freeThenReuse(
    pool,
  );
  const d = made.d;
  assert.equal(d!.offset, a.offset, "the block is taken again");
  // a lookup of the pending objects outside a transaction (the root's)
  assert.equal(pool.root(8).offset, root.offset);
  // the groups that freed `a` and allocated `d` are applied; the one that
  // frees `d` stays staged
  assert.equal(fa.poll(), "complete");
  assert.equal(fd.poll(), "complete");
  assert.equal(ff.state, "idle");
  assert.equal(pool.read(d!).length, 100);
  const stale = (op: (tx: Transaction) => unknown) =>
    assert.rejects(
      Promise.resolve(pool.txAsync(op)),
      (e) => e instanceof StaleObjectError,
    );
  await stale((tx) => tx.object(d!.offset));
  await stale((tx) => tx.read(d!, 0, 1));
  await stale((tx) => tx.free(d!));
  await ff;
  assert.throws(() => pool.object(d!.offset), StaleObjectError);
  assert.deepEqual(
    checkObjectPool(pool, { live: [filler.offset] }).problems,
    [],
  );
});

// A map created in a transaction that aborts does not exist, but the
// `PersistentMap` the transaction's callback got kept working on what the
// abort took back: its sets allocated leaves, directories and nodes that
// nothing reaches (leaked for good, which `checkObjectPool` reports) and
// stored the first directory's offset into the freed descriptor's block,
// which another object may hold by then. It is now closed.
test("a map whose creation a transaction took back is closed: using it is a ClosedError that changes nothing", async () => {
  const path = tempPath();
  {
    using pool = ObjectPool.create(path, { size: 8 * MiB, layout: "r3" });
    let orphan: PersistentMap | undefined;
    assert.throws(() =>
      pool.tx(() => {
        orphan = PersistentMap.open(pool, "m");
        orphan.set("x", "y");
        throw new Error("abort");
      }), /abort/);
    let orphan2: PersistentMap | undefined;
    await assert.rejects(
      Promise.resolve(pool.txAsync(() => {
        orphan2 = PersistentMap.open(pool, "n");
        throw new Error("abort");
      })),
      /abort/,
    );
    const before = pool.stats().heap;
    for (const m of [orphan!, orphan2!]) {
      assert.throws(() => m.set("k", "v"), ClosedError);
      assert.throws(() => m.setAsync("k", "v"), ClosedError);
      assert.throws(() => m.batch([{ set: ["k", "v"] }]), ClosedError);
      assert.throws(() => m.delete("k"), ClosedError);
      assert.throws(() => m.get("k"), ClosedError);
      assert.throws(() => m.size, ClosedError);
    }
    assert.deepEqual(pool.stats().heap, before);
    assert.deepEqual(checkObjectPool(pool).problems, []);
    using m = PersistentMap.open(pool, "m");
    m.set("k", "v");
  }
  using pool = ObjectPool.open(path, { layout: "r3" });
  using m = PersistentMap.open(pool, "m");
  assert.deepEqual([...m.entries()], [["k", "v"]]);
  assert.deepEqual(checkObjectPool(pool).problems, []);
});

// Bug: every free was staged as one shared FREED object, and applying a
// group drops an offset's pending entry when it is the group's own: the
// group that freed a block also dropped a later, still pending group's
// free of a new object in that block. The pending objects then said
// nothing of it (the checks in a transaction fell back to the staged
// heap, which hid it). Each free is now a pending object of its own.
test("a pending free survives the application of an earlier group's free of the same block", () => {
  using pool = ObjectPool.create(tempPath(), {
    size: 8 << 20,
    layout: "x",
    logSize: 256 << 10,
  });
  pool.root(8);
  const e = poolEngine(pool);
  const { a, made, freeA: fA, allocD: fB, freeD: fC } = freeThenReuse(pool);
  pool.root(8); // stages the three
  const d = made.d;
  assert.equal(d!.offset, a.offset);
  fA.poll();
  fB.poll();
  assert.equal(fA.state, "complete");
  assert.equal(fB.state, "complete");
  assert.notEqual(fC.state, "complete");
  assert.equal(e.pending.objects.get(d!.offset)?.gen, 0);
  wait(fC);
  assert.deepEqual(checkObjectPool(pool).problems, []);
});

// Bug: a batch given a sparse array skipped its holes while checking the
// ops, then failed inside its transaction (a rejected future, a TypeError
// from destructuring) instead of at the call as other bad ops do.
test("a map's batch refuses a sparse array of ops at the call", () => {
  using pool = ObjectPool.create(tempPath(), { size: 8 << 20, layout: "x" });
  using map = PersistentMap.open(pool, "m");
  // deno-lint-ignore no-sparse-arrays
  const ops = [{ set: ["a", "1"] }, , { delete: "b" }] as never;
  assert.throws(
    () => map.batch(ops),
    /Cannot batch: each op is \{ set \} or \{ delete \}/,
  );
  assert.equal(map.size, 0);
});
