// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// The object store: pools, transactions (aborts, nesting, huge and tiny
// ranges, allocation failures), asynchronous transactions on every mover,
// recovery of committed transactions, and the typed errors of misuse.
import { copyFileSync, readFileSync, writeFileSync } from "node:fs";
import { ClosedError, OutOfSpaceError, PmemError } from "../errors/mod.ts";
import { all, wait } from "../future/mod.ts";
import {
  checkObjectPool,
  CorruptPoolError,
  LayoutMismatchError,
  type ObjectHandle,
  ObjectPool,
  PersistentMap,
  StaleObjectError,
  type Transaction,
} from "../obj/mod.ts";
import { poolEngine } from "../obj/pool_access.ts";
import { VIEW_WINDOWS } from "../pmem2/view_buffers.ts";
import { viewedBytes } from "../pmem2/mapping_access.ts";
import { createObjectPool } from "../testing/mod.ts";
import {
  assert,
  moverTest,
  patch,
  rng,
  RUNTIME,
  tempPath,
  test,
  viewsMadeBy,
} from "./_harness.ts";

const MiB = 1 << 20;

function u64Bytes(v: number): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(v), true);
  return out;
}

function bytes(n: number, fill: number): Uint8Array {
  return new Uint8Array(n).fill(fill);
}

test("`ObjectPool.create()` makes a pool whose root is zeroed and the same object on every open", () => {
  const path = tempPath();
  let offset: number;
  {
    using pool = ObjectPool.create(path, { size: 8 * MiB, layout: "app" });
    const root = pool.root(64);
    assert.deepEqual(pool.read(root), new Uint8Array(64));
    assert.equal(pool.root(32).offset, root.offset);
    offset = root.offset;
    pool.tx((tx) => tx.setU64(root, 8, 1234));
    assert.equal(pool.layout, "app");
  }
  using pool = ObjectPool.open(path, { layout: "app" });
  const root = pool.root(64);
  assert.equal(root.offset, offset);
  assert.equal(pool.getU64(root, 8), 1234);
  assert.deepEqual(pool.recovery, { records: 0, entries: 0, wrote: false });
});

test("`root()` grows the root, keeping its bytes", () => {
  using pool = ObjectPool.create(tempPath(), { size: 8 * MiB, layout: "a" });
  pool.tx((tx) => tx.setU64(pool.root(16), 8, 77));
  const big = pool.root(4096);
  assert.equal(big.size, 4096);
  assert.equal(pool.getU64(big, 8), 77);
  assert.equal(pool.getU64(big, 4000), 0);
});

test("`ObjectPool.open()` refuses another layout, a foreign file, a second open, and `create` an existing file", () => {
  const path = tempPath();
  using pool = ObjectPool.create(path, { size: 8 * MiB, layout: "mine" });
  assert.throws(
    () => ObjectPool.create(path, { size: 8 * MiB, layout: "mine" }),
    (e) => e instanceof PmemError && e.errno === 17,
  );
  assert.throws(
    () => ObjectPool.open(path, { layout: "mine" }),
    (e) => e instanceof PmemError && e.errno === 11,
  );
  pool.close();
  assert.throws(
    () => ObjectPool.open(path, { layout: "theirs" }),
    (e) =>
      e instanceof LayoutMismatchError && e.found === "mine" &&
      e.expected === "theirs",
  );
  const other = tempPath("other");
  writeFileSync(other, new Uint8Array(16 * MiB).fill(7));
  assert.throws(
    () => ObjectPool.open(other, { layout: "mine" }),
    (e) => e instanceof PmemError && /not an object pool/.test(e.message),
  );
  patch(path, 40, new Uint8Array([1]));
  assert.throws(
    () => ObjectPool.open(path, { layout: "mine" }),
    (e) => e instanceof CorruptPoolError && /pool header/.test(e.structure),
  );
  assert.throws(
    () => ObjectPool.create(tempPath(), { size: 1 << 20, layout: "x" }),
    RangeError,
  );
  assert.throws(
    () => ObjectPool.create(tempPath(), { size: 8 * MiB, layout: 5 as never }),
    TypeError,
  );
});

test("a transaction whose callback throws changes nothing: writes, allocations and frees are undone", () => {
  using pool = ObjectPool.create(tempPath(), { size: 8 * MiB, layout: "a" });
  const root = pool.root(64);
  const kept = pool.tx((tx) => {
    const o = tx.alloc(100);
    tx.write(o, 0, bytes(100, 1));
    tx.setU64(root, 0, o.offset);
    return o;
  });
  const before = pool.stats().heap;
  const boom = new Error("boom");
  assert.throws(() =>
    pool.tx((tx) => {
      tx.setU64(root, 0, 0);
      tx.write(kept, 0, bytes(100, 9));
      tx.free(kept);
      for (let i = 0; i < 50; i++) tx.alloc(3000);
      throw boom;
    }), (e) => e === boom);
  assert.deepEqual(pool.stats().heap, before);
  assert.equal(pool.getU64(root, 0), kept.offset);
  assert.deepEqual(pool.read(kept), bytes(100, 1));
  // the space the aborted transaction reserved is allocatable again
  const again = pool.tx((tx) => tx.alloc(3000));
  assert.equal(pool.stats().heap.objects, before.objects + 1);
  pool.tx((tx) => tx.free(again));
  // and the transactions after it did not carry any of it
  assert.equal(pool.getU64(root, 0), kept.offset);
  assert.deepEqual(pool.read(kept), bytes(100, 1));
});

test("a nested `tx` joins the outer transaction, and its failure aborts the whole", () => {
  using pool = ObjectPool.create(tempPath(), { size: 8 * MiB, layout: "a" });
  const root = pool.root(64);
  pool.tx((tx) => {
    tx.setU64(root, 0, 1);
    const inner = pool.tx((t2) => {
      assert.equal(t2, tx);
      const o = t2.alloc(8);
      t2.setU64(root, 8, o.offset);
      return o;
    });
    tx.setU64(inner, 0, 5);
  });
  assert.equal(pool.getU64(pool.object(pool.getU64(root, 8)), 0), 5);
  assert.throws(() =>
    pool.tx((tx) => {
      tx.setU64(root, 0, 2);
      try {
        pool.tx(() => {
          throw new Error("inner");
        });
      } catch {
        // swallowed here, but the transaction is doomed
      }
    }), /inner/);
  assert.equal(pool.getU64(root, 0), 1);
});

test("reads in a transaction see its writes, its new objects and the transactions started before it", async () => {
  using pool = ObjectPool.create(tempPath(), { size: 8 * MiB, layout: "a" });
  const root = pool.root(64);
  const f = pool.txAsync((tx) => tx.setU64(root, 0, 41));
  pool.tx((tx) => {
    assert.equal(tx.getU64(root, 0), 41); // staged, not applied yet
    tx.setU64(root, 0, tx.getU64(root, 0) + 1);
    const o = tx.alloc(32);
    assert.deepEqual(tx.read(o, 0, 32), new Uint8Array(32));
    tx.write(o, 4, bytes(4, 3));
    assert.deepEqual(tx.read(o, 2, 6), Uint8Array.of(0, 0, 3, 3, 3, 3));
    const big = tx.alloc(100_000);
    tx.write(big, 99_990, bytes(10, 5));
    assert.deepEqual(
      tx.read(big, 99_988, 12),
      Uint8Array.of(0, 0, ...bytes(10, 5)),
    );
  });
  await f;
  assert.equal(pool.getU64(root, 0), 42);
});

test("objects allocated and freed by `txAsync` not applied yet are seen by the transactions after it, in its group or the next", async () => {
  using pool = ObjectPool.create(tempPath(), { size: 8 * MiB, layout: "a" });
  for (const sameGroup of [true, false]) {
    const old = pool.tx((tx) => tx.alloc(16));
    let fresh!: ObjectHandle;
    const f = pool.txAsync((tx) => {
      fresh = tx.alloc(24, { type: 7 });
      tx.free(old);
    });
    const sees = (tx: Transaction) => {
      const o = tx.object(fresh.offset);
      assert.equal(o.size, 24);
      assert.equal(o.type, 7);
      tx.write(fresh, 0, bytes(4, 9));
      assert.throws(() => tx.object(old.offset), StaleObjectError);
      assert.throws(() => tx.write(old, 0, bytes(4, 1)), StaleObjectError);
    };
    // in the staging group of `f`, or (synchronous) in a group after it,
    // which seals the group of `f` without applying it
    if (sameGroup) await all([f, pool.txAsync(sees)]);
    else {
      pool.tx(sees);
      await f;
    }
    assert.deepEqual(pool.read(fresh, 0, 4), bytes(4, 9));
    assert.throws(() => pool.read(old), StaleObjectError);
  }
});

test("tiny, empty and huge ranges, and an object of many chunks, survive a reopen", () => {
  const path = tempPath();
  const r = rng(5);
  const big = new Uint8Array(3 * MiB).map(() => r() * 256);
  {
    using pool = ObjectPool.create(path, {
      size: 64 * MiB,
      layout: "a",
      logSize: 16 * MiB,
    });
    const root = pool.root(64);
    pool.tx((tx) => {
      const o = tx.alloc(3 * MiB);
      tx.write(o, 0, big);
      tx.write(o, 17, new Uint8Array(0));
      tx.write(o, 3 * MiB - 1, Uint8Array.of(1));
      tx.setU64(root, 0, o.offset);
      const tiny = tx.alloc(1);
      tx.setU64(root, 8, tiny.offset);
    });
    // a transaction larger than an eighth of the log is refused whole
    const usage = pool.stats().heap;
    assert.throws(
      () =>
        pool.tx((tx) => {
          const o = pool.object(pool.getU64(root, 0));
          tx.alloc(5 * MiB);
          for (let i = 0; i < 3; i++) tx.write(o, 0, new Uint8Array(3 * MiB));
        }),
      (e) => e instanceof OutOfSpaceError && /redo log/.test(e.message),
    );
    assert.deepEqual(pool.stats().heap, usage);
  }
  using pool = ObjectPool.open(path, { layout: "a" });
  const root = pool.root(64);
  const o = pool.object(pool.getU64(root, 0));
  big[3 * MiB - 1] = 1;
  assert.deepEqual(pool.read(o), big);
  assert.deepEqual(pool.read(pool.object(pool.getU64(root, 8))), bytes(1, 0));
});

test("`OutOfSpaceError` when the pool is full leaves the transaction's changes out; freed space is used again", () => {
  using pool = ObjectPool.create(tempPath(), { size: 8 * MiB, layout: "a" });
  const root = pool.root(4096);
  const objs: ObjectHandle[] = [];
  for (;;) {
    try {
      objs.push(pool.tx((tx) => {
        const o = tx.alloc(60_000);
        tx.setU64(root, 8 * (objs.length % 500), o.offset);
        return o;
      }));
    } catch (e) {
      assert.ok(e instanceof OutOfSpaceError, String(e));
      break;
    }
  }
  assert.ok(objs.length > 50);
  const usage = pool.stats().heap;
  assert.throws(() =>
    pool.tx((tx) => {
      tx.free(objs[0]);
      tx.alloc(3 * MiB);
    }), OutOfSpaceError);
  assert.deepEqual(pool.stats().heap, usage);
  pool.tx((tx) => {
    for (const o of objs.slice(0, 10)) tx.free(o);
  });
  pool.tx((tx) => tx.alloc(60_000));
});

test("misuse gives typed errors: stale, foreign and closed handles, ranges outside an object, a finished transaction", async () => {
  using pool = ObjectPool.create(tempPath(), { size: 8 * MiB, layout: "a" });
  using other = ObjectPool.create(tempPath("b"), {
    size: 8 * MiB,
    layout: "a",
  });
  const root = pool.root(16);
  const o = pool.tx((tx) => tx.alloc(16));
  pool.tx((tx) => tx.free(o));
  assert.throws(() => pool.read(o), StaleObjectError);
  assert.throws(() => pool.tx((tx) => tx.free(o)), StaleObjectError);
  assert.throws(() => pool.object(o.offset), StaleObjectError);
  assert.throws(() => pool.object(12345), StaleObjectError);
  assert.throws(() => other.read(root), TypeError);
  assert.throws(
    () => other.tx((tx) => tx.write(root, 0, bytes(1, 1))),
    TypeError,
  );
  assert.throws(() => pool.read(root, 10, 7), RangeError);
  assert.throws(
    () => pool.tx((tx) => tx.write(root, 9, bytes(8, 1))),
    RangeError,
  );
  assert.throws(() => pool.tx((tx) => tx.setU64(root, 0, -1)), RangeError);
  assert.throws(() => pool.tx((tx) => tx.free(root)), TypeError);
  assert.throws(() => pool.tx((tx) => tx.alloc(-1)), RangeError);
  // pmemobj_tx_alloc refuses a size of 0 (EINVAL) too
  assert.throws(
    () => pool.tx((tx) => tx.alloc(0)),
    (e) =>
      e instanceof RangeError &&
      /size must be a positive integer/.test(e.message),
  );
  let kept: Transaction | undefined;
  pool.tx((tx) => void (kept = tx));
  assert.throws(() => kept!.alloc(1), ClosedError);
  assert.throws(() => pool.tx(() => pool.txAsync(() => {})), TypeError);
  assert.throws(() => pool.tx(() => Promise.resolve(1)), TypeError);
  await assert.rejects(async () =>
    await pool.txAsync(() => {
      throw new RangeError("mine");
    }), /mine/);
  const view = pool.view(root);
  pool.close();
  pool.close();
  assert.equal(view.length, 0);
  assert.throws(() => pool.read(root), ClosedError);
  assert.throws(() => pool.tx(() => {}), ClosedError);
  assert.throws(() => pool.root(16), ClosedError);
});

moverTest(
  "an object allocated over freed bytes is all zeros, by `tx` and by `txAsync`, for every size up to a page",
  async (mover) => {
    using pool = createObjectPool(tempPath(), {
      size: 16 * MiB,
      layout: "a",
      mover,
    });
    const sizes = [1, 4, 8, 12, 16, 24, 60, 64, 100, 124, 128, 132, 200, 4096];
    for (const size of sizes) {
      for (let round = 0; round < 4; round++) {
        // dirty the space an allocation of this size takes next: a block
        // freed by the transaction before is used again
        const dirty = pool.tx((tx) => {
          const o = tx.alloc(size);
          tx.write(o, 0, bytes(size, 0xa5));
          return o;
        });
        pool.tx((tx) => tx.free(dirty));
        const o = round % 2 === 0
          ? pool.tx((tx) => tx.alloc(size))
          : await pool.txAsync((tx) => tx.alloc(size));
        assert.deepEqual(
          pool.read(o),
          new Uint8Array(size),
          `size ${size}, round ${round}`,
        );
        pool.tx((tx) => tx.free(o));
      }
    }
  },
);

moverTest(
  "many `txAsync` in flight commit with one persist and apply through the mover",
  async (mover) => {
    let drains = 0;
    using pool = createObjectPool(tempPath(), {
      size: 16 * MiB,
      layout: "a",
      mover,
      tracer: { flush() {}, drain: () => void drains++ },
    });
    const root = pool.root(8 * 64);
    drains = 0;
    const fs = [];
    for (let i = 0; i < 64; i++) {
      fs.push(pool.txAsync((tx) => {
        const o = tx.alloc(200 + i);
        tx.write(o, 0, bytes(200 + i, i));
        tx.setU64(root, 8 * i, o.offset);
        return o;
      }));
    }
    const objs = await all(fs);
    assert.equal(drains, 1, "one persist for the group");
    for (let i = 0; i < 64; i++) {
      assert.equal(pool.getU64(root, 8 * i), objs[i].offset);
      assert.deepEqual(pool.read(objs[i]), bytes(200 + i, i));
    }
    // updates of large ranges of existing objects go through the mover batch
    const more = [];
    for (let i = 0; i < 64; i++) {
      more.push(
        pool.txAsync((tx) => tx.write(objs[i], 0, bytes(200, 255 - i))),
      );
    }
    await all(more);
    for (let i = 0; i < 64; i++) {
      assert.deepEqual(pool.read(objs[i], 0, 200), bytes(200, 255 - i));
    }
  },
);

moverTest(
  "a pool of several view windows: objects across window strides, tx and txAsync, the map, a reopen and a replay",
  async (mover) => {
    // 160 MiB: on Bun, past the size one buffer may view (`VIEW_WINDOWS`),
    // so the store sees the pool through windows of 4 MiB every 2 MiB.
    // Objects of 1.1 MiB and 700 KiB take whole chunks, so some straddle
    // a 2 MiB boundary; 3 MiB ones are longer than a window's span; the
    // 10 MiB log wraps, with records across boundaries.
    const size = 160 * MiB;
    const stride = 2 * MiB; // Bun's window stride
    const path = tempPath();
    const copy = tempPath("copy");
    const pattern = (n: number, seed: number) => {
      const out = new Uint8Array(n);
      for (let i = 0; i < n; i++) out[i] = i * 7 + seed * 13 + (i >>> 12);
      return out;
    };
    const sizes = [
      1126 * 1024,
      3 * MiB,
      1126 * 1024,
      100,
      1126 * 1024,
      700 * 1024,
    ];
    const offsets: number[] = [];
    const expect: Uint8Array[] = [];
    const values = new Map<string, string | Uint8Array>();
    {
      using pool = ObjectPool.create(path, { size, layout: "w", mover });
      const media = poolEngine(pool).media;
      assert.equal(media.whole, RUNTIME !== "bun");
      const root = pool.root(8 * 32);
      for (let i = 0; i < 3 * sizes.length; i++) {
        const n = sizes[i % sizes.length];
        pool.tx((tx) => {
          const o = tx.alloc(n);
          tx.write(o, 0, pattern(n, i));
          tx.setU64(root, 8 * i, o.offset);
          offsets.push(o.offset);
        });
      }
      const across = offsets.filter((o, i) =>
        sizes[i % sizes.length] < stride &&
        Math.floor(o / stride) !==
          Math.floor((o + sizes[i % sizes.length] - 1) / stride)
      );
      assert.ok(across.length >= 2, `${across.length} objects across`);
      // and one across a 4 MiB boundary, the end of an even window
      assert.ok(across.some((o) => o % (2 * stride) > stride));
      // rewrite every object in place, synchronously then asynchronously,
      // with an unaligned u64 near its end
      for (let round = 1; round <= 2; round++) {
        const fs = [];
        for (let i = 0; i < offsets.length; i++) {
          const o = pool.object(offsets[i]);
          const seed = 100 * round + i;
          const want = pattern(o.size, seed);
          want.set(u64Bytes(seed), o.size - 9);
          expect[i] = want;
          const body = (tx: Transaction) => {
            tx.write(o, 0, pattern(o.size, seed));
            tx.setU64(o, o.size - 9, seed);
          };
          if (round === 1) pool.tx(body);
          else fs.push(pool.txAsync(body));
        }
        await all(fs);
      }
      // a u64 across a stride in each straddling object, through each way
      for (const a of across) {
        const h = pool.object(a);
        const at = stride - (a % stride) - 3; // a word across it
        pool.tx((tx) => tx.setU64(h, at, 2 ** 52 + a));
        assert.equal(pool.getU64(h, at), 2 ** 52 + a);
        assert.equal(pool.getBigU64(h, at), 2n ** 52n + BigInt(a));
        pool.tx((tx) => assert.equal(tx.getU64(h, at), 2 ** 52 + a));
        expect[offsets.indexOf(a)].set(u64Bytes(2 ** 52 + a), at);
      }
      for (let i = 0; i < offsets.length; i++) {
        assert.deepEqual(pool.read(pool.object(offsets[i])), expect[i], `${i}`);
      }
      // the map, with values across boundaries and past a window's span
      {
        using m = PersistentMap.open(pool, "m");
        for (let i = 0; i < 60; i++) {
          const v = i % 3 === 0
            ? `v${i}`.repeat(50 * i)
            : pattern(12_300 * i, i);
          values.set(`k${i}`, v);
          m.set(`k${i}`, v);
        }
        values.set("big", "x".repeat(2 * MiB + 100) + "y");
        m.set("big", values.get("big")!);
        values.set("bigbin", pattern(3 * MiB, 5));
        await m.setAsync("bigbin", pattern(3 * MiB, 5));
        for (const [k, v] of values) assert.deepEqual(m.get(k), v, k);
      }
      // a small object's view is of one window, and nothing made a buffer
      // of the whole pool
      const small = pool.object(offsets[3]);
      assert.deepEqual(pool.view(small), expect[3]);
      const buf = RUNTIME === "bun" ? VIEW_WINDOWS.size : size;
      assert.equal(pool.view(small).buffer.byteLength, buf);
      assert.equal(media.mapping.view(0, 16).buffer.byteLength, buf);
      // a view of an object across the end of a window (an odd window's)
      for (const a of across) {
        assert.deepEqual(
          pool.view(pool.object(a)),
          expect[offsets.indexOf(a)],
        );
      }
      // a view of an object longer than a window's span works too
      assert.deepEqual(pool.view(pool.object(offsets[1])), expect[1]);
      // a record of a straddling object left in the log, to replay
      const last = offsets.indexOf(across[0]);
      expect[last] = pattern(expect[last].length, 77);
      pool.tx((tx) => tx.write(pool.object(across[0]), 0, expect[last]));
      assert.ok(pool.stats().logUsed > 0, "records to replay");
      copyFileSync(path, copy);
    }
    for (const p of [copy, path]) {
      using pool = ObjectPool.open(p, { layout: "w", mover });
      if (p === copy) assert.ok(pool.recovery.records > 0);
      for (let i = 0; i < offsets.length; i++) {
        assert.deepEqual(pool.read(pool.object(offsets[i])), expect[i], `${i}`);
      }
      using m = PersistentMap.open(pool, "m");
      for (const [k, v] of values) assert.deepEqual(m.get(k), v, k);
      assert.deepEqual(checkObjectPool(pool).problems, []);
    }
  },
  { timeout: 30_000 }, // (Bun under load passed 3 s of its 5 s default)
);

test("a pool of several view windows: words of an object staged across a window's end in the log", () => {
  // On Bun the store reaches a 160 MiB pool through windows: a
  // transaction's fresh object is staged in the log, and where its copy
  // crosses the end of a window (every 4 MiB) its unaligned words are
  // stored and loaded across it.
  using pool = ObjectPool.create(tempPath(), { size: 160 * MiB, layout: "w" });
  const log = poolEngine(pool).log;
  const root = pool.root(64);
  const end = 4 * MiB;
  // the data of an object staged first in a record: after the record's
  // header, the entry's and the object's
  const dataAt = () => 8192 + (log.head % log.size) + 32 + 16 + 16;
  let guard = 0;
  while (((end - dataAt() % end) % end) < 8 || (end - dataAt() % end) > 240) {
    pool.tx((tx) => tx.write(root, 0, bytes(64, guard & 255)));
    assert.ok(++guard < 100_000);
  }
  const want = new Uint8Array(256);
  const o = pool.tx((tx) => {
    const o = tx.alloc(256);
    for (let off = 0; off <= 248; off++) {
      const v = off * 1_000_003 + 1;
      tx.setU64(o, off, v);
      want.set(u64Bytes(v), off);
      assert.equal(tx.getU64(o, off), v);
      assert.equal(tx.getU32(o, off), v >>> 0);
    }
    return o;
  });
  assert.deepEqual(pool.read(o), want);
  for (const off of [0, 7, 101, 248]) {
    assert.equal(
      pool.getBigU64(o, off),
      new DataView(want.buffer).getBigUint64(off, true),
    );
  }
});

moverTest(
  "a checkpoint persists the homes a group's mover batch wrote",
  async (mover) => {
    // the mover stores behind the pool's back: unless the group notes its
    // homes dirty, the checkpoint drops the log with them unpersisted
    let flushed: [number, number][] = [];
    using pool = createObjectPool(tempPath(), {
      size: 16 * MiB,
      layout: "a",
      mover,
      tracer: { flush: (o, l) => void flushed.push([o, l]), drain() {} },
    });
    const objs = pool.tx((tx) => {
      const out = [];
      for (let i = 0; i < 16; i++) out.push(tx.alloc(4096));
      return out;
    });
    pool.flush();
    const fs = [];
    for (let i = 0; i < 16; i++) {
      // one range per object, 200 B, none overlapping: the mover's batch
      fs.push(pool.txAsync((tx) => tx.write(objs[i], 512, bytes(200, i))));
    }
    await all(fs);
    flushed = [];
    pool.flush();
    for (const o of objs) {
      const at = o.offset + 512;
      assert.ok(
        flushed.some(([f, l]) => f <= at && at + 200 <= f + l),
        `the checkpoint persisted [${at}, ${at + 200})`,
      );
    }
  },
);

moverTest(
  "overlapping `txAsync` are ordered: read-modify-writes of one counter all count",
  async (mover) => {
    using pool = ObjectPool.create(tempPath(), {
      size: 8 * MiB,
      layout: "a",
      mover,
    });
    const root = pool.root(4096);
    const fs = [];
    for (let i = 0; i < 40; i++) {
      fs.push(pool.txAsync((tx) => {
        tx.setU64(root, 0, tx.getU64(root, 0) + 1);
        tx.write(root, 64, bytes(1000, i)); // the same range, every time
        if (i === 7) throw new Error("skip");
      }));
    }
    const settled = await Promise.allSettled(fs);
    assert.equal(settled.filter((s) => s.status === "rejected").length, 1);
    assert.equal(pool.getU64(root, 0), 39);
    assert.deepEqual(pool.read(root, 64, 1000), bytes(1000, 39));
    assert.equal(wait(pool.txAsync((tx) => tx.getU64(root, 0))), 39);
  },
);

test("a crash that kept the log but no object page recovers every committed transaction", () => {
  const path = tempPath();
  const copy = tempPath("copy");
  const r = rng(3);
  const expected: Uint8Array[] = [];
  const logSize = 4 * MiB;
  {
    using pool = ObjectPool.create(path, {
      size: 32 * MiB,
      layout: "a",
      logSize,
    });
    const root = pool.root(8 * 100);
    pool.flush();
    const before = new Uint8Array(readFileSync(path));
    for (let i = 0; i < 100; i++) {
      const data = new Uint8Array(1 + Math.floor(r() * 5000)).map(() =>
        r() * 256
      );
      expected.push(data);
      pool.tx((tx) => {
        const o = tx.alloc(data.length);
        tx.write(o, 0, data);
        tx.setU64(root, 8 * i, o.offset);
      });
    }
    const after = new Uint8Array(readFileSync(path));
    // no checkpoint happened: the log holds all 100
    assert.deepEqual(after.subarray(4096, 4104), before.subarray(4096, 4104));
    // the image: the old state, with the new log
    before.set(after.subarray(8192, 8192 + logSize), 8192);
    writeFileSync(copy, before);
  }
  using pool = ObjectPool.open(copy, { layout: "a" });
  assert.equal(pool.recovery.records, 100);
  const root = pool.root(8 * 100);
  for (let i = 0; i < 100; i++) {
    assert.deepEqual(
      pool.read(pool.object(pool.getU64(root, 8 * i))),
      expected[i],
    );
  }
  assert.equal(pool.stats().heap.objects, 101);
});

test("`flush()` checkpoints: the log is empty and a reopen replays nothing", () => {
  const path = tempPath();
  const copy = tempPath("copy");
  {
    using pool = ObjectPool.create(path, { size: 8 * MiB, layout: "a" });
    pool.tx((tx) => tx.setU64(pool.root(8), 0, 9));
    pool.flush();
    assert.equal(pool.stats().logUsed, 0);
    copyFileSync(path, copy);
  }
  using pool = ObjectPool.open(copy, { layout: "a" });
  assert.equal(pool.recovery.records, 0);
  assert.equal(pool.getU64(pool.root(8), 0), 9);
});

test("`getBigU64()` reads every u64 exactly; `getU64()` throws a RangeError naming it above 2^53", () => {
  using pool = ObjectPool.create(tempPath(), { size: 8 * MiB, layout: "a" });
  const root = pool.root(64);
  const big = 2n ** 63n + 1n;
  pool.tx((tx) => {
    tx.setU64(root, 40, big);
    tx.setU64(root, 8, Number.MAX_SAFE_INTEGER);
    tx.setU64(root, 16, 2n ** 64n - 1n);
    tx.setU64(root, 27, 0x0002030405060708n); // unaligned in the object
  });
  const unsafe = (e: unknown) =>
    e instanceof RangeError && /getBigU64/.test(e.message) &&
    e.message.includes(String(big));
  assert.equal(pool.getBigU64(root, 40), big);
  assert.equal(pool.getBigU64(root, 16), 2n ** 64n - 1n);
  assert.equal(pool.getBigU64(root, 27), 0x0002030405060708n);
  assert.equal(pool.getU64(root, 27), 0x0002030405060708);
  assert.equal(pool.getU64(root, 8), Number.MAX_SAFE_INTEGER);
  assert.equal(pool.getBigU64(root, 8), BigInt(Number.MAX_SAFE_INTEGER));
  assert.throws(() => pool.getU64(root, 40), unsafe);
  assert.throws(() => pool.getBigU64(root, 60), RangeError);
  pool.tx((tx) => {
    assert.equal(tx.getBigU64(root, 40), big);
    assert.throws(() => tx.getU64(root, 40), unsafe);
    tx.setU64(root, 48, big + 2n); // staged, not applied yet
    assert.equal(tx.getBigU64(root, 48), big + 2n);
    assert.equal(tx.getBigU64(root, 27), 0x0002030405060708n);
    assert.equal(tx.getU64(root, 27), 0x0002030405060708);
    const o = tx.alloc(8); // unwritten: reads zeros
    assert.equal(tx.getBigU64(o, 0), 0n);
    tx.setU64(o, 0, big);
    assert.equal(tx.getBigU64(o, 0), big);
    assert.throws(() => tx.getU64(o, 0), RangeError);
  });
  assert.equal(pool.getBigU64(root, 48), big + 2n);
});

test("numeric arguments: a number that is no valid size or offset is a RangeError, a non-number a TypeError", () => {
  const isRange = (name: string) => (e: unknown) =>
    e instanceof RangeError && e.message.includes(name);
  const isType = (name: string) => (e: unknown) =>
    e instanceof TypeError && e.message.includes(name);
  const make = (o: Record<string, unknown>) => () =>
    ObjectPool.create(tempPath(), { size: 8 * MiB, layout: "x", ...o });
  for (const bad of [NaN, -1, 1.5, Infinity]) {
    assert.throws(make({ size: bad }), isRange("size"));
    assert.throws(make({ logSize: bad }), isRange("logSize"));
    assert.throws(make({ mode: bad }), isRange("mode"));
  }
  assert.throws(make({ size: "8388608" }), isType("size"));
  assert.throws(make({ logSize: 1n << 20n }), isType("logSize"));
  assert.throws(make({ mode: "644" }), isType("mode"));
  using pool = ObjectPool.create(tempPath(), { size: 8 * MiB, layout: "a" });
  assert.throws(() => pool.root(NaN), isRange("size"));
  assert.throws(() => pool.root("8" as never), isType("size"));
  assert.throws(() => pool.object(NaN), isRange("offset"));
  assert.throws(() => pool.object("4096" as never), isType("offset"));
  const root = pool.root(16);
  assert.throws(() => pool.read(root, NaN, 1), RangeError);
  assert.throws(() => pool.read(root, "0" as never, 1), TypeError);
  assert.throws(() => pool.read(root, 0, "1" as never), TypeError);
  assert.throws(() => pool.getU64(root, "0" as never), TypeError);
  assert.throws(() => pool.tx((tx) => tx.alloc(NaN)), isRange("size"));
  assert.throws(() => pool.tx((tx) => tx.alloc("8" as never)), isType("size"));
  assert.throws(
    () => pool.tx((tx) => tx.alloc(8, { type: NaN })),
    isRange("type"),
  );
  assert.throws(
    () => pool.tx((tx) => tx.alloc(8, { type: "1" as never })),
    isType("type"),
  );
  assert.throws(() => pool.tx((tx) => tx.setU64(root, 0, NaN)), RangeError);
  assert.throws(
    () => pool.tx((tx) => tx.setU64(root, 0, "1" as never)),
    TypeError,
  );
  assert.throws(() => pool.tx((tx) => tx.setU32(root, 0, NaN)), RangeError);
  assert.throws(
    () => pool.tx((tx) => tx.setU32(root, 0, "1" as never)),
    TypeError,
  );
  assert.throws(
    () => pool.tx((tx) => tx.write(root, "0" as never, bytes(1, 1))),
    TypeError,
  );
  // a number past 2^53 prints exactly
  assert.throws(
    () => pool.tx((tx) => tx.setU64(root, 0, 2 ** 64)),
    (e) => e instanceof RangeError && /18446744073709551616 /.test(e.message),
  );
});

test("opening a file of another kind shows the printable signature, or its bytes in hex, the same on every runtime", () => {
  const open = (head: Uint8Array) => {
    const path = tempPath("other");
    const b = new Uint8Array(16 * MiB);
    b.set(head);
    writeFileSync(path, b);
    try {
      ObjectPool.open(path, { layout: "x" });
    } catch (e) {
      assert.ok(e instanceof PmemError && e.errno === 22, String(e));
      return e.message.slice(e.message.indexOf("not an object pool"));
    }
    throw new Error("opened");
  };
  // a pmemblk header: an 8-byte signature, NUL, then the major version
  const blk = new Uint8Array(16);
  blk.set(new TextEncoder().encode("PMEMBLK"));
  blk.set([1, 0, 0, 0, 2, 0, 0, 0], 8);
  assert.equal(
    open(blk),
    `not an object pool: the signature is "PMEMBLK"`,
  );
  assert.equal(
    open(new TextEncoder().encode("ASYNCPMEM-STREAM")),
    `not an object pool: the signature is "ASYNCPMEM-STREAM"`,
  );
  const junk = Uint8Array.from({ length: 16 }, (_, i) => 0x80 + i * 7);
  assert.equal(
    open(junk),
    "not an object pool: the signature bytes are 0x80878e959ca3aab1b8bfc6cdd4dbe2e9",
  );
  assert.equal(
    open(Uint8Array.of(0x41, 0x42, 0x07, 0x43)),
    "not an object pool: the signature bytes are 0x41420743",
  );
});

test("u64 words of a damaged pool print exactly in its errors, above 2^53 too", () => {
  const path = tempPath();
  ObjectPool.create(path, { size: 8 * MiB, layout: "a" }).close();
  const u64 = (v: bigint) => {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, v, true);
    return b;
  };
  const saved = readFileSync(path).subarray(4096, 8192);
  // the root pointer (state page + 64)
  patch(path, 4096 + 64, u64(2n ** 63n + 1n));
  patch(path, 4096 + 72, u64(2n ** 60n + 3n));
  assert.throws(
    () => ObjectPool.open(path, { layout: "a" }),
    (e) =>
      e instanceof CorruptPoolError && e.structure === "the root pointer" &&
      e.message.includes("offset 9223372036854775809 "),
  );
  patch(path, 4096, saved);
  // the checkpoint word (state page + 0): no log position above 2^53
  patch(path, 4096, u64(2n ** 63n + 8n));
  assert.throws(
    () => ObjectPool.open(path, { layout: "a" }),
    (e) =>
      e instanceof CorruptPoolError &&
      e.message.includes("position 9223372036854775816 "),
  );
});

test("`ObjectPool.open()` of a 32 MiB pool makes Bun count pieces of it, not a buffer of the whole pool", () => {
  // Bun counts each buffer's length as allocated memory when it is made:
  // a buffer over the whole pool at each open collected garbage at
  // every other open (VIEW_WINDOWS.piecesFirst)
  const path = tempPath();
  {
    using pool = ObjectPool.create(path, { size: 32 * MiB, layout: "app" });
    pool.tx((tx) => tx.write(pool.root(64), 0, new Uint8Array(64).fill(7)));
  }
  let opened: ObjectPool | undefined;
  const made = viewsMadeBy(() =>
    opened = ObjectPool.open(path, { layout: "app" })
  );
  using pool = opened!;
  if (RUNTIME === "bun") assert.ok(made < 1 * MiB, `made ${made} bytes`);
  // (Deno: the whole pool at once, as V8 does not count it)
  else assert.ok(made >= 32 * MiB, `made ${made} bytes`);
  assert.deepEqual(pool.read(pool.root(64)), new Uint8Array(64).fill(7));
  pool.tx((tx) => tx.write(pool.root(64), 0, new Uint8Array(64).fill(9)));
  assert.deepEqual(pool.read(pool.root(64)), new Uint8Array(64).fill(9));
});

test("on Bun an object pool in use makes its whole view once, after its pieces served some 65 000 loads and stores", () => {
  // a load through a piece cost Bun about twice one through the whole
  // view: a pool past its open pays for the view once, and goes faster
  const path = tempPath();
  ObjectPool.create(path, { size: 32 * MiB, layout: "app" }).close();
  using pool = ObjectPool.open(path, { layout: "app" });
  const map = poolEngine(pool).media.mapping;
  const opened = viewedBytes(map);
  const root = pool.root(64);
  let sum = 0;
  for (let i = 0; i < 2 ** 16; i++) sum += pool.getU32(root, 4 * (i & 15));
  assert.equal(sum, 0);
  if (RUNTIME === "bun") {
    assert.ok(opened < MiB, `viewed ${opened} bytes`);
    assert.ok(viewedBytes(map) >= opened + 32 * MiB, `${viewedBytes(map)}`);
  } else assert.equal(viewedBytes(map), opened); // one view from the start
  pool.tx((tx) => tx.setU32(root, 0, 5));
  assert.equal(pool.getU32(root, 0), 5);
});
