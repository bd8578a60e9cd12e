// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * {@linkcode OwnerRing}: who owns each timestamp in flight in this
 * isolate, by the timestamp's slot in the stream's ring. Internal.
 *
 * Not a `Map` keyed by timestamp: a V8 `Map` written and deleted with
 * ever-new keys is rebuilt over and over, and each table it leaves keeps
 * a link to the next one; once one of them reaches the old generation,
 * every later table (and the futures in it) survives each young
 * collection until a full one, and an `appendAsync` loop spends its time
 * collecting them.
 *
 * @module
 */
import type { Future } from "../future/future.ts";

/** Who owns a reserved timestamp in this isolate. */
export type Owner = Future<unknown> | typeof RESERVATION;

/** The owner of a timestamp held by a reservation (reserve/publish). */
export const RESERVATION: unique symbol = Symbol("asyncpmem.reservation");

/** Owners of timestamps, one slot per timestamp the ring can hold. */
export class OwnerRing<T> {
  #size: number;
  // allocated at full length on first use: an array first written far
  // past its end would fall back to a dictionary
  #ts = new Float64Array(0);
  #owner: (T | undefined)[] = [];

  /**
   * @param size timestamps in flight at most (a power of two): any two
   *   in flight at once have different slots
   */
  constructor(size: number) {
    this.#size = size;
  }

  /**
   * Record `owner` for `ts`; returns the entry it replaced, which can only
   * be for a timestamp no longer in flight (an owner not told yet).
   */
  set(ts: number, owner: T): T | undefined {
    const n = this.#size;
    if (this.#owner.length !== n) {
      this.#ts = new Float64Array(n);
      this.#owner = Array.from({ length: n }, () => undefined);
    }
    const i = ts & (n - 1);
    const before = this.#owner[i];
    this.#ts[i] = ts;
    this.#owner[i] = owner;
    return before;
  }

  /** The owner of `ts`, if recorded. */
  get(ts: number): T | undefined {
    const i = ts & (this.#size - 1);
    const o = this.#owner[i];
    return o !== undefined && this.#ts[i] === ts ? o : undefined;
  }

  /** Forget the owner of `ts`; returns it (undefined if none). */
  delete(ts: number): T | undefined {
    const i = ts & (this.#size - 1);
    const o = this.#owner[i];
    if (o === undefined || this.#ts[i] !== ts) return undefined;
    this.#owner[i] = undefined;
    return o;
  }

  /** Every recorded timestamp and owner, in slot order. */
  *entries(): Generator<[number, T]> {
    const owners = this.#owner;
    for (let i = 0; i < owners.length; i++) {
      const o = owners[i];
      if (o !== undefined) yield [this.#ts[i], o];
    }
  }
}
