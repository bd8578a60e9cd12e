// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Data movers (miniasync's vdm): the in-thread {@linkcode CpuMover}, the
 * software-DSA {@linkcode ThreadMover} and Intel DSA hardware,
 * {@linkcode DsaMover}, behind one {@linkcode Vdm} interface.
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
export { DeviceMover } from "./_device_mover.ts";
export { ThreadMover, type ThreadMoverOptions } from "./thread.ts";
export {
  type DsaChoice,
  type DsaDeviceInfo,
  type DsaFallbackOptions,
  DsaMover,
  type DsaMoverOptions,
  type DsaQueue,
  type DsaWqInfo,
} from "./dsa.ts";
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
export type { DeviceInfo, Submission } from "./_device.ts";
