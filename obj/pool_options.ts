// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * What {@linkcode ObjectPool.create} and {@linkcode ObjectPool.open} take,
 * and what {@linkcode ObjectPool.stats} reports. The options are checked
 * where the pool file is made ready (`obj/open.ts`).
 *
 * @module
 */
import type { Vdm } from "../mover/vdm.ts";
import type { HeapUsage } from "./heap.ts";

/**
 * Options of {@linkcode ObjectPool.create}. An option not listed here is
 * refused, with a `TypeError` naming it and the option it likely stands for.
 */
export interface ObjectPoolCreateOptions {
  /** Bytes of the pool file (8 MiB to 4 GiB; rounded down to 4 KiB). */
  size: number;
  /** The layout name `open` must be given (at most 1023 UTF-8 bytes). */
  layout: string;
  /**
   * Bytes of the redo log: a multiple of 4 KiB, at least 256 KiB and at
   * most a quarter of `size` (else a `RangeError`), so the heap keeps
   * three quarters of the pool. A synchronous transaction may log up to
   * 3/8 of it, an asynchronous one a little less (what the transactions
   * staged with it took).
   * @default 1/16 of the pool, 1 to 64 MiB
   */
  logSize?: number;
  /** Permission bits of the file. @default 0o644 */
  mode?: number;
  /** The mover that applies asynchronous transactions. @default a CpuMover */
  mover?: Vdm;
}

/**
 * Options of {@linkcode ObjectPool.open}. An option not listed here is refused,
 * with a `TypeError` naming it and the option it likely stands for.
 */
export interface ObjectPoolOpenOptions {
  /** The layout name the pool was created with. */
  layout: string;
  /** The mover that applies asynchronous transactions. @default a CpuMover */
  mover?: Vdm;
}

/** What {@linkcode ObjectPool.stats} reports. */
export interface ObjectPoolStats {
  /** Bytes of the pool. */
  size: number;
  /** Bytes of the redo log. */
  logSize: number;
  /** Log bytes written since the last checkpoint. */
  logUsed: number;
  /** The heap's occupancy. */
  heap: HeapUsage;
}
