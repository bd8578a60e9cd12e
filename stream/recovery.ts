// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Recovery: the one step at open (by the first opener in the process)
 * that turns whatever a crash left into a stream whose entries are a
 * prefix of the timestamp order.
 *
 * 1. Each allocated region is scanned from its head: an entry counts
 *    while its CRC holds, its timestamp rises and is at most the bound R,
 *    and it lies inside the region's live window. A zero header (or the
 *    first entry that fails) ends the region. An entry that fails though
 *    its timestamp rises and is at most the settled timestamp W is not a
 *    torn write (see step 2) but damage: the stream is refused, with the
 *    region, the entry's file offset and timestamp named, and nothing
 *    is written.
 * 2. Entries up to the settled timestamp W are kept as they are: W only
 *    ever passes timestamps whose entries were durable. Beyond W, entries
 *    of all regions are kept while their timestamps run on from W + 1
 *    without a gap; the first missing timestamp (an entry torn, or not
 *    yet durable, in some region) ends the prefix, and every later entry
 *    is dropped in every region.
 * 3. Where a region's kept entries end, its next header is zeroed
 *    (unless it is zero already), and these stores are persisted with one
 *    fence, with the kept entries beyond W and the header after them, and
 *    the region table (a crash of the process alone leaves its stores
 *    readable but perhaps not durable); then W is set to R and persisted. Timestamps from now on start
 *    above R, so an entry left stale on the media can never be read as a
 *    new one: a region's entries must rise in timestamp, and every header
 *    after a kept entry is new or stops the scan.
 *
 * A crash during recovery is harmless: the zeroed headers only hide what
 * step 2 dropped, so running it again finds the same prefix. After a
 * clean close W = R and every region ends in a zero header: nothing is
 * written (the table is only flushed).
 *
 * @module
 */
import {
  BOUND_AT,
  ENTRY_HEADER,
  entryTotal,
  type Geometry,
  MAX_TIMESTAMP,
  normalize,
  PAD_BIT,
  SETTLED_AT,
  SLOT_SIZE,
  slotOffset,
} from "./layout.ts";
import type { Range, StreamMedia } from "./media.ts";
import type { TableEntry } from "./table.ts";

/** One entry found by a scan. */
interface Found {
  ts: number;
  /** Whether it is padding (a given-up append). */
  pad: boolean;
  /** Logical position. */
  pos: number;
  /** Logical end (normalised). */
  end: number;
}

/** A header that ended a scan though its timestamp rose and was in bounds. */
interface Stop {
  /** File offset of the header. */
  at: number;
  /** The timestamp it holds. */
  ts: number;
  /** What is wrong with it. */
  why: string;
  /**
   * Whether no crash can leave it: it follows a durable entry (or the
   * head) and claims a timestamp a torn write cannot hold.
   */
  damage?: boolean;
}

/** A region after recovery. */
export interface RecoveredRegion {
  /** The slot. */
  k: number;
  /** Its generation. */
  generation: number;
  /** File offset of its space. */
  offset: number;
  /** Bytes of its space. */
  size: number;
  /** Logical position of its first live entry. */
  head: number;
  /** Logical end of its entries. */
  tail: number;
  /** Timestamp of its last entry (0: none). */
  lastTs: number;
  /** Entries (padding included). */
  entries: number;
  /** Entries, padding not counted. */
  records: number;
}

/** What recovery found and did. */
export interface RecoveryReport {
  /** The settled timestamp W found. */
  settled: number;
  /** The timestamp bound R found. */
  bound: number;
  /** Entries kept (padding included), over every region. */
  entries: number;
  /** Entries beyond the first missing timestamp, dropped. */
  dropped: number;
  /** Regions whose entries ended at a header that was not zero (a torn
   * or stale entry), or where entries were dropped: their next header
   * was zeroed. */
  cut: number;
  /** Whether recovery wrote to the media. */
  wrote: boolean;
  /** The regions. */
  regions: RecoveredRegion[];
}

/**
 * Scan a region from its head.
 *
 * @param media the stream
 * @param offset file offset of the region's space
 * @param size bytes of it
 * @param head logical position of its first live entry
 * @param bound the timestamp bound R
 * @param seed the CRC seed
 * @param settled the settled timestamp W (0: take nothing as durable)
 */
export function scanRegion(
  media: StreamMedia,
  offset: number,
  size: number,
  head: number,
  bound: number,
  seed: number,
  settled = 0,
): { found: Found[]; clean: boolean; stop?: Stop } {
  const found: Found[] = [];
  let pos = normalize(head, size);
  let prev = 0;
  for (;;) {
    const phys = pos % size;
    const at = offset + phys;
    const word = media.read32(at + 4);
    const ts = media.read64(at + 8);
    // After a durable entry (or at the head) a crash leaves a zero
    // header, or a header of a timestamp above W and at most R, torn or
    // not (its timestamp word 0 or whole): with W = R nothing was torn
    const durable = prev <= settled;
    if (ts === 0) {
      const zero = media.isZero(at, ENTRY_HEADER);
      if (!zero && durable && settled === bound) {
        const why = "its timestamp is 0 though nothing was written after";
        return { found, clean: false, stop: { at, ts, why, damage: true } };
      }
      return { found, clean: zero };
    }
    const length = (word & ~PAD_BIT) >>> 0;
    const total = entryTotal(length);
    const end = normalize(pos + total, size);
    if (ts <= prev || ts > bound || ts > MAX_TIMESTAMP) {
      if (durable) {
        const why = ts <= prev
          ? `its timestamp does not rise above ${prev}`
          : `its timestamp is above the bound ${bound}`;
        return { found, clean: false, stop: { at, ts, why, damage: true } };
      }
      return { found, clean: false };
    }
    if (phys + total > size || end + ENTRY_HEADER > head + size) {
      const why = `its length ${length} overruns the region`;
      return { found, clean: false, stop: { at, ts, why } };
    }
    const covered = word & PAD_BIT ? 12 : 12 + length;
    if (media.crc(at + 4, covered, seed) !== media.read32(at)) {
      const why = "its CRC does not match";
      return { found, clean: false, stop: { at, ts, why } };
    }
    found.push({ ts, pad: (word & PAD_BIT) !== 0, pos, end });
    prev = ts;
    pos = end;
  }
}

/**
 * Recover a stream: scan, keep the gap-free prefix, cut each region after
 * its last kept entry, settle W = R.
 *
 * @param media the stream
 * @param g its geometry
 * @param table the validated allocated slots
 * @returns what was found and done, or a sentence naming the damaged
 *   structure (nothing was written then)
 */
export function recover(
  media: StreamMedia,
  g: Geometry,
  table: readonly TableEntry[],
): RecoveryReport | string {
  const settled = media.read64(SETTLED_AT);
  const bound = media.read64(BOUND_AT);
  if (
    !Number.isSafeInteger(settled) || !Number.isSafeInteger(bound) ||
    settled > bound
  ) {
    return `the stream header is corrupt: settled timestamp ${
      media.readU64(SETTLED_AT)
    } above the bound ${media.readU64(BOUND_AT)}`;
  }
  const scans = table.map(({ slot }) =>
    scanRegion(
      media,
      slot.offset,
      slot.size,
      slot.head,
      bound,
      g.seed,
      settled,
    )
  );
  // A crash tears only entries above W (W passes none that was not
  // durable, header and terminator included), and a torn header's
  // timestamp word (8-byte aligned, stored whole) holds 0 or its new
  // timestamp, above W. So a scan that ends at a header claiming a
  // timestamp at or below W met damage, not a crash: cutting there would
  // drop durable entries (and write over them). Refuse, before writing.
  for (let i = 0; i < scans.length; i++) {
    const stop = scans[i].stop;
    if (stop?.damage) {
      return `region ${
        table[i].k
      } is corrupt: the entry at file offset ${stop.at} follows a durable entry and no crash leaves it (timestamp ${stop.ts}): ${stop.why}`;
    }
    if (stop !== undefined && stop.ts <= settled) {
      return `region ${
        table[i].k
      } is corrupt: the entry at file offset ${stop.at} (timestamp ${stop.ts}, at or below the settled timestamp ${settled}, so durable) is damaged: ${stop.why}`;
    }
  }
  // the gap-free run beyond W
  const beyond: number[] = [];
  for (const s of scans) {
    for (const f of s.found) if (f.ts > settled) beyond.push(f.ts);
  }
  beyond.sort((a, b) => a - b);
  let last = settled;
  for (const ts of beyond) {
    if (ts !== last + 1) break;
    last = ts;
  }
  const report: RecoveryReport = {
    settled,
    bound,
    entries: 0,
    dropped: 0,
    cut: 0,
    wrote: false,
    regions: [],
  };
  const cuts: Range[] = [];
  const kept: Range[] = [];
  table.forEach(({ k, slot }, i) => {
    const { found, clean } = scans[i];
    let keep = found.length;
    while (keep > 0 && found[keep - 1].ts > last) keep--;
    report.entries += keep;
    report.dropped += found.length - keep;
    const tail = keep > 0
      ? found[keep - 1].end
      : normalize(slot.head, slot.size);
    const at = slot.offset + (tail % slot.size);
    // the kept entries beyond W, through the header that ends them: a
    // crash of the process alone left them readable here but perhaps
    // never persisted (in the CPU caches, or the page cache), and W is
    // about to pass them (a power failure after that lost them, and
    // every later entry of the region with them)
    const first = found.findIndex((f) => f.ts > settled);
    if (first >= 0 && first < keep) {
      const from = found[first].pos;
      const phys = from % slot.size;
      const length = tail + ENTRY_HEADER - from;
      const before = Math.min(length, slot.size - phys);
      kept.push({ offset: slot.offset + phys, length: before });
      if (before < length) {
        kept.push({ offset: slot.offset, length: length - before });
      }
    }
    if (keep < found.length || !clean) {
      report.cut++;
      if (!media.isZero(at, ENTRY_HEADER)) {
        media.zero(at, ENTRY_HEADER);
        cuts.push({ offset: at, length: ENTRY_HEADER });
      }
    }
    report.regions.push({
      k,
      generation: slot.generation,
      offset: slot.offset,
      size: slot.size,
      head: normalize(slot.head, slot.size),
      tail,
      lastTs: keep > 0 ? found[keep - 1].ts : 0,
      entries: keep,
      records: found.slice(0, keep).filter((f) => !f.pad).length,
    });
  });
  // and the header and region table as read: a crash of the process
  // alone may have left them readable but not durable (a create killed
  // between its header's flush and fence; a bound R raised, an
  // allocation, a free or a truncation killed before its persist), and
  // what is built on them from now on would be lost with them (one flush
  // of both at every first open: whether they are dirty cannot be known).
  // R is made durable here, before W is settled on it below: W reaches
  // the media on its own, and a W above a lost R is a refused header.
  const tableAt = slotOffset(0);
  kept.push({ offset: 0, length: BOUND_AT + 8 });
  kept.push({ offset: tableAt, length: g.regionSlots * SLOT_SIZE });
  media.persistRanges([...cuts, ...kept]);
  if (cuts.length > 0) report.wrote = true;
  if (settled !== bound) {
    media.write64(SETTLED_AT, bound);
    media.persist(SETTLED_AT, 8);
    report.wrote = true;
  }
  return report;
}
