// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Which pending units a crash image keeps: pmreorder's engines, plus
 * eviction. Every subset is a list of indexes into a crash point's
 * pending units, in program order (applied in that order, later units
 * win where they overlap).
 *
 * - **exhaustive**: every subset, when there are few units;
 * - **prefix**: the first k flushed units (the accumulative engine), for
 *   every k or for spread-out k when there are many;
 * - **random**: seeded subsets of a random density over the flushed
 *   units, each dirty (unflushed) unit kept with the eviction probability.
 *
 * @module
 */
import type { Unit } from "./model.ts";

/** How many images a crash point yields. */
export interface SubsetOptions {
  /** Every subset when at most this many units are pending. */
  exhaustiveLimit: number;
  /** Every prefix when at most this many flushed units are pending;
   * else this many prefix lengths, spread out (the ends included). */
  prefixes: number;
  /** Random subsets per crash point (when not exhaustive). */
  random: number;
  /** Probability that a random subset keeps a dirty unit (eviction). */
  evict: number;
}

/** One subset of a crash point's pending units. */
export interface Subset {
  /** The engine that chose it. */
  kind: "exhaustive" | "prefix" | "random";
  /** Indexes into the pending units, ascending. */
  units: number[];
}

/**
 * The subsets of `pending` to try. The same subset may come from two
 * engines; the sweep removes duplicate images anyway.
 *
 * @param pending the crash point's units
 * @param rand a seeded random source in [0, 1)
 * @param options the engines' budgets
 */
export function* subsets(
  pending: readonly Unit[],
  rand: () => number,
  options: SubsetOptions,
): Generator<Subset> {
  const n = pending.length;
  if (n <= options.exhaustiveLimit) {
    for (let mask = 0; mask < 2 ** n; mask++) {
      const units: number[] = [];
      for (let i = 0; i < n; i++) if (mask & (1 << i)) units.push(i);
      yield { kind: "exhaustive", units };
    }
    return;
  }
  const flushed: number[] = [];
  const dirty: number[] = [];
  pending.forEach((u, i) => (u.flushed ? flushed : dirty).push(i));
  for (const k of prefixLengths(flushed.length, options.prefixes)) {
    yield { kind: "prefix", units: flushed.slice(0, k) };
  }
  for (let r = 0; r < options.random; r++) {
    const density = rand();
    const units: number[] = [];
    for (let i = 0; i < n; i++) {
      const keep = pending[i].flushed ? density : options.evict;
      if (rand() < keep) units.push(i);
    }
    yield { kind: "random", units };
  }
}

/** Prefix lengths 0..n: all of them, or `count` spread out. */
function prefixLengths(n: number, count: number): number[] {
  if (n + 1 <= count) return Array.from({ length: n + 1 }, (_, k) => k);
  const lengths = new Set([0, 1, n - 1, n]);
  for (let j = 1; lengths.size < count && j < count; j++) {
    lengths.add(Math.round(j * n / count));
  }
  return [...lengths].sort((a, b) => a - b);
}
