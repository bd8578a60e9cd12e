// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Opening and creating a block pool file: argument checks, the pool
 * header and descriptor, the mapping and its lock ({@linkcode PoolFile}),
 * then finding, repairing, recovering or laying out its BTT
 * ({@linkcode Btt}). Internal to `blk/`; `pool.ts` builds a `BlockPool`
 * on what these return.
 *
 * @module
 */
import { statSync, unlinkSync } from "node:fs";
import { NotSupportedError, PmemError } from "../errors/mod.ts";
import { Mapping, setMappingTracer } from "../pmem2/mapping.ts";
import { Source } from "../pmem2/source.ts";
import type { PersistTracer } from "../pmem2/tracer.ts";
import type { Vdm } from "../mover/vdm.ts";
import { Arena, type ArenaPlace } from "./arena.ts";
import {
  BLK_POOL,
  decodeDescriptor,
  DESCRIPTOR_OFFSET,
  DESCRIPTOR_SIZE,
  encodeDescriptor,
} from "./header.ts";
import {
  allZero,
  checkPoolHeader,
  encodePoolHeader,
  HEADER_SIZE,
  hostArch,
  newPoolHeader,
  randomUuid,
} from "../pmdk/pool_header.ts";
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
  MAX_BLOCK_SIZE,
  MIN_POOL_SIZE,
  type PoolGeometry,
  poolGeometry,
  roundUp,
} from "./layout.ts";
import { PoolLock } from "./lock.ts";
import { Media } from "./media.ts";

const EINVAL = 22;
const EEXIST = 17;

/** What creating a pool needs (the public options). */
export interface CreateArgs {
  blockSize: unknown;
  poolSize?: unknown;
  mode?: unknown;
  mover?: Vdm;
}

/** What opening a pool needs (the public options). */
export interface OpenArgs {
  blockSize?: unknown;
  mover?: Vdm;
  readOnly?: unknown;
}

/** What tests may add to a pool's create or open. */
export interface PoolTestHooks {
  /**
   * A tracer attached to the pool's mapping before anything is written,
   * so it sees every flush and fence of the pool, the layout at create
   * and the recovery at open included.
   */
  tracer?: PersistTracer;
  /**
   * Extend the new file with `ftruncate` instead of `posix_fallocate`
   * (a full file system then shows up as SIGBUS on first touch).
   */
  sparse?: boolean;
}

/** An open, locked, mapped pool file whose headers were checked. */
export interface PoolFile {
  readonly path: string;
  readonly map: Mapping;
  readonly media: Media;
  readonly lock: PoolLock;
  readonly blockSize: number;
  readonly geometry: PoolGeometry;
  readonly poolsetUuid: Uint8Array;
  /** Whether the file was zero when the pool was created. */
  readonly isZeroed: boolean;
  /**
   * Why the pool is read-only (ro_compat features, or opened so), or
   * null: a read-only pool is mapped privately and never written.
   */
  readonly readOnly: string | null;
  /** Whether this call created the file (it is removed on failure). */
  readonly created: boolean;
}

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
 * Create a pool file (like `pmemblk_create`): the file, its descriptor
 * and pool header; the BTT is laid out by {@linkcode layOutBtt}.
 */
export function createPoolFile(
  path: string,
  options: CreateArgs,
  hooks: PoolTestHooks,
): PoolFile {
  const op = "create";
  checkPath(path, op);
  if (typeof options !== "object" || options === null) {
    throw new TypeError("Cannot create pool: options must be an object");
  }
  const blockSize = checkBlockSize(options.blockSize, op);
  const poolSize = checkInteger(options.poolSize ?? 0, "poolSize", op);
  const mode = checkInteger(options.mode ?? 0o644, "mode", op);
  if (poolSize !== 0) {
    if (poolSize < MIN_POOL_SIZE) {
      throw new RangeError(
        `Cannot create pool: poolSize must be at least ${MIN_POOL_SIZE} (16 MiB + 8 KiB), got ${poolSize}`,
      );
    }
    poolGeometry(poolSize, blockSize); // RangeError for a too-large block
  }
  const arch = hostArch();
  if (arch === null) {
    throw new NotSupportedError(
      op,
      -95,
      "libpmemblk's pool format is defined here for x86-64 and aarch64 only",
    );
  }
  let source: Source;
  try {
    source = Source.open(path, {
      size: poolSize,
      exclusive: poolSize > 0,
      create: poolSize > 0,
      sparse: hooks.sparse ?? false,
      mode,
    });
  } catch (e) {
    throw rename(e, op);
  }
  const created = poolSize > 0;
  let map: Mapping | null = null;
  let lock: PoolLock | null = null;
  try {
    const size = source.size;
    const usable = Math.floor(size / BTT_ALIGN) * BTT_ALIGN;
    let geometry: PoolGeometry;
    try {
      geometry = poolGeometry(size, blockSize);
    } catch (e) {
      throw new PmemError(op, -EINVAL, `'${path}': ${(e as Error).message}`, {
        errno: EINVAL,
      });
    }
    map = Mapping.map(source, { length: usable, mover: options.mover });
    if (hooks.tracer) setMappingTracer(map, hooks.tracer);
    source.close();
    lock = PoolLock.acquire(path, op);
    const media = new Media(map);
    if (!created && !allZero(media.bytes(0, HEADER_SIZE))) {
      throw new PmemError(
        op,
        -EEXIST,
        `'${path}' is not empty: its first ${HEADER_SIZE} bytes are not zero`,
        { errno: EEXIST },
      );
    }
    media.memcpy(
      DESCRIPTOR_OFFSET,
      encodeDescriptor({ blockSize, isZeroed: created ? 1 : 0 }),
    );
    const crtime = Math.floor(statSync(path).ctimeMs / 1000);
    const header = newPoolHeader(BLK_POOL, crtime, arch);
    media.memcpy(0, encodePoolHeader(header));
    return {
      path,
      map,
      media,
      lock,
      blockSize,
      geometry,
      poolsetUuid: header.poolsetUuid,
      isZeroed: created,
      readOnly: null,
      created,
    };
  } catch (e) {
    source.close();
    lock?.release();
    map?.close();
    if (created) unlinkQuietly(path);
    throw e;
  }
}

/** Open a pool file (like `pmemblk_open`) and check its headers. */
export function openPoolFile(
  path: string,
  options: OpenArgs,
  hooks: PoolTestHooks,
): PoolFile {
  const op = "open";
  checkPath(path, op);
  if (typeof options !== "object" || options === null) {
    throw new TypeError("Cannot open pool: options must be an object");
  }
  if (options.readOnly !== undefined && typeof options.readOnly !== "boolean") {
    throw new TypeError("Cannot open pool: readOnly must be a boolean");
  }
  const wanted = options.blockSize === undefined || options.blockSize === 0
    ? 0
    : checkBlockSize(options.blockSize, op);
  const source = Source.open(path);
  let map: Mapping | null = null;
  let lock: PoolLock | null = null;
  try {
    const size = source.size;
    const usable = Math.floor(size / BTT_ALIGN) * BTT_ALIGN;
    if (usable < BTT_OFFSET) {
      throw corrupt(op, path, `the file is too small (${size} bytes)`);
    }
    map = Mapping.map(source, { length: usable, mover: options.mover });
    if (hooks.tracer) setMappingTracer(map, hooks.tracer);
    lock = PoolLock.acquire(path, op);
    let media = new Media(map);
    const header = checkPoolHeader(
      media.bytes(0, HEADER_SIZE),
      BLK_POOL,
      hostArch(),
    );
    if (typeof header === "string") throw corrupt(op, path, header);
    const readOnly = header.roCompat !== 0
      ? "its header has ro_compat features"
      : options.readOnly === true
      ? "it was opened read-only"
      : null;
    if (readOnly !== null) {
      // recovery must not reach the file: work on a private copy
      map.close();
      map = null;
      map = Mapping.map(source, {
        length: usable,
        sharing: "private",
        mover: options.mover,
      });
      media = new Media(map);
    }
    source.close();
    const desc = decodeDescriptor(
      media.bytes(DESCRIPTOR_OFFSET, DESCRIPTOR_SIZE),
    );
    if (desc.blockSize === 0) {
      throw corrupt(op, path, "the descriptor's block size is 0");
    }
    if (wanted !== 0 && wanted !== desc.blockSize) {
      throw new PmemError(
        op,
        -EINVAL,
        `wrong block size: '${path}' has blocks of ${desc.blockSize} bytes, ${wanted} were requested`,
        { errno: EINVAL },
      );
    }
    let geometry: PoolGeometry;
    try {
      geometry = poolGeometry(size, desc.blockSize);
    } catch (e) {
      throw corrupt(op, path, (e as Error).message);
    }
    return {
      path,
      map,
      media,
      lock,
      blockSize: desc.blockSize,
      geometry,
      poolsetUuid: header.poolsetUuid,
      isZeroed: desc.isZeroed !== 0,
      readOnly,
      created: false,
    };
  } catch (e) {
    source.close();
    lock?.release();
    map?.close();
    throw e;
  }
}

/** Release what a pool file holds; remove the file if it was created. */
export function abandonPoolFile(file: PoolFile): void {
  try {
    file.lock.release();
  } finally {
    file.map.close();
    if (file.created) unlinkQuietly(file.path);
  }
}

function unlinkQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // the original error matters more
  }
}

/**
 * Find the arenas of a pool (repairing an info block from its twin) and
 * load them, rolling interrupted writes forward. A pool without a BTT
 * gives no arenas.
 *
 * @throws {PmemError} code -22 (EINVAL) when the BTT is corrupt
 */
export function loadBtt(file: PoolFile): Btt {
  const media = file.media;
  const g = file.geometry;
  const repaired: string[] = [];
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
    if (bad !== null) {
      media.memcpy(base, media.copy(backupAt, INFO_SIZE));
      repaired.push(
        `arena ${k}: restored the BTT info block from its backup (${bad})`,
      );
    } else {
      const backup = media.bytes(backupAt, INFO_SIZE);
      if (!primary.every((b, i) => b === backup[i])) {
        const why = infoProblem(backup, file.poolsetUuid) ?? "it differed";
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
  const arenas = places.map((p) => Arena.load(media, p, repaired));
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
 * makes the layout valid), then load it.
 */
export function layOutBtt(file: PoolFile): Btt {
  const g = file.geometry;
  const uuid = randomUuid();
  for (let k = g.arenas.length - 1; k >= 0; k--) {
    const a = g.arenas[k];
    Arena.format(
      file.media,
      BTT_OFFSET + a.offset,
      a,
      uuid,
      file.poolsetUuid,
      !file.isZeroed,
    );
  }
  return loadBtt(file);
}

export function checkPath(path: unknown, op: string): void {
  if (typeof path !== "string" || path.length === 0) {
    throw new TypeError(`Cannot ${op} pool: path must be a non-empty string`);
  }
}

export function checkBlockSize(value: unknown, op: string): number {
  if (typeof value !== "number") {
    throw new TypeError(
      `Cannot ${op} pool: blockSize must be a number, got ${describe(value)}`,
    );
  }
  if (!Number.isInteger(value) || value < 1 || value > MAX_BLOCK_SIZE) {
    throw new RangeError(
      `Cannot ${op} pool: blockSize must be an integer in [1, ${MAX_BLOCK_SIZE}], got ${value}`,
    );
  }
  return value;
}

export function checkInteger(value: unknown, name: string, op: string): number {
  if (typeof value !== "number") {
    throw new TypeError(
      `Cannot ${op} pool: ${name} must be a number, got ${describe(value)}`,
    );
  }
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(
      `Cannot ${op} pool: ${name} must be a non-negative integer, got ${value}`,
    );
  }
  return value;
}

export function describe(value: unknown): string {
  if (typeof value === "number") return String(value);
  if (typeof value === "bigint") return `${value}n (a bigint)`;
  return value === null ? "null" : typeof value;
}

export function corrupt(op: string, path: string, what: string): PmemError {
  return new PmemError(op, -EINVAL, `cannot open '${path}': ${what}`, {
    errno: EINVAL,
  });
}

/** Re-raise a source error under the pool operation's name. */
function rename(e: unknown, op: string): unknown {
  if (!(e instanceof PmemError)) return e;
  return new PmemError(op, e.code, e.message.replace(/^[^:]*: /, ""), {
    errno: e.errno,
    cause: e,
  });
}
