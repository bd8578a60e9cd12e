// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
import {
  all,
  chain,
  fromStep,
  Future,
  map,
  NO_CONTEXT,
  NOT_STARTED,
  PENDING,
  race,
  ready,
  rejected,
  type Step,
  wait,
  waitAll,
  type WakeSource,
} from "../mod.ts";
import { cpSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { assert, ROOT, runScript, tempDir, test } from "./_harness.ts";

class Counting extends Future<number> {
  steps = 0;
  settled = 0;
  constructor(readonly polls: number, readonly answer = 7) {
    super();
  }
  protected step(): Step<number> {
    this.steps++;
    return this.steps < this.polls ? PENDING : this.answer;
  }
  protected override settle(): void {
    this.settled++;
  }
}

test("Future.poll() goes idle → running → complete and caches the value", () => {
  const f = new Counting(3);
  assert.equal(f.state, "idle");
  assert.equal(f.poll(), "running");
  assert.equal(f.poll(NO_CONTEXT), "running");
  assert.equal(f.poll(), "complete");
  assert.equal(f.value, 7);
  assert.equal(f.poll(), "complete");
  assert.equal(f.steps, 3);
  assert.equal(f.settled, 1);
  assert.equal(f.result(), 7);
});

test("Future.poll() never throws: a throwing step fails the future", () => {
  const err = new Error("boom");
  const f = fromStep(() => {
    throw err;
  });
  assert.equal(f.poll(), "failed");
  assert.equal(f.error, err);
  assert.equal(f.poll(), "failed");
  assert.throws(() => f.result(), /boom/);
});

test("NOT_STARTED keeps a future idle", () => {
  let n = 0;
  const f = fromStep(() => (++n < 2 ? NOT_STARTED : "go"));
  assert.equal(f.poll(), "idle");
  assert.equal(f.poll(), "complete");
  assert.throws(() => new Counting(5).result(), /idle/);
});

test("awaiting a future twice runs it once", async () => {
  const f = new Counting(4);
  assert.equal(await f, 7);
  assert.equal(await f, 7);
  assert.equal(f.steps, 4);
  const g = new Counting(2);
  const [a, b] = await Promise.all([g, g]);
  assert.equal(a + b, 14);
  assert.equal(g.steps, 2);
});

test("await rejects with the failure; catch and finally work", async () => {
  await assert.rejects(
    async () => await rejected(new RangeError("r")),
    RangeError,
  );
  let fin = 0;
  const v = await rejected(new Error("x")).catch((e) => (e as Error).message)
    .finally(() => fin++);
  assert.equal(v, "x");
  assert.equal(fin, 1);
  assert.equal(Object.prototype.toString.call(ready(1)), "[object Future]");
});

test("chain() builds the next step lazily from the previous value", async () => {
  const order: string[] = [];
  const first = fromStep(() => {
    order.push("first");
    return 20;
  });
  const f = chain(first, (n) => {
    order.push("make");
    return map(new Counting(2, n), (v) => v + 1);
  });
  assert.deepEqual(order, []);
  assert.equal(f.state, "idle");
  assert.equal(await f, 21);
  assert.deepEqual(order, ["first", "make"]);
  assert.equal(await chain(ready(1), (n) => n + 1), 2); // plain value step
});

test("chain() fails when any step fails and skips the rest", async () => {
  let made = 0;
  const f = chain(rejected(new Error("first")), () => {
    made++;
    return ready(1);
  });
  await assert.rejects(async () => await f, /first/);
  assert.equal(made, 0);
  await assert.rejects(
    async () => await chain(ready(1), () => rejected(new Error("second"))),
    /second/,
  );
  await assert.rejects(async () =>
    await chain(ready(1), () => {
      throw new Error("maker");
    }), /maker/);
});

test("all() completes with values in order; fails only once all settled", async () => {
  assert.deepEqual(
    await all([new Counting(3, 1), ready(2), new Counting(1, 3)]),
    [1, 2, 3],
  );
  const slow = new Counting(5);
  const boom = new Error("boom");
  await assert.rejects(
    async () => await all([rejected(boom), slow]),
    (e: unknown) => e === boom,
  );
  assert.equal(slow.state, "complete");
  assert.deepEqual(await all([]), []);
  assert.throws(() => all("x" as unknown as Future<number>[]), TypeError);
});

test("race() settles like the first and lets the others finish", async () => {
  const slow = new Counting(6, 1);
  assert.equal(await race([slow, new Counting(2, 2)]), 2);
  assert.equal(slow.state, "running");
  const stateOf = (f: Future<number>): string => f.state;
  for (let i = 0; i < 100 && stateOf(slow) !== "complete"; i++) {
    await new Promise((r) => setTimeout(r, 5));
  }
  assert.equal(slow.state, "complete"); // adopted and driven to the end
  await assert.rejects(
    async () => await race([rejected(new Error("first")), slow]),
    /first/,
  );
  assert.throws(() => race([]), TypeError);
});

test("an AbortSignal fails a future that has not started", async () => {
  const ac = new AbortController();
  const f = fromStep(() => NOT_STARTED, { signal: ac.signal });
  assert.equal(f.poll(), "idle");
  ac.abort(new Error("cancelled"));
  assert.equal(f.poll(), "failed");
  await assert.rejects(async () => await f, /cancelled/);
  const started = new AbortController();
  const g = fromStep(
    (() => {
      let n = 0;
      return () => (++n < 3 ? PENDING : "done");
    })(),
    { signal: started.signal },
  );
  assert.equal(g.poll(), "running");
  started.abort();
  assert.equal(await g, "done"); // running work is not cancelled
});

test("wait() and waitAll() block until settled, even for completed futures", () => {
  assert.equal(wait(new Counting(10)), 7);
  const done = ready(5);
  done.poll();
  assert.deepEqual(waitAll([done, new Counting(3, 6)]), [5, 6]); // miniasync hung here
  const slow = new Counting(4);
  const boom = new Error("boom");
  assert.throws(
    () => waitAll([rejected(boom), slow]),
    (e: unknown) => e === boom,
  );
  assert.equal(slow.state, "complete");
  assert.throws(() => waitAll(5 as unknown as Future<number>[]), TypeError);
});

test("wait() on a future without a wake source sleeps and retries", () => {
  const t0 = performance.now();
  const f = fromStep(() => (performance.now() - t0 > 15 ? "late" : PENDING));
  assert.equal(wait(f), "late");
});

test("the process stays alive while a future is pending (both runtimes)", () => {
  const r = runScript(`
    import { fromStep, PENDING } from "@root/mod.ts";
    const t0 = performance.now();
    const f = fromStep(() => (performance.now() - t0 > 100 ? "done" : PENDING));
    f.then((v) => console.log(v));
  `);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), "done");
});

test("a future settled by a poll inside its own step stays settled", () => {
  // a step may poll its own future (the block store's writes drive the
  // owner of their block's queue): the outer step's outcome overwrote
  // the inner one, a completed future went back to running and stepped
  // again, or turned failed, settle() running each time
  class Reentrant extends Future<string> {
    steps = 0;
    settled = 0;
    constructor(readonly outer: "pending" | "value" | "throw") {
      super();
    }
    protected step(): Step<string> {
      if (++this.steps > 1) return "inner";
      this.poll();
      if (this.outer === "throw") throw new Error("outer");
      return this.outer === "pending" ? PENDING : "outer";
    }
    protected override settle(): void {
      this.settled++;
    }
  }
  for (const outer of ["pending", "value", "throw"] as const) {
    const f = new Reentrant(outer);
    assert.equal(f.poll(), "complete", outer);
    assert.equal(f.value, "inner", outer);
    assert.equal(f.error, undefined, outer);
    assert.equal(f.poll(), "complete", outer);
    assert.equal(wait(f), "inner");
    assert.equal(f.steps, 2, outer);
    assert.equal(f.settled, 1, outer);
  }
  // a step polling itself for good ends failed (the stack overflows),
  // not complete
  let polls = 0;
  const g: Future<number> = fromStep(() => {
    polls++;
    g.poll();
    return 1;
  });
  assert.equal(g.poll(), "failed");
  assert.ok(g.error instanceof RangeError, String(g.error));
  assert.equal(g.value, undefined);
  const n = polls;
  assert.equal(g.poll(), "failed");
  assert.equal(polls, n);
});

/** A wake source whose sequence never moves: sleeps last their timeout. */
function stillSource(): WakeSource {
  return {
    sequence: () => 0,
    block: (_seq, ms) => {
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
    },
    sleep: (_seq, ms) => new Promise((r) => setTimeout(r, ms)),
  };
}

test("a future awaited while the pump sleeps on another source is polled at once", async () => {
  // the pump slept on the sources of the futures it had (50 ms), and a
  // future awaited meanwhile waited for that sleep to end: a copy to an
  // idle engine behind another device's long copy, or `await ready(1)`
  const source = stillSource();
  let stop = false;
  const slow = fromStep((ctx) => {
    ctx.waitOn(source);
    return stop ? "slow" : PENDING;
  });
  const done = slow.then((v) => v);
  try {
    const took: number[] = [];
    for (let i = 0; i < 3; i++) {
      await new Promise((r) => setTimeout(r, 5)); // the pump is asleep now
      const t0 = performance.now();
      assert.equal(await ready(i), i);
      took.push(performance.now() - t0);
    }
    assert.ok(Math.min(...took) < 25, `await ready() took ${took} ms`);
  } finally {
    stop = true;
  }
  assert.equal(await done, "slow");
});

test("a WakeSource whose shouldSpin or block throws does not stop the executor", async () => {
  // a throwing shouldSpin escaped the pump: Deno exited on the unhandled
  // rejection, Bun left every awaited future pending for good
  const source: WakeSource = {
    ...stillSource(),
    shouldSpin(): boolean {
      throw new Error("shouldSpin broke");
    },
    block(): void {
      throw new Error("block broke");
    },
  };
  let n = 0;
  const f = fromStep((ctx) => {
    ctx.waitOn(source);
    return ++n > 3 ? "f" : PENDING;
  });
  let m = 0;
  const g = fromStep(() => (++m > 50 ? "g" : PENDING));
  assert.deepEqual(await Promise.all([f, g]), ["f", "g"]);
  let k = 0;
  const h = fromStep((ctx) => {
    ctx.waitOn(source);
    return ++k > 3 ? "h" : PENDING;
  });
  assert.equal(wait(h), "h"); // block() threw: wait() sleeps and polls again
});

test("a race whose loser never settles lets the script end", () => {
  // the loser was adopted and polled on a timer that kept the process
  // alive for good (the example of race() itself never ended)
  const r = runScript(
    `
    import { fromStep, PENDING, race, ready } from "@root/mod.ts";
    const never = fromStep(() => PENDING);
    console.log(await race([never, ready("fast")]));
  `,
    20_000,
  );
  assert.equal(r.signal, null, "the script did not end");
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), "fast");
}, { timeout: 30_000 });

test("chain() runs a future of another copy of the module it returns", async () => {
  // by instanceof, such a future was the chain's value: await ran it (a
  // thenable) and gave 2, wait() gave the future itself
  const dir = tempDir();
  cpSync(join(ROOT, "future"), join(dir, "future"), { recursive: true });
  // with what it imports (the options reader, and the errors it imports)
  for (const file of ["ffi/validate.ts", "errors/mod.ts"]) {
    cpSync(join(ROOT, file), join(dir, file));
  }
  const other: typeof import("../future/mod.ts") = await import(
    pathToFileURL(join(dir, "future", "mod.ts")).href
  );
  assert.notEqual(other.ready, ready);
  const next = (x: number) => other.ready(x + 1);
  assert.equal(wait(chain(ready(1), next)), 2);
  assert.equal(await chain(ready(1), next), 2);
  assert.deepEqual(await all([chain(ready(1), next), ready(3)]), [2, 3]);
  assert.equal(wait(map(ready(1), (x) => ({ poll: x }))).poll, 1); // a value
});

// Bug: waitAll([1]) threw the engine's "f.poll is not a function" (a
// TypeError by luck, naming nothing of the caller's); cause: the members
// were polled unchecked.
test("waitAll names a member that is not a Future", () => {
  for (const bad of [1, null, undefined, Promise.resolve(1), { poll: 1 }]) {
    assert.throws(
      // deno-lint-ignore no-explicit-any
      () => waitAll([ready(1), bad as any]),
      (e: unknown) =>
        e instanceof TypeError && /member 1 is not a Future/.test(e.message),
    );
  }
  assert.deepEqual(wait(map(ready(1), (n) => n + 1)), 2);
});
