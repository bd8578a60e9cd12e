// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The executor: one poll pump behind every `await` of a future (the
 * blocking `wait`/`waitAll` for scripts are in `blocking.ts`, what a
 * sweep records in `sweep_context.ts`).
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
  setDriver,
  type WakeSource,
} from "./future.ts";
import { SPIN_MS, SweepContext } from "./sweep_context.ts";

/**
 * Sweeps run back to back, without a turn of the event loop, while futures
 * ask to be polled soon (a write that queued its copy, then its commit):
 * each turn costs microseconds.
 */
const SOON_SWEEPS = 4;
/** Longest sleep on a wake source before re-checking (ms). */
const SOURCE_SLEEP_MS = 50;
/** Longest timer between polls of futures without a wake source (ms). */
const BLIND_MAX_MS = 4;

interface Entry {
  future: Future<unknown>;
  resolve?: (value: unknown) => void;
  reject?: (reason: unknown) => void;
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
