// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * libpmem2's `PMEM2_F_MEM_*` flags for `memcpy`, `memmove` and `memset`.
 *
 * @module
 */

/**
 * Flags of the copy functions. With none, a copy is durable when it
 * returns: on persistent memory libpmem2 copies with non-temporal stores
 * from 256 bytes up; on a page-granularity file (tmpfs, a disk) the copy
 * is a plain memmove followed by an msync, and NONTEMPORAL or WC ask for
 * non-temporal stores there.
 *
 * @example Usage
 * ```ts
 * import { MemFlags } from "@asyncpmem/asyncpmem/pmem2";
 * import assert from "node:assert/strict";
 *
 * assert.equal(MemFlags.NODRAIN | MemFlags.TEMPORAL, 5);
 * ```
 */
export const MemFlags = {
  /** Skip the final drain so several copies can share one. */
  NODRAIN: 1,
  /** Hint: non-temporal stores. Excludes TEMPORAL and NOFLUSH. */
  NONTEMPORAL: 2,
  /** Hint: ordinary stores. */
  TEMPORAL: 4,
  /** Hint: write-combining. Excludes WB and NOFLUSH. */
  WC: 8,
  /** Hint: write-back (TEMPORAL on x86). */
  WB: 16,
  /** Flush nothing (implies NODRAIN): the copy is not durable. */
  NOFLUSH: 32,
} as const;

/** The OR of every {@linkcode MemFlags} value. */
export const MEM_VALID_FLAGS = 63;

/**
 * Check a flags word and return it, -0 as 0 (see `checkByte`): the shim
 * takes the returned value.
 *
 * @throws {TypeError} when not an integer
 * @throws {RangeError} for unknown bits or exclusive combinations
 */
export function checkMemFlags(flags: unknown, op: string): number {
  if (typeof flags !== "number" || !Number.isInteger(flags)) {
    throw new TypeError(`Cannot ${op}: flags must be an integer`);
  }
  // a range test, not `flags & ~MEM_VALID_FLAGS`: `&` sees only the low
  // 32 bits, so 2^32 + 1 passed it, and the shim takes a u32 (Bun
  // truncated it to NODRAIN; Deno's FFI threw its own TypeError); every
  // bit below MEM_VALID_FLAGS is a flag
  if (flags < 0 || flags > MEM_VALID_FLAGS) {
    throw new RangeError(`Cannot ${op}: unknown flags 0x${flags.toString(16)}`);
  }
  const { NONTEMPORAL, TEMPORAL, WC, WB, NOFLUSH } = MemFlags;
  if ((flags & NONTEMPORAL) && (flags & TEMPORAL)) {
    throw new RangeError(`Cannot ${op}: NONTEMPORAL excludes TEMPORAL`);
  }
  if ((flags & WC) && (flags & WB)) {
    throw new RangeError(`Cannot ${op}: WC excludes WB`);
  }
  if ((flags & NOFLUSH) && (flags & (NONTEMPORAL | WC))) {
    throw new RangeError(`Cannot ${op}: NOFLUSH excludes NONTEMPORAL and WC`);
  }
  return flags + 0;
}
