// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The consistency check of a block pool, as `pmemblk_check` and
 * `pmempool check` define it: valid headers and info blocks, every map
 * entry inside the arena, every flog pair valid, and every data block
 * referenced exactly once (by the map or as a lane's free block).
 *
 * @module
 */
import type { Arena, ArenaPlace } from "./arena.ts";
import { currentFlogEntry, effectiveMapEntry, readFlogEntry } from "./flog.ts";
import {
  BLK_POOL,
  decodeDescriptor,
  DESCRIPTOR_OFFSET,
  DESCRIPTOR_SIZE,
} from "./header.ts";
import {
  checkPoolHeader,
  type DeviceShutdownState,
  HEADER_SIZE,
  hostArch,
  sameBytes,
} from "../pmdk/pool_header.ts";
import {
  FLOG_ENTRY_SIZE,
  FLOG_SLOT_SIZE,
  INFO_FLAG_ERROR,
  INFO_SIZE,
  infoFieldProblem,
  infoProblem,
  MAP_ENTRY_SIZE,
  MAP_FLAGS,
  MAP_LBA_MASK,
  MAP_ZERO,
} from "./layout.ts";
import { MAX_ACCESS, type Media } from "./media.ts";
import type { LaneTable } from "./lanes.ts";
import { type PoolShared, sleepMs } from "./shared.ts";
import { STRIPE_SERVED, STRIPE_WANT } from "./arena_words.ts";
import { FileShare } from "../pmem2/file_share.ts";

/** The result of {@linkcode BlockPool.check}. */
export interface CheckReport {
  /** Whether no problem was found. */
  consistent: boolean;
  /** One sentence per problem (long lists are summarised). */
  problems: string[];
  /** What opening the pool repaired (interrupted writes finished,
   * info blocks restored from their twin). */
  repaired: string[];
  /** Whether the pool has a BTT layout yet. */
  formatted: boolean;
  /** Number of arenas (0 before the layout exists). */
  arenas: number;
  /** Number of user blocks. */
  blockCount: number;
}

/** How many problems of one kind are listed before a summary line. */
const LIST_LIMIT = 10;

/** Collects problems, summarising repeated kinds. */
class Problems {
  readonly lines: string[] = [];
  #counts = new Map<string, number>();

  add(kind: string, line: string): void {
    const n = (this.#counts.get(kind) ?? 0) + 1;
    this.#counts.set(kind, n);
    if (n <= LIST_LIMIT) this.lines.push(line);
  }

  finish(): string[] {
    for (const [kind, n] of this.#counts) {
      if (n > LIST_LIMIT) {
        this.lines.push(`... and ${n - LIST_LIMIT} more: ${kind}`);
      }
    }
    return this.lines;
  }
}

/** Inputs of {@linkcode checkPool}. */
export interface CheckInput {
  /** The pool. */
  media: Media;
  /** The pool's block size. */
  blockSize: number;
  /** The pool set UUID. */
  poolsetUuid: Uint8Array;
  /** BTT bytes (file size rounded down to 4 KiB, minus 8192). */
  rawSize: number;
  /** The arenas (empty before the layout exists). */
  places: ArenaPlace[];
  /** Their run-time state (same order). */
  arenas: Arena[];
  /** The shutdown state of the pool's device, as read at open. */
  device: DeviceShutdownState;
  /** Called as map entries are checked: done of total. */
  onProgress?: (done: number, total: number) => void;
}

/**
 * Run `scan` (a check) holding every lock of the pool's commits, the
 * caller holding its layout lock: every block's stripe lock of the
 * `arenas` to check (asked for once the layout lock is marked, so a
 * layout laid out meanwhile is taken first), taken once a commit that
 * waits for one got it ({@linkcode deferToCommits}). The locks are marked as a
 * check's of this isolate while `scan` runs the user's progress callback:
 * another open of the pool in this thread fails its waits for them
 * instead of waiting for good.
 *
 * @param shared the pool's shared state, its layout lock held
 * @param arenas the arenas to check, once the layout lock is marked
 * @param scan the check
 * @returns what `scan` returns
 * @throws {PmemError} -130 (EOWNERDEAD) when a stripe's holder ended
 *   (every stripe let go)
 */
export function holdingCheckLocks<T>(
  shared: PoolShared,
  arenas: () => readonly Arena[],
  scan: () => T,
): T {
  // the locks the callback runs holding: another open of the pool in
  // this thread fails its waits for them instead of waiting for good
  const tokens = [shared.lockToken];
  shared.checking(tokens[0], true);
  try {
    const locked = arenas();
    for (const arena of locked) {
      tokens.push(arena.table.token);
      shared.checking(arena.table.token, true);
    }
    for (const arena of locked) deferToCommits(arena.table);
    // a lock whose holder ended throws with every stripe let go
    for (const arena of locked) arena.table.lockStripes();
    try {
      return scan();
    } finally {
      // one call lets go of this opener's stripes of every arena
      locked[0]?.table.unlockStripes();
    }
  } finally {
    for (const t of tokens) shared.checking(t, false);
  }
}

/**
 * Before a check takes every stripe of `table`'s arena (holding the layout
 * lock, so no other check runs): while a commit of another opener waits
 * for a stripe (`STRIPE_WANT` marked), wait until a marked wait ended.
 * Without it, checks run back to back take the stripes again before the
 * sleeping commits wake, and starve them. Bounded: the check waits for
 * one wait to end, not for the waiters to be gone, and a stripe wait
 * ends (no check holds the stripes now; a commit holds its own briefly;
 * one whose holder ended is recovered or fails the wait). The mark of an
 * opener whose thread ended is cleared.
 */
function deferToCommits(table: LaneTable): void {
  const w = table.words;
  const share = FileShare.of(w.buffer);
  // read before the mark: a waiter clears its mark before it counts
  const served = Atomics.load(w, STRIPE_SERVED);
  let ms = 0.005;
  for (;;) {
    const want = Atomics.load(w, STRIPE_WANT);
    if (want === 0 || want === table.token) return;
    if (Atomics.load(w, STRIPE_SERVED) !== served) return;
    if (share?.ended(want)) {
      Atomics.compareExchange(w, STRIPE_WANT, want, 0);
      continue;
    }
    sleepMs(ms);
    ms = Math.min(ms * 2, 1);
  }
}

/**
 * Check a pool's on-media state. Never throws for an inconsistency.
 *
 * @param input the pool and its arenas
 * @returns the problems found
 */
export function checkPool(input: CheckInput): string[] {
  const { media, blockSize, poolsetUuid, places, arenas } = input;
  // it reads every map entry: through one view, not piece by piece
  media.viewWhole();
  const p = new Problems();
  const header = checkPoolHeader(
    media.bytes(0, HEADER_SIZE),
    BLK_POOL,
    hostArch(),
    input.device,
  );
  if (typeof header === "string") p.add("header", `pool header: ${header}`);
  const desc = decodeDescriptor(
    media.bytes(DESCRIPTOR_OFFSET, DESCRIPTOR_SIZE),
  );
  if (desc.blockSize !== blockSize) {
    p.add(
      "descriptor",
      `descriptor: block size ${desc.blockSize} differs from ${blockSize}`,
    );
  }
  let room = input.rawSize;
  const total = places.reduce((n, pl) => n + pl.info.externalNlba, 0);
  let done = 0;
  const progress = (n: number) => input.onProgress?.(done += n, total);
  for (let k = 0; k < places.length; k++) {
    const place = places[k];
    checkInfo(media, place, poolsetUuid, blockSize, room, p);
    const reason = arenas[k]?.error;
    if (reason) p.add("arena error", `arena ${k}: refuses writes: ${reason}`);
    checkBlocks(media, place, p, progress);
    room -= place.info.nextOff;
  }
  return p.finish();
}

function checkInfo(
  media: Media,
  place: ArenaPlace,
  poolsetUuid: Uint8Array,
  blockSize: number,
  room: number,
  p: Problems,
): void {
  const k = place.index;
  const primary = media.bytes(place.base, INFO_SIZE);
  const backup = media.bytes(place.base + place.info.infoOff, INFO_SIZE);
  const bad = infoProblem(primary, poolsetUuid);
  if (bad !== null) p.add("info", `arena ${k}: BTT info block: ${bad}`);
  const badBackup = infoProblem(backup, poolsetUuid);
  if (badBackup !== null) {
    p.add("info", `arena ${k}: backup BTT info block: ${badBackup}`);
  }
  if (bad === null && badBackup === null) {
    if (!sameBytes(primary, backup)) {
      p.add("info", `arena ${k}: the backup BTT info block differs`);
    }
  }
  const field = infoFieldProblem(place.info, blockSize, room);
  if (field !== null) p.add("info", `arena ${k}: BTT info block: ${field}`);
  if ((place.info.flags & INFO_FLAG_ERROR) !== 0) {
    p.add("info", `arena ${k}: the info block's error flag is set`);
  }
}

/** A bit per data block: seen once, seen more than once. */
class Refs {
  #seen: Uint32Array;
  #dup: Uint32Array;

  constructor(n: number) {
    this.#seen = new Uint32Array(Math.ceil(n / 32));
    this.#dup = new Uint32Array(Math.ceil(n / 32));
  }

  /** Mark a block; returns false when it was already marked. */
  mark(b: number): boolean {
    const w = b >>> 5;
    const bit = 1 << (b & 31);
    if (this.#seen[w] & bit) {
      this.#dup[w] |= bit;
      return false;
    }
    this.#seen[w] |= bit;
    return true;
  }

  /**
   * Mark the 32 blocks of word `w` if none of them is marked yet; returns
   * false (marking nothing) when one is.
   */
  markWord(w: number): boolean {
    if (this.#seen[w] !== 0) return false;
    this.#seen[w] = 0xffff_ffff;
    return true;
  }

  /** Whether all 32 blocks of word `w` are marked. */
  wordFull(w: number): boolean {
    return this.#seen[w] === 0xffff_ffff;
  }

  seen(b: number): boolean {
    return (this.#seen[b >>> 5] & (1 << (b & 31))) !== 0;
  }
}

function checkBlocks(
  media: Media,
  place: ArenaPlace,
  p: Problems,
  progress: (entries: number) => void,
): void {
  const k = place.index;
  const { externalNlba: ext, internalNlba: nint, nfree } = place.info;
  const mapOff = place.base + place.info.mapOff;
  const flogOff = place.base + place.info.flogOff;
  const refs = new Refs(nint);
  const perChunk = MAX_ACCESS / MAP_ENTRY_SIZE;
  for (let first = 0; first < ext; first += perChunk) {
    const n = Math.min(perChunk, ext - first);
    const bytes = media.bytes(mapOff + first * MAP_ENTRY_SIZE, n * 4);
    const map = new Uint32Array(bytes.buffer, bytes.byteOffset, n);
    for (let i = 0; i < n; i++) {
      const pre = first + i;
      // 32 entries in their initial form (no flags: each maps its own
      // block) mark a whole word of refs at once: a sparse pool's map is
      // mostly that, and a 512 GiB arena has 134 M entries (first and
      // perChunk are multiples of 32, so pre is word-aligned with i)
      // (a word whose first entry has flags is not, and a written pool's
      // words are mostly that: ORing their 32 entries first loaded every
      // entry twice)
      if ((pre & 31) === 0 && i + 32 <= n && (map[i] & MAP_FLAGS) === 0) {
        let flags = 0;
        for (let j = i; j < i + 32; j++) flags |= map[j];
        if ((flags & MAP_FLAGS) === 0 && refs.markWord(pre >>> 5)) {
          i += 31;
          continue;
        }
      }
      const block = (effectiveMapEntry(map[i], pre) & MAP_LBA_MASK) >>> 0;
      if (block >= nint) {
        p.add(
          "map range",
          `arena ${k}: map entry ${pre} points to data block ${block}, beyond ${nint}`,
        );
      } else if (!refs.mark(block)) {
        p.add(
          "duplicate",
          `arena ${k}: data block ${block} is referenced more than once (map entry ${pre})`,
        );
      }
    }
    progress(n);
  }
  for (let lane = 0; lane < nfree; lane++) {
    const slot = flogOff + lane * FLOG_SLOT_SIZE;
    const pair = [
      readFlogEntry(media, slot),
      readFlogEntry(media, slot + FLOG_ENTRY_SIZE),
    ];
    const cur = currentFlogEntry(pair[0].seq, pair[1].seq);
    if (cur < 0) {
      p.add(
        "flog",
        `arena ${k}: flog slot ${lane} has invalid sequence numbers ${
          pair[0].seq
        } and ${pair[1].seq}`,
      );
      continue;
    }
    const e = pair[cur];
    const oldBlock = (e.oldMap & MAP_LBA_MASK) >>> 0;
    const newBlock = (e.newMap & MAP_LBA_MASK) >>> 0;
    if (e.lba >= ext || oldBlock >= nint || newBlock >= nint) {
      p.add(
        "flog",
        `arena ${k}: flog slot ${lane} is out of range (lba ${e.lba}, old ${oldBlock}, new ${newBlock})`,
      );
      continue;
    }
    let free = oldBlock;
    if (e.oldMap === e.newMap) {
      const initial = cur === 0 && e.seq === 1 &&
        (e.oldMap & 0xc000_0000) >>> 0 === MAP_ZERO &&
        media.isZero(slot + FLOG_ENTRY_SIZE, FLOG_ENTRY_SIZE);
      if (!initial) {
        p.add(
          "flog",
          `arena ${k}: flog slot ${lane} has old_map == new_map outside its initial form`,
        );
      }
    } else {
      const at = mapOff + e.lba * MAP_ENTRY_SIZE;
      const entry = effectiveMapEntry(media.getU32(at), e.lba);
      if (entry === e.oldMap) free = newBlock; // unfinished write
    }
    if (!refs.mark(free)) {
      p.add(
        "duplicate",
        `arena ${k}: free block ${free} of flog slot ${lane} is also referenced elsewhere`,
      );
    }
  }
  for (let b = 0; b < nint; b++) {
    if ((b & 31) === 0 && refs.wordFull(b >>> 5)) {
      b += 31;
      continue;
    }
    if (!refs.seen(b)) {
      p.add("unreferenced", `arena ${k}: data block ${b} is not referenced`);
    }
  }
}
