// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The region table: validation at open, and crash-consistent allocation
 * and release of regions.
 *
 * - Allocate: the new region's first header is zeroed (its entries end
 *   there) and the slot's generation, offset, size, CRC and head are
 *   written, all persisted with one fence while the slot still reads
 *   free; then the slot's 4-byte state word is set and persisted. A crash
 *   before that store leaves the slot free and the space unused.
 * - Free: the settled timestamp W first passes every entry of the region
 *   (recovery never looks for a gap where the region was); then the
 *   state word is cleared and persisted.
 *
 * @module
 */
import { ClosedError, OutOfSpaceError, PmemError } from "../errors/mod.ts";
import type { LogCore } from "./core.ts";
import { settle, waitFor } from "./progress.ts";
import { StreamAppendFuture } from "./futures.ts";
import {
  alignUp,
  decodeSlot,
  encodeSlotBody,
  ENTRY_HEADER,
  entryTotal,
  type Geometry,
  normalize,
  PAD_BIT,
  SLOT_ALLOCATED,
  SLOT_FREE,
  SLOT_SIZE,
  slotOffset,
  type SlotRecord,
} from "./layout.ts";
import type { StreamMedia } from "./media.ts";
import {
  HOLD_ALLOCATE,
  HOLD_FREE,
  HOLD_FREE_BEGIN,
  HOLD_TRUNCATE,
  REGION_ALLOCATED,
  REGION_FREE,
  REGION_FREEING,
  type SharedState,
} from "./shared.ts";
import { restoreSlot, undoAllocate } from "./table_undo.ts";
import { EBUSY } from "../errors/errno.ts";

/** An allocated slot as validated at open. */
export interface TableEntry {
  /** The slot. */
  k: number;
  /** The slot's record. */
  slot: SlotRecord;
}

/**
 * Read and validate every slot of the region table.
 *
 * @returns the allocated slots, or a sentence naming the damaged slot
 */
export function readTable(
  media: StreamMedia,
  g: Geometry,
): TableEntry[] | string {
  const out: TableEntry[] = [];
  for (let k = 0; k < g.regionSlots; k++) {
    const slot = decodeSlot(media.view(slotOffset(k), SLOT_SIZE));
    if (slot.state === SLOT_FREE) continue;
    const where = `region table slot ${k}`;
    if (slot.state !== SLOT_ALLOCATED) {
      return `${where} is corrupt: state ${slot.state}`;
    }
    if (!slot.crcOk) return `${where} is corrupt: its CRC does not match`;
    if (
      slot.offset < g.dataOffset || slot.offset % g.blockSize !== 0 ||
      slot.size < g.blockSize || slot.size % g.blockSize !== 0 ||
      slot.offset + slot.size > g.size
    ) {
      // the u64s as stored: a double would print a damaged one inexactly
      const offset = media.readU64(slotOffset(k) + 8);
      const end = offset + media.readU64(slotOffset(k) + 16);
      return `${where} is corrupt: region [${offset}, ${end}) does not fit the data area [${g.dataOffset}, ${g.size}) in blocks of ${g.blockSize}`;
    }
    if (!Number.isSafeInteger(slot.head) || slot.head % 8 !== 0) {
      return `${where} is corrupt: head ${media.readU64(slotOffset(k) + 32)}`;
    }
    out.push({ k, slot });
  }
  const sorted = [...out].sort((a, b) => a.slot.offset - b.slot.offset);
  for (let i = 1; i < sorted.length; i++) {
    const a = sorted[i - 1].slot;
    if (a.offset + a.size > sorted[i].slot.offset) {
      return `region table slots ${sorted[i - 1].k} and ${
        sorted[i].k
      } are corrupt: their regions overlap`;
    }
  }
  return out;
}

/**
 * Allocate a region of `size` bytes (a multiple of the block size) in the
 * first gap that holds it. The caller holds the reserve lock.
 *
 * @returns the slot
 * @throws {OutOfSpaceError} when no slot or no gap is free
 */
export function allocateSlot(
  media: StreamMedia,
  shared: SharedState,
  g: Geometry,
  size: number,
  op: string,
): number {
  let k = -1;
  const taken: { offset: number; size: number }[] = [];
  for (let j = 0; j < g.regionSlots; j++) {
    if (shared.regionState(j) === REGION_FREE) {
      if (k < 0) k = j;
    } else taken.push({ offset: shared.offset(j), size: shared.size(j) });
  }
  if (k < 0) {
    throw new OutOfSpaceError(
      op,
      `all ${g.regionSlots} region slots are in use`,
    );
  }
  taken.sort((a, b) => a.offset - b.offset);
  let offset = g.dataOffset;
  let largest = 0;
  for (const t of taken) {
    if (t.offset - offset >= size) break;
    largest = Math.max(largest, t.offset - offset);
    offset = alignUp(t.offset + t.size, g.blockSize);
  }
  const end = Math.floor(g.size / g.blockSize) * g.blockSize;
  if (offset + size > end) {
    largest = Math.max(largest, end - offset);
    throw new OutOfSpaceError(
      op,
      `no free space for a region of ${size} bytes (the largest gap has ${
        Math.max(0, largest)
      })`,
    );
  }
  const at = slotOffset(k);
  // a freed slot keeps its body and CRC on the media, so its generation
  // survives a reopen there; the mirror holds only the allocated slots'
  const last = decodeSlot(media.view(at, SLOT_SIZE));
  const generation = (Math.max(
    shared.generation(k),
    last.crcOk ? last.generation : 0,
  ) + 1) >>> 0;
  // a thread that ends from here on leaves the allocation to the next
  // taker of the lock, which finishes it once the state word is stored
  shared.hold(HOLD_ALLOCATE, k);
  media.zero(offset, ENTRY_HEADER);
  media.set(at + 4, encodeSlotBody(generation, offset, size));
  media.write64(at + 32, 0);
  media.persistRanges([
    { offset, length: ENTRY_HEADER },
    { offset: at + 4, length: 36 },
  ]);
  media.write32(at, SLOT_ALLOCATED);
  try {
    media.persist(at, 4);
  } catch (e) {
    undoAllocate(media, shared, k, offset, size);
    throw e;
  }
  shared.setGeneration(k, generation);
  shared.setPlace(k, offset, size);
  shared.setHead(k, 0);
  shared.setTail(k, 0);
  shared.setCommitted(k, 0, 0);
  shared.setLive(k, 0);
  shared.setRegionState(k, REGION_ALLOCATED);
  shared.bump();
  return k;
}

/**
 * Allocate a region of at least `bytes` (rounded up to the block size,
 * and to room for two entry headers) under the reserve lock.
 *
 * @returns the slot
 * @throws {OutOfSpaceError} when no slot or no gap is free
 */
export function allocateRegion(
  core: LogCore,
  bytes: number,
  op: string,
): number {
  const g = core.geometry;
  const size = alignUp(Math.max(bytes, 2 * ENTRY_HEADER), g.blockSize);
  const s = core.shared;
  s.lockReserve(op);
  try {
    return allocateSlot(core.media, s, g, size, op);
  } finally {
    s.unlockReserve();
  }
}

/**
 * Mark a region as being freed (no new reservations); the caller holds
 * the reserve lock and checked nothing is in flight.
 */
export function beginFree(shared: SharedState, k: number): void {
  shared.markFreeing(k);
}

/**
 * Roll back the free of region `k` begun by {@linkcode beginFree} (its
 * entries not yet settled, nothing of it on the media): allocated again.
 * The caller holds the reserve lock.
 */
export function rollBackFree(shared: SharedState, k: number): void {
  if (shared.regionState(k) === REGION_FREEING) {
    shared.setRegionState(k, REGION_ALLOCATED);
    shared.bump();
  }
}

/**
 * Clear a region's slot on the media (after W passed its entries) and
 * in the mirror. The caller holds the reserve lock.
 */
export function finishFree(
  media: StreamMedia,
  shared: SharedState,
  k: number,
): void {
  const at = slotOffset(k);
  media.write32(at, SLOT_FREE);
  media.persist(at, 4);
  shared.setRegionState(k, REGION_FREE);
  shared.bump();
}

/** Store a region's new head on the media (one 8-byte store) and persist. */
export function storeHead(
  media: StreamMedia,
  shared: SharedState,
  k: number,
  head: number,
): void {
  const at = slotOffset(k) + 32;
  media.write64(at, head);
  media.persist(at, 8);
  shared.setHead(k, head);
  shared.bump();
}

/** The error for freeing a region with entries in flight. */
function busyError(op: string, k: number): PmemError {
  return new PmemError(
    op,
    -EBUSY,
    `region ${k} has appends in flight: wait for them first`,
  );
}

/**
 * Free region `k`: no new reservations, W past its entries, then the
 * slot cleared. The appends of this isolate to it whose copy has not
 * started (`appendAsync` futures never polled, perhaps dropped: they
 * hold the timestamp reserved at the call) are given up first, as
 * {@linkcode reclaimUnstarted} says.
 *
 * @throws {PmemError} code -16 (EBUSY) when appends to it are in flight
 */
export function freeSlot(
  core: LogCore,
  k: number,
  gen: number,
  op: string,
): void {
  const s = core.shared;
  for (;;) {
    let last = 0;
    s.lockReserve(op);
    try {
      // the handle was checked before the lock: another thread may have
      // freed the region since, and allocated the slot again
      held(s, k, gen, op);
      if (!core.busy(k)) {
        s.hold(HOLD_FREE_BEGIN, k); // rolled back by a taker of the lock
        beginFree(s, k);
        break;
      }
      last = reclaimUnstarted(core, k);
      if (last === 0) throw busyError(op, k);
    } finally {
      s.unlockReserve();
    }
    // their padding commits once what is before it has: this drives this
    // isolate's futures in the way, as a blocking append does
    waitFor(core, last, "committed", op);
  }
  try {
    settle(core, s.lastTs(k), op);
  } catch (e) {
    // (a persist failed) nothing of the free reached the media: rolled
    // back, as the taker of the lock does for a thread ended here, else
    // the region stays marked, neither listed nor allocatable
    s.lockReserve(op);
    try {
      rollBackFree(s, k);
    } finally {
      s.unlockReserve();
    }
    throw e;
  }
  s.lockReserve(op);
  try {
    s.hold(HOLD_FREE, k); // W passed its entries: a taker clears it again
    try {
      finishFree(core.media, s, k);
    } catch (e) {
      restoreSlot(core.media, s, k);
      throw e;
    }
  } finally {
    s.unlockReserve();
  }
}

/**
 * Give up this isolate's appends to region `k` whose copy has not
 * started: each fails with a `ClosedError` (as an append made after the
 * free does) when next polled, and its timestamp is committed as
 * padding, so no gap opens in the order. Appends copying (a mover may be
 * writing into the region) and other threads' appends are waited for
 * instead. Returns the highest timestamp given up (0: none). Reserve lock
 * held: no append to `k` can start meanwhile in this isolate.
 */
function reclaimUnstarted(core: LogCore, k: number): number {
  let last = 0;
  for (const f of core.ownedFutures()) {
    if (!(f instanceof StreamAppendFuture) || f.region !== k) continue;
    if (f.reclaim(new ClosedError(`region ${k} (freed)`, "appendAsync"))) {
      last = Math.max(last, f.timestamp);
    }
  }
  return last;
}

/**
 * Drop region `k`'s committed entries up to timestamp `upto` from its
 * start: W first passes them (recovery never looks for a gap where they
 * were), then the head moves (one 8-byte store, persisted).
 *
 * @returns the entries dropped (padding not counted)
 */
export function truncateRegion(
  core: LogCore,
  k: number,
  gen: number,
  upto: number,
  op: string,
): number {
  const s = core.shared;
  for (;;) {
    const head = s.head(k);
    const { pos, dropped, last } = allCommitted(s, k, upto, op) ??
      scanTo(core, k, head, upto);
    if (pos === head) return 0;
    settle(core, last, op);
    s.lockReserve(op);
    try {
      held(s, k, gen, op); // freed, and perhaps allocated again, meanwhile
      if (s.head(k) !== head) continue; // truncated meanwhile: again
      s.hold(HOLD_TRUNCATE, k); // a taker finishes it from the media
      storeHead(core.media, s, k, pos);
      // the count changes under the commit lock, as commits change it
      s.lockCommit(op);
      try {
        s.addLive(k, -dropped);
      } finally {
        s.unlockCommit();
      }
      restartEmpty(core, k, pos);
      return dropped;
    } finally {
      s.unlockReserve();
    }
  }
}

/**
 * Where a truncate of region `k` up to `upto` ends when `upto` passes its
 * last committed entry: its committed end, with its count of live entries
 * (what a scan from the head would count, one header read per entry: a
 * region of 4 KiB entries truncated whole took about 100 ns an entry),
 * read together under the commit lock. Undefined when `upto` stops
 * earlier (the caller scans).
 */
function allCommitted(
  s: SharedState,
  k: number,
  upto: number,
  op: string,
): { pos: number; dropped: number; last: number } | undefined {
  s.lockCommit(op);
  try {
    const last = s.lastTs(k);
    if (upto < last) return undefined;
    return { pos: s.committedEnd(k), dropped: s.live(k), last };
  } finally {
    s.unlockCommit();
  }
}

/** Throw ClosedError unless slot `k` holds generation `gen` (lock held). */
function held(s: SharedState, k: number, gen: number, op: string): void {
  if (s.regionState(k) !== REGION_ALLOCATED || s.generation(k) !== gen) {
    throw new ClosedError(`region ${k} (freed)`, op);
  }
}

/**
 * A region truncated to empty (nothing committed or reserved after its
 * new head `pos`) starts its next pass at its start: else an entry of
 * more than what lies between `pos` and the region's end went behind a
 * padding entry up to it, and with the terminator did not fit the empty
 * region. The header there is zeroed and persisted before the head
 * moves (a crash between leaves the region empty either way).
 */
export function restartEmpty(
  core: LogCore,
  k: number,
  pos: number,
): void {
  const s = core.shared;
  const size = s.size(k);
  const phys = pos % size;
  if (phys === 0 || pos !== s.committedEnd(k)) return;
  if (normalize(s.tail(k), size) !== pos) return;
  const next = pos - phys + size;
  core.media.zero(s.offset(k), ENTRY_HEADER);
  core.media.persist(s.offset(k), ENTRY_HEADER);
  storeHead(core.media, s, k, next);
  s.setTail(k, next);
  s.setCommitted(k, next, s.lastTs(k));
}

/** Where region `k`'s committed entries up to `upto` end, from `head`. */
export function scanTo(
  core: LogCore,
  k: number,
  head: number,
  upto: number,
): { pos: number; dropped: number; last: number } {
  const s = core.shared;
  const media = core.media;
  const size = s.size(k);
  const end = s.committedEnd(k);
  let pos = head;
  let dropped = 0;
  let last = 0;
  for (;;) {
    const p = normalize(pos, size);
    if (p >= end) return { pos: end, dropped, last };
    const at = s.offset(k) + (p % size);
    const word = media.read32(at + 4);
    const ts = media.read64(at + 8);
    if (ts > upto) return { pos: p, dropped, last };
    if (!(word & PAD_BIT)) dropped++;
    last = ts;
    pos = p + entryTotal((word & ~PAD_BIT) >>> 0);
  }
}
