// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// Found by a second review of the log store (probes first, then these
// tests): Workers sharing a stream, followers, reservations, appends in
// flight on every mover, and PmemLog.
import { LogStream, PmemLog } from "../stream/mod.ts";
import { streamCore } from "../stream/open.ts";
import { finish } from "../stream/progress.ts";
import type { Job } from "./workers/stream_worker.ts";
import { assert, moverTest, tempPath, test } from "./_harness.ts";
import { ask, startWorker } from "./workers/jobs.ts";

const MiB = 1 << 20;
const WORKER = new URL("./workers/stream_worker.ts", import.meta.url).href;

/** `f`'s value, or "stuck" when it has not settled within `ms`. */
function within<T>(f: PromiseLike<T>, ms: number): Promise<T | "stuck"> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    Promise.resolve(f),
    new Promise<"stuck">((resolve) => {
      timer = setTimeout(() => resolve("stuck"), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

// Bug: a PmemLog append committed only behind every earlier append whose
// copy its own future had seen complete: an append polled once (its place
// taken with the next one's, in one batch) and then not driven held every
// later one back for good, and a blocking `wait()` of a later append
// behind one the pump was copying spun forever. The later append now
// drives the copies ahead of it, as the stream's appends drive their
// blockers.
moverTest(
  "`PmemLog.appendAsync()` behind an append polled once and left is not stuck",
  async (mover) => {
    using log = PmemLog.create(tempPath(), { poolSize: 2 * MiB, mover });
    const a = log.appendAsync(new Uint8Array(100).fill(1));
    a.poll(); // queued: its place is taken with b's
    const b = log.appendAsync(new Uint8Array(50).fill(2));
    assert.equal(await within(b, 2000), 100);
    assert.equal(log.tell(), 150);
    assert.equal(a.state, "running", "a was not driven by anyone but b");
    assert.equal(await a, 0);
    let bytes: number[] = [];
    log.walk(0, (c) => {
      bytes = [c[0], c[99], c[100], c[149]];
      return true;
    });
    assert.deepEqual(bytes, [1, 1, 2, 2]);
  },
);

// Bug: the last close in the process counted itself out of the stream's
// opens, then finished the stream (every reservation left committed as
// padding, W = R = the last timestamp) under the reserve lock. An open
// of another Worker that joined in between and reserved before that lock
// had its reservation turned into padding: its publish (or append)
// returned the timestamp, and the entry was not there. finish() now
// counts the opens again under the lock and leaves the stream to the
// joiner. The interleaving is made here by hand: this thread's close is
// cut in two (its count dropped, then its finish).
test("a close finishing the stream leaves alone the reservation of an open that joined meanwhile", async () => {
  const path = tempPath();
  using s = LogStream.create(path, { size: 4 * MiB });
  const r = s.allocateRegion(MiB);
  s.append(r, new Uint8Array(8).fill(1));
  const core = streamCore(s);
  const w = await startWorker(WORKER);
  try {
    // this thread's close, first half: it was the only open
    assert.equal(core.shared.dropOpen(), 0);
    const gate = new SharedArrayBuffer(4);
    const published = ask<number>(
      w,
      {
        kind: "reserveAndWait",
        path,
        bytes: 16,
        fill: 2,
        gate,
      } satisfies Job,
    );
    const g = new Int32Array(gate);
    while (Atomics.load(g, 0) !== 1) {
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    // second half: the Worker's open joined and reserved meanwhile
    finish(core);
    Atomics.store(g, 0, 2);
    Atomics.notify(g, 0);
    const ts = await published;
    const entries = [...s.entries(r)].map((e) => [e.timestamp, e.data[0]]);
    assert.deepEqual(entries.at(-1), [ts, 2], "the Worker's entry");
    assert.equal(entries.length, 2);
  } finally {
    w.terminate();
    core.shared.addOpen(); // this open's count back, for its close
  }
  s.close();
  using again = LogStream.open(path);
  assert.deepEqual(
    [...again.entries(again.regions()[0])].map((e) => e.data[0]),
    [1, 2],
  );
});
