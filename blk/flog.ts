// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The BTT flog, libpmemblk 1.12.1's format: per lane a 64-byte slot of two
 * 16-byte entries `{lba, old_map, new_map, seq}`; the entry with the later
 * sequence number (1 → 2 → 3 → 1; 0: never written) is current, and a
 * lane's next update writes the other one. Reading, writing and the
 * initial contents. Internal to `blk/`.
 *
 * @module
 */
import {
  FLOG_ENTRY_SIZE,
  FLOG_SLOT_SIZE,
  MAP_FLAGS,
  MAP_NORMAL,
  MAP_ZERO,
} from "./layout.ts";
import type { Media } from "./media.ts";

/** Successor of a flog sequence number: 1 → 2 → 3 → 1 (0: never written). */
export const NEXT_SEQ: readonly number[] = [0, 2, 3, 1];

/** Bytes of an entry's first half `{lba, old_map}` (and of its second). */
export const FLOG_HALF_SIZE = 8;

/** One flog entry. */
export interface FlogEntry {
  /** Pre-map block the entry is about. */
  lba: number;
  /** Map entry before the write (its block becomes free). */
  oldMap: number;
  /** Map entry after the write. */
  newMap: number;
  /** Sequence number 1, 2 or 3 (0: never written). */
  seq: number;
}

/** File offset of entry `which` (0 or 1) of `lane`'s slot in a flog at `flogOff`. */
export function flogEntryAt(
  flogOff: number,
  lane: number,
  which: number,
): number {
  return flogOff + lane * FLOG_SLOT_SIZE + which * FLOG_ENTRY_SIZE;
}

/**
 * Decode the flog entry at a file offset.
 *
 * @param media the pool
 * @param offset file offset of the entry
 * @returns the entry
 */
export function readFlogEntry(media: Media, offset: number): FlogEntry {
  return {
    lba: media.getU32(offset),
    oldMap: media.getU32(offset + 4),
    newMap: media.getU32(offset + 8),
    seq: media.getU32(offset + 12),
  };
}

/**
 * Which entry of a flog pair is current: 0 or 1, or -1 when the pair is
 * invalid (equal or out-of-range sequence numbers).
 *
 * @param seq0 sequence number of entry 0
 * @param seq1 sequence number of entry 1
 */
export function currentFlogEntry(seq0: number, seq1: number): number {
  if (seq0 > 3 || seq1 > 3 || seq0 === seq1) return -1;
  if (seq0 === 0) return 1;
  if (seq1 === 0) return 0;
  return NEXT_SEQ[seq0] === seq1 ? 1 : 0;
}

/** The map entry value that an initial (flag bits 00) entry stands for. */
export function effectiveMapEntry(entry: number, pre: number): number {
  return (entry & MAP_FLAGS) === 0 ? (pre | MAP_NORMAL) >>> 0 : entry;
}

/**
 * Store an entry's first half, `{lba, old_map}` (not persisted: the caller
 * persists it before the second half, unless both reach the media
 * together, as a 16-byte entry does through a page write-back).
 */
export function storeFlogHead(
  media: Media,
  at: number,
  pre: number,
  oldMap: number,
): void {
  media.setU32(at, pre);
  media.setU32(at + 4, oldMap);
}

/**
 * Store an entry's second half, `{new_map, seq}`: once durable, the commit
 * point of the update (seq is stored last).
 */
export function storeFlogTail(
  media: Media,
  at: number,
  newBlock: number,
  seq: number,
): void {
  media.setU32(at + 8, (newBlock | MAP_NORMAL) >>> 0);
  media.setU32(at + 12, seq);
}

/**
 * The initial flog of an arena with `externalNlba` blocks and `nfree`
 * lanes, laid out at `length` bytes: lane i owns free block
 * `externalNlba + i` (zero-flagged) in entry 0 with sequence 1.
 */
export function initialFlog(
  externalNlba: number,
  nfree: number,
  length: number,
): Uint8Array {
  const flog = new Uint8Array(length);
  const dv = new DataView(flog.buffer);
  for (let i = 0; i < nfree; i++) {
    const e = i * FLOG_SLOT_SIZE;
    const free = ((externalNlba + i) | MAP_ZERO) >>> 0;
    dv.setUint32(e, i, true);
    dv.setUint32(e + 4, free, true);
    dv.setUint32(e + 8, free, true);
    dv.setUint32(e + 12, 1, true);
  }
  return flog;
}
