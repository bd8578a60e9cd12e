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
export * from "./vdm.ts";
export { CpuMover } from "./cpu.ts";
export { BaseMover } from "./_base.ts";
export * from "./thread.ts";
export * from "./dsa_format.ts";
export type { DeviceInfo } from "./_device.ts";
