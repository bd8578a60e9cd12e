// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * One entry of a redo log record (`obj/log.ts`): the size of its payload,
 * its check when a record is read back at open ({@linkcode parseRecord}),
 * and its application to its home ({@linkcode applyOne}). Internal to
 * `obj/`.
 *
 * @module
 */
import { CorruptPoolError } from "./errors.ts";
import {
  ENTRY_HEADER,
  type Geometry,
  OP_AND,
  OP_COPY,
  OP_OR,
  OP_ZERO,
  RECORD_HEADER,
  ROOT_OFFSET_AT,
  STATE_OFFSET,
} from "./layout.ts";
import type { ObjMedia } from "./media.ts";
import { u64Big, u64Text } from "./object_bytes.ts";

/**
 * One entry as it lies in a record: `at` is the file offset of its
 * payload. Made only where a list is needed (recovery, a group applied by
 * the mover, the overlay of pending writes); staging and applying on this
 * thread read the ring itself.
 */
export interface Entry {
  op: number;
  target: number;
  length: number;
  at: number;
}

/**
 * The entries of the valid record (its CRC matches) of `size` bytes at
 * file offset `p`, logical position `pos`, holding `count` entries,
 * checked: each must parse and change only the state page or the heap.
 *
 * @throws {CorruptPoolError} for an entry that does not
 */
export function parseRecord(
  media: ObjMedia,
  g: Geometry,
  p: number,
  pos: number,
  size: number,
  count: number,
): Entry[] {
  const entries: Entry[] = [];
  const bad = (detail: string) =>
    new CorruptPoolError(
      "open",
      `the log record at position ${pos}`,
      detail,
    );
  let q = p + RECORD_HEADER;
  const end = p + size;
  for (let i = 0; i < count; i++) {
    if (q + ENTRY_HEADER > end) throw bad(`entry ${i} lies past its end`);
    const op = media.getU32(q);
    const length = media.getU32(q + 4);
    const target = media.read64(q + 8);
    if (op < OP_COPY || op > OP_AND) throw bad(`entry ${i} has op ${op}`);
    if ((op === OP_OR || op === OP_AND) && (length !== 8 || target % 8)) {
      throw bad(
        `entry ${i} is a mask of ${length} bytes at ${u64Text(media, q + 8)}`,
      );
    }
    const payload = payloadOf(op, length);
    if (q + ENTRY_HEADER + payload > end) {
      throw bad(`entry ${i} lies past its end`);
    }
    const inState = target >= ROOT_OFFSET_AT &&
      target + length <= STATE_OFFSET + 4096;
    const inHeap = target >= g.chunkTable && target + length <= g.size;
    if (length === 0 || !(inState || inHeap)) {
      // the target as stored: past 2^53 its double is another number
      const t = u64Big(media.getU32(q + 8), media.getU32(q + 12));
      throw bad(
        `entry ${i} changes [${t}, ${
          t + BigInt(length)
        }), outside the state page and the heap`,
      );
    }
    entries.push({ op, target, length, at: q + ENTRY_HEADER });
    q += ENTRY_HEADER + payload;
  }
  return entries;
}

/**
 * Bytes of an entry's payload. Arithmetic, not `& ~7`: a length read from
 * a damaged record may be any u32, and from 2^31 - 7 on the bitwise form
 * was negative (the record's parse then let an entry of 2 GiB through).
 */
export function payloadOf(op: number, length: number): number {
  return op === OP_COPY
    ? length + 7 - (length + 7) % 8
    : op === OP_ZERO
    ? 0
    : 8;
}

/**
 * Apply one entry (its payload at `at`) to its home on this thread and
 * note the home dirty.
 */
export function applyOne(
  media: ObjMedia,
  op: number,
  target: number,
  length: number,
  at: number,
): void {
  if (op === OP_COPY) {
    if (
      length <= 128 && ((target | length) & 3) === 0 &&
      media.fits(target, length) && media.fits(at, length)
    ) {
      // short aligned copies: a loop costs less than a builtin's call
      const tw = media.u32At(target, length);
      const sw = media.u32At(at, length);
      const t = media.index(target, length) >>> 2;
      const s = media.index(at, length) >>> 2;
      for (let j = 0, m = length >>> 2; j < m; j++) tw[t + j] = sw[s + j];
    } else media.move(target, at, length); // a home and the log: apart
  } else if (op === OP_ZERO) media.fill(0, target, length);
  else {
    const lo = media.getU32(at);
    const hi = media.getU32(at + 4);
    if (op === OP_OR) {
      media.setU32(target, media.getU32(target) | lo);
      media.setU32(target + 4, media.getU32(target + 4) | hi);
    } else {
      media.setU32(target, media.getU32(target) & lo);
      media.setU32(target + 4, media.getU32(target + 4) & hi);
    }
  }
  media.dirty(target, length);
}

/** Apply one entry to its home on this thread (recovery). */
export function applyEntry(media: ObjMedia, e: Entry): void {
  applyOne(media, e.op, e.target, e.length, e.at);
}
