// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// What the tests of the software devices (thread movers, DSA test
// portals) share: waiting for one completion record by hand.
import type { CompletionDevice } from "../mover/_device.ts";

/** Block until record `rec` of `dev` is written (or fail after 5 s). */
export function waitRecord(dev: CompletionDevice, rec: number): number {
  const end = Date.now() + 5000;
  for (;;) {
    const seq = dev.sequence();
    const status = dev.status(rec);
    if (status !== 0) return status;
    if (Date.now() > end) throw new Error(`record ${rec} never completed`);
    dev.block(seq, 100);
  }
}
