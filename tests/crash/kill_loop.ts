// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The kill test's writer loop, shared by the writer process and its
 * writer Workers.
 *
 * @module
 */
import { pick } from "./random.ts";
import type { Driver } from "./workload.ts";

/**
 * Write until killed (30 s at most): synchronous writes, groups of
 * `writeAsync`, `writeMany` batches and `setZero`, on `lbas`.
 */
export function writeLoop(
  d: Driver,
  rand: () => number,
  lbas: readonly number[],
): void {
  const some = (k: number) =>
    Array.from({ length: k }, () => lbas[pick(rand, lbas.length)]);
  // the parent kills it within a second; an orphan stops by itself
  const deadline = performance.now() + 30_000;
  while (performance.now() < deadline) {
    const r = rand();
    if (r < 0.4) d.write(some(1)[0]);
    else if (r < 0.7) d.writeAsync(some(2 + pick(rand, 6)));
    else if (r < 0.95) d.writeMany(some(1 + pick(rand, 12)));
    else d.zero(some(1)[0]);
  }
}
