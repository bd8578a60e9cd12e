// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * libpmemlog 1.12.1's on-media format: PMDK's 4 KiB pool header with the
 * signature "PMEMLOG" (major 1), then three offsets at 4096 (`start`,
 * `end`, `write`; absolute file offsets, little-endian u64), run-time
 * bytes libpmemlog never reads back, and the log data from 8192.
 *
 * The pool header is PMDK's (`pmdk/pool_header.ts`), shared with the
 * block store's pmemblk pools: the same 4 KiB structure with another
 * signature.
 *
 * @module
 */
import {
  allZero,
  HEADER_SIZE,
  type PoolHeader,
  type PoolKind,
} from "../pmdk/pool_header.ts";

export { allZero, HEADER_SIZE, type PoolHeader };

/** The header signature, NUL included. */
export const LOG_SIGNATURE = "PMEMLOG\0";
/** The only major version libpmemlog 1.x opens. */
export const LOG_MAJOR = 1;
/** File offset of `start_offset` (then `end_offset`, `write_offset`). */
export const DESCRIPTOR_OFFSET = 4096;
/** File offset of `write_offset`. */
export const WRITE_OFFSET_AT = 4112;
/** Where the log data starts (`start_offset` on x86-64 and aarch64). */
export const LOG_START = 8192;
/** libpmemlog's smallest pool (`PMEMLOG_MIN_POOL`). */
export const MIN_LOG_POOL = 2 * 1024 * 1024;
/** Log files are used in whole pages. */
export const LOG_PAGE = 4096;

/** libpmemlog's pools: signature "PMEMLOG", major version 1. */
export const LOG_POOL: PoolKind = {
  signature: LOG_SIGNATURE,
  major: LOG_MAJOR,
  name: "pmemlog",
};

/**
 * Check the log descriptor as libpmemlog's open does. The offsets are
 * bigints, so a damaged one is compared and printed exactly.
 *
 * @returns a sentence saying what is wrong, or null
 */
export function descriptorProblem(
  start: bigint,
  end: bigint,
  write: bigint,
  mapped: number,
): string | null {
  if (start !== BigInt(LOG_START)) {
    return `the log descriptor is corrupt: start offset ${start}, expected ${LOG_START}`;
  }
  // (the descriptor has no checksum: an end past the file's own end is
  // a file cut short as likely as damage, and both are named)
  if (end > BigInt(mapped)) {
    return `the file is truncated, or the log descriptor is corrupt: end offset ${end}, the pool has ${mapped} bytes`;
  }
  if (end !== BigInt(mapped)) {
    return `the log descriptor is corrupt: end offset ${end}, the pool has ${mapped} bytes`;
  }
  if (write < start || write > end) {
    return `the log descriptor is corrupt: wrong write offset (start: ${start} end: ${end} write: ${write})`;
  }
  return null;
}
