// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Third review of futures and software movers: the executor, the
 * combinators, and the futures of the thread mover's device.
 */
import { assert, runScript, test } from "./_harness.ts";

test(
  "a blocking wait() gets device records that only the pump would free",
  () => {
    // A device op gives its completion record back when it is polled after
    // its work completed. One polled by hand (adopted by the executor) or
    // awaited holds its record until the event loop's pump polls it again,
    // which never happens while wait() blocks the thread: a wait() for an
    // op that needs that record hung forever (records: 1 here; 1024 ops
    // awaited in flight do it with the default). Child processes: red is a
    // hang.
    const r = runScript(
      `
    import { ThreadMover, wait, waitAll } from "@root/mod.ts";
    const MiB = 1 << 20;
    {
      using mover = new ThreadMover({ threads: 1, inlineThreshold: 0, records: 1 });
      const a = new Uint8Array(MiB), b = new Uint8Array(MiB);
      const first = mover.memset(a, 1);
      first.poll(); // submitted; the pump would see it to its end
      wait(mover.memset(b, 2));
      if (a[MiB - 1] !== 1 || b[MiB - 1] !== 2) throw new Error("bytes");
      console.log("hand-polled: ok");
    }
    {
      // a BATCH descriptor: 2 members and the batch, 3 records
      using mover = new ThreadMover({ threads: 1, inlineThreshold: 0, records: 3 });
      const a = new Uint8Array(MiB), b = new Uint8Array(8192);
      mover.memset(a, 1).poll();
      wait(mover.batch([
        { op: "memset", dst: b.subarray(0, 4096), value: 6 },
        { op: "memset", dst: b.subarray(4096), value: 7 },
      ]));
      if (a[MiB - 1] !== 1 || b[0] !== 6 || b[8191] !== 7) throw new Error("bytes");
      console.log("batch: ok");
    }
    {
      using mover = new ThreadMover({ threads: 1, inlineThreshold: 0, records: 2 });
      const a = new Uint8Array(64 * MiB), c = new Uint8Array(64 * MiB);
      const p = Promise.all([mover.memset(a, 3), mover.memset(c, 4)]);
      await new Promise((r) => setTimeout(r, 0)); // the pump submitted both
      const b = new Uint8Array(MiB);
      waitAll([mover.memset(b, 5), mover.batch([
        { op: "memset", dst: b.subarray(0, 4096), value: 6 },
        { op: "memset", dst: b.subarray(4096, 8192), value: 7 },
      ])]);
      await p;
      if (a[0] !== 3 || c[0] !== 4 || b[0] !== 6 || b[8191] !== 7) {
        throw new Error("bytes");
      }
      console.log("awaited: ok");
    }
  `,
      30_000,
    );
    assert.equal(r.signal, null, `hung: ${r.stdout}${r.stderr}`);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /hand-polled: ok\nbatch: ok\nawaited: ok/);
  },
  { timeout: 60_000 },
);
