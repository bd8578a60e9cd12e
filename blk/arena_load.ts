// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * An arena's beginnings: its layout written fresh ({@linkcode formatArena})
 * and its flog read back at open, finishing the writes a crash cut after
 * their commit ({@linkcode recoverFlog}, one slot at a time:
 * {@linkcode recoverFlogSlot}, which the openers still running also use
 * for the lanes of an opener that ended mid-commit:
 * {@linkcode recoverEndedLane}); and the arena's error flag set in its
 * info blocks ({@linkcode markInfoError}). Internal to `blk/` (`Arena`
 * calls them).
 *
 * @module
 */
import { PmemError } from "../errors/mod.ts";
import { storeChecksum } from "../pmdk/checksum.ts";
import {
  BTT_ALIGN,
  encodeBttInfo,
  FLOG_ENTRY_SIZE,
  FLOG_SLOT_SIZE,
  INFO_CHECKSUM_OFFSET,
  INFO_FLAG_ERROR,
  INFO_SIZE,
  infoFromGeometry,
  MAP_ENTRY_SIZE,
  MAP_LBA_MASK,
  roundUp,
} from "./layout.ts";
import type { ArenaGeometry } from "./layout.ts";
import type { Media } from "./media.ts";
import {
  currentFlogEntry,
  effectiveMapEntry,
  flogEntryAt,
  initialFlog,
  readFlogEntry,
} from "./flog.ts";
import {
  ARENA_BAD_FLOG,
  ARENA_MAP_PERSIST,
  ARENA_SHARED_FREE,
} from "./arena_errors.ts";
import type { Arena } from "./arena.ts";
import { STRIPES } from "./arena_words.ts";
import { EINVAL } from "../errors/errno.ts";

/**
 * Write a fresh layout for one arena: zero the map (when the file was
 * not known to be zero), the initial flog, the backup info block, then
 * the primary info block, which makes the layout valid. Each step is
 * durable before the next starts.
 */
export function formatArena(
  media: Media,
  base: number,
  g: ArenaGeometry,
  uuid: Uint8Array,
  parentUuid: Uint8Array,
  zeroMap: boolean,
): void {
  if (zeroMap) {
    media.memset(
      base + g.mapOff,
      0,
      roundUp(g.externalNlba * MAP_ENTRY_SIZE, BTT_ALIGN),
    );
  }
  const flog = initialFlog(
    g.externalNlba,
    g.nfree,
    roundUp(g.nfree * FLOG_SLOT_SIZE, BTT_ALIGN),
  );
  media.memcpy(base + g.flogOff, flog);
  const info = encodeBttInfo(infoFromGeometry(g, uuid, parentUuid));
  media.memcpy(base + g.infoOff, info);
  media.memcpy(base, info);
}

/**
 * Read every flog slot of `a` (whose table has its lane count set), finish
 * the writes that committed in the flog but did not reach the map (the
 * roll-forward of libpmemblk's open), and set the lanes' free blocks and
 * flog positions in the shared state. Lanes beyond the table's count are
 * recovered but not used (as libpmemblk leaves those beyond its nlane).
 *
 * After a crash of the process alone (a kill), the flog and map entries
 * read here may be stores the dead writer never persisted (in the CPU
 * caches or the page cache): the flog is persisted whole before any map
 * entry is rolled forward over it, and the map entries the current flog
 * entries name, left as they are, with one fence at the end. Else a power
 * failure after the open brings an older flog entry or map entry back,
 * and a block is both mapped and a lane's free block. A `setZero` or
 * `setError` leaves no flog entry to name its map entry: with
 * `persistMap` (the pool was not closed cleanly) the whole map is
 * persisted instead, after the flog, whose commits its entries follow.
 * Else such an entry, read as it is from then on, reverts in a power
 * failure.
 *
 * @param repaired receives one line per recovery action
 * @param corrupt the error for a slot that names something beyond the arena
 * @param persistMap persist the whole map, not only the entries the flog
 *   names @default false
 * @returns the usable lanes (to put on the idle ring) and the slots whose
 *   sequence numbers are invalid
 * @throws {PmemError} code -22 when a flog entry points outside the arena
 */
export function recoverFlog(
  media: Media,
  a: Arena,
  repaired: string[],
  corrupt: (what: string) => PmemError,
  persistMap = false,
): { usable: number[]; badPairs: number } {
  const t = a.table;
  const frees = new Set<number>();
  let badPairs = 0;
  const usable: number[] = [];
  // one flush of the flog (lanes × 64 B): whether it is dirty cannot be known
  media.persist(a.flogOff, a.nfree * FLOG_SLOT_SIZE);
  const trusted: { offset: number; length: number }[] = [];
  for (let lane = a.nfree - 1; lane >= 0; lane--) {
    const free = recoverFlogSlot(
      media,
      a,
      lane,
      repaired,
      corrupt,
      false,
      trusted,
    );
    if (free < 0) {
      badPairs++;
      continue; // the lane stays off the ring: the arena is read-only
    }
    if (frees.has(free)) t.setError(ARENA_SHARED_FREE, free);
    frees.add(free);
    if (lane < a.lanes) usable.push(lane);
  }
  if (persistMap) media.persist(a.mapOff, a.externalNlba * MAP_ENTRY_SIZE);
  else if (trusted.length > 0) media.persistRanges(trusted);
  return { usable, badPairs };
}

/**
 * Recover one flog slot of `a`, as the pool's open does for each (see
 * {@linkcode recoverFlog}), and, for a lane in use, set its free block
 * and flog position in the shared state. Also what the openers still
 * running do, online, for each lane of an opener whose thread ended in
 * the middle of a commit (`LaneTable`): `durable` then makes durable what
 * the ended commit may have stored without persisting (the current flog
 * entry, and its map entry: it may be stored and not yet in the pending
 * entries that others persist), before the lane is used again.
 *
 * @param repaired receives one line per recovery action
 * @param corrupt the error for a slot that names something beyond the arena
 * @param durable persist the slot and its map entry @default false
 * @param trusted without `durable`: receives the range of the map entry
 *   the current flog entry names when recovery leaves it as it reads it,
 *   for the caller to persist (it may be a store never persisted)
 * @returns the lane's free block, or -1 when the slot's sequence numbers
 *   are invalid (its lane state is left alone)
 * @throws {PmemError} code -22 when a flog entry points outside the arena;
 *   a persist's error
 */
export function recoverFlogSlot(
  media: Media,
  a: Arena,
  lane: number,
  repaired: string[],
  corrupt: (what: string) => PmemError,
  durable = false,
  trusted?: { offset: number; length: number }[],
): number {
  const t = a.table;
  const pair = [
    readFlogEntry(media, flogEntryAt(a.flogOff, lane, 0)),
    readFlogEntry(media, flogEntryAt(a.flogOff, lane, 1)),
  ];
  for (const e of pair) {
    if (e.seq !== 0 && e.lba >= a.externalNlba) {
      throw corrupt(
        `flog slot ${lane} names block ${e.lba}, beyond the arena's ${a.externalNlba}`,
      );
    }
  }
  const cur = currentFlogEntry(pair[0].seq, pair[1].seq);
  if (cur < 0) return -1;
  const e = pair[cur];
  const oldBlock = (e.oldMap & MAP_LBA_MASK) >>> 0;
  const newBlock = (e.newMap & MAP_LBA_MASK) >>> 0;
  if (oldBlock >= a.internalNlba || newBlock >= a.internalNlba) {
    throw corrupt(
      `flog slot ${lane} names data block ${
        Math.max(oldBlock, newBlock)
      }, beyond the arena's ${a.internalNlba}`,
    );
  }
  const other = pair[1 - cur];
  if (other.seq === 0 && (other.lba | other.oldMap | other.newMap) !== 0) {
    // A lane's first update persisted its head {lba, old_map} but not
    // its commit. Harmless, but check() and pmempool accept old_map ==
    // new_map only in the exact initial form: zero the entry again.
    media.memset(flogEntryAt(a.flogOff, lane, 1 - cur), 0, FLOG_ENTRY_SIZE);
    repaired.push(
      `arena ${a.index}: cleared the uncommitted first update of flog slot ${lane}`,
    );
  }
  // the entry is the commit of the map entry below: durable first
  if (durable) media.persist(flogEntryAt(a.flogOff, lane, 0), FLOG_SLOT_SIZE);
  if (e.oldMap !== e.newMap) {
    const at = a.mapOff + e.lba * MAP_ENTRY_SIZE;
    const entry = effectiveMapEntry(media.getU32(at), e.lba);
    if (entry === e.oldMap && entry !== e.newMap) {
      media.setU32(at, e.newMap);
      media.persist(at, MAP_ENTRY_SIZE);
      repaired.push(
        `arena ${a.index}: finished the interrupted write of block ${
          a.firstLba + e.lba
        } (flog slot ${lane})`,
      );
    } else if (durable) {
      media.persist(at, MAP_ENTRY_SIZE);
    } else {
      trusted?.push({ offset: at, length: MAP_ENTRY_SIZE });
    }
  }
  if (lane < a.lanes) {
    t.setFree(lane, oldBlock);
    t.setFlog(lane, 1 - cur, e.seq);
  }
  return oldBlock;
}

/**
 * For an arena's lane table, online: recover `lane`, taken by an opener
 * whose thread ended in the middle of a commit, from its flog slot as the
 * pool's open does ({@linkcode recoverFlogSlot}), durably. The caller
 * holds the ring lock, and the ended opener the stripes of the blocks it
 * was committing, so nothing else touches the lane or those blocks.
 *
 * @param a the arena
 * @param media its pool's media
 * @param lane the lane
 * @returns whether the lane may go round again: false when its slot is
 *   invalid or corrupt, or a persist failed (the arena then refuses
 *   writes), where the pool's open would refuse the pool or mark the
 *   arena; the lane then stays out, and its stripes fail their waiters
 */
export function recoverEndedLane(
  a: Arena,
  media: Media,
  lane: number,
): boolean {
  try {
    const free = recoverFlogSlot(
      media,
      a,
      lane,
      [],
      (what) => corruptArena(a.index, what),
      true,
    );
    if (free < 0) a.table.setError(ARENA_BAD_FLOG, 1);
    return free >= 0;
  } catch (e) {
    // a persist failed: what the flog holds may not be in the map (the
    // next open rolls it forward); a corrupt slot (-22) the open refuses.
    // Anything else stays with the lane: thrown here, under the ring
    // lock, it would leave that lock held. A persist refused because
    // the pool was closed under it (by a testing tracer's callback) is
    // no media failure: the next opener that needs the lane recovers it.
    if (media.closed) return false;
    if (e instanceof PmemError && e.code !== -EINVAL) {
      a.fail(ARENA_MAP_PERSIST);
    }
    return false;
  }
}

/**
 * For an arena's lane table, online: make durable the map entries of the
 * blocks of stripe `stripe` (pre-map blocks `stripe`, `stripe + STRIPES`,
 * ...), whose lock an opener held when its thread ended, or when it
 * closed in the middle of its update. A setZero or setError stores its
 * block's map entry under the stripe and persists it after: cut short
 * between the two, it left an entry that may not be durable and that no
 * lane's pending entry names, so nobody persists it before the block's
 * next commit stages it as its flog entry's `old_map`. A power failure
 * then brought the entry from before back, which recovery found unlike
 * that `old_map` and left: the committed write was lost, and the block's
 * old data block was also its lane's free block. On page granularity one
 * persist over their span (only dirty pages are written), else each
 * entry's line.
 *
 * @returns whether they are durable: false when a persist failed (the
 *   arena then refuses writes) or the pool was closed under it
 */
export function settleEndedStripe(
  a: Arena,
  media: Media,
  stripe: number,
): boolean {
  const n = a.externalNlba;
  if (stripe >= n) return true;
  try {
    if (media.granularity === "page") {
      const last = stripe + Math.floor((n - 1 - stripe) / STRIPES) * STRIPES;
      media.persist(
        a.mapOff + stripe * MAP_ENTRY_SIZE,
        (last - stripe + 1) * MAP_ENTRY_SIZE,
      );
      return true;
    }
    // a run of lines at a time: an arena of a billion blocks has a
    // million of them in a stripe
    const ranges: { offset: number; length: number }[] = [];
    for (let pre = stripe; pre < n; pre += STRIPES) {
      ranges.push({
        offset: a.mapOff + pre * MAP_ENTRY_SIZE,
        length: MAP_ENTRY_SIZE,
      });
      if (ranges.length === 4096 || pre + STRIPES >= n) {
        media.persistRanges(ranges);
        ranges.length = 0;
      }
    }
    return true;
  } catch {
    // (refused because the pool was closed under it, by a testing
    // tracer's callback: no media failure)
    if (!media.closed) a.fail(ARENA_MAP_PERSIST);
    return false;
  }
}

/** The error of open for a corrupt arena `index`: code -22 (EINVAL). */
export function corruptArena(index: number, what: string): PmemError {
  return new PmemError(
    "open",
    -EINVAL,
    `the pool is corrupt: arena ${index}: ${what}`,
  );
}

/**
 * Set the error flag in both info blocks of the arena at `base` (backup
 * at `backupOff`), as libpmemblk does.
 */
export function markInfoError(
  media: Media,
  base: number,
  backupOff: number,
): void {
  const info = media.copy(base, INFO_SIZE);
  const dv = new DataView(info.buffer);
  dv.setUint32(48, dv.getUint32(48, true) | INFO_FLAG_ERROR, true);
  storeChecksum(info, INFO_CHECKSUM_OFFSET);
  media.memcpy(base, info);
  media.memcpy(backupOff, info);
}
