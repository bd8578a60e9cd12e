// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// A review of the lazy futures' semantics around the synchronous calls
// beside them: a future never polled has done nothing (miniasync's
// futures), so a rewind or a synchronous append does not run it; a
// blocking wait refused (EDEADLK) leaves its future usable; errors of a
// closed shared mover name the user's call; `all`/`race` of waits end
// on an abort.
import { all, PmemError, wait, waitAll } from "../mod.ts";
import { LogStream, PmemLog, type Region } from "../stream/mod.ts";
import { assert, moverTest, tempPath } from "./_harness.ts";
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
