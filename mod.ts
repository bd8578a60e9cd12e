// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * asyncpmem: PMDK's asynchronous persistent-memory stack for Deno and Bun.
 * The root re-exports the pieces most programs use; each area also has
 * its own entry point (`/pmem2`, `/future`, `/mover`, `/blk`, `/stream`,
 * `/obj`, `/errors`, `/cli`, and `/testing` for test hooks).
 *
 * ```ts
 * import { mapFile } from "@asyncpmem/asyncpmem";
 * import { mkdtempSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 *
 * const path = join(mkdtempSync(join(tmpdir(), "asyncpmem-")), "data");
 * using map = mapFile(path, { size: 1 << 20 });
 * map.memcpy(0, new TextEncoder().encode("durable"));
 * ```
 *
 * @module
 */
export {
  BadBlockError,
  ClosedError,
  ERROR_CODES,
  NotSupportedError,
  OutOfSpaceError,
  PmemError,
  type PmemErrorOptions,
  ShimCode,
} from "./errors/mod.ts";
export { RUNTIME, type RuntimeName } from "./ffi/_runtime.ts";
export {
  type BadBlock,
  FileLock,
  type Granularity,
  type MapConfig,
  mapFile,
  type MapFileOptions,
  Mapping,
  MemFlags,
  type Protection,
  Source,
  type SourceOpenOptions,
} from "./pmem2/mod.ts";
export {
  all,
  chain,
  fromStep,
  Future,
  type FutureOptions,
  type FutureState,
  map,
  NO_CONTEXT,
  NOT_STARTED,
  PENDING,
  type PollContext,
  race,
  ready,
  rejected,
  type Step,
  wait,
  waitAll,
  type WakeSource,
} from "./future/mod.ts";
export {
  BaseMover,
  type BatchEntry,
  type CheckedOp,
  CpuMover,
  type DeviceInfo,
  DsaMover,
  type DsaMoverOptions,
  ThreadMover,
  type ThreadMoverOptions,
  type Vdm,
  VdmFlags,
  type VdmOp,
} from "./mover/mod.ts";
export {
  BlockPool,
  type BlockPoolCreateOptions,
  type BlockPoolInfo,
  type BlockPoolOpenOptions,
  type BlockWrite,
  type CheckReport,
} from "./blk/mod.ts";
export {
  type LogEntry,
  LogStream,
  type LogStreamCreateOptions,
  type LogStreamOpenOptions,
  PmemLog,
  Region,
} from "./stream/mod.ts";
export {
  type MapKey,
  type MapOp,
  type MapValue,
  ObjectHandle,
  ObjectPool,
  type ObjectPoolCreateOptions,
  type ObjectPoolOpenOptions,
  PersistentMap,
  Transaction,
} from "./obj/mod.ts";
