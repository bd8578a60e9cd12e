// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// The object store at its edges: aborts, a close at the wrong time, a
// map changed while it is iterated, keys and arguments at their limits.
// Each test is the probe that found a bug, or pins a contract no other
// test file checks.
import { ClosedError, OutOfSpaceError } from "../errors/mod.ts";
import { all } from "../future/mod.ts";
import {
  checkObjectPool,
  MAX_KEY,
  ObjectPool,
  PersistentMap,
  type Transaction,
} from "../obj/mod.ts";
import { assert, moverTest, tempPath, test } from "./_harness.ts";

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

test("`close()` inside a transaction's callback is a TypeError: nothing of the transaction is committed, the pool stays open", async () => {
  const path = tempPath();
  {
    using pool = ObjectPool.create(path, { size: 8 * MiB, layout: "a" });
    const root = pool.root(64);
    assert.throws(
      () =>
        pool.tx((tx) => {
          tx.setU64(root, 0, 7);
          pool.close();
        }),
      (e) => e instanceof TypeError && /inside a transaction/.test(e.message),
    );
    assert.equal(pool.closed, false);
    assert.equal(pool.getU64(root, 0), 0);
    // an asynchronous transaction staged before shares the group that
    // closing would have committed, with the half-run one's entries
    const first = pool.txAsync((tx) => tx.setU64(root, 8, 1));
    const second = pool.txAsync((tx) => {
      tx.setU64(root, 0, 7);
      pool.close();
    });
    await assert.rejects(async () => await second, TypeError);
    await first;
    assert.equal(pool.getU64(root, 0), 0);
    assert.equal(pool.getU64(root, 8), 1);
  }
  using pool = ObjectPool.open(path, { layout: "a" });
  const root = pool.root(64);
  assert.equal(pool.getU64(root, 0), 0, "the aborted transaction is absent");
  assert.equal(pool.getU64(root, 8), 1);
});

test("`close()` commits asynchronous transactions never polled or polled once; their futures complete after it", async () => {
  const path = tempPath();
  const pool = ObjectPool.create(path, { size: 8 * MiB, layout: "a" });
  const root = pool.root(64);
  const polled = pool.txAsync((tx) => {
    tx.setU64(root, 0, 1);
    return "one";
  });
  // one turn of the event loop: the future is polled (its group sealed)
  await Promise.race([polled, new Promise((r) => setTimeout(r, 0))]);
  const never = pool.txAsync((tx) => {
    tx.setU64(root, 8, 2);
    return "two";
  });
  pool.close();
  pool[Symbol.dispose](); // idempotent
  assert.deepEqual(await all([polled, never]), ["one", "two"]);
  assert.throws(() => pool.getU64(root, 0), ClosedError);
  using again = ObjectPool.open(path, { layout: "a" });
  const r = again.root(64);
  assert.deepEqual([again.getU64(r, 0), again.getU64(r, 8)], [1, 2]);
});

test("a transaction too large for the log fails alone: the asynchronous ones staged around it commit, and the pool goes on", async () => {
  const path = tempPath();
  {
    using pool = ObjectPool.create(path, {
      size: 16 * MiB,
      layout: "a",
      logSize: 256 * 1024,
    });
    const root = pool.root(64);
    const big = pool.tx((tx) => tx.alloc(MiB));
    const before = pool.stats().heap;
    const fs = [0, 1, 2].map((i) =>
      pool.txAsync((tx) => tx.setU64(root, 8 * i, i + 1))
    );
    const tooBig = pool.txAsync((tx) => {
      tx.setU64(root, 32, 9);
      tx.alloc(100);
      tx.write(big, 0, new Uint8Array(200 * 1024).fill(1));
    });
    fs.push(pool.txAsync((tx) => tx.setU64(root, 24, 4)));
    await assert.rejects(
      async () => await tooBig,
      (e) => e instanceof OutOfSpaceError && /redo log/.test(e.message),
    );
    await all(fs);
    assert.deepEqual(
      [0, 8, 16, 24, 32].map((o) => pool.getU64(root, o)),
      [1, 2, 3, 4, 0],
    );
    assert.deepEqual(pool.stats().heap, before);
    assert.deepEqual(pool.read(big, 0, 16), new Uint8Array(16));
    pool.tx((tx) => tx.setU64(root, 40, 5));
  }
  using pool = ObjectPool.open(path, { layout: "a" });
  const root = pool.root(64);
  assert.deepEqual(
    [0, 8, 16, 24, 32, 40].map((o) => pool.getU64(root, o)),
    [1, 2, 3, 4, 0, 5],
  );
  assert.deepEqual(checkObjectPool(pool).problems, []);
});

test("a nested `pool.tx` whose error a `txAsync` callback swallows still fails the future, with nothing changed", async () => {
  using pool = ObjectPool.create(tempPath(), { size: 8 * MiB, layout: "a" });
  const root = pool.root(16);
  const f = pool.txAsync((tx) => {
    tx.setU64(root, 0, 3);
    try {
      pool.tx(() => {
        throw new Error("inner");
      });
    } catch {
      // swallowed, but the transaction is doomed
    }
    return 1;
  });
  await assert.rejects(async () => await f, /inner/);
  assert.equal(pool.getU64(root, 0), 0);
});

test("a handle of an earlier open of the same file is a TypeError, not another object", () => {
  const path = tempPath();
  let old;
  {
    using pool = ObjectPool.create(path, { size: 8 * MiB, layout: "a" });
    old = pool.root(16);
  }
  using pool = ObjectPool.open(path, { layout: "a" });
  assert.equal(pool.root(16).offset, old.offset);
  assert.throws(() => pool.read(old), TypeError);
  assert.throws(() => pool.tx((tx) => tx.setU64(old, 0, 1)), TypeError);
});

test("a bigint offset to `read` is the pool's TypeError naming the offset", () => {
  using pool = ObjectPool.create(tempPath(), { size: 8 * MiB, layout: "a" });
  const root = pool.root(16);
  // without a length, the default length is computed from the offset
  assert.throws(
    () => pool.read(root, 5n as never),
    (e) =>
      e instanceof TypeError && /read: offset must be a number/.test(e.message),
  );
  assert.throws(
    () => pool.read(root, 0n as never, 1),
    (e) =>
      e instanceof TypeError && /read: offset must be a number/.test(e.message),
  );
});

test("entries() of a map changed while it is iterated yields each key with its own value, skipping deleted keys", () => {
  using pool = ObjectPool.create(tempPath(), { size: 8 * MiB, layout: "a" });
  using m = PersistentMap.open(pool, "m");
  m.set("a", "1");
  m.set("b", "22222");
  m.set("d", "4");
  m.set(Uint8Array.of(1), "bin");
  const out: [unknown, unknown][] = [];
  for (const [k, v] of m.entries()) {
    out.push([k, v]);
    if (k === "a") {
      // "b" is deleted before it is reached; its node's block is taken by
      // the node of "c", a key of the same length with a shorter value
      m.delete("b");
      m.set("c", "3");
      // "d" is deleted and set again: a new index entry
      m.delete("d");
      m.set("d", "44");
      m.delete(Uint8Array.of(1));
    }
  }
  assert.deepEqual(out, [["a", "1"], ["d", "44"]]);
  assert.deepEqual(
    new Map(m.entries() as Iterable<[string, string]>),
    new Map([["a", "1"], ["c", "3"], ["d", "44"]]),
  );
});

test("a map opened in a transaction that aborts does not exist: a later open creates it again", () => {
  const path = tempPath();
  {
    using pool = ObjectPool.create(path, { size: 8 * MiB, layout: "a" });
    assert.throws(() =>
      pool.tx(() => {
        const m = PersistentMap.open(pool, "m");
        m.set("x", "y");
        throw new Error("abort");
      }), /abort/);
    using m = PersistentMap.open(pool, "m");
    m.set("a", "1");
    assert.equal(m.get("a"), "1");
    assert.equal(m.get("x"), undefined);
  }
  using pool = ObjectPool.open(path, { layout: "a" });
  using m = PersistentMap.open(pool, "m");
  assert.deepEqual([...m.entries()], [["a", "1"]]);
  assert.deepEqual(checkObjectPool(pool).problems, []);
});

test("map keys: MAX_KEY counts a string key's UTF-8 bytes; empty keys of both kinds are distinct", () => {
  using pool = ObjectPool.create(tempPath(), { size: 8 * MiB, layout: "a" });
  using m = PersistentMap.open(pool, "m");
  // 3 UTF-8 bytes a char: a third of MAX_KEY fits, one char more does not
  const fits = "€".repeat(Math.floor(MAX_KEY / 3));
  m.set(fits, "v");
  assert.equal(m.get(fits), "v");
  const tooLong = "€".repeat(Math.floor(MAX_KEY / 3) + 1);
  for (
    const op of [
      () => m.set(tooLong, "v"),
      () => m.get(tooLong),
      () => m.batch([{ set: [tooLong, "v"] }]),
    ]
  ) {
    assert.throws(
      op,
      (e) => e instanceof RangeError && /UTF-8/.test(e.message),
    );
  }
  m.set("", "s");
  m.set(new Uint8Array(0), new Uint8Array(0));
  assert.equal(m.get(""), "s");
  assert.deepEqual(m.get(new Uint8Array(0)), new Uint8Array(0));
  assert.equal(m.size, 3);
});

test("a nested `pool.tx` that throws `undefined` dooms the outer transaction too", async () => {
  using pool = ObjectPool.create(tempPath(), { size: 8 * MiB, layout: "a" });
  const root = pool.root(16);
  // a failure is kept as "the first one not undefined": `undefined` itself
  // must not read as no failure at all
  const swallow = (tx: Transaction) => {
    tx.setU64(root, 0, 1);
    try {
      pool.tx(() => {
        throw undefined;
      });
    } catch {
      // swallowed, but the transaction is doomed
    }
  };
  assert.throws(
    () => pool.tx(swallow),
    (e) => e instanceof TypeError && /threw undefined/.test(e.message),
  );
  await assert.rejects(async () => await pool.txAsync(swallow), TypeError);
  assert.equal(pool.getU64(root, 0), 0);
});

test("a string key, value or map name with a lone surrogate is a RangeError: stored as U+FFFD, two such keys would be one after a reopen", () => {
  const path = tempPath();
  {
    using pool = ObjectPool.create(path, { size: 8 * MiB, layout: "a" });
    using m = PersistentMap.open(pool, "m");
    const lone = (e: unknown) =>
      e instanceof RangeError && /lone surrogate/.test(e.message);
    for (const key of ["\uD800", "a\uDFFFb", "\uDFFF\uD800"]) {
      assert.throws(() => m.set(key, "v"), lone);
      assert.throws(() => m.get(key), lone);
      assert.throws(() => m.batch([{ delete: key }]), lone);
    }
    assert.throws(() => PersistentMap.open(pool, "\uD800"), lone);
    // a value too: it would read back with U+FFFD in its place
    assert.throws(() => m.set("k", "a\uD800"), lone);
    assert.throws(() => m.batch([{ set: ["k", "\uDFFF"] }]), lone);
    assert.equal(m.has("k"), false);
    // a pair is well-formed, and its bytes are as distinct as its chars
    m.set("\uD83D\uDE00", "pair");
    m.set("\uFFFD", "replacement");
  }
  using pool = ObjectPool.open(path, { layout: "a" });
  using m = PersistentMap.open(pool, "m");
  assert.equal(m.get("\uD83D\uDE00"), "pair");
  assert.equal(m.get("\uFFFD"), "replacement");
  assert.equal(m.size, 2);
});

test("`root()` outside a transaction, while a `txAsync` that grew the root is not applied, gives a handle the pool's reads accept", async () => {
  using pool = ObjectPool.create(tempPath(), { size: 8 * MiB, layout: "a" });
  pool.tx((tx) => tx.setU64(pool.root(16), 8, 77));
  const grown = pool.txAsync((tx) => {
    const r = pool.root(4096); // joins the asynchronous transaction
    tx.setU64(r, 4000, 5);
    return r;
  });
  // the pool's reads see applied transactions only: the staged root's
  // header is not home yet, so its handle was a StaleObjectError here
  const root = pool.root(16);
  assert.equal(root.size, 4096);
  assert.equal(pool.getU64(root, 8), 77);
  assert.equal(pool.getU64(root, 4000), 5);
  assert.equal((await grown).offset, root.offset);
});

moverTest(
  "`close()` while a group's mover batch is in flight waits for it, and commits the groups staged behind it",
  async (mover) => {
    const path = tempPath();
    const pattern = (n: number, seed: number) =>
      new Uint8Array(n).map((_, i) => i * 7 + seed);
    const objs = [];
    {
      const pool = ObjectPool.create(path, {
        size: 16 * MiB,
        layout: "a",
        mover,
      });
      const root = pool.root(8 * 16);
      // large objects: their writes go to the mover as one batch
      for (let i = 0; i < 8; i++) {
        objs.push(pool.tx((tx) => {
          const o = tx.alloc(64 * 1024);
          tx.setU64(root, 8 * i, o.offset);
          return o;
        }));
      }
      const first = objs.map((o, i) =>
        pool.txAsync((tx) => tx.write(o, 0, pattern(o.size, i)))
      );
      // one turn: the group is sealed and its batch started (on a mover of
      // threads, still in flight)
      await Promise.race([first[0], new Promise((r) => setTimeout(r, 0))]);
      const second = objs.map((o, i) =>
        pool.txAsync((tx) => tx.write(o, 100, pattern(100, 50 + i)))
      );
      pool.close();
      await all([...first, ...second]);
    }
    using pool = ObjectPool.open(path, { layout: "a", mover });
    assert.equal(pool.recovery.records, 0, "close checkpointed everything");
    for (let i = 0; i < objs.length; i++) {
      const want = pattern(64 * 1024, i);
      want.set(pattern(100, 50 + i), 100);
      assert.deepEqual(pool.read(pool.object(objs[i].offset)), want, `${i}`);
    }
  },
);

test("a transaction's methods give their own TypeError for a null handle and a bigint offset or length", () => {
  // a null handle matched the transaction's "last handle checked" (null
  // at first and after a free), and a bigint reached `offset + length`
  using pool = ObjectPool.create(tempPath(), { size: 8 * MiB, layout: "a" });
  const root = pool.root(16);
  const isHandle = (e: unknown) =>
    e instanceof TypeError && /must be an ObjectHandle/.test(e.message);
  assert.throws(
    () => pool.tx((tx) => tx.write(null as never, 0, new Uint8Array(1))),
    isHandle,
  );
  assert.throws(() => pool.tx((tx) => tx.free(null as never)), isHandle);
  assert.throws(() => pool.tx((tx) => tx.getU64(null as never, 0)), isHandle);
  const isNumber = (what: string) => (e: unknown) =>
    e instanceof TypeError &&
    new RegExp(`${what} must be a number`).test(e.message);
  assert.throws(
    () => pool.tx((tx) => tx.read(root, 0n as never, 1)),
    isNumber("offset"),
  );
  assert.throws(
    () => pool.tx((tx) => tx.read(root, 0, 1n as never)),
    isNumber("length"),
  );
  assert.throws(
    () => pool.tx((tx) => tx.getU64(root, 0n as never)),
    isNumber("offset"),
  );
  assert.throws(
    () => pool.tx((tx) => tx.setU64(root, 0n as never, 1)),
    isNumber("offset"),
  );
});

test("a layout with a lone surrogate is a RangeError at create", () => {
  // it would be stored as U+FFFD, and the pool never opened with it
  assert.throws(
    () => ObjectPool.create(tempPath(), { size: 8 * MiB, layout: "\uD800" }),
    RangeError,
  );
});
