// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Creating and opening a stream file: the mapping, the process-wide
 * share, recovery by the first opener, and one {@linkcode LogCore} per
 * file per isolate (a second open in the same isolate uses the first's);
 * and releasing an open at its close.
 *
 * @module
 */
import { unlinkSync } from "node:fs";
import { PmemError } from "../errors/mod.ts";
import { asOp, corrupt, tooSmall } from "../errors/file.ts";
import { backend } from "../ffi/lib.ts";
import { FileShare } from "../pmem2/file_share.ts";
import { waitForFirstOpener } from "../pmem2/share_wait.ts";
import { Mapping } from "../pmem2/mapping.ts";
import { setMappingTracer } from "../pmem2/mapping_access.ts";
import { Source } from "../pmem2/source.ts";
import type { PersistTracer } from "../pmem2/tracer.ts";
import { LogCore } from "./core.ts";
import {
  dataOffsetOf,
  decodeHeader,
  encodeHeader,
  type Geometry,
  HEADER_SIZE,
} from "./layout.ts";
import { StreamMedia } from "./media.ts";
import { recover, type RecoveryReport } from "./recovery.ts";
import {
  REGION_ALLOCATED,
  SharedState,
  STATE_FAILED,
  STATE_READY,
  STATE_RECOVERING,
} from "./shared.ts";
import { readTable } from "./table.ts";
import type {
  LogStreamCreateOptions,
  LogStreamOpenOptions,
} from "./options.ts";
import type { LogStream } from "./stream.ts";
import type { Writes } from "./writes.ts";
import { EBUSY, EINVAL } from "../errors/errno.ts";

/** What tests may add to a create or open. Internal. */
export interface StreamTestHooks {
  /**
   * A tracer attached to the stream's mapping before anything is written,
   * so it sees every flush and fence, recovery included; the stream then
   * also marks its commits ("commit T") and persists ("persisted T").
   */
  tracer?: PersistTracer;
}

/** A {@linkcode LogStream}'s private create, open and media. Internal. */
export interface StreamInternals {
  create(
    path: string,
    options: LogStreamCreateOptions,
    hooks: StreamTestHooks,
  ): LogStream;
  open(
    path: string,
    options: LogStreamOpenOptions,
    hooks: StreamTestHooks,
  ): LogStream;
  media(s: LogStream): StreamMedia;
  core(s: LogStream): LogCore;
}

let internals: StreamInternals;

/** Set by {@linkcode LogStream} when its class is defined. Internal. */
export function setStreamInternals(i: StreamInternals): void {
  internals = i;
}

/** {@linkcode LogStream.create} with test hooks. Internal. */
export function createStreamWith(
  path: string,
  options: LogStreamCreateOptions,
  hooks: StreamTestHooks,
): LogStream {
  return internals.create(path, options, hooks);
}

/** {@linkcode LogStream.open} with test hooks. Internal. */
export function openStreamWith(
  path: string,
  options: LogStreamOpenOptions,
  hooks: StreamTestHooks,
): LogStream {
  return internals.open(path, options, hooks);
}

/** The media of an open stream (tests look at its views). Internal. */
export function streamMedia(s: LogStream): StreamMedia {
  return internals.media(s);
}

/** The core of an open stream (tests hold its locks). Internal. */
export function streamCore(s: LogStream): LogCore {
  return internals.core(s);
}

/** An opened stream file: its core, and what recovery did. */
export interface Opened {
  core: LogCore;
  /** Recovery's report (a joining open gets the first opener's). */
  recovery: RecoveryReport;
  /** Whether this open created the core (else it joined this isolate's). */
  fresh: boolean;
}

/** The cores of this isolate, by {@linkcode coreKey}. */
const cores = new Map<string, { core: LogCore; recovery: RecoveryReport }>();

/**
 * What names a stream's core in this isolate: the address of its share's
 * memory (the same for every open of the file in the process, and no
 * other live share's) and the instance number its first opener drew.
 * The number alone was drawn unique among this isolate's cores only: a
 * Worker with a core of another file under the same number would have
 * joined that one (odds 2^-32 a pair, but a wrong file).
 */
function coreKey(shared: SharedState): string {
  const address = backend.addressOf(new Uint8Array(shared.i32.buffer, 0, 1));
  return `${address}:${shared.instance}`;
}

/** A recovery report of a freshly created stream. */
function emptyReport(): RecoveryReport {
  return {
    settled: 0,
    bound: 0,
    entries: 0,
    dropped: 0,
    cut: 0,
    wrote: false,
    regions: [],
  };
}

/**
 * Create a new stream file and open it.
 *
 * @param path the file; it must not exist
 * @param g the geometry (its `dataOffset` is computed here)
 * @param mode permission bits
 * @param hooks test hooks
 */
export function createStream(
  path: string,
  g: Omit<Geometry, "dataOffset" | "seed">,
  mode: number,
  hooks: StreamTestHooks,
): Opened {
  const op = "create";
  let source: Source;
  try {
    source = Source.open(path, {
      size: g.size,
      exclusive: true,
      create: true,
      mode,
    });
  } catch (e) {
    throw asOp(e, op);
  }
  let map: Mapping | null = null;
  let share: FileShare | null = null;
  try {
    map = Mapping.map(source, { length: g.size });
    source.close();
    if (hooks.tracer) setMappingTracer(map, hooks.tracer);
    const geometry: Geometry = {
      ...g,
      dataOffset: dataOffsetOf(g.regionSlots, g.blockSize),
      seed: crypto.getRandomValues(new Uint32Array(1))[0],
    };
    share = FileShare.open(
      path,
      SharedState.bytes(geometry.regionSlots, geometry.maxInFlight),
      op,
    );
    const shared = new SharedState(
      share.memory,
      geometry.regionSlots,
      geometry.maxInFlight,
    );
    shared.state = STATE_RECOVERING;
    const media = new StreamMedia(map);
    media.traced = hooks.tracer !== undefined;
    media.set(0, encodeHeader(geometry));
    media.persist(0, 64);
    const core = initCore(media, shared, geometry, share, emptyReport());
    return { core, recovery: emptyReport(), fresh: true };
  } catch (e) {
    if (share !== null && !share.closed) {
      new SharedState(share.memory, g.regionSlots, g.maxInFlight).state =
        STATE_FAILED;
    }
    source.close();
    share?.close();
    map?.close();
    try {
      unlinkSync(path);
    } catch {
      // the original error matters more
    }
    throw e;
  }
}

/**
 * Open a stream file: validate its header against what the caller
 * expects, join or create the process's share, recover when first.
 *
 * @param path the file
 * @param expect the geometry the caller expects (absent fields: any)
 * @param hooks test hooks
 */
export function openStream(
  path: string,
  expect: { size?: number; blockSize?: number },
  hooks: StreamTestHooks,
): Opened {
  const op = "open";
  const source = Source.open(path);
  let map: Mapping | null = null;
  let share: FileShare | null = null;
  let owned = true;
  try {
    const fileSize = source.size;
    if (fileSize < HEADER_SIZE) {
      throw tooSmall(op, path, fileSize);
    }
    map = Mapping.map(source);
    source.close();
    if (hooks.tracer) setMappingTracer(map, hooks.tracer);
    const media = new StreamMedia(map);
    media.traced = hooks.tracer !== undefined;
    const g = decodeHeader(media.view(0, 80), fileSize);
    if (typeof g === "string") throw corrupt(op, path, g);
    for (const [name, want] of Object.entries(expect)) {
      const have = g[name as "size" | "blockSize"];
      if (want !== undefined && want !== have) {
        throw new PmemError(
          op,
          -EINVAL,
          `geometry mismatch: '${path}' has ${name} ${have}, ${want} was requested (a stream is never re-initialised)`,
        );
      }
    }
    share = FileShare.open(
      path,
      SharedState.bytes(g.regionSlots, g.maxInFlight),
      op,
    );
    const shared = new SharedState(share.memory, g.regionSlots, g.maxInFlight);
    if (share.first) {
      shared.state = STATE_RECOVERING;
      let recovery: RecoveryReport;
      try {
        const table = readTable(media, g);
        if (typeof table === "string") throw corrupt(op, path, table);
        const r = recover(media, g, table);
        if (typeof r === "string") throw corrupt(op, path, r);
        recovery = r;
      } catch (e) {
        shared.state = STATE_FAILED;
        throw e;
      }
      const core = initCore(media, shared, g, share, recovery);
      return { core, recovery, fresh: true };
    }
    waitForFirstOpener(
      () => shared.state,
      path,
      op,
      "its recovery by another open",
    );
    const local = cores.get(coreKey(shared));
    if (local !== undefined && !local.core.closed) {
      if (hooks.tracer !== undefined) {
        // the open stream's mapping serves every handle: this open's,
        // with the tracer, would be closed and the tracer see nothing
        throw new PmemError(
          op,
          -EBUSY,
          `cannot trace '${path}': the stream is already open in this process (a tracer is attached by the open that maps it)`,
        );
      }
      local.core.refs++;
      owned = false;
      share.close();
      map.close();
      return { core: local.core, recovery: local.recovery, fresh: false };
    }
    const core = new LogCore(media, shared, g, share);
    shared.addOpen();
    const recovery = emptyReport();
    cores.set(coreKey(shared), { core, recovery });
    return { core, recovery, fresh: true };
  } catch (e) {
    if (owned) {
      source.close();
      share?.close();
      map?.close();
    }
    throw e;
  }
}

/** Fill the shared state from recovery and make the core. */
function initCore(
  media: StreamMedia,
  shared: SharedState,
  g: Geometry,
  share: FileShare,
  recovery: RecoveryReport,
): LogCore {
  const bound = recovery.bound;
  shared.next = bound + 1;
  shared.committed = bound;
  shared.persisted = bound;
  shared.settled = bound;
  shared.bound = bound;
  for (const r of recovery.regions) {
    shared.setGeneration(r.k, r.generation);
    shared.setPlace(r.k, r.offset, r.size);
    shared.setHead(r.k, r.head);
    shared.setTail(r.k, r.tail);
    shared.setCommitted(r.k, r.tail, r.lastTs);
    shared.setLive(r.k, r.records);
    shared.setRegionState(r.k, REGION_ALLOCATED);
  }
  let instance = 0;
  while (instance === 0) {
    instance = crypto.getRandomValues(new Int32Array(1))[0];
  }
  shared.instance = instance;
  shared.addOpen();
  const core = new LogCore(media, shared, g, share);
  cores.set(coreKey(shared), { core, recovery });
  shared.state = STATE_READY;
  return core;
}

/**
 * A stream of this isolate closed: when it was the core's last, close
 * the core (the last opener in the process finishes the stream).
 */
function releaseCore(core: LogCore): void {
  if (--core.refs > 0) return;
  cores.delete(coreKey(core.shared));
  core.close();
}

/**
 * The work of {@linkcode LogStream.close} once the open reads as closed:
 * drain the open's `writes`, then release its core. It runs as an
 * operation of the core: a close of another open of the file in this
 * isolate asked for during it (by a tracer's callback) waits for it.
 */
export function releaseStream(core: LogCore, writes: Writes): void {
  let failure: unknown;
  core.enter();
  try {
    writes.drain();
  } catch (e) {
    failure = e;
  } finally {
    try {
      core.leave();
    } catch (e) {
      failure ??= e;
    }
  }
  try {
    releaseCore(core);
  } catch (e) {
    failure ??= e;
  }
  if (failure !== undefined) throw failure;
}
