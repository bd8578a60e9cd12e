// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Fifth review of the futures layer: the executor's pump with wake
 * sources that misbehave, the combinators, and what keeps a process
 * alive.
 */
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
