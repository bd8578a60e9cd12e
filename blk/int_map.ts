// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * {@linkcode IntMap}: a map from block numbers (non-negative int32) to
 * values, for the per-block state of operations in flight (writer queues,
 * read tracking). An open-addressing table over typed arrays: unlike a
 * `Map`, whose table V8 reallocates each time it grows or shrinks, it
 * allocates nothing while operations come and go (a `Map` emptied and
 * refilled by each round of writes allocated tables every round, garbage
 * that the scavenger promoted, and writes slowed down markedly).
 * Internal to `blk/`.
 *
 * @module
 */

const EMPTY = -1;
const REMOVED = -2;
const MIN_CAPACITY = 256;

/** Block number → value; keys must be integers in [0, 2^31). */
export class IntMap<V> {
  /** Per slot: a key, EMPTY or REMOVED. */
  #keys = new Int32Array(MIN_CAPACITY).fill(EMPTY);
  #values: (V | undefined)[] = new Array(MIN_CAPACITY);
  /** Slots holding a block. */
  #size = 0;
  /** Slots holding a block or REMOVED. */
  #used = 0;

  /** Keys present. */
  get size(): number {
    return this.#size;
  }

  /** The slot of `key`, or -1. */
  #find(key: number): number {
    const keys = this.#keys;
    const mask = keys.length - 1;
    for (let i = hash(key) & mask;; i = (i + 1) & mask) {
      const k = keys[i];
      if (k === key) return i;
      if (k === EMPTY) return -1;
    }
  }

  /** The value of `key`, if present. */
  get(key: number): V | undefined {
    const i = this.#find(key);
    return i < 0 ? undefined : this.#values[i];
  }

  /** Whether `key` is present. */
  has(key: number): boolean {
    return this.#find(key) >= 0;
  }

  /** Set the value of `key`. */
  set(key: number, value: V): void {
    const found = this.#find(key);
    if (found >= 0) {
      this.#values[found] = value;
      return;
    }
    if ((this.#used + 1) * 2 > this.#keys.length) this.#rehash();
    const keys = this.#keys;
    const mask = keys.length - 1;
    let i = hash(key) & mask;
    while (keys[i] >= 0) i = (i + 1) & mask;
    if (keys[i] === EMPTY) this.#used++;
    keys[i] = key;
    this.#values[i] = value;
    this.#size++;
  }

  /** Remove `key`. */
  delete(key: number): void {
    const i = this.#find(key);
    if (i < 0) return;
    this.#values[i] = undefined;
    if (--this.#size === 0 && this.#used > 8) {
      // Empty again (the end of a round of operations): clear the
      // tombstones in place rather than let them force a rehash, which
      // allocates a table.
      this.#keys.fill(EMPTY);
      this.#used = 0;
    } else {
      this.#keys[i] = REMOVED;
    }
  }

  /** Re-insert the live keys into a table sized for them (never below the minimum). */
  #rehash(): void {
    const keys = this.#keys;
    const values = this.#values;
    let capacity = MIN_CAPACITY;
    while ((this.#size + 1) * 4 > capacity) capacity *= 2;
    this.#keys = new Int32Array(capacity).fill(EMPTY);
    this.#values = new Array(capacity);
    this.#size = 0;
    this.#used = 0;
    for (let i = 0; i < keys.length; i++) {
      if (keys[i] >= 0) this.set(keys[i], values[i] as V);
    }
  }
}

/** Mix a key (a multiplicative hash, high bits folded into the low). */
function hash(key: number): number {
  const h = Math.imul(key, 0x9e3779b1);
  return (h ^ (h >>> 16)) >>> 0;
}
