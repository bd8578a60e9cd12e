// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// The log store's waits as a new user meets them: a wait has no work of
// its own, so its signal can end it while it waits.
import { LogStream } from "../stream/mod.ts";
import { assert, tempPath, test } from "./_harness.ts";

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
