// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * {@linkcode flushSpans}: what `Mapping.persistRanges` flushes before its
 * one drain, for a list of ranges: one span over them all where one msync
 * is cheaper, else each range widened to its unit (page or cache line),
 * sorted and merged. Internal to `pmem2/`.
 *
 * @module
 */
import { checkRange } from "../ffi/validate.ts";
import type { Granularity } from "./config.ts";

/** Largest span persistRanges covers with one msync regardless of density. */
const SPAN_PERSIST_MAX = 2 ** 30;

/**
 * The spans to flush for `ranges` of a mapping of `size` bytes with
 * `granularity`, as `[offset, length, offset, length, ...]` (none when
 * the ranges hold no byte). Every range is checked before this returns,
 * so no flush precedes a refused range.
 *
 * @throws {TypeError} when `ranges` is not an array, or a range's offset
 *   or length not a number
 * @throws {RangeError} when a range leaves the mapping or is not made of
 *   non-negative integers
 */
export function flushSpans(
  ranges: readonly { offset: number; length: number }[],
  size: number,
  granularity: Granularity,
): number[] {
  if (!Array.isArray(ranges)) {
    throw new TypeError("Cannot persistRanges: ranges must be an array");
  }
  // One pass of plain tests (the block store persists 32–64 ranges a
  // commit, and a call of checkRange per range is not free); a range
  // that fails them is checked again to throw the right error. Each
  // range is read once, into `spans`: a getter read again could answer
  // another range than the one checked.
  const spans: number[] = [];
  let total = 0;
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < ranges.length; i++) {
    const r = ranges[i];
    const offset = r?.offset;
    const length = r?.length;
    // integers first: see Mapping.read
    if (
      !(Number.isInteger(offset) && Number.isInteger(length) &&
        offset >= 0 && length >= 0 && offset + length <= size)
    ) {
      checkRange(offset, length, size, "persistRanges");
    }
    if (length === 0) continue;
    spans.push(offset, length);
    total += length;
    if (offset < lo) lo = offset;
    if (offset + length > hi) hi = offset + length;
  }
  // (the answer is written into `spans` itself: no array more per call)
  if (total === 0) return spans;
  const page = granularity === "page";
  if (page && (hi - lo <= SPAN_PERSIST_MAX || hi - lo <= 8 * total)) {
    spans[0] = lo;
    spans[1] = hi - lo;
    spans.length = 2;
    return spans;
  }
  const unit = page ? 4096 : 64;
  const sorted: [number, number][] = [];
  for (let i = 0; i < spans.length; i += 2) {
    const offset = spans[i];
    sorted.push([
      Math.floor(offset / unit) * unit,
      Math.min(size, Math.ceil((offset + spans[i + 1]) / unit) * unit),
    ]);
  }
  sorted.sort((a, b) => a[0] - b[0]);
  spans.length = 0;
  let start = -1;
  let end = -1;
  for (const [s, e] of sorted) {
    if (s <= end) {
      end = Math.max(end, e);
      continue;
    }
    if (start >= 0) spans.push(start, end - start);
    start = s;
    end = e;
  }
  if (start >= 0) spans.push(start, end - start);
  return spans;
}
