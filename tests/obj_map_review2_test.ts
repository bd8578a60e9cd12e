// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// PersistentMap, a second review (the durable map and its allocator):
// each test is the probe that found a bug (red before its fix), kept as a
// regression test, or (said so at the test) a probe of a risk the review
// named that found none, kept as its guard.
import { ObjectPool, PersistentMap } from "../obj/mod.ts";
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
