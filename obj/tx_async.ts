// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Asynchronous transactions (`pool.txAsync`): {@linkcode startTxAsync}
 * and the future it returns. Without an abort signal the callback runs
 * at the call; with one, at the future's first poll, so that an abort
 * before then can withdraw the transaction. Internal to `obj/`.
 *
 * @module
 */
import { ClosedError } from "../errors/mod.ts";
import { rejected } from "../future/combinators.ts";
import {
  checkFutureOptions,
  Future,
  type FutureOptions,
  PENDING,
  type PollContext,
  type Step,
} from "../future/future.ts";
import type { Engine } from "./engine.ts";
import {
  APPLIED,
  APPLYING,
  COMMITTED,
  FAILED,
  type Group,
  STAGING,
} from "./log_group.ts";
import { type Transaction, txControl } from "./tx.ts";
import { runTransaction } from "./tx_run.ts";

/**
 * Start an asynchronous transaction of `fn` (arguments checked but
 * `options`): staged now, or, with a signal, at the first poll of the
 * future. Internal.
 *
 * @throws {TypeError} for options that are no {@linkcode FutureOptions},
 *   or inside a transaction's callback
 * @throws {ClosedError} after close (with a signal, a close between the
 *   call and the first poll fails the future with it)
 * @throws {PmemError} code -5 (EIO) after the pool stopped on a failure
 */
export function startTxAsync<T>(
  e: Engine,
  fn: (tx: Transaction) => T,
  options: FutureOptions | undefined,
): Future<T> {
  const signal = checkFutureOptions(options, "txAsync")?.signal;
  if (e.current !== undefined) throw insideCallback();
  if (signal !== undefined) {
    // refused at the call, as without a signal (begin checks it then);
    // a close before the first poll fails the future instead
    e.live("txAsync");
    return new TxFuture(e, undefined, undefined, fn, signal);
  }
  const g = e.begin("txAsync", false);
  let value: T;
  try {
    value = runTransaction(e, g, fn, false);
  } catch (err) {
    return rejected(err);
  }
  return new TxFuture(e, g, value, undefined, undefined);
}

/** The error of an asynchronous transaction started inside a callback. */
function insideCallback(): TypeError {
  return new TypeError(
    "Cannot start an asynchronous transaction inside a transaction's callback (use pool.tx, which joins it)",
  );
}

/**
 * The future of an asynchronous transaction. Once its callback has run
 * (at the call, or at its first poll with a signal), its entries are
 * staged; polling seals its group (if nothing did yet) and drives the
 * application of the groups up to its own. Internal.
 */
export class TxFuture<T> extends Future<T> {
  #engine: Engine;
  /** Its group, once the callback ran. */
  #group: Group | undefined;
  /** The callback, until it runs. */
  #fn: ((tx: Transaction) => T) | undefined;
  #value: T | undefined;

  /**
   * @param engine the pool's engine
   * @param group the group the transaction was staged into, or
   *   undefined when `fn` is to run at the first poll
   * @param value the callback's result (staged already)
   * @param fn the callback (not staged yet)
   * @param signal aborts the transaction while `fn` has not run
   */
  constructor(
    engine: Engine,
    group: Group | undefined,
    value: T | undefined,
    fn: ((tx: Transaction) => T) | undefined,
    signal: AbortSignal | undefined,
  ) {
    super(signal === undefined ? undefined : { signal });
    this.#engine = engine;
    this.#group = group;
    this.#value = value;
    this.#fn = fn;
  }

  protected step(ctx: PollContext): Step<T> {
    let g = this.#group;
    if (g === undefined) {
      g = this.#start();
      // the futures a sweep polls after this one start their transactions
      // in its group: sealed at the next poll, one persist commits them all
      if (ctx.sweeping === true && ctx.pollSoon !== undefined) {
        ctx.pollSoon();
        return PENDING;
      }
    }
    if (g.state === STAGING) {
      // polled (`wait`) inside the callback of a transaction staged into
      // the same group: sealing it would commit that transaction's
      // entries so far, whatever its callback does next. It cannot
      // commit before its callback returns, so it fails instead, and
      // what it staged is taken out of the group first
      const running = this.#engine.current;
      if (running !== undefined) {
        txControl.cut(
          running,
          new TypeError(
            "Cannot commit: the transaction's callback waited for an asynchronous transaction staged with it, which had to commit without it",
          ),
        );
      }
      this.#engine.seal();
    }
    if (g.state === COMMITTED || g.state === APPLYING) {
      this.#engine.advance(ctx);
    }
    if (g.state === APPLIED) return this.#value as T;
    if (g.state === FAILED) {
      // code the commit ran (a testing tracer's callback) closed the
      // pool: the closed mapping refused the commit's next persist, an
      // error naming the mapping's op (see `ObjectPool.tx`)
      throw g.error instanceof ClosedError && this.#engine.closed
        ? new ClosedError("ObjectPool", "txAsync")
        : g.error;
    }
    return PENDING;
  }

  /**
   * Run the callback, staging the transaction: the signal has not
   * aborted (`poll` checked it), and from here on it is ignored.
   */
  #start(): Group {
    const e = this.#engine;
    // a `wait` inside another transaction's callback: this one cannot
    // start before that one ends, and the wait blocks it from ending
    if (e.current !== undefined) throw insideCallback();
    const g = e.begin("txAsync", false);
    this.#value = runTransaction(e, g, this.#fn!, false);
    this.#fn = undefined;
    this.#group = g;
    return g;
  }

  protected override settle(): void {
    this.#value = undefined;
    this.#fn = undefined;
  }
}
