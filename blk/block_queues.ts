// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * {@linkcode BlockQueues}: the head of each block's writer queue, by
 * pre-map block. An open-addressing table over typed arrays: unlike a
 * `Map`, whose table V8 reallocates each time it grows or shrinks, it
 * allocates nothing while writes come and go (measured: a `Map` emptied
 * and refilled by each round of 32 writes allocated ~8 tables a round,
 * garbage that the scavenger promoted). Internal to `blk/`.
 *
 * @module
 */
import type { WriteTicket } from "./arena.ts";

const EMPTY = -1;
const REMOVED = -2;
const MIN_CAPACITY = 256;

/** Pre-map block → the ticket at the head of its queue. */
export class BlockQueues {
  /** Per slot: a pre-map block, EMPTY or REMOVED. */
  #keys = new Int32Array(MIN_CAPACITY).fill(EMPTY);
  #heads: (WriteTicket | undefined)[] = new Array(MIN_CAPACITY);
  /** Slots holding a block. */
  #size = 0;
  /** Slots holding a block or REMOVED. */
  #used = 0;

  /** Blocks with a queue. */
  get size(): number {
    return this.#size;
  }

  /** The slot of `pre`, or -1. */
  #find(pre: number): number {
    const keys = this.#keys;
    const mask = keys.length - 1;
    for (let i = hash(pre) & mask;; i = (i + 1) & mask) {
      const k = keys[i];
      if (k === pre) return i;
      if (k === EMPTY) return -1;
    }
  }

  /** The head of `pre`'s queue, if it has one. */
  get(pre: number): WriteTicket | undefined {
    const i = this.#find(pre);
    return i < 0 ? undefined : this.#heads[i];
  }

  /** Make `ticket` the head of `pre`'s queue. */
  set(pre: number, ticket: WriteTicket): void {
    const found = this.#find(pre);
    if (found >= 0) {
      this.#heads[found] = ticket;
      return;
    }
    if ((this.#used + 1) * 2 > this.#keys.length) this.#rehash();
    const keys = this.#keys;
    const mask = keys.length - 1;
    let i = hash(pre) & mask;
    while (keys[i] >= 0) i = (i + 1) & mask;
    if (keys[i] === EMPTY) this.#used++;
    keys[i] = pre;
    this.#heads[i] = ticket;
    this.#size++;
  }

  /** Forget `pre`'s queue (it emptied). */
  delete(pre: number): void {
    const i = this.#find(pre);
    if (i < 0) return;
    this.#keys[i] = REMOVED;
    this.#heads[i] = undefined;
    this.#size--;
  }

  /** Re-insert the live blocks into a table sized for them (it never shrinks below the minimum). */
  #rehash(): void {
    const keys = this.#keys;
    const heads = this.#heads;
    let capacity = MIN_CAPACITY;
    while ((this.#size + 1) * 4 > capacity) capacity *= 2;
    this.#keys = new Int32Array(capacity).fill(EMPTY);
    this.#heads = new Array(capacity);
    this.#size = 0;
    this.#used = 0;
    for (let i = 0; i < keys.length; i++) {
      if (keys[i] >= 0) this.set(keys[i], heads[i]!);
    }
  }
}

/** Mix a block number (a multiplicative hash, high bits folded into the low). */
function hash(pre: number): number {
  const h = Math.imul(pre, 0x9e3779b1);
  return (h ^ (h >>> 16)) >>> 0;
}
