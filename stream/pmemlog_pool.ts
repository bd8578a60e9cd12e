// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * A libpmemlog pool file made ready for a {@linkcode PmemLog}: created
 * (header, shutdown state and log descriptor written, as `pmemlog_create`
 * writes them) or opened (header and descriptor checked, a read-only or
 * inspected log mapped privately, the shutdown state marked dirty), and
 * mapped and locked. The log itself is made by the caller's `make`, inside
 * the clean-up that undoes it all should anything fail. Not exported from
 * the module.
 *
 * @module
 */
import { statSync, unlinkSync } from "node:fs";
import { PmemError } from "../errors/mod.ts";
import {
  asOp,
  corrupt,
  isPoolSetFile,
  notEmpty,
  poolSetFile,
  tooSmall,
  withoutSize,
} from "../errors/file.ts";
import {
  checkPoolHeader,
  closedCleanly as stateClean,
  type DeviceShutdownState,
  encodePoolHeader,
  hostArch,
  newPoolHeader,
  SDS_OFFSET,
} from "../pmdk/pool_header.ts";
import {
  deviceShutdownState,
  keepsShutdownState,
  shutdownStateBytes,
  storeShutdownState,
} from "../pmdk/shutdown_state.ts";
import { type FileLock, lockStoreFile } from "../pmem2/file_lock.ts";
import { Mapping } from "../pmem2/mapping.ts";
import { setMappingTracer } from "../pmem2/mapping_access.ts";
import { Source } from "../pmem2/source.ts";
import type { Vdm } from "../mover/vdm.ts";
import { checkMode, checkOpenArgs } from "../ffi/validate.ts";
import {
  allZero,
  DESCRIPTOR_OFFSET,
  descriptorProblem,
  HEADER_SIZE,
  LOG_PAGE,
  LOG_POOL,
  LOG_START,
  MIN_LOG_POOL,
  type PoolHeader,
  WRITE_OFFSET_AT,
} from "./pmemlog_format.ts";
import { StreamMedia } from "./media.ts";
import { checkInt, checkMover } from "./options.ts";
import type { PmemLog } from "./pmemlog.ts";
import type {
  PmemLogCreateOptions,
  PmemLogOpenOptions,
  PmemLogTestHooks,
} from "./pmemlog_options.ts";
import { EINVAL, ENOTSUP } from "../errors/errno.ts";

/**
 * Make the log over a pool made ready: its mapping and lock (the log
 * owns both from then on), whether it is read-only, its mover, and the
 * device's shutdown state when the header keeps one (null otherwise).
 */
export type MakeLog = (
  map: Mapping,
  lock: FileLock,
  readOnly: boolean,
  mover: Vdm,
  device: DeviceShutdownState | null,
) => PmemLog;

/**
 * Whether the pool's last open closed it (see `closedCleanly` in
 * `pool_header.ts`): a header that keeps no shutdown state tells nothing,
 * and counts as not.
 */
function closedCleanly(bytes: Uint8Array, header: PoolHeader): boolean {
  return keepsShutdownState(header.incompat) && stateClean(bytes);
}

/**
 * Create a log pool (`PmemLog.create`, with test hooks) and make the log
 * over it with `make`. On failure everything is undone, a file created
 * removed.
 *
 * @throws {TypeError} / {RangeError} / {PmemError} as `PmemLog.create`
 */
export function createLogPool(
  path: string,
  options: PmemLogCreateOptions,
  hooks: PmemLogTestHooks,
  make: MakeLog,
): PmemLog {
  const op = "create";
  options = checkOpenArgs(path, options, op, "log", [
    "poolSize",
    "mode",
    "mover",
  ], { size: "poolSize" });
  // every message names what is created: "Cannot create log: ..."
  const what = `${op} log`;
  // 0 (the default) means the file exists: its size is the pool's
  const poolSize = checkInt(options.poolSize ?? 0, "poolSize", what);
  const mode = checkMode(options.mode, what);
  if (poolSize !== 0 && poolSize < MIN_LOG_POOL) {
    throw new RangeError(
      `Cannot ${what}: poolSize must be at least ${MIN_LOG_POOL} (2 MiB), got ${poolSize}`,
    );
  }
  // read once: a getter could give a value never checked later
  const mover = options.mover;
  checkMover(mover, op, "log");
  const arch = hostArch();
  if (arch === null) {
    throw new PmemError(
      op,
      -ENOTSUP,
      "libpmemlog's pool format is defined here for x86-64 and aarch64 only",
    );
  }
  const created = poolSize > 0;
  let source: Source;
  try {
    source = Source.open(path, {
      size: poolSize,
      exclusive: created,
      create: created,
      mode,
    });
  } catch (e) {
    // the caller's op, "create" also for a file that must exist
    throw created
      ? asOp(e, op)
      : withoutSize(e, op, "poolSize", "log", MIN_LOG_POOL);
  }
  let map: Mapping | null = null;
  let lock: FileLock | null = null;
  try {
    const size = Math.floor(source.size / LOG_PAGE) * LOG_PAGE;
    if (size < MIN_LOG_POOL) {
      if (!created && isPoolSetFile(path)) throw poolSetFile(op, path);
      throw new PmemError(
        op,
        -EINVAL,
        `'${path}' has ${source.size} bytes, less than the 2 MiB a log needs`,
      );
    }
    map = Mapping.map(source, { length: size, mover });
    if (hooks.tracer) setMappingTracer(map, hooks.tracer);
    const device = deviceShutdownState(source);
    source.close();
    lock = lockStoreFile(path, op, "log");
    const media = new StreamMedia(map);
    if (!created && !allZero(media.view(0, HEADER_SIZE))) {
      throw notEmpty(op, path, HEADER_SIZE);
    }
    const crtime = Math.floor(statSync(path).ctimeMs / 1000);
    media.set(0, encodePoolHeader(newPoolHeader(LOG_POOL, crtime, arch)));
    // open, so dirty, as libpmemlog's create leaves it
    media.set(SDS_OFFSET, shutdownStateBytes(device, true));
    media.persist(0, HEADER_SIZE);
    // the run-time area libpmemlog fills with pointers stays zero
    media.zero(DESCRIPTOR_OFFSET, LOG_START - DESCRIPTOR_OFFSET);
    media.write64(DESCRIPTOR_OFFSET, LOG_START);
    media.write64(DESCRIPTOR_OFFSET + 8, size);
    media.write64(WRITE_OFFSET_AT, LOG_START);
    media.persist(DESCRIPTOR_OFFSET, LOG_START - DESCRIPTOR_OFFSET);
    media.close();
    return make(map, lock, false, mover ?? map.mover, device);
  } catch (e) {
    source.close();
    lock?.release();
    map?.close();
    if (created) {
      try {
        unlinkSync(path);
      } catch {
        // the original error matters more
      }
    }
    throw e;
  }
}

/**
 * Open a log pool (`PmemLog.open`; with `inspect`, privately and for
 * reading only, as `openPmemLogToInspect`) and make the log over it with
 * `make`. On failure everything is undone.
 *
 * @throws {TypeError} / {PmemError} as `PmemLog.open`
 */
export function openLogPool(
  path: string,
  options: PmemLogOpenOptions,
  inspect: boolean,
  hooks: PmemLogTestHooks,
  make: MakeLog,
): PmemLog {
  const op = "open";
  // read once: a getter could give a value never checked later
  const { mover } = checkOpenArgs(path, options, op, "log", ["mover"]);
  checkMover(mover, op, "log");
  // to inspect: the file opened for reading and mapped privately, so a
  // log the caller may only read opens (nothing reaches the file)
  const source = Source.open(path, { readOnly: inspect });
  let map: Mapping | null = null;
  let lock: FileLock | null = null;
  try {
    const size = Math.floor(source.size / LOG_PAGE) * LOG_PAGE;
    if (source.size < MIN_LOG_POOL) {
      // libpmemlog's open refuses a file below its minimum part size
      throw tooSmall(
        op,
        path,
        source.size,
        `, a log has at least ${MIN_LOG_POOL}`,
      );
    }
    map = Mapping.map(source, {
      length: size,
      mover,
      sharing: inspect ? "private" : "shared",
    });
    if (hooks.tracer) setMappingTracer(map, hooks.tracer);
    lock = lockStoreFile(path, op, "log");
    const media = new StreamMedia(map);
    let device: DeviceShutdownState | null = null;
    const header = checkPoolHeader(
      media.view(0, HEADER_SIZE),
      LOG_POOL,
      hostArch(),
      () => (device = deviceShutdownState(source)),
    );
    if (typeof header === "string") throw corrupt(op, path, header);
    const problem = descriptorProblem(
      media.readU64(DESCRIPTOR_OFFSET),
      media.readU64(DESCRIPTOR_OFFSET + 8),
      media.readU64(WRITE_OFFSET_AT),
      size,
    );
    if (problem !== null) throw corrupt(op, path, problem);
    const readOnly = header.roCompat !== 0 || inspect;
    if (!readOnly && !closedCleanly(media.view(0, HEADER_SIZE), header)) {
      // a killed process's stores are visible here and may not be
      // durable: its write offset (an append, a rewind), which tell() and
      // walk() report as durable. Persisted before the log is handed out,
      // else a power failure after this open takes back what it reported.
      // Not the data below it: an append, here or in libpmemlog, persists
      // its data before it stores the offset, so data under a visible
      // offset is durable (persisting it anyway cost 270 ms per open of a
      // full 64 MiB log with cache-line flushes). (A read-only log cannot:
      // its mapping is private, and a power failure may still take the
      // offset back.)
      media.persist(0, WRITE_OFFSET_AT + 8);
    }
    media.close();
    if (readOnly && !inspect) {
      // libpmemlog opens it, and refuses to change it (EROFS): a
      // private (copy-on-write) mapping, as the block store's, since the
      // media needs views, which a read-only mapping cannot give
      map.close();
      map = null;
      map = Mapping.map(source, {
        length: size,
        sharing: "private",
        mover,
      });
    }
    if (!readOnly && keepsShutdownState(header.incompat)) {
      // dirty while open, as libpmemlog keeps it: an ADR failure meanwhile
      // is told from a process that ended with the log open
      device ??= deviceShutdownState(source);
      storeShutdownState(map, device, true);
    } else device = null;
    source.close();
    // (the log makes its own media: one here was made and dropped, and
    // on Bun each was a buffer over the whole log)
    return make(map, lock, readOnly, mover ?? map.mover, device);
  } catch (e) {
    source.close();
    lock?.release();
    map?.close();
    throw e;
  }
}
