// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * What a block pool holds, for people and tools (`asyncpmem info`): its
 * geometry, each arena's place and lanes, and how its blocks are filled,
 * read from the map without changing anything. Internal to `blk/`; the
 * result is {@linkcode BlockPoolInfo}, returned by `BlockPool.info()`.
 *
 * @module
 */
import type { Arena, ArenaPlace } from "./arena.ts";
import {
  MAP_ENTRY_SIZE,
  MAP_ERROR,
  MAP_FLAGS,
  MAP_NORMAL,
  MAP_ZERO,
} from "./layout.ts";
import { MAX_ACCESS, type Media } from "./media.ts";

/** One arena of {@linkcode BlockPoolInfo}. */
export interface ArenaInfo {
  /** Its number. */
  index: number;
  /** File offset of the arena (its info block). */
  offset: number;
  /** Its size in bytes, backup info block included. */
  size: number;
  /** The first pool-wide LBA of the arena. */
  firstLba: number;
  /** User blocks in it. */
  blocks: number;
  /** Data blocks in it (user blocks plus one free block per lane). */
  dataBlocks: number;
  /** Bytes a block takes on the media. */
  internalBlockSize: number;
  /** Lanes (flog slots): updates in flight at most. */
  lanes: number;
  /** Why it refuses writes, or null. */
  error: string | null;
}

/** How a pool's blocks are filled (from their map entries). */
export interface BlockFill {
  /** Blocks holding data a write put there. */
  written: number;
  /** Blocks set to read as zeros (`setZero`). */
  zero: number;
  /** Blocks in the error state (`setError`). */
  error: number;
  /** Blocks never written (they read as zeros). */
  unwritten: number;
}

/** What `BlockPool.info()` reports. */
export interface BlockPoolInfo {
  /** The pool file. */
  path: string;
  /** Bytes of the pool file that are mapped. */
  poolSize: number;
  /** Bytes per block. */
  blockSize: number;
  /** Blocks; valid LBAs are `0 .. blockCount - 1`. */
  blockCount: number;
  /** Why the pool refuses updates (read-only), or null. */
  readOnly: string | null;
  /** Whether the BTT is laid out (libpmemblk waits for the first write). */
  formatted: boolean;
  /** The arenas. */
  arenas: ArenaInfo[];
  /** How the blocks are filled. */
  fill: BlockFill;
}

/**
 * Count the blocks of each kind, arena by arena.
 *
 * @param onProgress called as map entries are read: done of total
 */
export function blockFill(
  media: Media,
  places: readonly ArenaPlace[],
  onProgress?: (done: number, total: number) => void,
): BlockFill {
  const fill: BlockFill = { written: 0, zero: 0, error: 0, unwritten: 0 };
  media.viewWhole(); // it reads every map entry: not piece by piece
  const total = places.reduce((n, p) => n + p.info.externalNlba, 0);
  let done = 0;
  const perChunk = MAX_ACCESS / MAP_ENTRY_SIZE;
  for (const place of places) {
    const ext = place.info.externalNlba;
    const mapOff = place.base + place.info.mapOff;
    for (let first = 0; first < ext; first += perChunk) {
      const n = Math.min(perChunk, ext - first);
      const bytes = media.bytes(mapOff + first * MAP_ENTRY_SIZE, n * 4);
      const map = new Uint32Array(bytes.buffer, bytes.byteOffset, n);
      for (let i = 0; i < n; i++) {
        const flags = (map[i] & MAP_FLAGS) >>> 0;
        if (flags === MAP_NORMAL) fill.written++;
        else if (flags === MAP_ZERO) fill.zero++;
        else if (flags === MAP_ERROR) fill.error++;
        else fill.unwritten++;
      }
      onProgress?.(done += n, total);
    }
  }
  return fill;
}

/** Each arena's description. */
export function arenaInfo(
  places: readonly ArenaPlace[],
  arenas: readonly Arena[],
): ArenaInfo[] {
  return places.map((p, k) => ({
    index: p.index,
    offset: p.base,
    size: p.info.infoOff + 4096,
    firstLba: p.firstLba,
    blocks: p.info.externalNlba,
    dataBlocks: p.info.internalNlba,
    internalBlockSize: p.info.internalLbaSize,
    lanes: p.info.nfree,
    error: arenas[k]?.error ?? null,
  }));
}

/** What {@linkcode poolInfo} describes: an open pool. */
export interface PoolInfoInput {
  /** The pool file's path. */
  path: string;
  /** Its mapped media. */
  media: Media;
  /** Bytes per block. */
  blockSize: number;
  /** Its blocks. */
  blockCount: number;
  /** Why it is read-only, or null. */
  readOnly: string | null;
  /** Its arenas' places (none before its BTT is laid out). */
  places: readonly ArenaPlace[];
  /** Its arenas. */
  arenas: readonly Arena[];
  /** `BlockPool.info`'s progress callback. */
  onProgress: ((done: number, total: number) => void) | undefined;
}

/** `BlockPool.info`'s report. */
export function poolInfo(pool: PoolInfoInput): BlockPoolInfo {
  const { media, arenas, places } = pool;
  return {
    path: pool.path,
    poolSize: media.size,
    blockSize: pool.blockSize,
    blockCount: pool.blockCount,
    readOnly: pool.readOnly,
    formatted: arenas.length > 0,
    arenas: arenaInfo(places, arenas),
    fill: arenas.length === 0
      ? { written: 0, zero: 0, error: 0, unwritten: pool.blockCount }
      : blockFill(media, places, pool.onProgress),
  };
}
