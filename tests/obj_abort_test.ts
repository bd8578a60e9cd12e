// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// Abort signals of the object store's asynchronous transactions: with a
// signal, `txAsync` runs its callback at the future's first poll, so an
// abort before then withdraws the transaction (nothing ran, nothing
// changed); an abort after it is ignored, the transaction staged and
// possibly seen by later ones. The map's async calls go through it.
import { getEventListeners } from "node:events";
import { all, type Future, wait } from "../future/mod.ts";
import { checkObjectPool, ObjectPool, PersistentMap } from "../obj/mod.ts";
import { createObjectPool } from "../testing/mod.ts";
import { assert, tempPath, test, unknownSingal } from "./_harness.ts";

const MiB = 1 << 20;

/** The options of an async call with `signal` misspelled. */
function typo(): { signal: AbortSignal } {
  return { singal: new AbortController().signal } as never;
}

test("`txAsync()` aborted before its first poll fails with the reason, its callback never run", async () => {
  const path = tempPath();
  {
    using pool = ObjectPool.create(path, { size: 8 * MiB, layout: "ab" });
    const root = pool.root(64);
    const ac = new AbortController();
    let ran = false;
    const f = pool.txAsync((tx) => {
      ran = true;
      tx.setU64(root, 0, 7);
      return "done";
    }, { signal: ac.signal });
    assert.equal(f.state, "idle");
    assert.equal(ran, false, "the callback waits for the first poll");
    const reason = new Error("cancelled");
    ac.abort(reason);
    await assert.rejects(async () => await f, (e) => e === reason);
    assert.equal(f.state, "failed");
    assert.equal(ran, false);
    assert.equal(pool.getU64(root, 0), 0);
    // a later transaction runs as usual
    await pool.txAsync((tx) => tx.setU64(root, 8, 8));
  }
  using pool = ObjectPool.open(path, { layout: "ab" });
  const root = pool.root(64);
  assert.equal(pool.getU64(root, 0), 0);
  assert.equal(pool.getU64(root, 8), 8);
  assert.deepEqual(checkObjectPool(pool, { live: [] }).problems, []);
});

test("`txAsync()` with a signal aborted already fails at its first poll, with an AbortError by default", async () => {
  using pool = ObjectPool.create(tempPath(), { size: 8 * MiB, layout: "ab" });
  const root = pool.root(64);
  let ran = 0;
  const fn = () => {
    ran++;
    pool.root(64);
  };
  const f = pool.txAsync(fn, { signal: AbortSignal.abort() });
  await assert.rejects(
    async () => await f,
    (e) => (e as Error).name === "AbortError",
  );
  assert.throws(
    () => wait(pool.txAsync(fn, { signal: AbortSignal.abort("why") })),
    (e) => e === "why",
  );
  assert.equal(ran, 0);
  // a signal never aborted: the transaction runs at its first poll
  const g = pool.txAsync((tx) => {
    ran++;
    tx.setU64(root, 0, 5);
    return 5;
  }, { signal: new AbortController().signal });
  assert.equal(ran, 0);
  assert.equal(await g, 5);
  assert.equal(ran, 1);
  assert.equal(pool.getU64(root, 0), 5);
});

test("`txAsync()` aborted while queued behind another transaction is withdrawn, the others commit", async () => {
  const path = tempPath();
  {
    using pool = ObjectPool.create(path, { size: 8 * MiB, layout: "ab" });
    const root = pool.root(64);
    const ac = new AbortController();
    const ran: string[] = [];
    // the first callback aborts the second, which all() polls after it
    const first = pool.txAsync((tx) => {
      ran.push("first");
      tx.setU64(root, 0, 1);
      ac.abort(new Error("not needed"));
    }, { signal: new AbortController().signal });
    const second = pool.txAsync((tx) => {
      ran.push("second");
      tx.setU64(root, 8, 2);
    }, { signal: ac.signal });
    const third = pool.txAsync((tx) => {
      ran.push("third");
      tx.setU64(root, 16, 3);
    }, { signal: new AbortController().signal });
    await assert.rejects(async () => await all([first, second, third]), {
      message: "not needed",
    });
    assert.deepEqual(ran, ["first", "third"]);
    assert.equal(first.state, "complete");
    assert.equal(second.state, "failed");
    assert.equal(third.state, "complete");
    // behind a transaction in flight (staged, sealed, not yet applied)
    const bc = new AbortController();
    const inFlight = pool.txAsync((tx) => tx.setU64(root, 24, 4));
    inFlight.poll();
    const queued = pool.txAsync((tx) => {
      ran.push("queued");
      tx.setU64(root, 32, 5);
    }, { signal: bc.signal });
    const after = pool.txAsync((tx) => tx.setU64(root, 40, 6));
    bc.abort();
    await inFlight;
    await assert.rejects(async () => await queued, { name: "AbortError" });
    await after;
    assert.deepEqual(ran, ["first", "third"]);
  }
  using pool = ObjectPool.open(path, { layout: "ab" });
  const root = pool.root(64);
  assert.deepEqual(
    [0, 8, 16, 24, 32, 40].map((at) => pool.getU64(root, at)),
    [1, 0, 3, 4, 0, 6],
  );
});

test("`txAsync()` aborted after its first poll completes: the transaction is staged and durable", async () => {
  const path = tempPath();
  let kept: number;
  {
    using pool = ObjectPool.create(path, { size: 8 * MiB, layout: "ab" });
    const root = pool.root(64);
    const ac = new AbortController();
    const f = pool.txAsync((tx) => {
      const o = tx.alloc(32);
      tx.write(o, 0, new TextEncoder().encode("kept"));
      tx.setU64(root, 0, o.offset);
      return o.offset;
    }, { signal: ac.signal });
    // polled in a sweep: staged, its group left open for the futures
    // polled after it (sealed at its next poll)
    const sweep = { waitOn() {}, pollSoon() {}, sweeping: true };
    assert.equal(f.poll(sweep), "running");
    // a transaction staged after it saw it
    const later = pool.txAsync((tx) => tx.getU64(root, 0));
    ac.abort();
    kept = await f;
    assert.equal(await later, kept);
    assert.equal(pool.getU64(root, 0), kept);
    // aborted inside an await, after the executor's first poll
    const bc = new AbortController();
    const g = pool.txAsync((tx) => tx.setU64(root, 8, 9), {
      signal: bc.signal,
    });
    const p = g.then(() => "done");
    await Promise.resolve();
    bc.abort();
    assert.equal(await p, "done");
    assert.equal(pool.getU64(root, 8), 9);
    // polled by hand: staged, sealed and applied at once
    const cc = new AbortController();
    const h = pool.txAsync((tx) => tx.setU64(root, 16, 10), {
      signal: cc.signal,
    });
    assert.notEqual(h.poll(), "idle");
    cc.abort();
    await h;
  }
  using pool = ObjectPool.open(path, { layout: "ab" });
  const root = pool.root(64);
  assert.equal(pool.getU64(root, 0), kept);
  assert.equal(pool.getU64(root, 8), 9);
  assert.equal(pool.getU64(root, 16), 10);
  const o = pool.object(kept);
  assert.equal(new TextDecoder().decode(pool.read(o, 0, 4)), "kept");
  assert.deepEqual(checkObjectPool(pool, { live: [kept] }).problems, []);
});

test("`txAsync()` aborted among many in flight: the others commit, the heap holds only theirs", async () => {
  const path = tempPath();
  const n = 300;
  const live: number[] = [];
  {
    using pool = ObjectPool.create(path, { size: 16 * MiB, layout: "ab" });
    const root = pool.root(8 * n);
    const before = pool.stats().heap;
    const controllers: AbortController[] = [];
    const futures: Future<number>[] = [];
    for (let i = 0; i < n; i++) {
      const ac = new AbortController();
      controllers.push(ac);
      futures.push(pool.txAsync((tx) => {
        const o = tx.alloc(48 + (i % 7) * 100);
        tx.setU64(o, 0, i);
        tx.setU64(root, 8 * i, o.offset);
        return o.offset;
      }, i % 3 === 1 ? { signal: ac.signal } : undefined));
    }
    for (let i = 1; i < n; i += 3) controllers[i].abort();
    const settled = await Promise.allSettled(futures);
    for (let i = 0; i < n; i++) {
      const s = settled[i];
      if (i % 3 === 1) {
        assert.equal(s.status, "rejected", `${i}`);
        assert.equal(pool.getU64(root, 8 * i), 0);
      } else {
        assert.equal(s.status, "fulfilled", `${i}`);
        live.push((s as PromiseFulfilledResult<number>).value);
        assert.equal(pool.getU64(root, 8 * i), live.at(-1));
      }
    }
    const report = checkObjectPool(pool, { live });
    assert.deepEqual(report.problems, []);
    assert.equal(report.objects.user, live.length);
    assert.equal(
      pool.stats().heap.objects - before.objects,
      live.length,
      "no allocation of an aborted transaction is left",
    );
  }
  using pool = ObjectPool.open(path, { layout: "ab" });
  const report = checkObjectPool(pool, { live });
  assert.deepEqual(report.problems, []);
  assert.equal(report.objects.user, live.length);
});

test("`txAsync()` leaves no abort listener behind, settled or aborted, over 10 000 calls", async () => {
  using pool = ObjectPool.create(tempPath(), { size: 8 * MiB, layout: "ab" });
  const root = pool.root(8);
  const shared = new AbortController();
  for (let i = 0; i < 10_000; i++) {
    await pool.txAsync((tx) => tx.setU64(root, 0, i), {
      signal: shared.signal,
    });
  }
  assert.equal(getEventListeners(shared.signal, "abort").length, 0);
  assert.equal(pool.getU64(root, 0), 9_999);
  // futures awaited while idle, then aborted
  for (let i = 0; i < 100; i++) {
    const ac = new AbortController();
    const f = pool.txAsync(() => {}, { signal: ac.signal });
    ac.abort();
    await assert.rejects(async () => await f);
    assert.equal(getEventListeners(ac.signal, "abort").length, 0);
  }
});

test("`txAsync()` refuses an unknown key of its options at the call, before its callback runs", () => {
  using pool = ObjectPool.create(tempPath(), { size: 8 * MiB, layout: "ab" });
  let ran = false;
  assert.throws(
    () => pool.txAsync(() => (ran = true), typo()),
    unknownSingal("txAsync"),
  );
  assert.throws(
    () => pool.txAsync(() => (ran = true), { signal: "no" } as never),
    {
      name: "TypeError",
      message: "Cannot txAsync: signal must be an AbortSignal",
    },
  );
  assert.throws(() => pool.txAsync(() => (ran = true), 5 as never), TypeError);
  assert.equal(ran, false);
  // no options, and options without a signal, run the callback at once
  pool.txAsync(() => (ran = true), {});
  assert.equal(ran, true);
});

test("`txAsync()` with a signal polled inside another transaction's callback fails, changing nothing", () => {
  using pool = ObjectPool.create(tempPath(), { size: 8 * MiB, layout: "ab" });
  const root = pool.root(16);
  const f = pool.txAsync((tx) => tx.setU64(root, 8, 1), {
    signal: new AbortController().signal,
  });
  pool.tx((tx) => {
    tx.setU64(root, 0, 2);
    assert.throws(() => wait(f), /inside a transaction's callback/);
  });
  assert.equal(pool.getU64(root, 0), 2);
  assert.equal(pool.getU64(root, 8), 0);
  // a pool closed before the first poll fails it: it never ran
  const g = pool.txAsync((tx) => tx.setU64(root, 8, 1), {
    signal: new AbortController().signal,
  });
  pool.close();
  assert.throws(() => wait(g), { name: "ClosedError" });
});

test("`PersistentMap`'s setAsync, deleteAsync and batch aborted before their first poll change nothing", async () => {
  const path = tempPath();
  {
    using pool = ObjectPool.create(path, { size: 8 * MiB, layout: "kv" });
    using m = PersistentMap.open(pool, "m");
    m.set("a", "1");
    m.set("b", "2");
    const ac = new AbortController();
    const signal = ac.signal;
    const set = m.setAsync("c", "3", { signal });
    const del = m.deleteAsync("a", { signal });
    const batch = m.batch([{ set: ["d", "4"] }, { delete: "b" }], { signal });
    // one not aborted, started after them, commits
    const other = m.setAsync("e", "5");
    assert.equal(m.size, 2, "none of them ran");
    const reason = new Error("stop");
    ac.abort(reason);
    for (const f of [set, del, batch] as Future<unknown>[]) {
      await assert.rejects(async () => await f, (e) => e === reason);
    }
    await other;
    // already aborted
    await assert.rejects(
      async () => await m.setAsync("f", "6", { signal: AbortSignal.abort() }),
      { name: "AbortError" },
    );
    await assert.rejects(
      async () =>
        await m.batch([{ set: ["g", "7"] }], { signal: AbortSignal.abort() }),
      { name: "AbortError" },
    );
    assert.deepEqual([...m.keys()].sort(), ["a", "b", "e"]);
  }
  using pool = ObjectPool.open(path, { layout: "kv" });
  using m = PersistentMap.open(pool, "m");
  assert.deepEqual([...m.entries()].sort(), [["a", "1"], ["b", "2"], [
    "e",
    "5",
  ]]);
  assert.deepEqual(checkObjectPool(pool, { live: [] }).problems, []);
});

test("`PersistentMap`'s async calls with a signal run at their first poll, with the key and value given at the call", async () => {
  const path = tempPath();
  {
    using pool = ObjectPool.create(path, { size: 8 * MiB, layout: "kv" });
    using m = PersistentMap.open(pool, "m");
    const signal = new AbortController().signal;
    const key = Uint8Array.of(1, 2);
    const value = Uint8Array.of(3, 4);
    const set = m.setAsync(key, value, { signal });
    const batch = m.batch([{ set: ["x", value] }, { set: [value, "y"] }], {
      signal,
    });
    key[0] = 9;
    value[0] = 9;
    assert.equal(m.size, 0);
    await all([set, batch]);
    assert.deepEqual(m.get(Uint8Array.of(1, 2)), Uint8Array.of(3, 4));
    assert.deepEqual(m.get("x"), Uint8Array.of(3, 4));
    assert.equal(m.get(Uint8Array.of(3, 4)), "y");
    // aborted after the first poll: ignored
    const ac = new AbortController();
    const del = m.deleteAsync("x", { signal: ac.signal });
    const p = del.then((had) => had);
    await Promise.resolve();
    ac.abort();
    assert.equal(await p, true);
    assert.equal(m.has("x"), false);
    assert.equal(getEventListeners(ac.signal, "abort").length, 0);
    // a map closed before the first poll fails it
    const late = m.setAsync("late", "v", { signal });
    m.close();
    await assert.rejects(async () => await late, { name: "ClosedError" });
  }
  using pool = ObjectPool.open(path, { layout: "kv" });
  using m = PersistentMap.open(pool, "m");
  assert.equal(m.size, 2);
  assert.deepEqual(m.get(Uint8Array.of(1, 2)), Uint8Array.of(3, 4));
  assert.equal(m.has("late"), false);
});

test("`PersistentMap`'s async calls aborted among many in flight leave the others and the map consistent", async () => {
  const path = tempPath();
  const n = 400;
  {
    using pool = ObjectPool.create(path, { size: 16 * MiB, layout: "kv" });
    using m = PersistentMap.open(pool, "m");
    const shared = new AbortController();
    const futures: Future<unknown>[] = [];
    for (let i = 0; i < n; i++) {
      const opts = i % 4 === 1 ? { signal: shared.signal } : undefined;
      futures.push(
        i % 8 === 7
          ? m.batch(
            [{ set: [`k${i}`, `v${i}`] }, { delete: `k${i - 2}` }],
            opts,
          )
          : m.setAsync(`k${i}`, `v${i}`.repeat(i % 50), opts),
      );
    }
    shared.abort();
    const settled = await Promise.allSettled(futures);
    for (let i = 0; i < n; i++) {
      assert.equal(
        settled[i].status,
        i % 4 === 1 ? "rejected" : "fulfilled",
        `${i}`,
      );
    }
    assert.equal(getEventListeners(shared.signal, "abort").length, 0);
  }
  using pool = ObjectPool.open(path, { layout: "kv" });
  using m = PersistentMap.open(pool, "m");
  const expected = new Map<string, string>();
  for (let i = 0; i < n; i++) {
    if (i % 4 === 1) continue;
    if (i % 8 === 7) {
      expected.set(`k${i}`, `v${i}`);
      expected.delete(`k${i - 2}`);
    } else expected.set(`k${i}`, `v${i}`.repeat(i % 50));
  }
  assert.deepEqual(
    new Map([...m.entries()] as [string, string][]),
    expected,
  );
  assert.deepEqual(checkObjectPool(pool, { live: [] }).problems, []);
});

test("`PersistentMap`'s async calls refuse an unknown key of their options at the call", () => {
  using pool = ObjectPool.create(tempPath(), { size: 8 * MiB, layout: "kv" });
  using m = PersistentMap.open(pool, "m");
  assert.throws(() => m.setAsync("a", "1", typo()), unknownSingal("setAsync"));
  assert.throws(() => m.deleteAsync("a", typo()), unknownSingal("deleteAsync"));
  assert.throws(
    () => m.batch([{ set: ["a", "1"] }], typo()),
    unknownSingal("batch"),
  );
  assert.throws(
    () => m.setAsync("a", "1", { signal: {} } as never),
    { message: "Cannot setAsync: signal must be an AbortSignal" },
  );
  assert.equal(m.size, 0);
});

test("`all()` of transactions aborted before its first poll leaves them to the caller, who can still run them", async () => {
  using pool = ObjectPool.create(tempPath(), { size: 8 * MiB, layout: "ab" });
  const root = pool.root(16);
  const signal = new AbortController().signal;
  const txs = [0, 1].map((i) =>
    pool.txAsync((tx) => tx.setU64(root, 8 * i, i + 1), { signal })
  );
  const ac = new AbortController();
  const both = all(txs, { signal: ac.signal });
  ac.abort();
  await assert.rejects(async () => await both, { name: "AbortError" });
  assert.deepEqual(txs.map((f) => f.state), ["idle", "idle"]);
  assert.equal(pool.getU64(root, 0), 0);
  await all(txs);
  assert.equal(pool.getU64(root, 8), 2);
});

test("`txAsync()` with a signal, polled together, still commits with one persist", async () => {
  let drains = 0;
  using pool = createObjectPool(tempPath(), {
    size: 16 * MiB,
    layout: "ab",
    tracer: { flush() {}, drain: () => void drains++ },
  });
  const root = pool.root(8 * 64);
  const signal = new AbortController().signal;
  const fs = [];
  for (let i = 0; i < 64; i++) {
    fs.push(pool.txAsync((tx) => {
      const o = tx.alloc(100 + i);
      tx.setU64(o, 0, i);
      tx.setU64(root, 8 * i, o.offset);
      return o.offset;
    }, { signal }));
  }
  drains = 0;
  const offsets = await all(fs);
  assert.equal(drains, 1, "one persist for the group");
  for (let i = 0; i < 64; i++) {
    assert.equal(pool.getU64(root, 8 * i), offsets[i]);
  }
});

test("`txAsync()` and the map's async calls with a signal throw at the call on a closed pool, as without one", () => {
  const pool = ObjectPool.create(tempPath(), { size: 8 * MiB, layout: "ab" });
  const m = PersistentMap.open(pool, "m");
  pool.close();
  const signal = new AbortController().signal;
  assert.throws(() => pool.txAsync(() => {}, { signal }), {
    name: "ClosedError",
  });
  assert.throws(() => pool.txAsync(() => {}), { name: "ClosedError" });
  assert.throws(() => m.setAsync("k", "v", { signal }), {
    name: "ClosedError",
  });
});
