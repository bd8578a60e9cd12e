// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * What an `Arena` says when it fails: why it refuses writes (its shared
 * error codes, `ARENA_*`, and them in words, {@linkcode ERROR_REASONS}),
 * and the `PmemError`s of a write to an arena in the error state, of a
 * map entry that points beyond the arena, and of map entries that failed
 * to persist. Internal to `blk/` (`Arena` raises them).
 *
 * @module
 */
import { PmemError } from "../errors/mod.ts";
import { EINVAL, EIO } from "../errors/errno.ts";

// The values of an arena's shared error code (`LaneTable.error`; 0:
// none): the first failure sets it, and every opener then refuses writes.

/** The arena's info block had the error flag set at open. */
export const ARENA_INFO_FLAG = 1;
/** Flog slots with invalid sequence numbers (count in ERROR_COUNT). */
export const ARENA_BAD_FLOG = 2;
/** Two flog slots share a free block (the block in ERROR_COUNT). */
export const ARENA_SHARED_FREE = 3;
/** A flog update failed to persist. */
export const ARENA_FLOG_PERSIST = 4;
/** A map update failed to persist. */
export const ARENA_MAP_PERSIST = 5;

/** Why an arena refuses writes, by its shared error code. */
export const ERROR_REASONS: Record<number, (count: number) => string> = {
  [ARENA_INFO_FLAG]: () => "its info block has the error flag set",
  [ARENA_BAD_FLOG]: (n) => `${n} flog slot(s) have invalid sequence numbers`,
  [ARENA_SHARED_FREE]: (b) => `flog slots share the free block ${b}`,
  [ARENA_FLOG_PERSIST]: () => "a flog update failed to persist",
  [ARENA_MAP_PERSIST]: () => "a map update failed to persist",
};

/**
 * The error of `op` on arena `index`, which refuses writes for `reason`
 * (`Arena.error`): code -5 (EIO).
 */
export function arenaInErrorState(
  op: string,
  index: number,
  reason: string,
): PmemError {
  return new PmemError(
    op,
    -EIO,
    `arena ${index} is in the error state (${reason}); ` +
      "reads still work, run pmempool check to repair it",
  );
}

/**
 * The error of `op` for a map entry of pool-wide block `lba` that names
 * data block `block`, beyond the arena's `internalNlba` (a corrupt
 * pool): code -22 (EINVAL).
 */
export function corruptMapEntry(
  op: string,
  lba: number,
  block: number,
  internalNlba: number,
): PmemError {
  return new PmemError(
    op,
    -EINVAL,
    `the pool is corrupt: block ${lba} maps to data block ${block}, beyond the arena's ${internalNlba}`,
  );
}

/**
 * The error of a write whose batch of map entries failed to persist, or
 * of a `setZero` or `setError` (`op`) whose map entry did (`cause`, the
 * media's error): code -5 (EIO).
 */
export function mapPersistFailed(cause: unknown, op = "write"): PmemError {
  return new PmemError(op, -EIO, "cannot persist map entries", {
    errno: EIO,
    cause,
  });
}
