// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// A review of the lazy futures' semantics around the synchronous calls
// beside them: a future never polled has done nothing (miniasync's
// futures), so a rewind or a synchronous append does not run it; a
// blocking wait refused (EDEADLK) leaves its future usable; errors of a
// closed shared mover name the user's call; `all`/`race` of waits end
// on an abort.
import {
  all,
  ClosedError,
  fromStep,
  PENDING,
  PmemError,
  race,
  wait,
  waitAll,
} from "../mod.ts";
import { BlockPool } from "../blk/mod.ts";
import { ObjectPool, PersistentMap } from "../obj/mod.ts";
import { LogStream, PmemLog, type Region } from "../stream/mod.ts";
import { assert, moverTest, tempPath, test } from "./_harness.ts";
import { logContents } from "./c/logutil.ts";

const MiB = 1 << 20;

// Bug: `rewind()`, `append()` and `appendv()` first finished every
// `appendAsync` future made, "polled or not": `f = log.appendAsync(x);
// log.rewind(); await f` appended x, then rewound it away (x was lost),
// though an appendAsync does nothing at its call and takes its place in
// the order of first polls. An unpolled future is now left alone: it
// appends when it is polled, after the synchronous call.
moverTest(
  "PmemLog: `rewind()`, `append()` and `appendv()` leave an `appendAsync` never polled alone; it appends after them when polled",
  async (mover) => {
    const path = tempPath();
    {
      using log = PmemLog.create(path, { poolSize: 2 * MiB, mover });
      log.append(Uint8Array.of(1, 2));
      const late = log.appendAsync(Uint8Array.of(9));
      log.rewind();
      assert.equal(late.state, "idle", "the rewind ran the future");
      assert.equal(log.tell(), 0);
      assert.equal(await late, 0);
      assert.deepEqual([...logContents(log)], [9]);

      const a = log.appendAsync(Uint8Array.of(5));
      log.append(Uint8Array.of(3));
      const b = log.appendAsync(Uint8Array.of(6, 6));
      log.appendv([Uint8Array.of(4), Uint8Array.of(4)]);
      assert.deepEqual([a.state, b.state], ["idle", "idle"]);
      // in the order of first polls: b before a
      assert.equal(await b, 4);
      assert.equal(await a, 6);
      assert.deepEqual([...logContents(log)], [9, 3, 4, 4, 6, 6, 5]);

      // polled once (its place is queued): finished before the rewind,
      // which then empties the log
      const polled = log.appendAsync(Uint8Array.of(7));
      polled.poll();
      log.rewind();
      assert.equal(polled.state, "complete");
      assert.equal(await polled, 7);
      assert.equal(log.tell(), 0);
      const offsets = await all([
        log.appendAsync(Uint8Array.of(1)),
        log.appendAsync(Uint8Array.of(2)),
      ]);
      assert.deepEqual(offsets, [0, 1]);
    }
    using log = PmemLog.open(path);
    assert.deepEqual([...logContents(log)], [1, 2]);
  },
);

// `close()` with an unpolled append keeps its documented behaviour (the
// README's table: it finishes it, the data is appended), as LogStream's.
moverTest(
  "PmemLog: `close()` still finishes an `appendAsync` never polled",
  async (mover) => {
    const path = tempPath();
    let f;
    {
      using log = PmemLog.create(path, { poolSize: 2 * MiB, mover });
      f = log.appendAsync(Uint8Array.of(8));
    }
    assert.equal(await f, 0);
    using log = PmemLog.open(path);
    assert.deepEqual([...logContents(log)], [8]);
  },
);

function dump(s: LogStream, r: Region): [number, number[]][] {
  return [...s.entries(r)].map((e) => [e.timestamp, [...e.data]]);
}

const deadlocked = (e: unknown) => e instanceof PmemError && e.code === -35;

// Bug: a blocking `wait(s.appendAsync(r, x))` behind a reservation of this
// thread not yet published failed the future for good with EDEADLK and
// made its timestamp padding: x was never appended, even when the same
// future was awaited after the publish. The wait is refused (it would
// block for ever), not the append: the future stays pending, its entry
// commits after the reservation, and waiting or awaiting it again then
// gives its timestamp (the same for a `waitCommitted`/`waitPersisted`).
moverTest(
  "LogStream: a blocking `wait` refused with EDEADLK behind this thread's reservation leaves its future usable",
  async (mover) => {
    const path = tempPath();
    {
      using s = LogStream.create(path, { size: 1 << 20, mover });
      const r = s.allocateRegion(4096);
      const res = s.reserve(r, 1);
      const a = s.appendAsync(r, Uint8Array.of(7));
      const b = s.appendAsync(r, Uint8Array.of(8), { level: "committed" });
      const w = s.waitPersisted(b.timestamp);
      assert.throws(() => wait(a), deadlocked);
      assert.equal(a.state, "running", "the refused wait failed the append");
      assert.throws(() => waitAll<unknown>([b, w]), deadlocked);
      assert.deepEqual([b.state, w.state], ["running", "running"]);
      assert.throws(() => wait(a), deadlocked); // refused again, still usable
      res.data.set([1]);
      s.publish(res);
      assert.equal(wait(a), a.timestamp);
      assert.equal(await b, b.timestamp);
      await w;
      assert.deepEqual(dump(s, r), [[1, [1]], [2, [7]], [3, [8]]]);
    }
    using s = LogStream.open(path);
    assert.deepEqual(dump(s, s.regions()[0]), [[1, [1]], [2, [7]], [3, [8]]]);
  },
);

// Bug: a member's refusal refused the whole `all` or `race` it is in: a
// blocking wait stopped polling the combined future at once, so an `all`
// left its other members half done (started, never finished: `all`
// settles none before every member has), and a `race` was refused though
// another member could still settle it. Refused now only once every
// member still pending refused (the others settled).
test("a blocking wait of an `all`/`race` refused by one member still drives the others", async () => {
  using s = LogStream.create(tempPath(), { size: 1 * MiB });
  const r = s.allocateRegion(4096);
  const res = s.reserve(r, 1);
  const slow = () => {
    let polls = 0;
    return fromStep(() => (++polls < 4 ? PENDING : "done"));
  };
  const a = s.appendAsync(r, Uint8Array.of(7));
  const x = slow();
  const both = all<unknown>([a, x]);
  assert.throws(() => wait(both), deadlocked);
  assert.equal(x.state, "complete", "the refused all left a member unfinished");
  assert.deepEqual([a.state, both.state], ["running", "running"]);
  // another member settles the race
  assert.equal(
    wait(race<unknown>([s.waitCommitted(res.timestamp), slow()])),
    "done",
  );
  // every member refuses: so does the race
  const waits = race([
    s.waitCommitted(a.timestamp),
    s.waitPersisted(a.timestamp),
  ]);
  assert.throws(() => wait(waits), deadlocked);
  res.data.set([1]);
  s.publish(res);
  assert.deepEqual(await both, [a.timestamp, "done"]);
  await waits;
});

/** A ClosedError of the user's call `op`, about the mover. */
function moverClosed(op: string): (e: unknown) => boolean {
  return (e) =>
    e instanceof ClosedError && e.op === op && /mover/.test(e.message);
}

// Bug: with a mover shared by stores and closed, a block write, writeMany
// and read and a LogStream append failed with a ClosedError of op "batch"
// (the mover's call inside them), not the call the user made; and an
// object pool's transaction whose long entries the mover applies stopped
// the whole pool ("the pool stopped after a failure: batch: ThreadMover is
// closed"), though the transaction was committed (durable in the redo
// log): it is now applied on this thread, as PmemLog copies an append
// whose place is taken.
moverTest(
  "a closed shared mover fails the stores' async copies naming the user's call; committed work (ObjectPool, PmemLog) is done on this thread",
  async (mover) => {
    using blk = BlockPool.create(tempPath("blk"), {
      blockSize: 512,
      poolSize: 32 * MiB,
      mover,
    });
    blk.write(2, new Uint8Array(512).fill(2));
    using s = LogStream.create(tempPath("stream"), { size: 1 * MiB, mover });
    const r = s.allocateRegion(4096);
    using log = PmemLog.create(tempPath("log"), { poolSize: 2 * MiB, mover });
    using pool = ObjectPool.create(tempPath("obj"), {
      size: 16 * MiB,
      layout: "sem",
      mover,
    });
    using map = PersistentMap.open(pool, "m");
    const h = pool.tx((tx) => tx.alloc(4096));
    map.set("k", "v".repeat(1000));
    mover.close();

    const big = new Uint8Array(512).fill(7);
    await assert.rejects(
      async () => await blk.writeAsync(0, big),
      moverClosed("writeAsync"),
    );
    await assert.rejects(
      async () => await blk.writeMany([{ lba: 1, data: big }]),
      moverClosed("writeMany"),
    );
    await assert.rejects(
      async () => await blk.readAsync(2, new Uint8Array(512)),
      moverClosed("readAsync"),
    );
    await assert.rejects(
      async () => await s.appendAsync(r, new Uint8Array(100)),
      moverClosed("appendAsync"),
    );
    assert.equal(s.append(r, Uint8Array.of(1)) > 0, true);
    assert.equal(await log.appendAsync(new Uint8Array(100).fill(3)), 0);
    await pool.txAsync((tx) => tx.write(h, 0, new Uint8Array(4096).fill(4)));
    await map.setAsync("k", "w".repeat(1000));
    assert.deepEqual([...pool.read(h, 0, 2)], [4, 4]);
    assert.equal(map.get("k"), "w".repeat(1000));
    pool.tx((tx) => tx.write(h, 1, new Uint8Array(4095).fill(5)));
    assert.deepEqual([...pool.read(h, 0, 2)], [4, 5]);
    blk.write(3, big);
    assert.deepEqual(blk.read(3).subarray(0, 2), Uint8Array.of(7, 7));
  },
);

// Bug: `all`/`race` with a signal ignored an abort once started, even when
// every member still pending is a pure wait (a `waitCommitted` or
// `waitPersisted`, which has no work of its own and itself ends on its
// signal's abort): `all([s.waitPersisted(ts)], { signal })` behind a
// reservation never published waited for ever, whatever the signal said.
// A member with work in flight (an append) still makes it ignore the abort.
test("`all`/`race` end on an abort once started while every pending member is a pure wait", async () => {
  using s = LogStream.create(tempPath(), { size: 1 * MiB });
  const r = s.allocateRegion(4096);
  const res = s.reserve(r, 1);
  const ts = res.timestamp;

  const ac = new AbortController();
  const waits = all([s.waitCommitted(ts), s.waitPersisted(ts)], {
    signal: ac.signal,
  });
  const ac2 = new AbortController();
  const first = race<unknown>(
    [s.waitPersisted(ts), all([s.waitCommitted(ts)])],
    {
      signal: ac2.signal,
    },
  );
  waits.poll();
  first.poll();
  assert.deepEqual([waits.state, first.state], ["running", "running"]);
  ac.abort();
  ac2.abort(new Error("gave up"));
  waits.poll();
  first.poll();
  assert.deepEqual([waits.state, first.state], ["failed", "failed"]);
  await assert.rejects(async () => await waits, { name: "AbortError" });
  await assert.rejects(async () => await first, /gave up/);
  // awaited while it waits: the abort ends it
  const ac4 = new AbortController();
  const awaited = all([s.waitPersisted(ts)], { signal: ac4.signal });
  setTimeout(() => ac4.abort(), 5);
  await assert.rejects(async () => await awaited, { name: "AbortError" });

  // an append in flight: the abort is ignored, the work completes
  const ac3 = new AbortController();
  const append = s.appendAsync(r, Uint8Array.of(2));
  const mixed = all<unknown>([append, s.waitPersisted(append.timestamp)], {
    signal: ac3.signal,
  });
  mixed.poll();
  ac3.abort();
  mixed.poll();
  assert.equal(mixed.state, "running");
  res.data.set([1]);
  s.publish(res);
  assert.deepEqual(await mixed, [append.timestamp, undefined]);
});
