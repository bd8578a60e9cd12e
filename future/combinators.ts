// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Building futures from values, functions and other futures: `ready`,
 * `rejected`, `fromStep`, `chain`, `map`, `all`, `race`.
 *
 * @module
 */
import { adopt } from "./executor.ts";
import { NOT_REFUSED, pollMember } from "./sweep_context.ts";
import { Refusals } from "./_refusals.ts";
import {
  checkFutureOptions,
  Future,
  type FutureOptions,
  NOT_STARTED,
  nothingInFlight,
  PENDING,
  type PollContext,
  type Step,
  WAITS_ONLY,
} from "./future.ts";

class ValueFuture<T> extends Future<T> {
  #value: T;
  constructor(value: T) {
    super();
    this.#value = value;
  }
  protected step(): Step<T> {
    return this.#value;
  }
}

class ErrorFuture extends Future<never> {
  #error: unknown;
  constructor(error: unknown) {
    super();
    this.#error = error;
  }
  protected step(): Step<never> {
    throw this.#error;
  }
}

/**
 * A future that completes with `value` on its first poll.
 *
 * @example Usage
 * ```ts
 * import { ready } from "@asyncpmem/asyncpmem/future";
 * import assert from "node:assert/strict";
 *
 * assert.equal(await ready("x"), "x");
 * ```
 */
export function ready<T>(value: T): Future<T> {
  return new ValueFuture(value);
}

/**
 * A future that fails with `error` on its first poll.
 *
 * @example Usage
 * ```ts
 * import { rejected } from "@asyncpmem/asyncpmem/future";
 * import assert from "node:assert/strict";
 *
 * await assert.rejects(async () => await rejected(new Error("no")), /no/);
 * ```
 */
export function rejected(error: unknown): Future<never> {
  return new ErrorFuture(error);
}

class StepFuture<T> extends Future<T> {
  #fn: (ctx: PollContext) => Step<T>;
  constructor(fn: (ctx: PollContext) => Step<T>, options?: FutureOptions) {
    checkFunction(fn, "make a future", "step");
    super(options);
    this.#fn = fn;
  }
  protected step(ctx: PollContext): Step<T> {
    return this.#fn(ctx);
  }
  /**
   * The step function holds what it works on (buffers, in its closure):
   * a settled future someone keeps (in a list of results) kept them too.
   */
  protected override settle(): void {
    this.#fn = settledStep;
  }
}

/** The step of a settled {@linkcode fromStep} future (never called). */
function settledStep(): never {
  throw new Error("Cannot step a settled future");
}

/**
 * A future from a step function: return the value, `PENDING` or
 * `NOT_STARTED`; throw to fail.
 *
 * @example Usage
 * ```ts
 * import { fromStep, PENDING } from "@asyncpmem/asyncpmem/future";
 * import assert from "node:assert/strict";
 *
 * let polls = 0;
 * const f = fromStep(() => (++polls < 3 ? PENDING : polls));
 * assert.equal(await f, 3);
 * ```
 */
export function fromStep<T>(
  fn: (ctx: PollContext) => Step<T>,
  options?: FutureOptions,
): Future<T> {
  return new StepFuture(fn, options);
}

/**
 * Refuse an argument that is no function when the future is made: called
 * at its first poll, it failed with the engine's "is not a function", and
 * a chain's first future had run by then (a mover's copy made).
 */
function checkFunction(fn: unknown, op: string, name: string): void {
  if (typeof fn !== "function") {
    throw new TypeError(`Cannot ${op}: ${name} must be a function`);
  }
}

/**
 * Refuse an argument that is no future when the future is made (a
 * promise passed by mistake failed only at the first poll, with the
 * engine's "f.poll is not a function"). Duck-typed as `members` is.
 */
function checkFuture(f: unknown, op: string, name: string): void {
  if (
    typeof (f as { poll?: unknown } | null | undefined)?.poll !== "function"
  ) {
    throw new TypeError(`Cannot ${op}: ${name} must be a Future`);
  }
}

/** Poll `f` as a step of another future: its value, or PENDING/NOT_STARTED. */
function stepOf<T>(f: Future<T>, ctx: PollContext): Step<T> {
  const state = f.poll(ctx);
  if (state === "complete") return f.value as T;
  if (state === "failed") throw f.error;
  return state === "idle" ? NOT_STARTED : PENDING;
}

/**
 * Whether `x` is a future to run, not a value: duck-typed like a member of
 * `all()` (see `members`). By `instanceof`, the future of another copy of
 * this module that a chain's step returned was its value: `await` then
 * ran it (a thenable) and gave its value, `wait()` gave the future itself.
 */
function isFuture<T>(x: unknown): x is Future<T> {
  return x instanceof Future ||
    (typeof x === "object" && x !== null &&
      typeof (x as { poll?: unknown }).poll === "function" &&
      typeof (x as { then?: unknown }).then === "function");
}

/**
 * A combined future polled from inside its own step (by a member): the
 * outer step decides, so the inner poll polls no member. A blocking wait
 * for it there (another context, which blocks its thread) could only
 * spin: the combined future settles through its members, and those are
 * polled by the step that waits. It fails instead, as a promise resolved
 * with itself does.
 */
function reentered(outer: PollContext, ctx: PollContext): typeof NOT_STARTED {
  if (ctx !== outer && ctx.blocking === true) {
    throw new TypeError(
      "Cannot wait: a member of a combined future (all, race, chain) waits for that future itself, which would never settle",
    );
  }
  return NOT_STARTED;
}

class ChainFuture<A, B> extends Future<B> {
  #first: Future<A> | undefined;
  #next: ((value: A) => Future<B> | B) | undefined;
  #second: Future<B> | undefined;
  /**
   * Whether a future `next` returns is run (chain), or is the value as it
   * is (map): map's value is what its function returned, as its type
   * says; it completed with the returned future's value, having run it.
   */
  #runs: boolean;
  /** In a step: see `AllFuture`'s. */
  #stepping: PollContext | undefined;

  constructor(
    first: Future<A>,
    next: (value: A) => Future<B> | B,
    runs: boolean,
  ) {
    super();
    this.#first = first;
    this.#next = next;
    this.#runs = runs;
  }

  protected step(ctx: PollContext): Step<B> {
    if (this.#stepping !== undefined) return reentered(this.#stepping, ctx);
    this.#stepping = ctx;
    try {
      return this.#advance(ctx);
    } finally {
      this.#stepping = undefined;
    }
  }

  #advance(ctx: PollContext): Step<B> {
    if (this.#second === undefined) {
      const a = stepOf(this.#first!, ctx);
      if (a === PENDING) return PENDING;
      if (a === NOT_STARTED) return NOT_STARTED;
      const made = this.#next!(a as A);
      this.#first = undefined;
      this.#next = undefined;
      if (!this.#runs || !isFuture(made)) return made as B;
      // it would wait for itself for good (as a promise resolved with
      // itself would, which is refused the same way)
      if (made === this) {
        throw new TypeError("Cannot chain: next returned the chain itself");
      }
      this.#second = made;
    }
    const b = stepOf(this.#second, ctx);
    return b === NOT_STARTED ? PENDING : b;
  }

  protected override settle(): void {
    this.#first = undefined;
    this.#next = undefined;
    this.#second = undefined;
  }
}

/**
 * Run `first`, then build the next step from its value (miniasync's lazy
 * chain entry) and run that. No step starts before the previous completes;
 * a failure anywhere fails the chain.
 *
 * @example Usage
 * ```ts
 * import { chain, ready } from "@asyncpmem/asyncpmem/future";
 * import assert from "node:assert/strict";
 *
 * const f = chain(ready(2), (n) => ready(n * 21));
 * assert.equal(await f, 42);
 * ```
 */
export function chain<A, B>(
  first: Future<A>,
  next: (value: A) => Future<B> | B,
): Future<B> {
  checkFuture(first, "chain", "first");
  checkFunction(next, "chain", "next");
  return new ChainFuture(first, next, true);
}

/**
 * Transform a future's value. `fn` runs synchronously inside a poll, and
 * what it returns is the value as it is: a promise or a future it
 * returns is not waited for or run (`await` would unwrap it, `wait()`
 * would return it), so return a future from {@linkcode chain}'s step
 * instead.
 *
 * @example Usage
 * ```ts
 * import { map, ready } from "@asyncpmem/asyncpmem/future";
 * import assert from "node:assert/strict";
 *
 * assert.equal(await map(ready(20), (n) => n + 1), 21);
 * ```
 */
export function map<A, B>(future: Future<A>, fn: (value: A) => B): Future<B> {
  checkFuture(future, "map", "future");
  checkFunction(fn, "map", "fn");
  return new ChainFuture(future, fn, false);
}

/**
 * A copy of `futures`, checked member by member as it is made (no pass of
 * its own): a plain value or a promise in the array used to fail the
 * combined future only at its first poll, with the engine's "f.poll is
 * not a function". Duck-typed, so a future of another copy of this module
 * passes.
 */
function members<T>(futures: readonly Future<T>[], op: string): Future<T>[] {
  const out = new Array<Future<T>>(futures.length);
  for (let i = 0; i < futures.length; i++) {
    const f = futures[i] as Future<T> | null | undefined;
    if (typeof f?.poll !== "function") {
      throw new TypeError(`Cannot ${op}: member ${i} is not a Future`);
    }
    out[i] = f;
  }
  return out;
}

class AllFuture<T> extends Future<T[]> {
  #futures: Future<T>[];
  /**
   * The members not yet seen settled, in order. A step polls only these:
   * it went over every member, the settled ones too, at every poll, so
   * many members settling a few per sweep cost a quadratic number of
   * looks.
   */
  #pending: Future<T>[];
  #started = false;
  /**
   * In a step. A member's step may poll this future again (a store's
   * future drives the owner of what it waits for): that poll polls no
   * member. It polled the member again from inside its own step, and so
   * on until the stack overflowed (and the outer step compacts the list
   * it goes through).
   */
  #stepping: PollContext | undefined;
  /** The abort signal, for the polls once started (see `WAITS_ONLY`). */
  #signal: AbortSignal | undefined;
  constructor(futures: readonly Future<T>[], options?: FutureOptions) {
    super(options);
    this.#futures = members(futures, "combine");
    this.#pending = this.#futures.slice();
    this.#signal = options?.signal;
  }
  /** Whether every member still pending only waits (or has not started). */
  [WAITS_ONLY](): boolean {
    return this.#pending.every(nothingInFlight);
  }
  protected step(ctx: PollContext): Step<T[]> {
    if (this.#stepping !== undefined) return reentered(this.#stepping, ctx);
    const pending = this.#pending;
    const members = pending.length;
    let kept = 0;
    let started = this.#started;
    let refusals: Refusals | undefined;
    this.#stepping = ctx;
    try {
      for (let i = 0; i < members; i++) {
        const f = pending[i];
        if (!f.done) {
          const refusal = pollMember(f, ctx, members);
          if (refusal !== NOT_REFUSED) {
            (refusals ??= new Refusals()).add(f, refusal);
          }
        }
        if (!f.done) pending[kept++] = f;
        if (f.state !== "idle") started = true;
      }
    } finally {
      this.#stepping = undefined;
    }
    pending.length = kept;
    // a member settled, or started, stays so
    this.#started = started;
    if (kept > 0) {
      // started, it ends on an abort only while nothing is in flight:
      // each member pending only waits (for others' work)
      const signal = this.#signal;
      if (started && signal?.aborted && pending.every(nothingInFlight)) {
        throw signal.reason;
      }
      refusals?.refuseIfAll(pending, ctx);
      return started ? PENDING : NOT_STARTED;
    }
    const failed = this.#futures.find((f) => f.state === "failed");
    if (failed !== undefined) throw failed.error;
    return this.#futures.map((f) => f.value as T);
  }
  protected override settle(): void {
    this.#futures = [];
    this.#pending = [];
  }
}

/**
 * Complete when every future completes, with their values in order. If any
 * fails, the result fails with the first failure, but only once all have
 * settled, so none is left holding resources.
 *
 * A signal aborts the combined future while it has not started, as every
 * future's does: while no member has started (none polled yet, or each
 * could not start), an abort fails it with the signal's reason and it
 * polls its members no more. They are not aborted: the caller still owns
 * them (await them, or give them signals of their own). Once a member
 * started, the abort is ignored, as it is by work in flight, so a
 * settled `all` still leaves no member half done and unpolled; except
 * while every member still pending only waits for others' work (a log's
 * `waitCommitted`/`waitPersisted`, or an `all`/`race` of such waits) or
 * has not started: nothing is in flight, and the abort fails it.
 *
 * A member that refuses a blocking `wait` (an append behind a
 * reservation of this thread not yet published) refuses it for the
 * `all` only once every other member settled: they are not left half
 * done.
 *
 * @example Usage
 * ```ts
 * import { all, ready } from "@asyncpmem/asyncpmem/future";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(await all([ready(1), ready(2)]), [1, 2]);
 * ```
 *
 * @example Aborted before it started
 * ```ts
 * import { all, ready } from "@asyncpmem/asyncpmem/future";
 * import assert from "node:assert/strict";
 *
 * const members = [ready(1), ready(2)];
 * const ac = new AbortController();
 * const both = all(members, { signal: ac.signal });
 * ac.abort();
 * await assert.rejects(async () => await both, { name: "AbortError" });
 * assert.equal(members[0].state, "idle"); // untouched: still the caller's
 * assert.deepEqual(await all(members), [1, 2]);
 * ```
 *
 * @param futures the members
 * @param options an abort signal for a combined future not yet started
 * @throws {TypeError} for futures that are no array of futures, or
 *   options that are no {@linkcode FutureOptions} (an unknown key)
 */
export function all<T>(
  futures: readonly Future<T>[],
  options?: FutureOptions,
): Future<T[]> {
  if (!Array.isArray(futures)) {
    throw new TypeError("Cannot combine: futures must be an array");
  }
  return new AllFuture(futures, checkFutureOptions(options, "combine"));
}

class RaceFuture<T> extends Future<T> {
  #futures: Future<T>[];
  /** In a step: see `AllFuture`'s. */
  #stepping: PollContext | undefined;
  /** The abort signal, for the polls once started (see `WAITS_ONLY`). */
  #signal: AbortSignal | undefined;
  constructor(futures: readonly Future<T>[], options?: FutureOptions) {
    super(options);
    this.#futures = members(futures, "race");
    this.#signal = options?.signal;
  }
  /** Whether every member still pending only waits (or has not started). */
  [WAITS_ONLY](): boolean {
    return this.#futures.every((f) => f.done || nothingInFlight(f));
  }
  protected step(ctx: PollContext): Step<T> {
    if (this.#stepping !== undefined) return reentered(this.#stepping, ctx);
    this.#stepping = ctx;
    try {
      return this.#race(ctx);
    } finally {
      this.#stepping = undefined;
    }
  }
  #race(ctx: PollContext): Step<T> {
    let started = false;
    let refusals: Refusals | undefined;
    for (const f of this.#futures) {
      const refusal = pollMember(f, ctx, this.#futures.length);
      if (refusal !== NOT_REFUSED) {
        (refusals ??= new Refusals()).add(f, refusal);
      }
      if (f.done) {
        for (const other of this.#futures) {
          if (other !== f && other.state === "running") adopt(other);
        }
        return f.result();
      }
      if (f.state !== "idle") started = true;
    }
    // started, it ends on an abort only while nothing is in flight (see
    // all's)
    const signal = this.#signal;
    if (started && signal?.aborted && this[WAITS_ONLY]()) throw signal.reason;
    // (a member settled by another's poll wins at the next poll: no
    // refusal then)
    if (refusals !== undefined && !this.#futures.some((f) => f.done)) {
      refusals.refuseIfAll(this.#futures, ctx);
    }
    return started ? PENDING : NOT_STARTED;
  }
  protected override settle(): void {
    this.#futures = [];
  }
}

/**
 * Settle like the first future to settle. The others keep running in the
 * background until done (their results are discarded).
 *
 * A signal aborts the race while it has not started, as
 * {@linkcode all}'s does: while no member has started, an abort fails it
 * with the signal's reason, its members untouched (still the caller's);
 * once one started, the abort is ignored, except while every member
 * still pending only waits or has not started (as for `all`). A blocking
 * `wait` of it is refused only when every member refuses it: another
 * may still win. Refused, it has not settled: its members stay as they
 * are, the caller's (none is adopted, as a settled race's losers are),
 * and it can be waited for or awaited again. The library's futures
 * refuse only with no copy in flight (a `LogStream.appendAsync` once its
 * data is in place; a `waitCommitted`/`waitPersisted`): dropped, such an
 * append commits when a later call reaches its place, or at `close()`.
 *
 * @example Usage
 * ```ts
 * import { fromStep, PENDING, race, ready } from "@asyncpmem/asyncpmem/future";
 * import assert from "node:assert/strict";
 *
 * const never = fromStep<string>(() => PENDING);
 * assert.equal(await race([never, ready("fast")]), "fast");
 * ```
 *
 * @param futures the members (at least one)
 * @param options an abort signal for a race not yet started
 * @throws {TypeError} for futures that are no non-empty array of futures,
 *   or options that are no {@linkcode FutureOptions} (an unknown key)
 */
export function race<T>(
  futures: readonly Future<T>[],
  options?: FutureOptions,
): Future<T> {
  if (!Array.isArray(futures) || futures.length === 0) {
    throw new TypeError("Cannot race: futures must be a non-empty array");
  }
  return new RaceFuture(futures, checkFutureOptions(options, "race"));
}
