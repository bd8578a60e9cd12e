// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * A pool's BTT ({@linkcode Btt}): finding its arenas (repairing an info
 * block from its twin), recovering them into the shared state or
 * attaching to what the first opener recovered, and laying a BTT out.
 * Internal to `blk/`.
 *
 * @module
 */
import { Arena, type ArenaPlace } from "./arena.ts";
import { formatArena } from "./arena_load.ts";
import {
  ARENA_MAX_SIZE,
  ARENA_MIN_SIZE,
  BTT_ALIGN,
  BTT_OFFSET,
  decodeBttInfo,
  INFO_SIZE,
  infoFieldProblem,
  infoProblem,
  MAP_ENTRY_SIZE,
  roundUp,
} from "./layout.ts";
import { randomUuid, sameBytes } from "../pmdk/pool_header.ts";
import { corrupt } from "../errors/file.ts";
import type { PoolFile } from "./open.ts";

/** A pool's BTT as found (or laid out) and recovered. */
export interface Btt {
  /** Where each arena lies and its info block. */
  readonly places: ArenaPlace[];
  /** The arenas' run-time state (none when there is no BTT yet). */
  readonly arenas: Arena[];
  /** One line per repair or recovery action taken. */
  readonly repaired: string[];
  /** The pool's blocks. */
  readonly blockCount: number;
}

/**
 * Find the arenas of a pool (repairing an info block from its twin) and
 * load them into the shared state, rolling interrupted writes forward: what
 * the pool's first opener in the process does, and whoever lays the BTT
 * out. With `attach`, a later opener finds the arenas the first one
 * loaded, changing nothing (none until the shared state says they are
 * loaded). A pool without a BTT gives no arenas.
 *
 * @param persistMaps make each arena's map durable whole as it is loaded
 *   (the pool may hold map entries stored and never persisted: see
 *   `PoolFile.unclean`) @default `file.unclean`
 * @throws {PmemError} code -22 (EINVAL) when the BTT is corrupt
 */
export function loadBtt(
  file: PoolFile,
  attach = !file.join.first,
  persistMaps = file.unclean,
): Btt {
  const media = file.media;
  const g = file.geometry;
  const repaired: string[] = [];
  if (attach && !file.join.shared.laidOut) {
    // No opener loaded arenas: the pool has no BTT, or another opener is
    // laying it out, whose info blocks may be valid before the arenas'
    // shared state (lanes, idle ring) is set up. Taken once it says so
    // (`BlockPool` adopts them at its next use of the pool).
    return { places: [], arenas: [], repaired, blockCount: g.blockCount };
  }
  const places: ArenaPlace[] = [];
  let offset = 0;
  let room = g.rawSize;
  let firstLba = 0;
  for (let k = 0;; k++) {
    const base = BTT_OFFSET + offset;
    const primary = media.bytes(base, INFO_SIZE);
    const bad = infoProblem(primary, file.poolsetUuid);
    let info;
    if (bad === null) {
      info = decodeBttInfo(primary);
    } else {
      const backupAt = base + Math.min(room, ARENA_MAX_SIZE) - INFO_SIZE;
      const backup = media.bytes(backupAt, INFO_SIZE);
      const badBackup = infoProblem(backup, file.poolsetUuid);
      if (badBackup === null) {
        info = decodeBttInfo(backup);
        if (base + info.infoOff !== backupAt) {
          throw corrupt(
            "open",
            file.path,
            `arena ${k}: the BTT info block is invalid (${bad}) and its backup is misplaced`,
          );
        }
      } else if (k === 0 && bad === "it is all zeros") {
        checkUnformatted(file);
        return { places: [], arenas: [], repaired, blockCount: g.blockCount };
      } else {
        throw corrupt(
          "open",
          file.path,
          `arena ${k}: the BTT info block is invalid (${bad}) and so is its backup (${badBackup})`,
        );
      }
    }
    const field = infoFieldProblem(info, file.blockSize, room);
    if (field !== null) {
      throw corrupt("open", file.path, `arena ${k}: BTT info block: ${field}`);
    }
    if (info.nextOff !== 0 && room - info.nextOff < ARENA_MIN_SIZE) {
      throw corrupt(
        "open",
        file.path,
        `arena ${k}: the next arena would start beyond the end of the pool`,
      );
    }
    const backupAt = base + info.infoOff;
    if (attach) {
      // the first opener repaired what needed it
    } else if (bad !== null) {
      media.memcpy(base, media.copy(backupAt, INFO_SIZE));
      repaired.push(
        `arena ${k}: restored the BTT info block from its backup (${bad})`,
      );
    } else {
      const backup = media.bytes(backupAt, INFO_SIZE);
      if (!sameBytes(primary, backup)) {
        const why = infoProblem(backup, file.poolsetUuid) ?? "it differed";
        // the primary may be a store of a killed process (markInfoError's
        // flag) never persisted: durable first, else a power failure
        // brings the old primary back, and the next open copies it over
        // the backup made of the new one
        media.persist(base, INFO_SIZE);
        media.memcpy(backupAt, media.copy(base, INFO_SIZE));
        repaired.push(
          `arena ${k}: rewrote the backup BTT info block (${why})`,
        );
      }
    }
    places.push({ index: k, base, firstLba, info });
    firstLba += info.externalNlba;
    if (info.nextOff === 0) break;
    offset += info.nextOff;
    room -= info.nextOff;
  }
  const { shared, token } = file.join;
  const arenas = places.map((p, k) => {
    const words = shared.arena(k);
    return attach
      ? Arena.attach(media, p, words, token)
      : Arena.load(media, p, repaired, words, token, file.lanes, persistMaps);
  });
  if (!attach && arenas.length > 0) shared.setLaidOut();
  const blockCount = places.reduce((n, p) => n + p.info.externalNlba, 0);
  return { places, arenas, repaired, blockCount };
}

/**
 * A pool without a BTT: only acceptable when nothing was ever written,
 * which for a zeroed file means every map is still zero.
 */
function checkUnformatted(file: PoolFile): void {
  if (!file.isZeroed) return; // libpmemblk zeroes the maps at layout
  for (const a of file.geometry.arenas) {
    const at = BTT_OFFSET + a.offset + a.mapOff;
    const len = roundUp(a.externalNlba * MAP_ENTRY_SIZE, BTT_ALIGN);
    if (!file.media.isZero(at, len)) {
      throw corrupt(
        "open",
        file.path,
        `arena ${
          a.offset / ARENA_MAX_SIZE
        }: the BTT info block and its backup are missing but the map is not empty; refusing to lay out a new BTT over it (pmempool check -r may repair it)`,
      );
    }
  }
}

/**
 * Write a fresh BTT (last arena first; arena 0's info block last, which
 * makes the layout valid), then load it. The caller holds the share's
 * layout lock and found no layout.
 */
export function layOutBtt(file: PoolFile): Btt {
  const g = file.geometry;
  const uuid = randomUuid();
  for (let k = g.arenas.length - 1; k >= 0; k--) {
    const a = g.arenas[k];
    formatArena(
      file.media,
      BTT_OFFSET + a.offset,
      a,
      uuid,
      file.poolsetUuid,
      !file.isZeroed,
    );
  }
  // (the maps were just written durably)
  return loadBtt(file, false, false);
}
