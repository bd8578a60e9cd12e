// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * {@linkcode FutureRegistry}: the futures an owner must settle before it
 * closes, kept by slot number rather than in a `Set`. Putting a fresh
 * object in a `Set` makes the engine give it an identity hash (a runtime
 * call, and in V8 a change of the object's shape), and every write of a
 * block pool is such an object: on the hot path of `writeAsync`. Owners
 * whose futures report when they settle remove them by slot; others
 * {@linkcode FutureRegistry.sweep} now and then. Internal.
 *
 * @module
 */
import type { Future } from "./future.ts";

/** Futures in flight, each in a numbered slot; freed slots are reused. */
export class FutureRegistry {
  #slots: (Future<unknown> | undefined)[] = [];
  #free: number[] = [];

  /** Record `future`; returns its slot, for {@linkcode FutureRegistry.remove}. */
  add(future: Future<unknown>): number {
    const slot = this.#free.pop() ?? this.#slots.length;
    this.#slots[slot] = future;
    return slot;
  }

  /**
   * Forget `future`, recorded in `slot` (idempotent). A slot that holds
   * another future is left alone: after a `clear` or a `sweep` the slot
   * may have been given to a newer one, which a late remove by number
   * would have dropped.
   */
  remove(slot: number, future: Future<unknown>): void {
    if (this.#slots[slot] !== future) return;
    this.#slots[slot] = undefined;
    this.#free.push(slot);
  }

  /** Futures recorded and not removed. */
  get size(): number {
    return this.#slots.length - this.#free.length;
  }

  /** Remove the futures that have settled (for owners they do not notify). */
  sweep(): void {
    for (let slot = 0; slot < this.#slots.length; slot++) {
      const f = this.#slots[slot];
      if (f?.done) this.remove(slot, f);
    }
  }

  /** The recorded futures that have started and not settled. */
  running(): Future<unknown>[] {
    const out: Future<unknown>[] = [];
    for (const f of this.#slots) if (f?.state === "running") out.push(f);
    return out;
  }

  /** A recorded future that has started and not settled, if any. */
  firstRunning(): Future<unknown> | undefined {
    for (const f of this.#slots) if (f?.state === "running") return f;
    return undefined;
  }

  /** The recorded futures that have not settled, started or not. */
  pending(): Future<unknown>[] {
    const out: Future<unknown>[] = [];
    for (const f of this.#slots) if (f !== undefined && !f.done) out.push(f);
    return out;
  }

  /** Forget every future. */
  clear(): void {
    this.#slots = [];
    this.#free = [];
  }
}
