// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * {@linkcode runsInline}: whether a mover would copy a batch on the polling
 * thread, so a store may make the copies itself. Internal: the stores'
 * fast paths.
 *
 * @module
 */
import { type DeviceMover, inlineThresholdOf } from "./_device_mover.ts";
import { CpuMover } from "./cpu.ts";
import { DsaMover } from "./dsa.ts";
import { ThreadMover } from "./thread.ts";
import type { Vdm } from "./vdm.ts";

/**
 * Whether a batch of `bytes` bytes given to `mover` now would run on the
 * polling thread: an open CpuMover always; an open ThreadMover or
 * DsaMover below its `inlineThreshold` (as its `runBatch` decides). Only
 * those classes themselves, not subclasses (which may route their work
 * elsewhere). A store that starts its copies while polled may then make
 * them itself and skip the batch, whose operation objects, checks,
 * dispatch and future cost more than a small copy: reads of 32 blocks of
 * 512 B through a ThreadMover's batch ran at 0.36-0.42x libpmemblk's, the
 * same reads gathered inline at 0.8x (bench/RESULTS.md, 05:14 run).
 *
 * @param mover the store's mover
 * @param bytes the batch's bytes (an upper bound will do)
 */
export function runsInline(mover: Vdm, bytes: number): boolean {
  const proto = Object.getPrototypeOf(mover);
  if (proto === CpuMover.prototype) return !mover.closed;
  if (proto === ThreadMover.prototype || proto === DsaMover.prototype) {
    return !mover.closed &&
      bytes < inlineThresholdOf(mover as DeviceMover);
  }
  return false;
}
