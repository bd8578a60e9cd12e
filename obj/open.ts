// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Creating and opening an object pool file: argument checks, the pool
 * header, the mapping and its lock, recovery (the redo log replayed from
 * the checkpoint, then a checkpoint), and the volatile state rebuilt from
 * the chunk table, the bitmaps and the state page. Internal to `obj/`.
 *
 * @module
 */
import { unlinkSync } from "node:fs";
import { checkMode, checkOpenArgs } from "../ffi/validate.ts";
import { type FileLock, lockStoreFile } from "../pmem2/file_lock.ts";
import { Mapping } from "../pmem2/mapping.ts";
import { setMappingTracer } from "../pmem2/mapping_access.ts";
import { Source } from "../pmem2/source.ts";
import { asOp, corrupt, tooSmall } from "../errors/file.ts";
import type { PersistTracer } from "../pmem2/tracer.ts";
import { checkMoverOption, type Vdm } from "../mover/vdm.ts";
import { Engine, type StateView } from "./engine.ts";
import { CorruptPoolError, LayoutMismatchError } from "./errors.ts";
import { Heap } from "./heap.ts";
import {
  CATALOG_AT,
  CATALOG_KIND_MAP,
  CATALOG_SLOT,
  CATALOG_SLOTS,
  CHECKPOINT_AT,
  decodeHeader,
  decodeName,
  defaultLogSize,
  encodeHeader,
  type Geometry,
  HEADER_SIZE,
  LOG_OFFSET,
  MAX_LAYOUT,
  MAX_POOL_SIZE,
  MIN_LOG_SIZE,
  MIN_POOL_SIZE,
  OBJECT_HEADER,
  OBJECT_MAGIC,
  planGeometry,
  ROOT_OFFSET_AT,
  ROOT_SIZE_AT,
  STATE_OFFSET,
  TYPE_MAP,
  TYPE_ROOT,
} from "./layout.ts";
import { RedoLog } from "./log.ts";
import { applyEntry, type Entry } from "./log_entry.ts";
import { ObjMedia } from "./media.ts";
import { checkNumber, numberText, u64Text } from "./object_bytes.ts";

export { TYPE_MAP, TYPE_ROOT };

/** What tests may add to a create or open. Internal. */
export interface ObjTestHooks {
  /**
   * A tracer attached to the pool's mapping before anything is written,
   * so it sees every flush and fence, recovery included.
   */
  tracer?: PersistTracer;
  /**
   * Map the file privately (copy-on-write): recovery and any change stay
   * in this process's memory and never reach the file (the CLI's `info`
   * and `check` without `--repair`).
   */
  privateMap?: boolean;
}

/** What recovery found and did at open. */
export interface RecoveryReport {
  /** Log records replayed (transactions committed but not checkpointed). */
  records: number;
  /** Entries they held. */
  entries: number;
  /** Whether recovery wrote to the pool. */
  wrote: boolean;
}

/** An opened pool file. */
export interface Opened {
  path: string;
  map: Mapping;
  lock: FileLock;
  engine: Engine;
  geometry: Geometry;
  recovery: RecoveryReport;
}

/** The public create options, unchecked. */
export interface CreateArgs {
  size?: unknown;
  layout?: unknown;
  logSize?: unknown;
  mode?: unknown;
  mover?: Vdm;
}

/** The public open options, unchecked. */
export interface OpenArgs {
  layout?: unknown;
  mover?: Vdm;
}

function checkLayout(layout: unknown, op: string): string {
  if (typeof layout !== "string") {
    throw new TypeError(`Cannot ${op} pool: layout must be a string`);
  }
  // a lone surrogate is stored as U+FFFD: the pool could never be opened
  // with the layout it was created with
  if (layout.includes("\0") || !layout.isWellFormed()) {
    throw new RangeError(
      `Cannot ${op} pool: layout must not contain NUL or a lone surrogate`,
    );
  }
  if (new TextEncoder().encode(layout).length > MAX_LAYOUT) {
    throw new RangeError(
      `Cannot ${op} pool: layout must be at most ${MAX_LAYOUT} UTF-8 bytes`,
    );
  }
  return layout;
}

/** A non-negative integer option: TypeError for a non-number, RangeError for a bad number (as blk/ and pmem2/ do). */
function checkInteger(v: unknown, name: string, op: string): number {
  checkNumber(v, `${op} pool: ${name}`);
  const n = v as number;
  if (!Number.isInteger(n) || n < 0) {
    throw new RangeError(
      `Cannot ${op} pool: ${name} must be a non-negative integer, got ${
        numberText(n)
      }`,
    );
  }
  return n;
}

/** Create a pool file and open it. */
export function createPool(
  path: string,
  options: CreateArgs,
  hooks: ObjTestHooks,
): Opened {
  const op = "create";
  options = checkOpenArgs(
    path,
    options,
    op,
    "pool",
    [
      "size",
      "layout",
      "logSize",
      "mode",
      "mover",
    ],
    { poolSize: "size" },
    ["size", "layout"],
  );
  const size = Math.floor(checkInteger(options.size, "size", op) / 4096) *
    4096;
  if (size < MIN_POOL_SIZE || size > MAX_POOL_SIZE) {
    throw new RangeError(
      `Cannot create pool: size must be in [${MIN_POOL_SIZE}, ${MAX_POOL_SIZE}] (8 MiB to 4 GiB), got ${
        numberText(options.size as number)
      }`,
    );
  }
  const layout = checkLayout(options.layout, op);
  const logSize = options.logSize === undefined
    ? defaultLogSize(size)
    : checkInteger(options.logSize, "logSize", op);
  if (logSize < MIN_LOG_SIZE || logSize % 4096 !== 0 || logSize > size / 4) {
    throw new RangeError(
      `Cannot create pool: logSize must be a multiple of 4096 in [${MIN_LOG_SIZE}, size / 4], got ${
        numberText(logSize)
      }`,
    );
  }
  const mode = checkMode(options.mode, `${op} pool`);
  const mover = checkMoverOption(options.mover, `${op} pool`);
  const g = planGeometry(size, logSize, layout);
  let source: Source;
  try {
    source = Source.open(path, { size, exclusive: true, create: true, mode });
  } catch (e) {
    throw asOp(e, op);
  }
  let map: Mapping | null = null;
  let lock: FileLock | null = null;
  try {
    map = Mapping.map(source, { length: size, mover });
    source.close();
    if (hooks.tracer) setMappingTracer(map, hooks.tracer);
    lock = lockStoreFile(path, op, "pool");
    const media = new ObjMedia(map);
    // the state page first, the header last: a crash before the header
    // is durable leaves a file that is no pool
    media.write64(CHECKPOINT_AT, logSize);
    media.persist(STATE_OFFSET, 4096);
    media.set(encodeHeader(g), 0);
    media.persist(0, HEADER_SIZE);
    const log = new RedoLog(media, g, logSize);
    const heap = Heap.load(media, g, op);
    const state: StateView = { rootOffset: 0, rootSize: 0, catalog: [] };
    for (let i = 0; i < CATALOG_SLOTS; i++) {
      state.catalog.push({ name: "", offset: 0, kind: 0 });
    }
    const engine = new Engine(media, g, log, heap, map.mover, state);
    return {
      path,
      map,
      lock,
      engine,
      geometry: g,
      recovery: { records: 0, entries: 0, wrote: false },
    };
  } catch (e) {
    source.close();
    lock?.release();
    map?.close();
    try {
      unlinkSync(path);
    } catch {
      // it may not exist
    }
    throw e;
  }
}

/** Open a pool file: check it, recover it, rebuild its volatile state. */
export function openPool(
  path: string,
  options: OpenArgs,
  hooks: ObjTestHooks,
): Opened {
  const op = "open";
  options = checkOpenArgs(
    path,
    options,
    op,
    "pool",
    ["layout", "mover"],
    {},
    ["layout"],
  );
  const layout = checkLayout(options.layout, op);
  const mover = checkMoverOption(options.mover, `${op} pool`);
  // a private mapping never writes the file: opened for reading, a pool
  // the caller may only read opens
  const source = Source.open(path, { readOnly: hooks.privateMap === true });
  let map: Mapping | null = null;
  let lock: FileLock | null = null;
  try {
    const fileSize = source.size;
    if (fileSize < LOG_OFFSET) {
      // worded as every store's refusal (errors/file.ts)
      throw tooSmall(op, path, fileSize);
    }
    map = Mapping.map(source, {
      length: Math.min(MAX_POOL_SIZE, Math.floor(fileSize / 4096) * 4096),
      mover,
      sharing: hooks.privateMap ? "private" : "shared",
    });
    source.close();
    if (hooks.tracer) setMappingTracer(map, hooks.tracer);
    lock = lockStoreFile(path, op, "pool");
    const media = new ObjMedia(map);
    const g = decodeHeader(media.bytes(0, HEADER_SIZE), map.size);
    if (typeof g === "string") {
      if (g.startsWith("the pool header is corrupt")) {
        throw new CorruptPoolError(
          op,
          `the pool header of '${path}'`,
          g.slice("the pool header is corrupt: ".length),
        );
      }
      throw corrupt(op, path, g);
    }
    if (g.layout !== layout) {
      throw new LayoutMismatchError(op, layout, g.layout);
    }
    const checkpoint = media.read64(CHECKPOINT_AT);
    // past 2^53 the double is another position (and a multiple of 8)
    if (
      !Number.isSafeInteger(checkpoint) || checkpoint % 8 !== 0 ||
      checkpoint < g.logSize
    ) {
      throw new CorruptPoolError(
        op,
        "the checkpoint word",
        `position ${u64Text(media, CHECKPOINT_AT)} is not a log position`,
      );
    }
    const log = new RedoLog(media, g, checkpoint);
    const lists: Entry[][] = [];
    const records = log.replay((list) => lists.push(list));
    // what it replays may never have been persisted (a kill): durable first
    log.persistReplayed();
    let entries = 0;
    for (const list of lists) {
      for (const e of list) applyEntry(media, e);
      entries += list.length;
    }
    const dropped = log.dropTorn();
    if (records > 0) log.checkpoint();
    const heap = Heap.load(media, g, op);
    const state = readState(media, g, heap, op);
    const engine = new Engine(media, g, log, heap, map.mover, state);
    return {
      path,
      map,
      lock,
      engine,
      geometry: g,
      recovery: { records, entries, wrote: records > 0 || dropped },
    };
  } catch (e) {
    source.close();
    lock?.release();
    map?.close();
    throw e;
  }
}

/** The root and catalog from the state page, checked. */
function readState(
  media: ObjMedia,
  g: Geometry,
  heap: Heap,
  op: string,
): StateView {
  const rootOffset = media.read64(ROOT_OFFSET_AT);
  const rootSize = media.read64(ROOT_SIZE_AT);
  if (rootOffset !== 0 || rootSize !== 0) {
    const why = objectProblem(
      media,
      g,
      heap,
      rootOffset,
      TYPE_ROOT,
      ROOT_OFFSET_AT,
    );
    if (why !== null) throw new CorruptPoolError(op, "the root pointer", why);
    if (media.getU32(rootOffset - 12) !== rootSize) {
      throw new CorruptPoolError(
        op,
        "the root pointer",
        `the root size ${
          u64Text(media, ROOT_SIZE_AT)
        } differs from its object's`,
      );
    }
  }
  const catalog: StateView["catalog"] = [];
  for (let i = 0; i < CATALOG_SLOTS; i++) {
    const at = CATALOG_AT + i * CATALOG_SLOT;
    const name = decodeName(media.bytes(at, 112));
    const offset = media.read64(at + 112);
    const kind = media.getU32(at + 120);
    if (name !== "" || offset !== 0) {
      const why = name === ""
        ? "an object without a name"
        : objectProblem(media, g, heap, offset, TYPE_MAP, at + 112);
      if (why !== null) {
        throw new CorruptPoolError(op, `catalog slot ${i}`, why);
      }
      // a map is the only kind of named object: another kind is damage
      // (or a later version's), not a map to open and write to
      if (kind !== CATALOG_KIND_MAP) {
        throw new CorruptPoolError(
          op,
          `catalog slot ${i}`,
          `its kind ${kind} is unknown (${CATALOG_KIND_MAP}: a map)`,
        );
      }
      // two slots over one descriptor would be two maps over the same
      // objects (a set through one frees a node the other still reads);
      // two of one name, a map no open could reach
      const j = catalog.findIndex((c) =>
        c.offset === offset || (c.name !== "" && c.name === name)
      );
      if (j >= 0) {
        throw new CorruptPoolError(
          op,
          `catalog slot ${i}`,
          catalog[j].offset === offset
            ? `its map object at ${offset} is catalog slot ${j}'s too`
            : `its name ${JSON.stringify(name)} is catalog slot ${j}'s too`,
        );
      }
    }
    catalog.push({ name, offset, kind });
  }
  return { rootOffset, rootSize, catalog };
}

/**
 * Why `offset` is not a live object of type `type` (a sentence), or null
 * when it is one. `at`, where the offset was read from (a 4-aligned u64
 * word), lets the sentence show the word exactly: past 2^53 the double
 * `offset` is another number.
 */
export function objectProblem(
  media: ObjMedia,
  g: Geometry,
  heap: Heap,
  offset: number,
  type: number,
  at?: number,
): string | null {
  const h = offset - OBJECT_HEADER;
  if (offset % 8 !== 0 || h < g.heap || offset >= g.size) {
    const shown = at === undefined ? numberText(offset) : u64Text(media, at);
    return `offset ${shown} is outside the heap`;
  }
  const cap = heap.capacity(h);
  if (cap === 0) return `no allocated block starts at ${h}`;
  if (media.getU32(h) !== OBJECT_MAGIC || media.getU32(h + 8) === 0) {
    return `the object header at ${h} is not valid`;
  }
  const size = media.getU32(h + 4);
  if (OBJECT_HEADER + size > cap) {
    return `the object at ${offset} claims ${size} bytes, its block has ${
      cap - OBJECT_HEADER
    }`;
  }
  const actual = media.getU32(h + 12);
  if (actual !== type) {
    return `the object at ${offset} has type 0x${
      actual.toString(16)
    }, expected 0x${type.toString(16)}`;
  }
  return null;
}
