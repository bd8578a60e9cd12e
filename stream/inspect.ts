// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * {@linkcode inspectStream}: what a stream file holds and what recovery
 * would do to it, found without changing the file: it is mapped
 * privately (copy-on-write), and recovery runs on that copy. For tools
 * (`asyncpmem info` and `check`); no lock is taken, so a stream another
 * process writes is read as it is at that moment.
 *
 * @module
 */
import { PmemError } from "../errors/mod.ts";
import { Mapping } from "../pmem2/mapping.ts";
import { Source } from "../pmem2/source.ts";
import { decodeHeader, HEADER_SIZE } from "./layout.ts";
import { StreamMedia } from "./media.ts";
import { recover } from "./recovery.ts";
import { readTable } from "./table.ts";

const EINVAL = 22;

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

/** What {@linkcode inspectStream} found. */
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
  const op = "inspect";
  const corrupt = (what: string) =>
    new PmemError(op, -EINVAL, `cannot inspect '${path}': ${what}`, {
      errno: EINVAL,
    });
  // opened for reading: a stream the caller may only read is inspected
  using source = Source.open(path, { readOnly: true });
  const fileSize = source.size;
  if (fileSize < HEADER_SIZE) {
    throw corrupt(`the file is too small (${fileSize} bytes)`);
  }
  using map = Mapping.map(source, { sharing: "private" });
  const media = new StreamMedia(map);
  const g = decodeHeader(media.bytes(0, 80), fileSize);
  if (typeof g === "string") throw corrupt(g);
  const table = readTable(media, g);
  if (typeof table === "string") throw corrupt(table);
  const r = recover(media, g, table);
  if (typeof r === "string") throw corrupt(r);
  return {
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
