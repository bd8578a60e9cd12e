// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The block store's synchronous reads beyond `BlockPool.read`'s fast
 * path: a read that publishes its block in the read-tracking table (while
 * other `BlockPool`s of the pool are open, a copy can be overtaken by a
 * writer in another thread), and `readMany`, which looks every block up
 * first and then copies them all in one native call, so their cache
 * misses overlap. Internal to `blk/`.
 *
 * A copy made while this `BlockPool` is the pool's only opener needs no
 * tracking: no other code runs until it ends. Whether others joined is
 * read again after the copy; if one did meanwhile, the copy is redone
 * tracked (a joiner counts itself before it writes anything, and the
 * close that leaves this one alone again marks the count, which only
 * this one clears before its next copy: so a copy that still sees itself
 * alone afterwards was never overtaken).
 *
 * @module
 */
import { BadBlockError } from "../errors/mod.ts";
import type { Arena } from "./arena.ts";
import { MAP_ERROR, MAP_FLAGS, MAP_LBA_MASK, MAP_NORMAL } from "./layout.ts";
import type { Media } from "./media.ts";
import { LEFT_ALONE, OPENS_WORD } from "./shared.ts";

/** What the reads need from their pool. */
export interface ReadSide {
  readonly media: Media;
  readonly arenas: readonly Arena[];
  /** The shared control words (`OPENS_WORD`: openers in the process). */
  readonly control: Int32Array;
  readonly blockSize: number;
}

/**
 * Whether the reader's `BlockPool` is the pool's only opener, before a
 * copy (no copy of its may be in flight: a copy that began before others
 * came is not taken for whole because they left, see `LEFT_ALONE`).
 */
export function alone(control: Int32Array): boolean {
  const opens = Atomics.load(control, OPENS_WORD);
  if (opens === 1) return true;
  // the others left: the one open left is this one, between its copies
  return opens === (1 | LEFT_ALONE) &&
    Atomics.compareExchange(control, OPENS_WORD, opens, 1) === opens;
}

/**
 * Whether the reader's `BlockPool` is still the pool's only opener after
 * a copy whose lookup began {@linkcode alone}: no other opener came since.
 */
export function stillAlone(control: Int32Array): boolean {
  return Atomics.load(control, OPENS_WORD) === 1;
}

/** The arena of a pool-wide LBA (the BTT must be laid out). */
export function arenaOf(arenas: readonly Arena[], lba: number): Arena {
  let k = 0;
  while (k + 1 < arenas.length && lba >= arenas[k + 1].firstLba) k++;
  return arenas[k];
}

/**
 * Copy block `pre` of `arena` (the pool's `lba`) into `out` while the
 * block is published as being read: look it up, publish it, look it up
 * again (the publish is a full fence), and copy only if the map still
 * names it. A block in the zero state fills `size` bytes of `out` with
 * zeros when `fill` (a fresh array is zero already).
 *
 * @throws {BadBlockError} when the block is in the error state
 * @throws {PmemError} code -22 when its map entry is corrupt
 */
export function readTracked(
  media: Media,
  arena: Arena,
  lba: number,
  pre: number,
  out: Uint8Array,
  size: number,
  fill: boolean,
): Uint8Array {
  for (;;) {
    const entry = arena.mapEntry(pre);
    const flags = (entry & MAP_FLAGS) >>> 0;
    if (flags === MAP_ERROR) throw new BadBlockError("read", lba);
    if (flags !== MAP_NORMAL) {
      if (fill) out.fill(0, 0, size);
      return out;
    }
    const block = entry & MAP_LBA_MASK;
    if (block >= arena.internalNlba) {
      throw arena.corruptEntry("read", pre, block);
    }
    arena.trackRead(block);
    try {
      if (arena.mapEntry(pre) !== entry) continue; // rewritten meanwhile
      media.read(arena.blockOffset(block), out, size);
      return out;
    } finally {
      arena.untrackRead(block);
    }
  }
}

/**
 * Read block `lba` (checked; the pool laid out) into `out`: from its map
 * entry, zeros for a block never written or set to zero (filled in only
 * when `fill`: a fresh array is zero already), a {@linkcode BadBlockError}
 * for one in the error state, else its data block, copied untracked while
 * the reader's `BlockPool` is the pool's only opener and published in the
 * read-tracking table otherwise.
 *
 * @throws {BadBlockError} when the block is in the error state
 * @throws {PmemError} code -22 when its map entry is corrupt
 */
export function readBlock(
  media: Media,
  arenas: readonly Arena[],
  control: Int32Array,
  lba: number,
  out: Uint8Array,
  fill: boolean,
): Uint8Array {
  // asked before the lookup: alone from the lookup to the end of the
  // copy, no write can have taken the block (see stillAlone)
  const solo = alone(control);
  const arena = arenaOf(arenas, lba);
  const pre = lba - arena.firstLba;
  const size = arena.blockSize;
  const entry = arena.mapEntry(pre);
  const flags = (entry & MAP_FLAGS) >>> 0;
  if (flags === MAP_ERROR) throw new BadBlockError("read", lba);
  if (flags !== MAP_NORMAL) {
    if (fill) out.fill(0, 0, size);
    return out;
  }
  const block = entry & MAP_LBA_MASK;
  if (block >= arena.internalNlba) throw arena.corruptEntry("read", pre, block);
  // A synchronous copy ends before any other code of this isolate runs,
  // so alone in the process no write can take the block meanwhile; with
  // other openers (threads), the block is published first.
  if (solo) {
    media.read(arena.blockOffset(block), out, size);
    if (stillAlone(control)) return out;
  }
  return readTracked(media, arena, lba, pre, out, size, fill);
}

/** The scratch list of checked LBAs while no readMany holds it. */
let lbaScratch: number[] | undefined = [];

/**
 * A list for checked LBAs, filled in order from index 0 (a plain array,
 * so small LBAs stay small integers in the lookups): the isolate's
 * scratch list, or a new one while a readMany holds it (one running in a
 * getter of another's LBAs). It grows as LBAs are checked, not to the
 * length the list claims (a Proxy's or a subclass's may lie). Give it
 * back with {@linkcode giveLbas}.
 */
export function takeLbas(): number[] {
  const s = lbaScratch;
  lbaScratch = undefined;
  return s ?? [];
}

/** Give back a list from {@linkcode takeLbas}. */
export function giveLbas(lbas: number[]): void {
  lbaScratch = lbas;
}

/** A scratch array of offsets, grown as needed (one per isolate). */
let scratch = new Float64Array(64);

/**
 * Look up `lbas` (checked) into `offsets`: a block's file offset, or -1
 * for a block that reads as zeros.
 *
 * @throws {BadBlockError} for a block in the error state, before any copy
 * @throws {PmemError} code -22 for a corrupt map entry
 */
function lookUp(
  arenas: readonly Arena[],
  lbas: readonly number[],
  n: number,
  offsets: Float64Array,
): void {
  const one = arenas.length === 1 ? arenas[0] : undefined;
  for (let i = 0; i < n; i++) {
    const lba = lbas[i];
    const arena = one ?? arenaOf(arenas, lba);
    const pre = lba - arena.firstLba;
    const entry = arena.mapEntry(pre);
    const flags = (entry & MAP_FLAGS) >>> 0;
    if (flags === MAP_NORMAL) {
      const block = entry & MAP_LBA_MASK;
      if (block >= arena.internalNlba) {
        throw arena.corruptEntry("readMany", pre, block);
      }
      offsets[i] = arena.blockOffset(block);
    } else if (flags === MAP_ERROR) {
      throw new BadBlockError("readMany", lba);
    } else offsets[i] = -1;
  }
}

/** Publish (`track`) or end (`!track`) the reads of the looked-up blocks. */
function trackAll(
  arenas: readonly Arena[],
  lbas: readonly number[],
  n: number,
  offsets: Float64Array,
  track: boolean,
): void {
  for (let i = 0; i < n; i++) {
    if (offsets[i] < 0) continue;
    const arena = arenaOf(arenas, lbas[i]);
    const block = (offsets[i] - arena.dataOff) / arena.internalLbaSize;
    if (track) arena.trackRead(block);
    else arena.untrackRead(block);
  }
}

/** Whether every looked-up block is still where `offsets` says. */
function unchanged(
  arenas: readonly Arena[],
  lbas: readonly number[],
  n: number,
  offsets: Float64Array,
): boolean {
  for (let i = 0; i < n; i++) {
    const lba = lbas[i];
    const arena = arenaOf(arenas, lba);
    const entry = arena.mapEntry(lba - arena.firstLba);
    const was = offsets[i];
    if ((entry & MAP_FLAGS) >>> 0 === MAP_NORMAL) {
      if (was !== arena.blockOffset(entry & MAP_LBA_MASK)) return false;
    } else if (was >= 0 || (entry & MAP_FLAGS) >>> 0 === MAP_ERROR) {
      return false;
    }
  }
  return true;
}

/**
 * Read the first `n` of the checked `lbas` into `into` (checked: at least
 * `n × blockSize` bytes): every block looked up first, then one gathered
 * copy.
 *
 * @throws {BadBlockError} when a block is in the error state (nothing is
 *   copied then)
 */
export function readManyInto(
  side: ReadSide,
  lbas: readonly number[],
  n: number,
  into: Uint8Array,
  fill: boolean,
): void {
  const size = side.blockSize;
  const arenas = side.arenas;
  if (arenas.length === 0) {
    if (fill) into.fill(0, 0, n * size);
    return;
  }
  if (scratch.length < n) {
    scratch = new Float64Array(Math.max(n, 2 * scratch.length));
  }
  const offsets = scratch;
  for (;;) {
    // asked before the lookups: alone from them to the end of the copy,
    // no write can have taken a block (see stillAlone)
    const solo = alone(side.control);
    lookUp(arenas, lbas, n, offsets);
    if (solo) {
      side.media.readBlocks(offsets, n, size, into);
      if (stillAlone(side.control)) return;
      continue; // another opener joined meanwhile: read again, tracked
    }
    trackAll(arenas, lbas, n, offsets, true);
    try {
      if (!unchanged(arenas, lbas, n, offsets)) continue;
      side.media.readBlocks(offsets, n, size, into);
      return;
    } finally {
      trackAll(arenas, lbas, n, offsets, false);
    }
  }
}
