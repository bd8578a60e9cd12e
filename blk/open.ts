// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Opening and creating a block pool file: argument checks, the pool
 * header and descriptor, the mapping and its place in the file's
 * process-wide share ({@linkcode PoolFile}). Internal to `blk/`;
 * `btt.ts` finds the BTT in it, and `pool.ts` builds a `BlockPool` on
 * what these return.
 *
 * @module
 */
import { statSync, unlinkSync } from "node:fs";
import { NotSupportedError, PmemError } from "../errors/mod.ts";
import {
  asOp,
  corrupt,
  notEmpty,
  tooSmall,
  withoutSize,
} from "../errors/file.ts";
import { Mapping } from "../pmem2/mapping.ts";
import { setMappingTracer } from "../pmem2/mapping_access.ts";
import { Source } from "../pmem2/source.ts";
import type { PersistTracer } from "../pmem2/tracer.ts";
import { checkMoverOption, type Vdm } from "../mover/vdm.ts";
import {
  checkFlag,
  checkMode,
  checkOpenArgs,
  notSize,
} from "../ffi/validate.ts";
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
  closedCleanly,
  type DeviceShutdownState,
  encodePoolHeader,
  HEADER_SIZE,
  hostArch,
  newPoolHeader,
  NO_DEVICE_STATE,
  SDS_OFFSET,
} from "../pmdk/pool_header.ts";
import {
  deviceShutdownState,
  keepsShutdownState,
  shutdownStateBytes,
  storeShutdownState,
} from "../pmdk/shutdown_state.ts";
import {
  BTT_ALIGN,
  BTT_OFFSET,
  MAX_BLOCK_SIZE,
  MIN_POOL_SIZE,
  type PoolGeometry,
  poolGeometry,
} from "./layout.ts";
import {
  alreadyOpen,
  dropCount,
  joinPool,
  leavePool,
  type PoolJoin,
} from "./join.ts";
import { Media } from "./media.ts";
import { MAX_LANES } from "./arena_words.ts";
import { EINVAL, ENOTSUP } from "../errors/errno.ts";

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
  /**
   * Lanes each arena uses, at most (when this open sets the shared state
   * up): with few lanes a freed block is reused at once, which tests of
   * read tracking need. @default 256
   */
  lanes?: number;
}

/** An open, locked, mapped pool file whose headers were checked. */
export interface PoolFile {
  readonly path: string;
  readonly map: Mapping;
  readonly media: Media;
  /** The file's process-wide share, which this open joined. */
  readonly join: PoolJoin;
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
  /**
   * Whether the pool may hold stores its last open made and never
   * persisted: its header's shutdown state was not clean (a process
   * killed, a power failure), or is not kept. The pool's first open in
   * the process then makes durable what it trusts of them (the header
   * here, the maps in `recoverFlog`). False for a read-only pool (nothing
   * reaches the file), a created one, and a later opener in the process.
   */
  readonly unclean: boolean;
  /** Lanes an arena uses at most (see {@linkcode PoolTestHooks.lanes}). */
  readonly lanes: number;
  /**
   * The shutdown state of the pool's device, as read at open (zero when
   * it was not needed): `check` judges the header against it.
   */
  readonly device: DeviceShutdownState;
  /**
   * Whether the header's shutdown state is kept as libpmemblk keeps it:
   * dirty while the pool is open, clean after its last close.
   */
  readonly keepsState: boolean;
}

/**
 * Create a pool file (like `pmemblk_create`): the file, its descriptor
 * and pool header; the BTT is laid out by `layOutBtt` (`btt.ts`).
 */
export function createPoolFile(
  path: string,
  options: CreateArgs,
  hooks: PoolTestHooks,
): PoolFile {
  const op = "create";
  options = checkOpenArgs(
    path,
    options,
    op,
    "pool",
    [
      "blockSize",
      "poolSize",
      "mode",
      "mover",
    ],
    { size: "poolSize" },
    ["blockSize"],
  ) as CreateArgs;
  checkMoverOption(options.mover, `${op} pool`);
  const blockSize = checkBlockSize(options.blockSize, op);
  const poolSize = checkInteger(options.poolSize ?? 0, "poolSize", op);
  const mode = checkMode(options.mode, `${op} pool`);
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
      -ENOTSUP,
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
    throw poolSize > 0
      ? asOp(e, op)
      : withoutSize(e, op, "poolSize", "pool", MIN_POOL_SIZE);
  }
  const created = poolSize > 0;
  let map: Mapping | null = null;
  let join: PoolJoin | null = null;
  try {
    const size = source.size;
    const usable = Math.floor(size / BTT_ALIGN) * BTT_ALIGN;
    let geometry: PoolGeometry;
    try {
      geometry = poolGeometry(size, blockSize);
    } catch (e) {
      throw new PmemError(op, -EINVAL, `'${path}': ${(e as Error).message}`);
    }
    map = Mapping.map(source, { length: usable, mover: options.mover });
    if (hooks.tracer) setMappingTracer(map, hooks.tracer);
    const device = deviceShutdownState(source);
    source.close();
    join = joinPool(path, size, op, false);
    if (!join.first) throw alreadyOpen(op, path, "in this process");
    const media = new Media(map);
    if (!created && !allZero(media.bytes(0, HEADER_SIZE))) {
      throw notEmpty(op, path, HEADER_SIZE);
    }
    media.memcpy(
      DESCRIPTOR_OFFSET,
      encodeDescriptor({ blockSize, isZeroed: created ? 1 : 0 }),
    );
    const crtime = Math.floor(statSync(path).ctimeMs / 1000);
    const header = newPoolHeader(BLK_POOL, crtime, arch);
    const bytes = encodePoolHeader(header);
    // open, so dirty, as libpmemblk's create leaves it
    bytes.set(shutdownStateBytes(device, true), SDS_OFFSET);
    media.memcpy(0, bytes);
    return {
      path,
      map,
      media,
      join,
      blockSize,
      geometry,
      poolsetUuid: header.poolsetUuid,
      isZeroed: created,
      readOnly: null,
      created,
      unclean: false,
      lanes: hooks.lanes ?? MAX_LANES,
      device,
      keepsState: true,
    };
  } catch (e) {
    source.close();
    if (join !== null) leavePool(join, true);
    map?.close();
    if (created) unlinkQuietly(path);
    throw e;
  }
}

/**
 * Set the header's shutdown state dirty, as libpmemblk's open does (an
 * ADR failure while the pool is open is then told apart from a process
 * that ended with it open). Under the state's lock, which the last close
 * holds to clean it: a join racing that close still leaves it dirty.
 *
 * @returns the device's state
 */
function markOpen(
  map: Mapping,
  join: PoolJoin,
  device: DeviceShutdownState,
  source: Source,
  unread: boolean,
): DeviceShutdownState {
  const now = unread ? deviceShutdownState(source) : device;
  join.shared.lockShutdownState();
  try {
    storeShutdownState(map, now, true);
  } finally {
    join.shared.unlockShutdownState();
  }
  return now;
}

/**
 * Set the header's shutdown state clean when this is the pool's last open
 * in the process, as libpmemblk's close does. The open stops counting
 * here, under the state's lock: two closes at once each saw the other
 * counted when they asked under the lock and dropped their counts after
 * it, and neither cleaned. Run once nothing of this open is in flight.
 * Never throws: a state left dirty only makes a later open compare the
 * device's count (and make durable what it trusts).
 *
 * @param dirty a persist of this open failed: the state stays dirty, so
 *   the next open makes durable the stores it finds
 */
export function markClosed(file: PoolFile, dirty = false): void {
  if (file.keepsState) markClean(file.map, file.join, file.device, dirty);
}

/**
 * {@linkcode markClosed} for an open that has no `PoolFile` yet.
 *
 * @param dirty this open may leave stores visible that the media lacks (a
 *   persist failed): the state stays dirty, also at a later last close
 */
function markClean(
  map: Mapping,
  join: PoolJoin,
  device: DeviceShutdownState,
  dirty: boolean,
): void {
  const shared = join.shared;
  shared.lockShutdownState();
  try {
    if (dirty) shared.keepDirty();
    if (dropCount(join) === 0 && !shared.keepsDirty) {
      storeShutdownState(map, device, false);
    }
  } catch {
    // dirty it stays
  } finally {
    shared.unlockShutdownState();
  }
}

/** Open a pool file (like `pmemblk_open`) and check its headers. */
export function openPoolFile(
  path: string,
  options: OpenArgs,
  hooks: PoolTestHooks,
): PoolFile {
  const op = "open";
  options = checkOpenArgs(path, options, op, "pool", [
    "blockSize",
    "mover",
    "readOnly",
  ]);
  checkMoverOption(options.mover, `${op} pool`);
  checkFlag(options.readOnly, "readOnly", `${op} pool`);
  const wanted = options.blockSize === undefined || options.blockSize === 0
    ? 0
    : checkBlockSize(options.blockSize, op);
  // read-only: the file opened for reading and mapped privately, so a
  // file the caller may only read opens (recovery works on the copy)
  const asked = options.readOnly === true;
  const source = Source.open(path, { readOnly: asked });
  let map: Mapping | null = null;
  let join: PoolJoin | null = null;
  let device: DeviceShutdownState = NO_DEVICE_STATE;
  let marked = false;
  // the state the open found dirty: until it made durable what it trusts
  // (the BTT's load, after this returns), the state must stay so
  let unclean = false;
  try {
    const size = source.size;
    const usable = Math.floor(size / BTT_ALIGN) * BTT_ALIGN;
    if (usable < BTT_OFFSET) {
      throw tooSmall(op, path, size);
    }
    map = Mapping.map(source, {
      length: usable,
      mover: options.mover,
      sharing: asked ? "private" : "shared",
    });
    if (hooks.tracer) setMappingTracer(map, hooks.tracer);
    join = joinPool(path, size, op, asked);
    let media = new Media(map);
    const header = checkPoolHeader(
      media.bytes(0, HEADER_SIZE),
      BLK_POOL,
      hostArch(),
      () => (device = deviceShutdownState(source)),
    );
    if (typeof header === "string") throw corrupt(op, path, header);
    const readOnly = header.roCompat !== 0
      ? "its header has ro_compat features"
      : asked
      ? "it was opened read-only"
      : null;
    if (readOnly !== null) {
      // (a joiner never gets here: joinPool refuses it, as the first
      // opener marked the share read-only)
      join.shared.readOnly = true;
    }
    if (readOnly !== null && !asked) {
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
    const keepsState = readOnly === null &&
      keepsShutdownState(header.incompat);
    // (a later opener in the process finds the state dirty: the first
    // opener's, which made durable what it trusted)
    unclean = join.first && readOnly === null &&
      (!keepsState || !closedCleanly(media.bytes(0, HEADER_SIZE)));
    if (unclean) {
      // a killed create's header (or a dirty state a killed open stored)
      // may be visible and not durable: durable before anything is built
      // on it, else a power failure takes the pool
      media.persist(0, DESCRIPTOR_OFFSET + DESCRIPTOR_SIZE);
    }
    if (keepsState) {
      device = markOpen(map, join, device, source, device === NO_DEVICE_STATE);
      marked = true;
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
      );
    }
    let geometry: PoolGeometry;
    try {
      geometry = poolGeometry(size, desc.blockSize);
    } catch (e) {
      // a header of a pool in a file too short to be one: cut short
      throw corrupt(
        op,
        path,
        size < MIN_POOL_SIZE
          ? `the file is truncated: ${size} bytes, too small for the pool ` +
            `of ${desc.blockSize}-byte blocks its header describes (a pool ` +
            `is at least ${MIN_POOL_SIZE} bytes)`
          : (e as Error).message,
      );
    }
    return {
      path,
      map,
      media,
      join,
      blockSize: desc.blockSize,
      geometry,
      poolsetUuid: header.poolsetUuid,
      isZeroed: desc.isZeroed !== 0,
      readOnly,
      created: false,
      unclean,
      lanes: hooks.lanes ?? MAX_LANES,
      device,
      keepsState,
    };
  } catch (e) {
    source.close();
    // a failed open leaves the state as libpmemblk's does: clean, unless
    // it found it dirty (a kill's stores are still to be made durable)
    if (marked) markClean(map!, join!, device, unclean);
    if (join !== null) leavePool(join, true);
    map?.close();
    throw e;
  }
}

/**
 * Release what a pool file holds (its open failed after this returned);
 * remove the file if it was created. The shutdown state stays dirty for
 * an unclean open: its recovery (the BTT's load) may not have made
 * durable what it trusts.
 */
export function abandonPoolFile(file: PoolFile): void {
  markClosed(file, file.unclean);
  try {
    leavePool(file.join, true);
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
      `Cannot ${op} pool: ${name} ${notSize(value)}, got ${value}`,
    );
  }
  return value;
}

export function describe(value: unknown): string {
  if (typeof value === "number") return String(value);
  if (typeof value === "bigint") return `${value}n (a bigint)`;
  return value === null ? "null" : typeof value;
}
