// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// The log store's waits as a new user meets them: a wait has no work of
// its own, so its signal can end it while it waits.
import { ClosedError } from "../errors/mod.ts";
import { mapFile } from "../pmem2/mod.ts";
import { LogStream, PmemLog } from "../stream/mod.ts";
import { assert, moverTest, tempPath, test } from "./_harness.ts";

test(
  "an awaited waitCommitted/waitPersisted behind a reservation fails with its signal's reason when the signal aborts meanwhile",
  async () => {
    using s = LogStream.create(tempPath(), { size: 1 << 20 });
    const r = s.allocateRegion(64 << 10);
    s.append(r, new Uint8Array(4));
    const res = s.reserve(r, 8);
    // behind the reservation, which nothing publishes while these wait:
    // the abort was ignored once the wait was first polled, and the await
    // never returned (a signal could end a wait only before it began)
    const ac = new AbortController();
    const committed = s.waitCommitted(res.timestamp, { signal: ac.signal });
    const persisted = s.waitPersisted(res.timestamp, {
      signal: AbortSignal.timeout(30),
    });
    const gaveUp = new Error("gave up");
    setTimeout(() => ac.abort(gaveUp), 30);
    const outcome = (f: PromiseLike<void>) =>
      Promise.race([
        Promise.resolve(f).then(() => "resolved", (e) => e),
        new Promise((ok) => setTimeout(() => ok("still waiting"), 3000)),
      ]);
    assert.equal(await outcome(committed), gaveUp);
    const timedOut = await outcome(persisted);
    assert.ok(
      timedOut instanceof DOMException && timedOut.name === "TimeoutError",
      `${timedOut}`,
    );
    // the stream goes on: a wait with a signal that never aborts still ends
    // when the reservation is published
    const later = s.waitPersisted(res.timestamp, {
      signal: new AbortController().signal,
    });
    setTimeout(() => s.publish(res), 10);
    assert.equal(await outcome(later), "resolved");
    assert.equal(s.persistedTimestamp, res.timestamp);
    assert.deepEqual([...s.entries(r)].map((e) => e.timestamp), [1, 2]);
  },
  { timeout: 20000 },
);

moverTest(
  "an asynchronous append of a view of a mapping closed before its copy fails with ClosedError, as the block store's writes do, and appends nothing",
  async (mover) => {
    // README: detached (transferred), the call's TypeError; a view of a
    // mapping closed meanwhile, ClosedError. Both logs said the buffer
    // was "detached (transferred)", which the caller never did.
    using s = LogStream.create(tempPath(), { size: 1 << 20, mover });
    const r = s.allocateRegion(8192);
    using log = PmemLog.create(tempPath(), { poolSize: 2 << 20, mover });
    for (
      const append of [
        (d: Uint8Array) => s.appendAsync(r, d),
        (d: Uint8Array) => log.appendAsync(d),
      ]
    ) {
      const map = mapFile(tempPath(), { size: 1 << 16 });
      const view = map.view(0, 100).fill(4);
      const f = append(view);
      map.close();
      await assert.rejects(
        async () => await f,
        (e) =>
          e instanceof ClosedError && e.op === "appendAsync" &&
          /^appendAsync: data was detached: its mapping closed before the operation started$/
            .test(e.message),
      );
    }
    assert.deepEqual([...s.entries(r)], []);
    assert.equal(log.tell(), 0);
    // a transferred array is still the caller's TypeError
    const moved = new Uint8Array(8);
    const g = s.appendAsync(r, moved);
    structuredClone(moved.buffer, { transfer: [moved.buffer] });
    await assert.rejects(
      async () => await g,
      /^TypeError: Cannot appendAsync: data's buffer is detached \(transferred\)/,
    );
  },
);

// Bug: a slot free at open started its generation again at 0 (only the
// allocated slots' generations were read back), so a region allocated
// after a reopen took a generation the slot had had already, on the media
// too: "how often the slot was allocated" counted only this open's.
test("a region slot's generation counts its allocations across reopens, the slot free at the open or not", () => {
  const path = tempPath();
  {
    using s = LogStream.create(path, { size: 1 << 20 });
    s.freeRegion(s.allocateRegion(4096));
    const r = s.allocateRegion(4096);
    assert.equal(r.generation, 2);
    s.freeRegion(r);
  }
  {
    using s = LogStream.open(path);
    const r = s.allocateRegion(4096);
    assert.deepEqual([r.id, r.generation], [0, 3]);
  }
  assert.equal(LogStream.inspect(path).regions[0].generation, 3);
  {
    using s = LogStream.open(path); // allocated at the open: read back
    s.freeRegion(s.regions()[0]);
    assert.equal(s.allocateRegion(4096).generation, 4);
  }
});

// Bug: a wait whose timestamp was already reached failed with its
// signal's reason when the signal had aborted before the wait's first
// poll, though a wait ends on an abort only before its timestamp is
// reached (README); cause: every future failed on an aborted signal
// before its first step. A future that only waits checks the abort in
// its step now, after seeing whether its timestamp was reached.
test("a wait for a timestamp already reached resolves though its signal aborted before it was polled", async () => {
  using s = LogStream.create(tempPath(), { size: 1 << 20 });
  const r = s.allocateRegion(64 << 10);
  const ts = s.append(r, new Uint8Array(4));
  const gone = new Error("aborted first");
  const signal = AbortSignal.abort(gone);
  const committed = s.waitCommitted(ts, { signal });
  assert.equal(committed.poll(), "complete");
  await s.waitPersisted(ts, { signal });
  // one not reached still fails with the reason, nothing reached after
  const res = s.reserve(r, 8);
  const early = s.waitCommitted(res.timestamp, { signal });
  assert.equal(early.poll(), "failed");
  assert.equal(early.error, gone);
  s.publish(res);
  assert.equal(s.committedTimestamp, res.timestamp);
});
