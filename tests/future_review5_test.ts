// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Fifth review of the futures layer: the executor's pump with wake
 * sources that misbehave, the combinators, and what keeps a process
 * alive.
 */
import {
  all,
  chain,
  fromStep,
  Future,
  map,
  NOT_STARTED,
  PENDING,
  type PollContext,
  race,
  ready,
  type Step,
  wait,
  waitAll,
  type WakeSource,
} from "../mod.ts";
import { getEventListeners } from "node:events";
import { FutureRegistry } from "../future/registry.ts";
import { assert, runScript, test } from "./_harness.ts";

test(
  "a wake source that wakes at once while spinning does not pay off does not starve the event loop",
  () => {
    // After a sleep whose sweep made no progress, the pump slept again at
    // once when the source said spinning does not pay off (shouldSpin
    // false, a device whose engines are all busy); a source whose sleep
    // resolves at once (its sequence moves with others' completions, or a
    // spurious wake) made that a loop of microtasks: no timer or I/O ran
    // again, so the future waiting for one never settled (both runtimes).
    // Child process: red is a hang.
    const r = runScript(
      `
    import { fromStep, PENDING } from "@root/mod.ts";
    const source = {
      sequence: () => 0,
      block: () => true,
      sleep: () => Promise.resolve(true),
      shouldSpin: () => false,
    };
    let fired = false;
    setTimeout(() => { fired = true; }, 5);
    const f = fromStep((ctx) => {
      ctx.waitOn(source);
      return fired ? "done" : PENDING;
    });
    console.log(await f);
  `,
      10_000,
    );
    assert.equal(r.signal, null, `hung: ${r.stdout}${r.stderr}`);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), "done");
  },
  { timeout: 30_000 },
);

test(
  "a wake source whose sleep never settles does not stop the pump",
  () => {
    // The pump slept on the sources' sleeps (and on a kick by a newly
    // awaited future) with nothing else: a sleep that ignored its timeout
    // and never settled (a WakeSource is user code) left every awaited
    // future unpolled for good, and a pending sleep from the same sequence
    // was taken again at every later sleep (both runtimes).
    const r = runScript(
      `
    import { fromStep, PENDING } from "@root/mod.ts";
    const source = {
      sequence: () => 0,
      block: () => true,
      sleep: () => new Promise(() => {}),
    };
    let fired = false;
    setTimeout(() => { fired = true; }, 5);
    const watchdog = setTimeout(() => {
      console.log("never polled again");
      process.exit(3);
    }, 5_000);
    const f = fromStep((ctx) => {
      ctx.waitOn(source);
      return fired ? "done" : PENDING;
    });
    console.log(await f);
    clearTimeout(watchdog);
  `,
      20_000,
    );
    assert.equal(r.signal, null, `hung: ${r.stdout}${r.stderr}`);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.equal(r.stdout.trim(), "done");
  },
  { timeout: 30_000 },
);

test(
  "a race whose loser waits on a wake source that never wakes lets the script end",
  () => {
    // Only awaited futures keep the process alive: the pump's own timer is
    // unref'd when only adopted ones (a race's losers) are pending. But an
    // adopted future that registered a wake source was slept on through
    // the source's sleep, whose timer (or thread) keeps the process alive,
    // again every time it timed out: the script never ended (both
    // runtimes). Child process: red is a hang.
    const r = runScript(
      `
    import { fromStep, PENDING, race, ready } from "@root/mod.ts";
    const source = {
      sequence: () => 0,
      block: () => true,
      sleep: (_seq, ms) => new Promise((r) => setTimeout(r, ms)),
    };
    const never = fromStep((ctx) => {
      ctx.waitOn(source);
      return PENDING;
    });
    console.log(await race([never, ready("fast")]));
  `,
      10_000,
    );
    assert.equal(r.signal, null, "the script did not end");
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), "fast");
  },
  { timeout: 30_000 },
);

test("all() and race() with a member that registers no wake source are polled as often as that member alone", async () => {
  // The sweep saw only whether the combined future registered a wake
  // source, so a member waiting on one hid a member that registered none
  // (a future waiting for another's work to publish, or for a timer): the
  // pump slept the source's 50 ms (a blocking wait 10 ms) before each poll
  // of the blind member, where the member awaited alone is polled again
  // within a few ms. The sleeps are told apart by their timeouts.
  const timeouts: number[] = [];
  let blindPending = true;
  const source: WakeSource = {
    sequence: () => 0,
    block(_seq, ms) {
      if (blindPending) timeouts.push(ms);
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
    },
    sleep(_seq, ms) {
      if (blindPending) timeouts.push(ms);
      return new Promise((r) => setTimeout(r, ms));
    },
  };
  const cases: [string, (fs: Future<string>[]) => Future<unknown>, boolean][] =
    [
      ["all, awaited", all, false],
      ["race, awaited", race, false],
      ["all, wait()", all, true],
      ["all in all, awaited", (fs) => all([all(fs)]), false],
    ];
  for (const [name, combine, blocking] of cases) {
    timeouts.length = 0;
    blindPending = true;
    const t0 = performance.now();
    // pending for 20 ms and until the pump slept on the source once (for
    // 5 s at most): a test thread preempted for 20 ms before the first
    // sweep saw the blind member settle in it, and no sleep to judge
    const blind = fromStep(() => {
      const ms = performance.now() - t0;
      if (ms < 20 || (timeouts.length === 0 && ms < 5000)) return PENDING;
      blindPending = false;
      return "blind";
    });
    let m = 0;
    const sourced = fromStep((ctx) => {
      ctx.waitOn(source);
      return ++m > 2 && !blindPending ? "sourced" : PENDING;
    });
    const f = combine([sourced, blind]);
    if (blocking) wait(f);
    else await f;
    assert.equal(blind.state, "complete", name);
    assert.ok(timeouts.length > 0, `${name}: never slept on the source`);
    const limit = blocking ? 10 : 50;
    assert.ok(
      timeouts.every((ms) => ms < limit),
      `${name}: slept ${timeouts} ms with a blind member pending`,
    );
  }
});

/**
 * Settles at its `at`-th poll (asking to be polled again soon before), and
 * counts the reads of its state once settled in `reads`.
 */
class SettlesAt extends Future<number> {
  static reads = 0;
  #polls = 0;
  constructor(readonly at: number) {
    super();
  }
  protected step(ctx: PollContext): Step<number> {
    if (++this.#polls >= this.at) return this.at;
    ctx.pollSoon?.();
    return PENDING;
  }
  override get done(): boolean {
    const done = super.done;
    if (done) SettlesAt.reads++;
    return done;
  }
  override get state(): "idle" | "running" | "complete" | "failed" {
    const state = super.state;
    if (state === "complete" || state === "failed") SettlesAt.reads++;
    return state;
  }
}

test("all() and waitAll() of many futures settling one per sweep look at each settled one a bounded number of times", () => {
  // Every poll of all() and every sweep of waitAll() went over all their
  // futures, the settled ones too (and waitAll counted the pending ones
  // in a pass of its own): N futures settling one per sweep cost about
  // N*N/2 looks (2 million for 2000), a cliff for a batch of many writes
  // whose completions trickle in.
  const n = 2000;
  SettlesAt.reads = 0;
  const members = Array.from({ length: n }, (_, i) => new SettlesAt(i + 1));
  const f = all(members);
  let polls = 0;
  while (f.poll() !== "complete") polls++;
  assert.equal(polls, n - 1);
  assert.equal(f.value!.length, n);
  assert.equal(f.value![n - 1], n);
  assert.ok(SettlesAt.reads < 10 * n, `all(): ${SettlesAt.reads} looks`);
  SettlesAt.reads = 0;
  const values = waitAll(
    Array.from({ length: n }, (_, i) => new SettlesAt(i + 1)),
  );
  assert.equal(values[n - 1], n);
  assert.ok(SettlesAt.reads < 10 * n, `waitAll(): ${SettlesAt.reads} looks`);
});

test(
  "a settled fromStep() future no longer holds what its step function holds",
  () => {
    // The other futures drop what they hold when they settle (a chain its
    // steps, all() and race() their members); fromStep() kept its step
    // function, and with it everything its closure held (a buffer), for as
    // long as anyone kept the settled future (a list of results). Child
    // process: a full collection, then the buffer's finalizer runs.
    const r = runScript(
      `
    import v8 from "node:v8";
    import vm from "node:vm";
    import { fromStep, wait } from "@root/mod.ts";
    let gc;
    if (typeof globalThis.Bun !== "undefined") gc = () => globalThis.Bun.gc(true);
    else {
      v8.setFlagsFromString("--expose-gc");
      gc = vm.runInNewContext("gc");
    }
    let collected = false;
    const finalizers = new FinalizationRegistry(() => { collected = true; });
    const kept = [];
    {
      const held = { data: new Uint8Array(1 << 20) };
      finalizers.register(held, 0);
      kept.push(fromStep(() => held.data.length));
    }
    console.log(wait(kept[0]));
    for (let i = 0; i < 20 && !collected; i++) {
      gc();
      await new Promise((r) => setTimeout(r, 5));
    }
    console.log(collected ? "collected" : "kept", kept[0].state);
  `,
      20_000,
    );
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), "1048576\ncollected complete");
  },
  { timeout: 30_000 },
);

test("map() gives a future its function returns as the value, unrun, as its type says", () => {
  // map() shared chain()'s future, which runs a future the step returns:
  // map(f, () => g), typed Future<Future<T>>, completed with g's value (a
  // T where its type promised a future) and ran g, where map()'s
  // documentation says that what fn returns is the value as it is.
  let runs = 0;
  const inner = fromStep(() => ++runs);
  const mapped: Future<Future<number>> = map(ready(1), () => inner);
  const value = wait(mapped);
  assert.equal(value, inner);
  assert.equal(inner.state, "idle");
  assert.equal(runs, 0);
  assert.equal(wait(all([map(ready(1), () => inner)]))[0], inner);
  assert.equal(runs, 0);
  // chain() still runs it
  assert.equal(wait(chain(ready(1), () => inner)), 1);
  assert.equal(runs, 1);
});

test("a member of all() or race() is told every future its poller drives, the other members included", async () => {
  // PollContext.pending says how many futures the poller drives in this
  // sweep: a leaf with nothing else waiting does its work on the polling
  // thread (a ThreadMover's batch takes a share of the bytes inline). A
  // combined future counted once, so each of its members was told it was
  // alone: inside all() each batch copied its share on the poller, one
  // after the other, where awaited side by side they all went to the
  // engines at once.
  const seen: number[] = [];
  const leaf = () =>
    fromStep((ctx) => {
      seen.push(ctx.pending ?? -1);
      return 1;
    });
  const settlesSecond = () => {
    let n = 0;
    return fromStep(() => (++n < 2 ? PENDING : 0));
  };
  const cases: [string, () => Future<unknown>, number, boolean][] = [
    ["all, awaited", () => all([leaf(), leaf(), leaf()]), 3, false],
    ["race, awaited", () => race([settlesSecond(), leaf()]), 2, false],
    [
      "all in all, awaited", // (each counts its own members: 2 and 3)
      () => all<unknown>([leaf(), all([leaf(), leaf()])]),
      2,
      false,
    ],
    ["all, wait()", () => all([leaf(), leaf()]), 2, true],
  ];
  for (const [name, make, least, blocking] of cases) {
    seen.length = 0;
    if (blocking) wait(make());
    else await make();
    assert.ok(seen.length > 0, name);
    assert.ok(seen.every((n) => n >= least), `${name}: told ${seen}`);
  }
});

test("a member of all(), race() or chain() whose step polls the combined future again does not recurse for good", () => {
  // A store's future drives the owner of what it waits for, which may be
  // the future combining it: all(), race() and chain() then polled the
  // member again from inside its own step, which polled them again, until
  // the stack overflowed and the member failed with a RangeError (and
  // all() compacts its list of members as it goes through it).
  const polls = [0, 0, 0];
  let combined: Future<unknown> | undefined;
  const members = [0, 1, 2].map((i) =>
    fromStep((ctx) => {
      polls[i]++;
      if (i === 1) combined!.poll(ctx);
      return polls[i] < 3 ? PENDING : i;
    })
  );
  combined = all(members);
  assert.deepEqual(wait(combined), [0, 1, 2]);
  assert.deepEqual(polls, [3, 3, 3]);
  let n = 0;
  const loser = fromStep(() => (++n < 2 ? PENDING : "loser"));
  const winner = fromStep((ctx) => {
    combined!.poll(ctx);
    return "winner";
  });
  combined = race([loser, winner]);
  assert.equal(wait(combined), "winner");
  const first = fromStep((ctx) => {
    combined!.poll(ctx);
    return 1;
  });
  combined = chain(first, (v) => v + 1);
  assert.equal(wait(combined), 2);
});

test("an awaited future aborted while it waits to start on a wake source fails at once, and leaves no listener on the signal", async () => {
  // The abort was seen only at the future's next poll: with the pump
  // asleep on the future's wake source (a device whose records are all
  // taken), after the source's sleep, 50 ms later, or the next completion
  // of somebody else's work. The pump now listens for the abort of an
  // awaited future's signal while the future has not settled, and no
  // longer once it has: a signal shared by many operations must not
  // gather a listener for each.
  const log: string[] = [];
  const source: WakeSource = {
    sequence: () => 0,
    block: () => true,
    sleep: (_seq, ms) =>
      new Promise((r) =>
        setTimeout(() => {
          log.push("slept");
          r(false);
        }, ms)
      ),
  };
  const ac = new AbortController();
  const f = fromStep((ctx) => {
    ctx.waitOn(source);
    return NOT_STARTED;
  }, { signal: ac.signal });
  const done = f.then(
    () => log.push("completed"),
    (e) => log.push(`rejected ${(e as Error).name}`),
  );
  await new Promise((r) => setTimeout(r, 5)); // the pump sleeps on the source
  log.length = 0;
  log.push("abort");
  ac.abort();
  await done;
  assert.deepEqual(log.slice(0, 2), ["abort", "rejected AbortError"]);
  assert.equal(f.state, "failed");
  assert.equal(getEventListeners(ac.signal, "abort").length, 0);
  // many awaited futures under one signal that is never aborted
  const shared = new AbortController();
  const many = Array.from(
    { length: 100 },
    (_, i) => fromStep(() => i, { signal: shared.signal }),
  );
  assert.equal((await all(many)).length, 100);
  await Promise.all(many);
  assert.equal(getEventListeners(shared.signal, "abort").length, 0);
  await new Promise((r) => setTimeout(r, 60)); // the pump's sleep ends
});

test("a chain whose step returns the chain itself fails with a TypeError", async () => {
  // It waited for itself: the poll of a combined future from inside its
  // own step polls nothing (see above), so it stayed pending for good
  // (before that, the stack overflowed). A promise resolved with itself
  // is refused the same way.
  const c: Future<number> = chain(ready(1), () => c);
  assert.throws(() => wait(c), TypeError);
  const d: Future<number> = chain(ready(1), () => d);
  await assert.rejects(async () => await d, /chain itself/);
});

test("a registry's late remove of a slot given to a newer future after clear() leaves the newer one recorded", () => {
  // remove(slot) checked only the slot number: an owner removing its
  // future's slot after a clear() (or a sweep) that gave the slot to a
  // newer future dropped the newer one, which its owner's close then
  // neither waited for nor settled
  const registry = new FutureRegistry();
  const older = ready(1);
  const slot = registry.add(older);
  registry.clear();
  const newer = ready(2);
  assert.equal(registry.add(newer), slot);
  registry.remove(slot, older);
  assert.equal(registry.size, 1);
  registry.remove(slot, newer);
  assert.equal(registry.size, 0);
});

test("a member that waits (blocking) for the combined future holding it fails with a TypeError, not spins for good", () => {
  // wait(a) inside a member of a: a settles only through its members,
  // and the member waiting is one of them; the waits' polls of a poll no
  // member (the outer step decides), so wait() spun at full CPU forever
  for (const make of ["all", "race", "chain"] as const) {
    const holder: { combined?: Future<unknown> } = {};
    const member = fromStep(() => {
      wait(holder.combined!);
      return 1;
    });
    const never = fromStep<number>(() => PENDING);
    const combined: Future<unknown> = make === "all"
      ? all([member])
      : make === "race"
      ? race([member, never])
      : chain(member, (v) => v);
    holder.combined = combined;
    assert.throws(
      () => wait(combined),
      (e: unknown) =>
        e instanceof TypeError && /waits for that future/.test(String(e)),
      make,
    );
  }
});
