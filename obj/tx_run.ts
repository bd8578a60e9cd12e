// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Running a transaction's callback: begin, commit or abort on a throw,
 * nesting, and the map's door to an object built in the log; what that
 * needs of a transaction's private state ({@linkcode TxControl}). The
 * {@linkcode Transaction} itself is in `obj/tx.ts`. Internal to `obj/`.
 *
 * @module
 */
import type { Engine } from "./engine.ts";
import type { Group } from "./log_group.ts";
import { type Transaction, txControl } from "./tx.ts";

/**
 * What running a transaction needs of its private state: set once, by
 * the class (`txControl` in `obj/tx.ts`). Internal.
 */
export interface TxControl {
  begin(engine: Engine, group: Group, sync: boolean): Transaction;
  end(tx: Transaction): void;
  abort(tx: Transaction): void;
  failure(tx: Transaction): unknown;
  doom(tx: Transaction, error: unknown): void;
  /**
   * Doom `tx` and take back what it staged now, before its group is
   * sealed under it (its callback polled the future of a transaction of
   * its group); the callback goes on, every method of `tx` throwing.
   */
  cut(tx: Transaction, error: unknown): void;
  stage(tx: Transaction, offset: number, op: string): number;
}

/**
 * Run `fn` as a transaction staged into `group`: its result, or, if it
 * threw, its error after everything it staged is undone. A synchronous
 * one (`sync`) must be sealed and applied before another starts.
 * Internal.
 */
export function runTransaction<T>(
  engine: Engine,
  group: Group,
  fn: (tx: Transaction) => T,
  sync: boolean,
): T {
  const tx = txControl.begin(engine, group, sync);
  let value: T;
  try {
    value = fn(tx);
    if (
      value !== null && typeof value === "object" &&
      typeof (value as { then?: unknown }).then === "function"
    ) throw promiseReturned();
    const failure = txControl.failure(tx);
    if (failure !== undefined) throw failure;
  } catch (e) {
    txControl.abort(tx);
    throw e;
  }
  txControl.end(tx);
  return value;
}

/** Whether a callback's result is a promise (or another thenable). */
function isThenable(value: unknown): boolean {
  return value !== null && typeof value === "object" &&
    typeof (value as { then?: unknown }).then === "function";
}

/** The error of a transaction whose callback returned a promise. */
function promiseReturned(): TypeError {
  return new TypeError(
    "Cannot commit: the transaction's callback returned a promise (it must be synchronous; await after the transaction)",
  );
}

/**
 * Run `fn` inside the running transaction `tx` (a nested `pool.tx`): an
 * error it throws dooms `tx` too. Internal.
 */
export function runNested<T>(tx: Transaction, fn: (tx: Transaction) => T): T {
  try {
    const value = fn(tx);
    // as at the top level: what the callback does after its first await
    // would run after the commit, so the whole transaction fails
    if (isThenable(value)) throw promiseReturned();
    return value;
  } catch (err) {
    // a transaction's failure of undefined reads as none: doom it with
    // an error that says what happened
    txControl.doom(
      tx,
      err === undefined
        ? new TypeError(
          "Cannot commit: a nested transaction's callback threw undefined",
        )
        : err,
    );
    throw err;
  }
}

/**
 * The file offset where the data of the object at `offset`, a small one allocated by the
 * running transaction `tx`, is built in the log (its copy staged now if
 * it was not written yet), or -1 for any other object: the map writes a
 * new node's bytes there directly. Valid until the next entry is staged.
 * Internal.
 */
export function stagedData(tx: Transaction, offset: number): number {
  return txControl.stage(tx, offset, "write");
}
