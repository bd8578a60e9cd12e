// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The log entries the stream jobs of `review_worker.ts` append: each
 * names its writer and its place in the writer's order.
 *
 * @module
 */

/** The entry writer `id` appends as its `i`-th. */
export function tagged(id: number, i: number): Uint8Array {
  const b = new Uint8Array(8 + (i % 24));
  const dv = new DataView(b.buffer);
  dv.setUint32(0, id, true);
  dv.setUint32(4, i, true);
  return b;
}
