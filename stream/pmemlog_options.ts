// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * What {@linkcode PmemLog.create} and {@linkcode PmemLog.open} take: their
 * options, and the hooks tests may add to a create. They are checked
 * where the pool is made ready (`pmemlog_pool.ts`).
 *
 * @module
 */
import type { Vdm } from "../mover/vdm.ts";
import type { PersistTracer } from "../pmem2/tracer.ts";

/**
 * Options of {@linkcode PmemLog.create}. An option not listed here is refused,
 * with a `TypeError` naming it and the option it likely stands for.
 */
export interface PmemLogCreateOptions {
  /**
   * Size of the new file, at least 2 MiB (libpmemlog's minimum); it must
   * not exist. With 0, an existing file of at least 2 MiB is used at its
   * size rounded down to 4 KiB (its first 4 KiB must be zero). @default 0
   */
  poolSize?: number;
  /** Permission bits of the new file. @default 0o644 */
  mode?: number;
  /**
   * The data mover of `appendAsync`; the log does not close it.
   * @default a shared CpuMover
   */
  mover?: Vdm;
}

/**
 * Options of {@linkcode PmemLog.open}. An option not listed here is refused,
 * with a `TypeError` naming it and the option it likely stands for.
 */
export interface PmemLogOpenOptions {
  /** See {@linkcode PmemLogCreateOptions.mover}. */
  mover?: Vdm;
}

/** What tests may add to {@linkcode PmemLog.create} and `open`. Internal. */
export interface PmemLogTestHooks {
  /**
   * A tracer attached to the log's mapping before anything is written
   * (the header included) or, at an open, read.
   */
  tracer?: PersistTracer;
}
