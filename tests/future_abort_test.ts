// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// Abort signals of the combinators all() and race(): the rule of every
// future's signal (work not yet started), the combined future's work
// being its members'. An abort while no member has started fails the
// combined future with the reason, its members untouched (the caller
// still owns them); once one started, the abort is ignored.
import { getEventListeners } from "node:events";
import {
  all,
  fromStep,
  type Future,
  type FutureOptions,
  NOT_STARTED,
  PENDING,
  race,
  ready,
  wait,
} from "../future/mod.ts";
import { assert, test, unknownSingal } from "./_harness.ts";

/** A future that cannot start until `gate.open`, then completes with `v`. */
function gated<T>(gate: { open: boolean }, v: T): Future<T> {
  return fromStep(() => (gate.open ? v : NOT_STARTED));
}

/** A combinator under test. */
type Combine = (
  futures: Future<number>[],
  options?: FutureOptions,
) => Future<unknown>;

const COMBINATORS: [string, Combine][] = [
  ["all", (fs, o) => all(fs, o)],
  ["race", (fs, o) => race(fs, o)],
];

for (const [name, combine] of COMBINATORS) {
  test(`\`${name}()\` aborted before its first poll fails with the reason, its members untouched`, async () => {
    const ac = new AbortController();
    let polls = 0;
    const members = [1, 2].map((i) => fromStep(() => (polls++, i)));
    const f: Future<unknown> = combine(members, { signal: ac.signal });
    const reason = new Error("stop");
    ac.abort(reason);
    await assert.rejects(async () => await f, (e) => e === reason);
    assert.equal(polls, 0);
    assert.deepEqual(members.map((m) => m.state), ["idle", "idle"]);
    // the caller still owns them
    assert.deepEqual(await all(members), [1, 2]);
    // already aborted
    assert.throws(
      () => wait(combine([ready(1)], { signal: AbortSignal.abort("why") })),
      (e) => e === "why",
    );
  });

  test(`\`${name}()\` aborted while no member can start fails with the reason`, async () => {
    const gate = { open: false };
    const members = [gated(gate, 1), gated(gate, 2)];
    const ac = new AbortController();
    const f: Future<unknown> = combine(members, { signal: ac.signal });
    const p = f.then(() => "completed", (e) => e);
    await new Promise((r) => setTimeout(r, 5)); // polled, not started
    assert.equal(f.state, "idle");
    ac.abort();
    const first = await Promise.race([
      p,
      new Promise((r) => setTimeout(() => r("still waiting"), 1000)),
    ]);
    gate.open = true; // (what ends it otherwise)
    await p;
    assert.equal((first as Error).name, "AbortError");
    assert.equal(getEventListeners(ac.signal, "abort").length, 0);
    assert.deepEqual(await all(members), [1, 2]);
  });

  test(`\`${name}()\` aborted once a member started completes as its members do`, async () => {
    const ac = new AbortController();
    let n = 0;
    const slow = fromStep(() => (++n < 3 ? PENDING : 1));
    const f: Future<unknown> = combine([slow, gated({ open: true }, 2)], {
      signal: ac.signal,
    });
    f.poll();
    assert.equal(f.state === "idle", false);
    ac.abort();
    const v = await f;
    assert.deepEqual(v, name === "all" ? [1, 2] : 2);
  });

  test(`\`${name}()\` leaves no abort listener behind over 10 000 calls`, async () => {
    const shared = new AbortController();
    for (let i = 0; i < 10_000; i++) {
      await combine([ready(i)], { signal: shared.signal });
    }
    assert.equal(getEventListeners(shared.signal, "abort").length, 0);
  });
}

test("`all()` and `race()` refuse an unknown key of their options at the call", () => {
  let polls = 0;
  const member = fromStep(() => ++polls);
  assert.throws(
    () => all([member], { singal: 1 } as never),
    unknownSingal("combine"),
  );
  assert.throws(
    () => race([member], { singal: 1 } as never),
    unknownSingal("race"),
  );
  assert.throws(
    () => all([member], { signal: "x" } as never),
    { message: "Cannot combine: signal must be an AbortSignal" },
  );
  assert.throws(() => race([member], 3 as never), TypeError);
  assert.equal(polls, 0);
  // no options, or no signal, as before
  assert.deepEqual(wait(all([member], {})), [1]);
});
