// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// What the tests of the software devices (thread movers, DSA test
// portals) share: waiting for one completion record by hand, and a raw
// DRAIN.
import { native, type Ptr } from "../ffi/lib.ts";
import type { CompletionDevice } from "../mover/_device.ts";
import { DsaOpcode } from "../mover/dsa_format.ts";

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

/** Submit a DRAIN with record `rec` to the device of handle `h`; its rc. */
export function submitDrain(h: Ptr, rec: number): number {
  return native.ap_dev_submit(
    h,
    rec,
    DsaOpcode.DRAIN,
    0,
    null,
    0,
    0,
    null,
    0,
    0,
    0,
    0,
  );
}
