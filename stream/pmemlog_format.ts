// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * libpmemlog 1.12.1's on-media format: PMDK's 4 KiB pool header with the
 * signature "PMEMLOG" (major 1), then three offsets at 4096 (`start`,
 * `end`, `write`; absolute file offsets, little-endian u64), run-time
 * bytes libpmemlog never reads back, and the log data from 8192.
 *
 * The pool header's codec and checksum are PMDK's, shared with the
 * block store's pmemblk pools (`blk/header.ts`, `blk/checksum.ts`): the
 * same 4 KiB structure with another signature.
 *
 * @module
 */
import { fletcher64, storedChecksum } from "../blk/checksum.ts";
import {
  allZero,
  type ArchFlags,
  COMPAT_CHECK_BAD_BLOCKS,
  decodePoolHeader,
  encodePoolHeader,
  HEADER_CHECKSUM_OFFSET,
  HEADER_CKSUM_2K_END,
  HEADER_SIZE,
  INCOMPAT_CKSUM_2K,
  INCOMPAT_KNOWN,
  INCOMPAT_SDS,
  type PoolHeader,
  randomUuid,
  sameUuid,
} from "../blk/header.ts";

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

/**
 * A new pool header as libpmemlog 1.12.1 writes it for a single-file
 * pool: compat CHECK_BAD_BLOCKS, incompat CKSUM_2K | SDS (the shutdown
 * state stays zero, which libpmemlog accepts), every part and replica
 * link pointing at the pool's own UUID.
 *
 * @param crtime creation time in seconds
 * @param arch the platform fields
 */
export function newLogHeader(crtime: number, arch: ArchFlags): PoolHeader {
  const uuid = randomUuid();
  return {
    signature: LOG_SIGNATURE,
    major: LOG_MAJOR,
    compat: COMPAT_CHECK_BAD_BLOCKS,
    incompat: INCOMPAT_CKSUM_2K | INCOMPAT_SDS,
    roCompat: 0,
    poolsetUuid: randomUuid(),
    uuid,
    prevPartUuid: uuid,
    nextPartUuid: uuid,
    prevReplUuid: uuid,
    nextReplUuid: uuid,
    crtime,
    ...arch,
    checksum: 0n,
  };
}

export { encodePoolHeader };

/**
 * Validate header bytes as libpmemlog's open does (signature, major,
 * incompatible features, checksum, architecture, single-file links).
 *
 * @param bytes the 4096 header bytes
 * @param arch the platform to match, or `null` to skip that check
 * @returns the decoded header, or a sentence saying what is wrong
 */
export function checkLogHeader(
  bytes: Uint8Array,
  arch: ArchFlags | null,
): PoolHeader | string {
  if (allZero(bytes.subarray(0, HEADER_SIZE))) {
    return "not a pmemlog pool: the pool header is all zeros";
  }
  const h = decodePoolHeader(bytes);
  if (h.signature !== LOG_SIGNATURE) {
    const shown = h.signature.replace(/\0+$/, "").replace(/[^ -~]/g, "?");
    return `not a pmemlog pool: the signature is ${JSON.stringify(shown)}`;
  }
  if (h.major !== LOG_MAJOR) {
    return `unsupported pool format: major version ${h.major}, expected ${LOG_MAJOR}`;
  }
  if ((h.incompat & ~INCOMPAT_KNOWN) !== 0) {
    return `unsupported pool format: unknown incompatible features 0x${
      h.incompat.toString(16)
    }`;
  }
  const end = (h.incompat & INCOMPAT_CKSUM_2K)
    ? HEADER_CKSUM_2K_END
    : HEADER_SIZE;
  const computed = fletcher64(
    bytes.subarray(0, HEADER_SIZE),
    HEADER_CHECKSUM_OFFSET,
    end,
  );
  const stored = storedChecksum(bytes, HEADER_CHECKSUM_OFFSET);
  if (computed !== stored) {
    return `the pool header is corrupt: checksum 0x${
      stored.toString(16)
    } stored, 0x${computed.toString(16)} computed`;
  }
  if (
    arch !== null &&
    (h.alignmentDesc !== arch.alignmentDesc ||
      h.machineClass !== arch.machineClass || h.data !== arch.data ||
      h.machine !== arch.machine)
  ) {
    return `the pool was created on another architecture (machine ${h.machine})`;
  }
  const linked = [
    h.prevPartUuid,
    h.nextPartUuid,
    h.prevReplUuid,
    h
      .nextReplUuid,
  ].every((u) => sameUuid(u, h.uuid));
  if (!linked) {
    return "the pool header links other parts or replicas: pool sets are not supported";
  }
  return h;
}

/**
 * Check the log descriptor as libpmemlog's open does.
 *
 * @returns a sentence saying what is wrong, or null
 */
export function descriptorProblem(
  start: number,
  end: number,
  write: number,
  mapped: number,
): string | null {
  if (start !== LOG_START) {
    return `the log descriptor is corrupt: start offset ${start}, expected ${LOG_START}`;
  }
  if (end !== mapped) {
    return `the log descriptor is corrupt: end offset ${end}, the pool has ${mapped} bytes`;
  }
  if (write < start || write > end) {
    return `the log descriptor is corrupt: wrong write offset (start: ${start} end: ${end} write: ${write})`;
  }
  return null;
}
