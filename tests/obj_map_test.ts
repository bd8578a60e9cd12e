// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// PersistentMap: keys and values as strings and bytes, growth across
// leaves and directories, reopen, atomic batches, asynchronous operations
// on every mover, and joining a pool transaction.
import { ClosedError, OutOfSpaceError } from "../errors/mod.ts";
import { all, type Future } from "../future/mod.ts";
import { ObjectPool, PersistentMap } from "../obj/mod.ts";
import { assert, moverTest, rng, tempPath, test } from "./_harness.ts";

const MiB = 1 << 20;

test("`PersistentMap` keeps strings and bytes apart and gives values back as they were set", () => {
  using pool = ObjectPool.create(tempPath(), { size: 16 * MiB, layout: "kv" });
  using m = PersistentMap.open(pool, "m");
  m.set("abc", "x");
  m.set(new TextEncoder().encode("abc"), Uint8Array.of(1, 2));
  m.set("", new Uint8Array(0));
  assert.equal(m.size, 3);
  assert.equal(m.get("abc"), "x");
  assert.deepEqual(m.get(new TextEncoder().encode("abc")), Uint8Array.of(1, 2));
  assert.deepEqual(m.get(""), new Uint8Array(0));
  assert.equal(m.get("nope"), undefined);
  assert.ok(m.has("abc") && !m.has("abd"));
  m.set("abc", "y");
  assert.equal(m.get("abc"), "y");
  assert.equal(m.size, 3);
  assert.equal(m.delete("abc"), true);
  assert.equal(m.delete("abc"), false);
  assert.equal(m.size, 2);
  assert.throws(() => m.set(5 as never, "v"), TypeError);
  assert.throws(() => m.set("k", 5 as never), TypeError);
  assert.throws(() => PersistentMap.open(pool, ""), RangeError);
  m.close();
  assert.throws(() => m.get("abc"), ClosedError);
});

test("a map of thousands of keys grows leaf by leaf, reuses deleted slots and reopens whole", () => {
  const path = tempPath();
  const r = rng(9);
  const model = new Map<string, string>();
  {
    using pool = ObjectPool.create(path, { size: 32 * MiB, layout: "kv" });
    using m = PersistentMap.open(pool, "big");
    for (let i = 0; i < 3000; i++) {
      const k = `k${Math.floor(r() * 2500)}`;
      if (r() < 0.2) {
        assert.equal(m.delete(k), model.delete(k));
      } else {
        const v = "v".repeat(Math.floor(r() * 300)) + i;
        m.set(k, v);
        model.set(k, v);
      }
    }
    assert.equal(m.size, model.size);
    const objects = pool.stats().heap.objects;
    // deletes then sets: slots and nodes are reused, not leaked
    for (const k of [...model.keys()].slice(0, 100)) m.delete(k);
    for (let i = 0; i < 100; i++) m.set(`n${i}`, "z");
    assert.equal(pool.stats().heap.objects, objects);
    for (const k of [...model.keys()].slice(0, 100)) model.delete(k);
    for (let i = 0; i < 100; i++) model.set(`n${i}`, "z");
  }
  using pool = ObjectPool.open(path, { layout: "kv" });
  using m = PersistentMap.open(pool, "big");
  assert.equal(m.size, model.size);
  assert.deepEqual(new Map(m.entries() as Iterable<[string, string]>), model);
  assert.deepEqual(new Set(m.keys()), new Set(model.keys()));
});

test("values too large to be built in the log are set, replaced and reopened whole, sync and async", async () => {
  const path = tempPath();
  const big = (n: number, fill: number) => new Uint8Array(n).fill(fill);
  {
    using pool = ObjectPool.create(path, { size: 32 * MiB, layout: "kv" });
    using m = PersistentMap.open(pool, "m");
    m.set("a", big(300_000, 1));
    await all([
      m.setAsync("b", big(400_000, 2)),
      m.setAsync("a", "x".repeat(70_000)),
    ]);
    assert.equal(m.get("a"), "x".repeat(70_000));
    assert.deepEqual(m.get("b"), big(400_000, 2));
  }
  using pool = ObjectPool.open(path, { layout: "kv" });
  using m = PersistentMap.open(pool, "m");
  assert.equal(m.size, 2);
  assert.equal(m.get("a"), "x".repeat(70_000));
  assert.deepEqual(m.get("b"), big(400_000, 2));
});

test("async sets and deletes of few keys, in groups staged before others are applied, end as their order says, leak-free", async () => {
  const path = tempPath();
  const r = rng(15);
  const model = new Map<string, string>();
  let empty = 0;
  {
    // a small log: a group holding a large value is sealed by the next
    // txAsync, so groups are applied while later ones still stage
    using pool = ObjectPool.create(path, {
      size: 16 * MiB,
      layout: "kv",
      logSize: 256 * 1024,
    });
    using m = PersistentMap.open(pool, "few");
    m.set("probe", "p");
    m.delete("probe");
    empty = pool.stats().heap.objects;
    for (let round = 0; round < 400; round++) {
      const fs: Future<unknown>[] = [];
      const n = 1 + Math.floor(r() * 40);
      for (let i = 0; i < n; i++) {
        const k = `k${Math.floor(r() * 6)}`;
        const x = r();
        if (x < 0.05 && fs.length > 0) {
          // applies the groups up to that one's, then stages on after them
          await fs[Math.floor(r() * fs.length)];
        } else if (x < 0.1) {
          // synchronous: seals the group staged so far, unapplied
          assert.equal(m.delete(k), model.delete(k));
        } else if (x < 0.15) {
          m.set(k, `s${round}.${i}`);
          model.set(k, `s${round}.${i}`);
        } else if (x < 0.2) {
          const v = `b${round}.${i}`.padEnd(30_000, "x");
          fs.push(m.setAsync(k, v));
          model.set(k, v);
        } else if (x < 0.4) {
          fs.push(m.deleteAsync(k));
          model.delete(k);
        } else {
          fs.push(m.setAsync(k, `a${round}.${i}`));
          model.set(k, `a${round}.${i}`);
        }
      }
      await all(fs);
      assert.deepEqual(
        new Map(m.entries() as Iterable<[string, string]>),
        model,
      );
    }
  }
  using pool = ObjectPool.open(path, { layout: "kv" });
  using m = PersistentMap.open(pool, "few");
  assert.deepEqual(new Map(m.entries() as Iterable<[string, string]>), model);
  // no node leaked: with every key deleted, the objects are the empty map's
  for (const k of [...model.keys()]) m.delete(k);
  assert.equal(m.size, 0);
  assert.equal(pool.stats().heap.objects, empty);
});

test("maps of one pool are independent, and the catalog holds 31", () => {
  using pool = ObjectPool.create(tempPath(), { size: 32 * MiB, layout: "kv" });
  const maps = [];
  for (let i = 0; i < 31; i++) {
    const m = PersistentMap.open(pool, `map ${i}`);
    m.set("k", `${i}`);
    maps.push(m);
  }
  assert.throws(() => PersistentMap.open(pool, "one too many"), RangeError);
  for (let i = 0; i < 31; i++) assert.equal(maps[i].get("k"), `${i}`);
  const again = PersistentMap.open(pool, "map 3");
  assert.equal(again.get("k"), "3");
});

moverTest(
  "`setAsync`, `deleteAsync` and `batch` in flight commit together and apply in order",
  async (mover) => {
    const path = tempPath();
    {
      using pool = ObjectPool.create(path, {
        size: 32 * MiB,
        layout: "kv",
        mover,
      });
      using m = PersistentMap.open(pool, "m");
      const fs = [];
      for (let i = 0; i < 200; i++) {
        fs.push(m.setAsync(`k${i % 50}`, new Uint8Array(100 + i).fill(i)));
      }
      const d = m.deleteAsync("k3");
      fs.push(
        m.batch([{ set: ["b1", "one"] }, { delete: "k4" }, {
          set: ["b2", "two"],
        }]),
      );
      assert.equal(m.get("b1"), undefined); // not completed yet
      await all(fs);
      assert.equal(await d, true);
      assert.equal(m.size, 50 - 2 + 2);
      for (let i = 5; i < 50; i++) {
        assert.deepEqual(
          m.get(`k${i}`),
          new Uint8Array(100 + 150 + i).fill(150 + i),
        );
      }
      assert.equal(m.get("k3"), undefined);
      assert.equal(m.get("b2"), "two");
    }
    using pool = ObjectPool.open(path, { layout: "kv", mover });
    using m = PersistentMap.open(pool, "m");
    assert.equal(m.size, 50);
    assert.deepEqual(m.get("k49"), new Uint8Array(299).fill(199));
  },
);

test("a `batch` that cannot fit changes nothing; map operations in `pool.tx` join it", async () => {
  const path = tempPath();
  const pool = ObjectPool.create(path, { size: 8 * MiB, layout: "kv" });
  const m = PersistentMap.open(pool, "m");
  m.set("a", "1");
  await assert.rejects(
    async () =>
      await m.batch([
        { set: ["b", "2"] },
        { delete: "a" },
        { set: ["huge", new Uint8Array(9 * MiB)] },
      ]),
    OutOfSpaceError,
  );
  assert.deepEqual([...m.entries()], [["a", "1"]]);
  const root = pool.root(8);
  assert.throws(() =>
    pool.tx((tx) => {
      m.set("c", "3");
      tx.setU64(root, 0, 1);
      throw new Error("no");
    }), /no/);
  assert.equal(m.get("c"), undefined);
  assert.equal(pool.getU64(root, 0), 0);
  pool.tx((tx) => {
    m.set("c", "3");
    m.delete("a");
    tx.setU64(root, 0, 2);
  });
  assert.deepEqual([...m.entries()], [["c", "3"]]);
  assert.equal(pool.getU64(root, 0), 2);
  pool.close();
  using again = ObjectPool.open(path, { layout: "kv" });
  using m2 = PersistentMap.open(again, "m");
  assert.deepEqual([...m2.entries()], [["c", "3"]]);
  assert.equal(again.stats().heap.objects, 1 + 1 + 1 + 1 + 1); // root, map, dir, leaf, node
});

test("`closed` says when a map's calls throw ClosedError: its close, its pool's close, or the abort of the transaction that created it", () => {
  using pool = ObjectPool.create(tempPath(), { size: 16 * MiB, layout: "kv" });
  const m = PersistentMap.open(pool, "m");
  assert.equal(m.closed, false);
  m.close();
  assert.equal(m.closed, true);
  let made: PersistentMap | undefined;
  assert.throws(
    () =>
      pool.tx(() => {
        made = PersistentMap.open(pool, "dropped");
        throw new Error("abort");
      }),
    /abort/,
  );
  assert.equal(made!.closed, true);
  assert.throws(() => made!.get("k"), ClosedError);
  const n = PersistentMap.open(pool, "n");
  pool.close();
  assert.equal(n.closed, true);
  assert.throws(() => n.size, ClosedError);
});
