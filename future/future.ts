// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * {@linkcode Future}: lazy, poll-based, runs once. `poll()` advances it
 * synchronously and throws only for a context that is no PollContext;
 * `await` drives it through the executor's pump and caches one promise,
 * so awaiting twice never repeats the work.
 *
 * @module
 */
import { readOptions } from "../ffi/validate.ts";

/** Lifecycle of a future: idle → running → complete | failed. */
export type FutureState = "idle" | "running" | "complete" | "failed";

/**
 * Something a pending future waits on: a completion sequence that changes
 * whenever work it depends on may have finished (a data mover's device).
 * Reading the sequence before checking completion, then sleeping until it
 * changes, can never lose a wake-up.
 */
export interface WakeSource {
  /** The current completion sequence. */
  sequence(): number;
  /**
   * Block the calling thread until the sequence differs from `seq`, or
   * `timeoutMs` passes. `waiting` futures registered this source: a source
   * may sleep until several completions arrive rather than wake for each.
   * A source may say whether it was woken (true) or timed out (false).
   */
  block(seq: number, timeoutMs: number, waiting?: number): boolean | void;
  /**
   * Resolve once the sequence differs from `seq`, or after `timeoutMs`;
   * with whether it was woken, when the source knows.
   */
  sleep(
    seq: number,
    timeoutMs: number,
    waiting?: number,
  ): Promise<boolean | void>;
  /**
   * Whether polling in a tight loop can pay off now. A device whose
   * engines are all busy says no: spinning would only take a CPU from
   * them, so the executor sleeps at once.
   */
  shouldSpin?(): boolean;
  /**
   * Called by the executor after each sweep that registered this source
   * (see {@linkcode PollContext.sweeping}): work its futures held back
   * during the sweep goes out now, together (a DSA work queue's BATCH).
   */
  sweepEnded?(): void;
}

/** What `poll()` hands to a future: where pending leaves say what they wait on. */
export interface PollContext {
  /**
   * Register `source` for this sweep. A leaf calls it BEFORE it checks its
   * completion, so a completion after the check changes the sequence.
   */
  waitOn(source: WakeSource): void;
  /**
   * Ask to be polled again right after this sweep, without sleeping: the
   * future made progress that needs one more poll (e.g. it queued work to
   * be finished together with futures polled after it).
   */
  pollSoon?(): void;
  /**
   * True inside an executor's sweep, which calls `sweepEnded` on every
   * source registered in it once every pending future was polled: a
   * future may leave work with its source until then. Polls outside a
   * sweep (by hand) must start their work themselves.
   */
  readonly sweeping?: boolean;
  /**
   * How many futures the poller drives in this sweep, this one included
   * (absent: unknown). A leaf that can do its work on the polling thread
   * or hand it to others may choose by it: with nothing else waiting, the
   * poller would only idle until the work is done.
   */
  readonly pending?: number;
  /**
   * True when the poller blocks its thread until the futures settle
   * (`wait`, `waitAll`): no other code of this isolate runs meanwhile, so
   * a future waiting for something only that code can do (publish a
   * reservation) would wait forever, and refuses the wait instead (see
   * `refuse`; without it, it fails).
   */
  readonly blocking?: boolean;
  /**
   * A blocking poller's (`wait`, `waitAll`): a future that cannot go on
   * while the thread is blocked (it waits for something only other code
   * of this thread can do: publish a reservation) says why here and
   * returns PENDING. The blocking wait then fails with `reason` and the
   * future stays as it was, to be waited for or awaited again once that
   * is done: the wait is refused, not the work. An `all` or `race`
   * refuses it only once every member still pending did. Absent (a
   * blocking poller of another kind), such a future fails with the
   * reason instead.
   *
   * A refused future is polled no more by that wait, and stays pending
   * until the wait ends: another future whose step only reads its state
   * (`a.done`) without polling it never sees it settle, and a wait of
   * both blocks for ever (before refusals, the refused future failed and
   * the other went on). A future that depends on another polls it in its
   * step with the context it was given (its refusal then refuses the
   * dependant too: the wait throws, and both can be waited for again),
   * or is built with `chain` or `all`.
   */
  refuse?(reason: unknown): void;
}

/**
 * A context that records nothing (for hand polling).
 *
 * @example Usage
 * ```ts
 * import { NO_CONTEXT, ready } from "@asyncpmem/asyncpmem/future";
 * import assert from "node:assert/strict";
 *
 * const f = ready(7);
 * assert.equal(f.poll(NO_CONTEXT), "complete");
 * ```
 */
export const NO_CONTEXT: PollContext = { waitOn() {}, pollSoon() {} };

/**
 * Returned by {@linkcode Future.step} while work is under way.
 *
 * @example Usage
 * ```ts
 * import { fromStep, PENDING, wait } from "@asyncpmem/asyncpmem/future";
 * import assert from "node:assert/strict";
 *
 * let polls = 0;
 * const f = fromStep(() => ++polls < 3 ? PENDING : "done");
 * assert.equal(wait(f), "done");
 * ```
 */
export const PENDING: unique symbol = Symbol("asyncpmem.pending");
/**
 * Returned by {@linkcode Future.step} when work could not start yet: the
 * future stays idle (a queue was full), where PENDING makes it running.
 *
 * @example Usage
 * ```ts
 * import { fromStep, NOT_STARTED, wait } from "@asyncpmem/asyncpmem/future";
 * import assert from "node:assert/strict";
 *
 * let free = false;
 * const f = fromStep(() => free ? "started" : (free = true, NOT_STARTED));
 * assert.equal(wait(f), "started");
 * ```
 */
export const NOT_STARTED: unique symbol = Symbol("asyncpmem.notStarted");

/**
 * The method of a future that has no work of its own and only waits for
 * work others do (a log's `waitCommitted`/`waitPersisted`): it answers
 * true while that is so. A combined future (`all`, `race`) that started
 * ends on its signal's abort while each member still pending is such a
 * wait (or has not started): nothing is in flight that the abort would
 * leave half done. Internal.
 */
export const WAITS_ONLY: unique symbol = Symbol("asyncpmem.waitsOnly");

/**
 * A property of a future that checks its signal's abort in its own step,
 * from its first poll on, instead of failing unpolled on an aborted one:
 * a wait only (a log's `waitCommitted`), for which what it waits for may
 * have happened already, and then it completes. Internal.
 */
export const OWN_ABORT: unique symbol = Symbol("asyncpmem.ownAbort");

/**
 * Whether `future` only waits, or has not started: see
 * {@linkcode WAITS_ONLY}. Internal.
 */
export function nothingInFlight(future: Future<unknown>): boolean {
  if (future.state === "idle") return true;
  const m = (future as { [WAITS_ONLY]?: () => boolean })[WAITS_ONLY];
  return typeof m === "function" && m.call(future) === true;
}

/** One step's outcome: the value, or still pending / not started. */
export type Step<T> = T | typeof PENDING | typeof NOT_STARTED;

/**
 * Options every future constructor accepts. A key it does not have (a
 * misspelled `signal`) is a TypeError at the call, as for every options
 * object of the library: see {@linkcode checkFutureOptions}.
 */
export interface FutureOptions {
  /** Abort the future while it has not started (it then fails). */
  signal?: AbortSignal;
}

/**
 * The {@linkcode FutureOptions} of an async call, checked and read once:
 * the one validator of every call that takes them (the movers' calls,
 * the mappings' and the stores' async calls, the object store's
 * `txAsync` and its map's, `fromStep`, `all` and `race`, and the
 * `Future` constructor behind them all). Through the library's
 * options reader (`readOptions`): not an object, or a key that is not
 * `signal` (nor one of `extra`, a call's own options beside it), is a
 * TypeError naming the call and the key. A misspelled
 * `{ singal: ac.signal }` was taken for no options: the work could never
 * be cancelled. Internal.
 *
 * @typeParam T the call's options (FutureOptions, or an extension)
 * @param options the caller's options, undefined for none
 * @param op the call, for the messages ("writeAsync")
 * @param extra the call's own keys beside `signal`
 * @returns a fresh object of the options given (each read once: a
 *   getter read again could answer what was never checked), or
 *   undefined for none
 * @throws {TypeError} for options that are no object, an unknown key,
 *   or a signal that is no AbortSignal
 */
export function checkFutureOptions<T extends FutureOptions = FutureOptions>(
  options: T | undefined,
  op: string,
  extra: readonly Exclude<keyof T & string, "signal">[] = [],
): Partial<T> | undefined {
  if (options === undefined) return undefined;
  const read = readOptions(
    options,
    ["signal", ...extra] as (keyof T & string)[],
    op,
  );
  const signal = read.signal;
  // a signal of the wrong type would be ignored, and the work never
  // cancelled (one test of a value almost always undefined)
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new TypeError(`Cannot ${op}: signal must be an AbortSignal`);
  }
  return read;
}

/**
 * The context `checkContext` passed last: an executor polls every future
 * of a sweep, and each future its children, with one context, so it is
 * checked once, not at each of those polls.
 */
let lastContext: PollContext = NO_CONTEXT;

/**
 * `ctx` as `poll` takes it: null is {@linkcode NO_CONTEXT}; a value that
 * is no PollContext throws (see `Future.poll`).
 */
function checkContext(ctx: PollContext): PollContext {
  if (ctx === lastContext) return ctx;
  if (ctx === null) return NO_CONTEXT;
  // (the optional methods too: a leaf calls `pollSoon?.()`, which throws
  // on a value that is no function)
  const c = ctx as Partial<Record<keyof PollContext, unknown>> | undefined;
  if (
    typeof c?.waitOn !== "function" ||
    (c.pollSoon !== undefined && typeof c.pollSoon !== "function") ||
    (c.refuse !== undefined && typeof c.refuse !== "function")
  ) {
    throw new TypeError(
      "Cannot poll: the context must be a PollContext (an object with a waitOn method), or null for none",
    );
  }
  lastContext = ctx;
  return ctx;
}

const STATE: unique symbol = Symbol("asyncpmem.future.state");
const VALUE: unique symbol = Symbol("asyncpmem.future.value");
const ERROR: unique symbol = Symbol("asyncpmem.future.error");
const PROMISE: unique symbol = Symbol("asyncpmem.future.promise");
const SIGNAL: unique symbol = Symbol("asyncpmem.future.signal");

/** The function that drives a future to a promise (set by the executor). */
export type Driver = <T>(future: Future<T>) => Promise<T>;
let driver: Driver | undefined;
/** Has the driver poll its futures again soon (set by the executor). */
let wakeDriver: (() => void) | undefined;

/**
 * The abort listeners of awaited futures not yet settled, to be removed
 * when they settle (a signal shared by many operations gathered one for
 * each). A map, not a property: only futures with a signal have one.
 */
const listeners = new WeakMap<Future<unknown>, () => void>();

/** Install the executor's driver and its wake. Internal. */
export function setDriver(d: Driver, wake?: () => void): void {
  driver = d;
  wakeDriver = wake;
}

/**
 * A lazy, poll-based unit of work. Subclasses implement
 * {@linkcode Future.step}; it may throw, which fails the future.
 *
 * @typeParam T the value the future completes with
 *
 * @example Usage
 * ```ts
 * import { Future, NO_CONTEXT, PENDING, type Step } from "@asyncpmem/asyncpmem/future";
 * import assert from "node:assert/strict";
 *
 * class Countdown extends Future<string> {
 *   #n = 2;
 *   protected step(): Step<string> {
 *     return this.#n-- > 0 ? PENDING : "liftoff";
 *   }
 * }
 * const f = new Countdown();
 * assert.equal(f.state, "idle");
 * f.poll(NO_CONTEXT);
 * assert.equal(f.state, "running");
 * assert.equal(await f, "liftoff");
 * assert.equal(await f, "liftoff"); // runs once
 * ```
 */
export abstract class Future<T> implements PromiseLike<T> {
  // The state lives in properties under module-private symbols, assigned
  // in the constructor, not in #private fields: V8 builds an instance of a
  // subclass several times slower when its base class declares fields,
  // and every operation of a mover is a new future. Subclasses keep their
  // own #private fields (no such cost).
  declare private [STATE]: FutureState;
  declare private [VALUE]: T | undefined;
  declare private [ERROR]: unknown;
  declare private [PROMISE]: Promise<T> | undefined;
  declare private [SIGNAL]: AbortSignal | undefined;

  /**
   * Create an idle future.
   *
   * @param options an abort signal for work not yet started
   */
  constructor(options?: FutureOptions) {
    this[STATE] = "idle";
    this[VALUE] = undefined;
    this[ERROR] = undefined;
    this[PROMISE] = undefined;
    // (no options, the common case, costs one test)
    this[SIGNAL] = options === undefined
      ? undefined
      : checkFutureOptions(options, "make a future")!.signal;
  }

  /**
   * Advance the work. Return the value when done, {@linkcode PENDING}
   * while running, {@linkcode NOT_STARTED} if it could not start yet.
   */
  protected abstract step(ctx: PollContext): Step<T>;

  /** Called once when the future settles: drop buffers and resources. */
  protected settle(): void {}

  /** The current state, without side effects. */
  get state(): FutureState {
    return this[STATE];
  }

  /** Whether the future completed or failed. */
  get done(): boolean {
    return this[STATE] === "complete" || this[STATE] === "failed";
  }

  /** The value once complete (`undefined` before). */
  get value(): T | undefined {
    return this[VALUE];
  }

  /** The reason once failed (`undefined` before). */
  get error(): unknown {
    return this[ERROR];
  }

  /**
   * Advance synchronously as far as possible without blocking. A step
   * that throws fails the future (poll itself throws only for a bad
   * `ctx`, below); polling a settled future returns its cached state. A step
   * may poll its own future again (the block store's writes drive the
   * owner of their block's queue, which can be themselves): a future the
   * inner poll settled keeps that outcome, whatever the outer step then
   * returns or throws.
   *
   * `null` is no context, as `undefined` ({@linkcode NO_CONTEXT}): a
   * miniasync program polls with `future_poll(fut, NULL)`. Any other
   * value that is no {@linkcode PollContext} is the caller's error, not
   * the work's: it throws, and the future is left as it was, to be
   * polled again (it failed for good on the engine's TypeError once a
   * step used it).
   *
   * @param ctx where pending leaves register what they wait on
   * @returns the state after the step
   * @throws {TypeError} when `ctx` is neither a PollContext (an object
   *   with a `waitOn` method, and `pollSoon`/`refuse` methods if any) nor
   *   null or undefined
   */
  poll(ctx: PollContext = NO_CONTEXT): FutureState {
    if (ctx !== NO_CONTEXT) ctx = checkContext(ctx);
    if (this[STATE] === "complete" || this[STATE] === "failed") {
      return this[STATE];
    }
    if (
      this[STATE] === "idle" && this[SIGNAL]?.aborted && !(OWN_ABORT in this)
    ) {
      Future.#fail(this, this[SIGNAL].reason);
      return this[STATE];
    }
    let r: Step<T>;
    try {
      r = this.step(ctx);
    } catch (e) {
      // settled by a poll inside the step: a settled future never changes
      if (Future.#settled(this)) return this[STATE];
      Future.#fail(this, e);
      return this[STATE];
    }
    // settled by a poll inside the step: a completed future went back to
    // running (its resources dropped), or settled twice
    if (Future.#settled(this)) return this[STATE];
    if (r === PENDING) this[STATE] = "running";
    else if (r !== NOT_STARTED) {
      this[STATE] = "complete";
      this[VALUE] = r;
      Future.#release(this);
    }
    return this[STATE];
  }

  // static, not instance, private methods: those would brand every instance
  static #settled(future: Future<unknown>): boolean {
    const state = future[STATE];
    return state === "complete" || state === "failed";
  }

  static #fail(future: Future<unknown>, error: unknown): void {
    future[STATE] = "failed";
    future[ERROR] = error;
    Future.#release(future);
  }

  static #release(future: Future<unknown>): void {
    const signal = future[SIGNAL];
    if (signal !== undefined) {
      const listener = listeners.get(future);
      if (listener !== undefined) {
        listeners.delete(future);
        signal.removeEventListener("abort", listener);
      }
    }
    try {
      future.settle();
    } catch {
      // settle() only drops references; nothing to report
    }
  }

  /**
   * Wake the driver when the signal of an awaited future aborts: the
   * abort was seen only at the next poll, with the pump asleep on the
   * future's wake source up to 50 ms later (or at the next completion of
   * somebody else's work).
   */
  static #listen(future: Future<unknown>): void {
    const signal = future[SIGNAL];
    const wake = wakeDriver;
    if (
      signal === undefined || signal.aborted || wake === undefined ||
      future[STATE] !== "idle"
    ) {
      return;
    }
    const listener = () => {
      listeners.delete(future);
      wake();
    };
    listeners.set(future, listener);
    signal.addEventListener("abort", listener, { once: true });
  }

  /** The value, or throw the error, of a settled future. */
  result(): T {
    if (this[STATE] === "complete") return this[VALUE] as T;
    if (this[STATE] === "failed") throw this[ERROR];
    throw new Error(
      `Cannot take the result of a future that is ${this[STATE]}`,
    );
  }

  /** Drive the future through the executor's pump (one promise, cached). */
  then<R1 = T, R2 = never>(
    onfulfilled?: ((value: T) => R1 | PromiseLike<R1>) | null,
    onrejected?: ((reason: unknown) => R2 | PromiseLike<R2>) | null,
  ): Promise<R1 | R2> {
    if (this[PROMISE] === undefined) {
      if (driver === undefined) {
        throw new Error("asyncpmem executor is not loaded");
      }
      this[PROMISE] = driver(this);
      Future.#listen(this);
    }
    return this[PROMISE].then(onfulfilled, onrejected);
  }

  /** Like `Promise.prototype.catch`. */
  catch<R = never>(
    onrejected?: ((reason: unknown) => R | PromiseLike<R>) | null,
  ): Promise<T | R> {
    return this.then(undefined, onrejected);
  }

  /** Like `Promise.prototype.finally`. */
  finally(onfinally?: (() => void) | null): Promise<T> {
    return this.then().finally(onfinally);
  }

  /** `[object Future]`. */
  get [Symbol.toStringTag](): string {
    return "Future";
  }
}
