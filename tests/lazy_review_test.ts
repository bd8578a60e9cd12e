// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// A review of the lazy futures' semantics around the synchronous calls
// beside them: a future never polled has done nothing (miniasync's
// futures), so a rewind or a synchronous append does not run it; a
// blocking wait refused (EDEADLK) leaves its future usable; errors of a
// closed shared mover name the user's call; `all`/`race` of waits end
// on an abort.
import { all } from "../mod.ts";
import { PmemLog } from "../stream/mod.ts";
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
