// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * {@linkcode inspectStream}: what a stream file holds and what recovery
 * would do to it, found without changing the file: it is mapped
 * privately (copy-on-write), and recovery runs on that copy. No lock is
 * taken, so a stream another process writes is read as it is at that
 * moment. {@linkcode openStreamToInspect} does the same under the lock an
 * open of the stream takes, and reads the entries too: for tools
 * (`asyncpmem info`, `check` and `dump`), which refuse a stream open
 * elsewhere as they refuse the other pool kinds.
 *
 * @module
 */
import { PmemError } from "../errors/mod.ts";
import { asOp } from "../errors/file.ts";
import { type FileLock, lockStoreFile } from "../pmem2/file_lock.ts";
import { Mapping } from "../pmem2/mapping.ts";
import { Source } from "../pmem2/source.ts";
import {
  decodeHeader,
  ENTRY_HEADER,
  entryTotal,
  HEADER_SIZE,
  normalize,
  PAD_BIT,
} from "./layout.ts";
import { StreamMedia } from "./media.ts";
import { recover, type RecoveryReport } from "./recovery.ts";
import type { LogEntry } from "./region.ts";
import { readTable } from "./table.ts";
import { EINVAL } from "../errors/errno.ts";

/** One region of a {@linkcode StreamInspection}. */
export interface InspectedRegion {
  /** Its slot in the region table. */
  slot: number;
  /** Its generation (bumped each time the slot is allocated). */
  generation: number;
  /** File offset of its space. */
  offset: number;
  /** Bytes of its space. */
  size: number;
  /** Bytes its live entries take. */
  used: number;
  /** Live entries (padding included). */
  entries: number;
  /** Timestamp of its last entry (0: none). */
  lastTimestamp: number;
}

/** What {@linkcode LogStream.inspect} found. */
export interface StreamInspection {
  /** The file. */
  path: string;
  /** Bytes of the stream. */
  size: number;
  /** Region alignment and size unit. */
  blockSize: number;
  /** Slots of the region table. */
  regionSlots: number;
  /** Timestamps in flight at most. */
  maxInFlight: number;
  /** The settled watermark W on the media: every entry up to it is durable. */
  settled: number;
  /** The bound R on the media: no timestamp beyond it was ever written. */
  bound: number;
  /** The regions, as recovery leaves them. */
  regions: InspectedRegion[];
  /** What recovery would do at the next open. */
  recovery: {
    /** Entries it keeps. */
    entries: number;
    /** Entries beyond the first missing timestamp, which it drops. */
    dropped: number;
    /** Regions whose end it marks again (a torn or stale entry). */
    cut: number;
    /** Whether it would write anything. */
    writes: boolean;
  };
}

/**
 * Inspect a stream file without changing it.
 *
 * @throws {PmemError} code -22 (EINVAL) naming the damaged structure
 *   when the file is not an intact stream; others when it cannot be read
 */
export function inspectStream(path: string): StreamInspection {
  using copy = recoverPrivately(path, "inspect");
  return copy.inspection;
}

/**
 * A stream file read for tools that only read it (`asyncpmem info`,
 * `check`, `dump`, `convert`): under the lock an open of the stream takes
 * (`flock`, held by any open of it, here or in another process), from a
 * private (copy-on-write) mapping of a descriptor opened read-only, its
 * recovery run on that copy, so nothing reaches the file. Not exported
 * from the module.
 *
 * @throws {PmemError} code -11 (EAGAIN) when the stream is open (in
 *   another process, or here); -22 (EINVAL) as {@linkcode inspectStream}
 */
export function openStreamToInspect(path: string): StreamCopy {
  const op = "open";
  const lock = lockStoreFile(path, op, "stream");
  try {
    return recoverPrivately(path, op, lock);
  } catch (e) {
    lock.release();
    throw e;
  }
}

/** A stream file mapped privately, recovered on the copy. */
export class StreamCopy implements Disposable {
  /** What the file holds, and what recovery would do to it. */
  readonly inspection: StreamInspection;
  #map: Mapping;
  #media: StreamMedia;
  #report: RecoveryReport;
  #lock: FileLock | undefined;

  /** Made by {@linkcode openStreamToInspect}. @internal */
  constructor(
    path: string,
    map: Mapping,
    media: StreamMedia,
    g: {
      size: number;
      blockSize: number;
      regionSlots: number;
      maxInFlight: number;
    },
    r: RecoveryReport,
    lock: FileLock | undefined,
  ) {
    this.#map = map;
    this.#media = media;
    this.#report = r;
    this.#lock = lock;
    this.inspection = {
      path,
      size: g.size,
      blockSize: g.blockSize,
      regionSlots: g.regionSlots,
      maxInFlight: g.maxInFlight,
      settled: r.settled,
      bound: r.bound,
      regions: r.regions.map((x) => ({
        slot: x.k,
        generation: x.generation,
        offset: x.offset,
        size: x.size,
        used: x.tail - x.head,
        entries: x.entries,
        lastTimestamp: x.lastTs,
      })),
      recovery: {
        entries: r.entries,
        dropped: r.dropped,
        cut: r.cut,
        writes: r.wrote,
      },
    };
  }

  /**
   * The entries of the region in `slot`, oldest first, as recovery
   * leaves them (views of the private copy, valid until close); none
   * when no region is allocated there (see {@linkcode StreamCopy.has}).
   */
  entries(slot: number): Generator<LogEntry, void, undefined> {
    return regionEntries(this.#media, this.#report, slot);
  }

  /** Whether a region is allocated in `slot`. */
  has(slot: number): boolean {
    return this.#report.regions.some((x) => x.k === slot);
  }

  /** Unmap the copy and release the lock. Idempotent. */
  close(): void {
    this.#media.close();
    this.#map.close();
    this.#lock?.release();
    this.#lock = undefined;
  }

  /** Same as {@linkcode StreamCopy.close}. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/** The entries of region `slot` of a recovered copy, read in turn. */
function* regionEntries(
  media: StreamMedia,
  r: RecoveryReport,
  slot: number,
): Generator<LogEntry, void, undefined> {
  const region = r.regions.find((x) => x.k === slot);
  if (region === undefined) return;
  const { offset, size, tail } = region;
  let pos = region.head;
  for (;;) {
    pos = normalize(pos, size);
    if (pos >= tail) return;
    const at = offset + (pos % size);
    const word = media.read32(at + 4);
    const length = (word & ~PAD_BIT) >>> 0;
    pos += entryTotal(length);
    if (word & PAD_BIT) continue;
    const timestamp = media.read64(at + 8);
    yield { timestamp, data: media.bytes(at + ENTRY_HEADER, length) };
  }
}

/** Map `path` privately (read-only descriptor) and recover the copy. */
function recoverPrivately(
  path: string,
  op: string,
  lock?: FileLock,
): StreamCopy {
  const corrupt = (what: string) =>
    new PmemError(op, -EINVAL, `cannot ${op} '${path}': ${what}`);
  // opened for reading: a stream the caller may only read is inspected
  // (a file that cannot be opened names the caller's op, as a damaged
  // one does: `inspect` said "open: cannot open ...")
  let opened: Source;
  try {
    opened = Source.open(path, { readOnly: true });
  } catch (e) {
    throw asOp(e, op);
  }
  using source = opened;
  const fileSize = source.size;
  if (fileSize < HEADER_SIZE) {
    throw corrupt(`the file is too small (${fileSize} bytes)`);
  }
  const map = Mapping.map(source, { sharing: "private" });
  const media = new StreamMedia(map);
  try {
    const g = decodeHeader(media.view(0, 80), fileSize);
    if (typeof g === "string") throw corrupt(g);
    const table = readTable(media, g);
    if (typeof table === "string") throw corrupt(table);
    const r = recover(media, g, table);
    if (typeof r === "string") throw corrupt(r);
    return new StreamCopy(path, map, media, g, r, lock);
  } catch (e) {
    media.close();
    map.close();
    throw e;
  }
}
