// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The executor: one poll pump behind every `await` of a future, plus the
 * blocking {@linkcode wait}/{@linkcode waitAll} for scripts.
 *
 * The pump sweeps every pending future once per turn. While something
 * progressed recently it yields with `setImmediate` (about a microsecond,
 * and I/O still runs); after that it sleeps on the wake sources the pending
 * futures registered, whose sequence it read before polling, so a
 * completion can never be missed. Futures that registered no source are
 * re-polled on a short, growing timer. A future awaited while it sleeps
 * wakes it at once. Only awaited futures keep the process alive: adopted
 * ones (a race's losers) alone are polled on that timer, never slept on
 * through their sources, and do not.
 *
 * @module
 */
import {
  clearTimeout as clearTimer,
  setImmediate,
  setTimeout as setTimer,
} from "node:timers";
import {
  type Future,
  type FutureState,
  type PollContext,
  setDriver,
  type WakeSource,
} from "./future.ts";

/**
 * Sweeps run back to back, without a turn of the event loop, while futures
 * ask to be polled soon (a write that queued its copy, then its commit):
 * each turn costs microseconds.
 */
const SOON_SWEEPS = 4;
/** Keep sweeping without sleeping for this long after progress (ms). */
const SPIN_MS = 0.05;
/** Longest sleep on a wake source before re-checking (ms). */
const SOURCE_SLEEP_MS = 50;
/** Longest timer between polls of futures without a wake source (ms). */
const BLIND_MAX_MS = 4;

interface Entry {
  future: Future<unknown>;
  resolve?: (value: unknown) => void;
  reject?: (reason: unknown) => void;
}

/** A wake source as one sweep saw it. */
interface Registration {
  /** Its sequence when first registered (before any future checked it). */
  seq: number;
  /** Futures that registered it. */
  waiting: number;
}

const NO_SOURCES: ReadonlyMap<WakeSource, Registration> = new Map();

/**
 * `SweepContext.refused` when no future refused the wait, and what
 * {@linkcode pollMember} returns for a member that did not. Internal.
 */
export const NOT_REFUSED: unique symbol = Symbol("asyncpmem.notRefused");

/** Records the wake sources of one sweep; reset and reused between sweeps. */
class SweepContext implements PollContext {
  #sources: Map<WakeSource, Registration> | undefined;
  readonly sweeping = true;
  blind = false;
  registered = false;
  soon = false;
  /** Futures driven in this sweep (see `PollContext.pending`). */
  pending = 0;
  /** Whether the poller blocks its thread (see `PollContext.blocking`). */
  readonly blocking: boolean;
  /** A refusal reported by the future last polled (see `refuse`). */
  refused: unknown = NOT_REFUSED;

  constructor(blocking: boolean) {
    this.blocking = blocking;
  }

  refuse(reason: unknown): void {
    // only a blocking poller refuses (the pump awaits: it never blocks)
    if (this.blocking && this.refused === NOT_REFUSED) this.refused = reason;
  }

  /** The sources registered since the last reset. */
  get sources(): ReadonlyMap<WakeSource, Registration> {
    return this.#sources ?? NO_SOURCES;
  }

  reset(): void {
    this.#sources?.clear();
    this.blind = false;
    this.registered = false;
    this.soon = false;
  }

  pollSoon(): void {
    this.soon = true;
    this.registered = true;
  }

  waitOn(source: WakeSource): void {
    this.registered = true;
    const map = this.#sources ??= new Map();
    const r = map.get(source);
    if (r !== undefined) r.waiting++;
    else map.set(source, { seq: source.sequence(), waiting: 1 });
  }

  /**
   * Tell every registered source the sweep is over (`sweepEnded`). A
   * source that throws is passed over: its futures meet the failure on
   * their next poll, and the pump (which this runs in) must not die with
   * every other future still pending.
   */
  ended(): void {
    for (const s of this.sources.keys()) {
      try {
        s.sweepEnded?.();
      } catch {
        // see above
      }
    }
  }

  /**
   * Whether every registered source wants to be spun on. A source whose
   * `shouldSpin` throws is slept on instead: the exception escaped the
   * pump, which stopped with every awaited future pending (and Deno
   * exited on the unhandled rejection).
   */
  spinWorthwhile(): boolean {
    for (const s of this.sources.keys()) {
      try {
        if (s.shouldSpin?.() === false) return false;
      } catch {
        return false;
      }
    }
    return true;
  }
}

/**
 * Poll `member` as one of `members` futures a combined future (`all`,
 * `race`) polls with `ctx`, as it would be polled awaited on its own:
 *
 * - one left pending that registered no wake source makes the sweep
 *   blind. The sweep saw only whether the combined future registered
 *   anything, and a member waiting on a source hid a blind one: the pump
 *   slept 50 ms on the source (a blocking wait 10 ms) before each poll
 *   of the blind member.
 * - `pending` counts the other members. The combined future counted
 *   once, so each member was told it was alone, and a leaf that works on
 *   the polling thread when nothing else waits (a ThreadMover's batch
 *   takes a share inline) did so for each member in turn.
 * - a member's refusal of a blocking wait (`PollContext.refuse`) is
 *   returned, not passed on: the combined future refuses only once no
 *   member still pending can settle (see `Refusals`, _refusals.ts).
 *   Passed on, one
 *   member refused the whole `all`, whose other members were then left
 *   half done, or `race`, which another member could still settle.
 *
 * Returns the member's refusal, or {@linkcode NOT_REFUSED}. Internal.
 */
export function pollMember(
  member: Future<unknown>,
  ctx: PollContext,
  members: number,
): unknown {
  if (!(ctx instanceof SweepContext)) {
    member.poll(ctx);
    return NOT_REFUSED;
  }
  const registered = ctx.registered;
  const pending = ctx.pending;
  const refused = ctx.refused;
  ctx.registered = false;
  ctx.refused = NOT_REFUSED;
  ctx.pending = pending + Math.max(0, members - 1);
  let state: FutureState;
  let refusal: unknown;
  try {
    state = member.poll(ctx);
  } finally {
    ctx.pending = pending;
    refusal = ctx.refused;
    ctx.refused = refused;
  }
  if (!ctx.registered && (state === "idle" || state === "running")) {
    ctx.blind = true;
  }
  ctx.registered ||= registered;
  return member.done ? NOT_REFUSED : refusal;
}

/**
 * Futures the pump drives, in the order they came. An array, not a Set:
 * a Set would give every fresh entry an identity hash (a runtime call).
 */
const entries: Entry[] = [];
/** Entries somebody awaits (with a `resolve`); the rest were adopted. */
let awaited = 0;
let pumping = false;

/**
 * Ends the pump's sleep early: set while it sleeps. A future awaited (or
 * adopted) meanwhile was not polled until a source it never registered
 * woke the pump, or the sleep timed out: a copy to an idle engine waited
 * behind another one's 30 ms copy, and `await ready(1)` took 50 ms.
 */
let kick: (() => void) | undefined;

/** A promise that resolves when something new is to be polled. */
function kicked(): Promise<void> {
  return new Promise((resolve) => {
    kick = resolve;
  });
}

/** Drive a freshly queued entry: start the pump, or wake it. */
function schedule(): void {
  if (!pumping) {
    queueMicrotask(pump);
    return;
  }
  const k = kick;
  kick = undefined;
  k?.();
}

function immediate(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * A timer of `ms`. `weak`: it does not keep the process alive -- when
 * only adopted futures are pending (the losers of a race, which nobody
 * awaits), so that one that never settles did not keep a script running
 * for good once its work was done.
 */
function delay(ms: number, weak = false): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimer(resolve, ms);
    if (weak) t.unref();
  });
}

/** A sleep on a source still pending, for the pump to sleep on again. */
interface Sleeping {
  seq: number;
  waiting: number;
  deadline: number;
  promise: Promise<unknown>;
}

const sleeping = new Map<WakeSource, Sleeping>();

/**
 * Sleep on `source` from `seq`; a sleep still pending from the same
 * sequence, with no more to wait for and no later deadline, is taken
 * again rather than doubled (the pump re-sweeps when kicked, or when
 * another source wakes it: each new sleep of the device's used to stay
 * pending beside the last, on Deno a thread of its blocking pool each).
 */
function sleepOn(
  source: WakeSource,
  seq: number,
  timeoutMs: number,
  waiting: number,
): Promise<unknown> {
  const now = performance.now();
  const prev = sleeping.get(source);
  if (
    prev !== undefined && prev.seq === seq && prev.waiting <= waiting &&
    prev.deadline <= now + timeoutMs
  ) {
    return prev.promise;
  }
  const promise = Promise.resolve(source.sleep(seq, timeoutMs, waiting));
  const entry = { seq, waiting, deadline: now + timeoutMs, promise };
  sleeping.set(source, entry);
  const done = () => {
    if (sleeping.get(source) === entry) sleeping.delete(source);
  };
  promise.then(done, done);
  return promise;
}

/** Poll every pending future once; true if any settled or changed state. */
function sweep(ctx: SweepContext): boolean {
  let progress = false;
  let kept = 0;
  ctx.pending = entries.length;
  // entries added while sweeping (at the end) are polled in this sweep too
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i];
    ctx.registered = false;
    const before = e.future.state;
    let state: FutureState;
    try {
      state = e.future.poll(ctx);
    } catch (err) {
      // poll() never throws, but a subclass may override it: the error
      // escaped the pump, which stopped with every other future pending
      // (and Deno exited with the rejection). This entry fails with it.
      if (e.reject !== undefined) {
        awaited--;
        e.reject(err);
      }
      progress = true;
      continue;
    }
    if (state === "complete" || state === "failed") {
      if (e.resolve !== undefined) {
        awaited--;
        if (state === "complete") e.resolve(e.future.value);
        else e.reject!(e.future.error);
      }
      progress = true;
    } else {
      entries[kept++] = e;
      if (state !== before) progress = true;
      if (!ctx.registered) ctx.blind = true;
    }
  }
  entries.length = kept;
  return progress;
}

async function pump(): Promise<void> {
  if (pumping) return;
  pumping = true;
  let lastProgress = performance.now();
  let blindMs = 0.25;
  const ctx = new SweepContext(false);
  let soonSweeps = 0;
  // woken from a sleep on the sources, no event-loop turn since
  let woke = false;
  try {
    while (entries.length > 0) {
      ctx.reset();
      const progress = sweep(ctx);
      ctx.ended();
      if (progress) {
        lastProgress = performance.now();
        blindMs = 0.25;
      }
      if (entries.length === 0) break;
      if (woke && !progress) {
        // A wake that moved nothing: sleeping again at once, when the
        // sources say spinning does not pay off, made a source whose
        // sleep resolves at once (its sequence moved with others' work,
        // or a spurious wake) a loop of microtasks, and no timer or I/O
        // a future waited for ever ran again. One turn of the loop.
        woke = false;
        await immediate();
        continue;
      }
      woke = false;
      if (ctx.soon && soonSweeps < SOON_SWEEPS) {
        soonSweeps++;
        continue;
      }
      soonSweeps = 0;
      if (ctx.soon) {
        await immediate();
        continue;
      }
      if (
        performance.now() - lastProgress < SPIN_MS && ctx.spinWorthwhile()
      ) {
        await immediate();
        continue;
      }
      // Only adopted futures pending (a race's losers): not on their
      // sources either, whose sleeps keep the process alive (a timer, a
      // thread) and, for one that never settles, kept a script running
      // for good; they are polled on the pump's own weak timer.
      if (ctx.sources.size === 0 || awaited === 0) {
        await Promise.race([delay(blindMs, awaited === 0), kicked()]);
        kick = undefined;
        blindMs = Math.min(blindMs * 2, BLIND_MAX_MS);
        continue;
      }
      const timeout = ctx.blind ? Math.ceil(blindMs) : SOURCE_SLEEP_MS;
      // A sleep that ignores its timeout and never settles (a WakeSource is
      // user code, and a pending one is taken again by later sleeps) left
      // every future unpolled for good: the pump wakes by its own timer
      // too, late enough never to cut an honest sleep short.
      let guard: ReturnType<typeof setTimer> | undefined;
      try {
        await Promise.race([
          ...[...ctx.sources].map(([s, r]) =>
            sleepOn(s, r.seq, timeout, ctx.sources.size === 1 ? r.waiting : 1)
          ),
          kicked(),
          new Promise<void>((resolve) => {
            guard = setTimer(resolve, timeout + SOURCE_SLEEP_MS);
            if (awaited === 0) guard.unref();
          }),
        ]);
      } catch {
        // A source's sleep failed (a WakeSource is user code too). Had
        // this escaped, the pump would have stopped with every awaited
        // future pending forever: re-poll them after a blind wait.
        kick = undefined;
        await Promise.race([delay(blindMs, awaited === 0), kicked()]);
        blindMs = Math.min(blindMs * 2, BLIND_MAX_MS);
      } finally {
        clearTimer(guard);
      }
      kick = undefined;
      lastProgress = performance.now();
      woke = true;
    }
  } finally {
    pumping = false;
  }
}

/** Drive `future` to completion through the pump. */
function drive<T>(future: Future<T>): Promise<T> {
  if (future.state === "complete") return Promise.resolve(future.value as T);
  if (future.state === "failed") return Promise.reject(future.error);
  return new Promise<T>((resolve, reject) => {
    entries.push({
      future,
      resolve: resolve as (v: unknown) => void,
      reject,
    });
    awaited++;
    schedule();
  });
}

setDriver(drive, schedule);

/**
 * Keep polling a started future nobody awaits until it settles, so the
 * resources it holds (mover records, buffers) are released. Its outcome is
 * discarded.
 */
export function adopt(future: Future<unknown>): void {
  if (future.done) return;
  entries.push({ future });
  schedule();
}

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
 * (and may win the race).
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
