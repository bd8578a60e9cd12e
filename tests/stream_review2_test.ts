// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// Found by a second review of the log store (probes first, then these
// tests): Workers sharing a stream, followers, reservations, appends in
// flight on every mover, and PmemLog.
import { PmemLog } from "../stream/mod.ts";
import { assert, moverTest, tempPath } from "./_harness.ts";

const MiB = 1 << 20;

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
