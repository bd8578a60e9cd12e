// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// PersistentMap, a second review (the durable map and its allocator):
// each test is the probe that found a bug (red before its fix), kept as a
// regression test, or (said so at the test) a probe of a risk the review
// named that found none, kept as its guard.
import { OutOfSpaceError } from "../errors/mod.ts";
import { checkObjectPool, ObjectPool, PersistentMap } from "../obj/mod.ts";
import { assert, tempPath, test } from "./_harness.ts";

const MiB = 1 << 20;

// Bug: the RangeError of a full catalog (31 maps) was thrown inside the
// transaction that creates the map, which joins an enclosing one: a
// caller that caught it inside its own `pool.tx` or `txAsync` (to use a
// map that exists instead) saw the whole transaction fail with it, its
// other changes gone, as a bad argument refused at the call never does.
test("a full catalog's RangeError caught inside a transaction does not fail it", async () => {
  using pool = ObjectPool.create(tempPath(), { size: 16 * MiB, layout: "kv" });
  for (let i = 0; i < 31; i++) PersistentMap.open(pool, `map ${i}`);
  using m = PersistentMap.open(pool, "map 0");
  const full = (e: unknown) =>
    e instanceof RangeError && /catalog holds 31 maps/.test(e.message);
  pool.tx(() => {
    assert.throws(() => PersistentMap.open(pool, "one too many"), full);
    m.set("k", "sync");
  });
  assert.equal(m.get("k"), "sync");
  await pool.txAsync(() => {
    assert.throws(() => PersistentMap.open(pool, "one too many"), full);
    m.set("k", "async");
  });
  assert.equal(m.get("k"), "async");
  assert.throws(() => PersistentMap.open(pool, "one too many"), full);
  assert.equal(m.size, 1);
});

// Bug: a map created on a full pool failed with an OutOfSpaceError of op
// "alloc" ("alloc: the pool has no free chunk for a new run"), a call
// its user never made; set, setAsync and batch name their own call (see
// obj_trial_test.ts). It names "open" now, as its ClosedError does.
test("`PersistentMap.open` of a new map on a full pool fails with an OutOfSpaceError naming open, and creates nothing", () => {
  using pool = ObjectPool.create(tempPath(), { size: 8 * MiB, layout: "kv" });
  using m = PersistentMap.open(pool, "m");
  // nodes of the descriptor's size class, until no chunk is left for a
  // run of it
  const value = "v".repeat(2046);
  let n = 0;
  assert.throws(() => {
    for (;; n++) m.set(`k${n}`, value);
  }, OutOfSpaceError);
  for (let i = 0; i < 2; i++) {
    assert.throws(
      () => PersistentMap.open(pool, "other"),
      (e) =>
        e instanceof OutOfSpaceError && e.op === "open" &&
        e.message.startsWith("open: "),
    );
  }
  assert.equal(m.size, n);
  assert.deepEqual(checkObjectPool(pool).problems, []);
  // room again: the name was never taken
  m.delete("k0");
  m.delete("k1");
  using other = PersistentMap.open(pool, "other");
  assert.equal(other.size, 0);
});
