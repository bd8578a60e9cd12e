// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Seeded randomness for the crash simulator (it cannot import the test
 * harness: the sweep also runs as a plain script).
 *
 * @module
 */

/** A deterministic PRNG (xorshift32) returning numbers in [0, 1). */
export function xorshift(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 2 ** 32;
  };
}

/** An integer in `[0, n)`. */
export function pick(rand: () => number, n: number): number {
  return Math.floor(rand() * n);
}

/** A seeded Fisher-Yates shuffle, into a new array. */
export function shuffle<T>(items: Iterable<T>, rand: () => number): T[] {
  const a = [...items];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}
