// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Data movers (miniasync's vdm): the in-thread {@linkcode CpuMover} and the
 * software-DSA {@linkcode ThreadMover}, behind one {@linkcode Vdm} interface.
 *
 * ```ts
 * import { ThreadMover, VdmFlags } from "@asyncpmem/asyncpmem/mover";
 *
 * using mover = new ThreadMover();
 * const dst = new Uint8Array(64 << 10);
 * await mover.memset(dst, 0xff, VdmFlags.NO_CACHE_HINT);
 * ```
 *
 * @module
 */
export {
  type BatchEntry,
  type CheckedOp,
  type Vdm,
  VdmFlags,
  type VdmOp,
} from "./vdm.ts";
export { CpuMover } from "./cpu.ts";
export { BaseMover } from "./_base.ts";
export { ThreadMover, type ThreadMoverOptions } from "./thread.ts";
export {
  DSA_STATUS_MASK,
  DSA_STATUS_WRITE_FAULT,
  DsaDescriptor,
  DsaFlag,
  DsaOpcode,
  DsaRecord,
  DsaStatus,
  dsaStatusName,
} from "./dsa_format.ts";
export type { DeviceInfo } from "./_device.ts";
