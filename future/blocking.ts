// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The blocking {@linkcode wait} and {@linkcode waitAll}, for scripts: they
 * sweep the futures given on the calling thread and block it on their
 * wake sources between sweeps (the event loop stops meanwhile). The pump
 * behind `await` is in `executor.ts`.
 *
 * @module
 */
import type { Future } from "./future.ts";
import { NOT_REFUSED, SPIN_MS, SweepContext } from "./sweep_context.ts";

const SLEEPER = new Int32Array(new SharedArrayBuffer(4));

function sleepThread(ms: number): void {
  Atomics.wait(SLEEPER, 0, 0, ms);
}

/** Block until one of a sweep's sources changes, or a short time passes. */
function blockOn(ctx: SweepContext, blindMs: number): void {
  if (ctx.sources.size === 0) {
    sleepThread(blindMs);
    return;
  }
  const [source, r] = ctx.sources.entries().next().value!;
  const alone = !ctx.blind && ctx.sources.size === 1;
  try {
    source.block(
      r.seq,
      alone ? 10 : Math.ceil(blindMs),
      alone ? r.waiting : 1,
    );
  } catch {
    // a WakeSource is user code: poll again after a short sleep, as the
    // pump does when a source's sleep fails
    sleepThread(blindMs);
  }
}

/**
 * Block the calling thread until `future` settles; return its value or
 * throw its error. For scripts: it stops the event loop while it waits.
 * A future that cannot settle while the thread is blocked refuses the
 * wait (see {@linkcode waitAll}): its reason is thrown and the future
 * stays pending.
 *
 * @example Usage
 * ```ts
 * import { ready, wait } from "@asyncpmem/asyncpmem/future";
 * import assert from "node:assert/strict";
 *
 * assert.equal(wait(ready(42)), 42);
 * ```
 *
 * @throws {TypeError} when `future` is no Future (a Promise is awaited)
 */
export function wait<T>(future: Future<T>): T {
  // checked here too: waitAll's message names a member of an array the
  // caller never passed
  if (typeof (future as { poll?: unknown } | null)?.poll !== "function") {
    throw new TypeError(
      `Cannot wait: the argument is not a Future${
        future instanceof Promise
          ? " but a Promise, which cannot be waited for: await it"
          : ""
      }`,
    );
  }
  return waitAll([future])[0];
}

/**
 * Block until every future settles. Returns the values in order; if any
 * failed, throws the first failure once all have settled. A future that
 * cannot settle while the thread is blocked (an append behind a
 * reservation of this thread not yet published: see
 * `PollContext.refuse`) is left pending and its reason (EDEADLK) is
 * thrown in its place, once the others settled: it can be waited for
 * again later. An `all` or `race` refuses only once none of its members
 * still pending can settle: the others are driven to their end first
 * (and may win the race). A refused future is polled no more by the
 * wait: another of `futures` that only reads its state (`a.done`)
 * without polling it cannot progress, and the wait then never ends
 * (see `PollContext.refuse`: poll what a step depends on, or combine
 * with `chain`/`all`).
 *
 * @example Usage
 * ```ts
 * import { ready, waitAll } from "@asyncpmem/asyncpmem/future";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(waitAll([ready(1), ready(2)]), [1, 2]);
 * ```
 */
export function waitAll<T>(futures: readonly Future<T>[]): T[] {
  if (!Array.isArray(futures)) {
    throw new TypeError("Cannot wait: futures must be an array");
  }
  for (let i = 0; i < futures.length; i++) {
    // (duck-typed: a future of another copy of this module passes)
    const f = futures[i] as { poll?: unknown } | null | undefined;
    if (typeof f?.poll !== "function") {
      throw new TypeError(`Cannot wait: member ${i} is not a Future`);
    }
  }
  let lastProgress = -1; // read the clock only once something waits
  let blindMs = 0.05;
  const ctx = new SweepContext(true);
  // The futures not yet seen settled, in order: a sweep polls only the
  // first `count` of `waiting` (it went over every future, the settled
  // ones too, twice, so many futures settling a few per sweep cost a
  // quadratic number of looks). The first sweep goes over the caller's
  // array; those left pending go to an array of our own, compacted in
  // place by later sweeps and never shortened (a `wait` whose future
  // settles at its first poll allocates nothing, and setting an array's
  // length to trim it cost Deno ~40 ns a call). A future settled
  // meanwhile (by another's step) is passed over.
  let waiting: readonly Future<T>[] = futures;
  let own: Future<T>[] | undefined;
  let count = futures.length;
  /** The futures that refused this wait, with their reasons. */
  let refusals: Map<Future<T>, unknown> | undefined;
  let live = 0;
  for (let i = 0; i < count; i++) if (!futures[i].done) live++;
  for (;;) {
    ctx.reset();
    let pending = 0;
    let progress = false;
    ctx.pending = live;
    for (let i = 0; i < count; i++) {
      const f = waiting[i];
      if (f.done) continue;
      ctx.registered = false;
      ctx.refused = NOT_REFUSED;
      const before = f.state;
      const state = f.poll(ctx);
      if (state !== before) progress = true;
      if (!f.done && ctx.refused !== NOT_REFUSED) {
        // it cannot settle while this thread blocks: polled no more
        (refusals ??= new Map()).set(f, ctx.refused);
        progress = true;
      } else if (!f.done) {
        (own ??= [])[pending++] = f;
        if (!ctx.registered) ctx.blind = true;
      }
    }
    if (own !== undefined) waiting = own;
    count = live = pending;
    ctx.ended();
    if (pending === 0) break;
    if (ctx.soon) continue;
    const now = performance.now();
    if (progress || lastProgress < 0) lastProgress = now;
    if (now - lastProgress < SPIN_MS && ctx.spinWorthwhile()) continue;
    blockOn(ctx, blindMs);
    blindMs = Math.min(blindMs * 2, 1);
  }
  const values = new Array<T>(futures.length);
  for (let i = 0; i < futures.length; i++) {
    const f = futures[i];
    if (f.state === "failed") throw f.error;
    if (!f.done) throw refusals!.get(f);
    values[i] = f.value as T;
  }
  return values;
}
