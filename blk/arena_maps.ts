// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * An {@linkcode Arena}'s map entries as its writes change them: the entry
 * an update replaces, the entry a commit publishes (stored, persisted
 * later with others: `pending_filter.ts` keeps what is pending), the
 * persist of every pending entry with one fence, and the zero and error
 * flags of setZero and setError. `Arena`'s methods of the same names run
 * these. Internal to `blk/`.
 *
 * @module
 */
import {
  MAP_ENTRY_SIZE,
  MAP_FLAGS,
  MAP_LBA_MASK,
  MAP_NORMAL,
  MAP_ZERO,
} from "./layout.ts";
import type { Media } from "./media.ts";
import { effectiveMapEntry } from "./flog.ts";
import { ARENA_MAP_PERSIST, mapPersistFailed } from "./arena_errors.ts";
import type { Arena } from "./arena.ts";

/**
 * The map entry an update of `pre` replaces (initial entries as NORMAL).
 * Its block becomes a lane's free block, so it must lie in the arena:
 * otherwise a later data copy would land outside it.
 *
 * @throws {PmemError} code -22 when the entry points beyond the arena
 */
export function currentEntry(a: Arena, pre: number): number {
  const old = effectiveMapEntry(a.mapEntry(pre), pre);
  if ((old & MAP_LBA_MASK) >= a.internalNlba) {
    throw a.corruptEntry("write", pre, old & MAP_LBA_MASK);
  }
  return old;
}

/**
 * Persist every pending map entry of arena `a` (this opener's and the
 * others') with one fence: on page granularity one msync over the span
 * of their pages (msync costs little per page, and only dirty pages are
 * written), otherwise each cache line once. An entry is marked persisted
 * only after the persist, so whoever sees it cleared may rely on it.
 *
 * @throws {PmemError} code -5 (EIO) when the persist fails: the arena
 *   then refuses writes (the flog still holds these updates: the next
 *   open rolls them forward)
 */
export function flushPendingMaps(a: Arena, media: Media): void {
  const t = a.table;
  const page = media.granularity === "page";
  const lines: { offset: number; length: number }[] = [];
  const seen: number[] = [];
  let lo = Infinity;
  let hi = -1;
  for (let lane = 0; lane < a.lanes; lane++) {
    const seq = t.pending(lane);
    if (seq === 0) continue;
    const p = t.pendingBlock(lane, seq);
    if (p === 0) continue; // cleared meanwhile
    seen.push(lane, seq, p);
    const at = a.mapOff + (p - 1) * MAP_ENTRY_SIZE;
    if (at < lo) lo = at;
    if (at > hi) hi = at;
    if (!page) lines.push({ offset: at, length: MAP_ENTRY_SIZE });
  }
  if (seen.length === 0) return;
  try {
    if (page) media.persist(lo, hi + MAP_ENTRY_SIZE - lo);
    else media.persistRanges(lines);
  } catch (cause) {
    // (closed from inside the persist, by a testing tracer's callback:
    // no media failure)
    if (media.closed) throw cause;
    // the flog still holds these updates: the next open rolls forward
    a.fail(ARENA_MAP_PERSIST);
    throw mapPersistFailed(cause);
  }
  for (let i = 0; i < seen.length; i += 3) {
    t.clearPending(seen[i], seen[i + 1]);
  }
}

/**
 * Step 4 of a write of `pre` through `lane`: publish the committed write
 * in the map (stored now, persisted with the next batch of pending map
 * entries: the write is durable already through its flog entry) and make
 * the old block (of `old`, the entry the update replaced) the lane's
 * free block.
 */
export function publishOnly(
  a: Arena,
  media: Media,
  lane: number,
  pre: number,
  old: number,
): void {
  const t = a.table;
  media.setU32(
    a.mapOff + pre * MAP_ENTRY_SIZE,
    (t.free(lane) | MAP_NORMAL) >>> 0,
  );
  t.addPending(lane, pre);
  t.setFree(lane, (old & MAP_LBA_MASK) >>> 0);
}

/**
 * Set the zero or error flag of `pre`'s map entry (persisted). The
 * block stays with the LBA; no flog update. Setting zero on a block
 * that already reads as zeros does nothing. The caller holds `pre`'s
 * stripe.
 *
 * @param flag `MAP_ZERO` or `MAP_ERROR`
 * @param op the caller's name, for its error
 * @returns whether the map changed
 * @throws {PmemError} code -5 (EIO) when the persist fails: the arena
 *   then refuses writes, and the pool's close leaves it dirty
 */
export function setMapFlag(
  a: Arena,
  media: Media,
  pre: number,
  flag: number,
  op: string,
): boolean {
  const at = a.mapOff + pre * MAP_ENTRY_SIZE;
  const entry = media.getU32(at);
  const flags = entry & MAP_FLAGS;
  if (flag === MAP_ZERO && (flags === 0 || flags === MAP_ZERO)) return false;
  const block = effectiveMapEntry(entry, pre) & MAP_LBA_MASK;
  media.setU32(at, (block | flag) >>> 0);
  try {
    // a pending entry of pre stays pending: persisting it again is harmless
    media.persist(at, MAP_ENTRY_SIZE);
  } catch (cause) {
    // (closed from inside the persist, by a testing tracer's callback:
    // no media failure, and the close made the map durable)
    if (media.closed) throw cause;
    // the entry reads as set from now on, durable or not, and no flog
    // entry names it: the next open must persist the map (the close
    // leaves the pool dirty for an arena that failed a persist)
    a.fail(ARENA_MAP_PERSIST);
    throw mapPersistFailed(cause, op);
  }
  return true;
}
