// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Committing and persisting entries (the caller holds the commit lock):
 * headers are written in timestamp order once every earlier timestamp's
 * data is in place, and every committed entry is made durable with one
 * fence.
 *
 * @module
 */
import { ENTRY_HEADER, entryTotal, PAD_BIT } from "./layout.ts";
import type { Range, StreamMedia } from "./media.ts";
import {
  RING_COMMITTED,
  RING_EMPTY,
  RING_READY,
  RING_VOID,
  type SharedState,
} from "./shared.ts";

/**
 * Write an entry's header: length word and timestamp, then the CRC of
 * both and of the data (of the header alone for padding).
 */
export function writeHeader(
  media: StreamMedia,
  at: number,
  word: number,
  ts: number,
  seed: number,
): void {
  media.write32(at + 4, word);
  const lo = ts >>> 0;
  media.write32(at + 8, lo);
  media.write32(at + 12, (ts - lo) / 4294967296);
  const covered = word & PAD_BIT ? 12 : 12 + word;
  media.write32(at, media.crc(at + 4, covered, seed));
}

/**
 * Write the headers of every reserved entry whose data is in place, in
 * timestamp order from the committed one on, and a terminator after
 * each region's last. Returns whether anything was committed.
 */
export function commitReady(
  s: SharedState,
  media: StreamMedia,
  seed: number,
): boolean {
  const f64 = s.f64;
  const i32 = s.i32;
  const c = s.committed;
  const next = s.next;
  let end = c;
  while (end + 1 < next) {
    const st = Atomics.load(i32, s.slotI(end + 1));
    // committed past the stream's committed timestamp: by a holder of the
    // lock whose thread ended in the middle of its commit (the lock was
    // taken over); this pass finishes it, storing the same headers again
    if (st !== RING_READY && st !== RING_VOID && st !== RING_COMMITTED) {
      break;
    }
    end++;
  }
  if (end === c) return false;
  // the mark comes first: a crash image whose headers were stored shows
  // entries the checker knows were being committed
  if (media.traced) media.mark(`commit ${end}`);
  let lastRegion = -1;
  let lastEnd = 0;
  let lastTs = 0;
  let lastCount = 0;
  // each run of a region's entries: its region, new committed end, last
  // timestamp and entries (padding not counted), recorded once its
  // headers are stored
  const ends: number[] = [];
  for (let ts = c + 1; ts <= end; ts++) {
    const f = s.slotF(ts);
    const i = s.slotI(ts);
    const k = i32[i + 1];
    let word = i32[i + 2] >>> 0;
    if (i32[i] === RING_VOID) {
      // kept in the slot before it reads committed, so a pass that
      // finishes this one after this thread ended still writes padding
      word = (word | PAD_BIT) >>> 0;
      i32[i + 2] = word | 0;
    }
    media.queueHeader(f64[f + 1], word, ts);
    Atomics.store(i32, i, RING_COMMITTED);
    if (k !== lastRegion && lastRegion >= 0) {
      terminate(s, media, lastRegion, lastEnd);
      ends.push(lastRegion, lastEnd, lastTs, lastCount);
      lastCount = 0;
    }
    lastRegion = k;
    lastEnd = f64[f + 2];
    lastTs = ts;
    // an entry a pass that ended half done counted already is not again
    if (!(word & PAD_BIT) && ts > s.lastTs(k)) lastCount++;
  }
  terminate(s, media, lastRegion, lastEnd);
  ends.push(lastRegion, lastEnd, lastTs, lastCount);
  // the headers after the terminators: a terminator zeroed where a later
  // entry of the same region starts (regions interleaved) is overwritten
  // by that entry's header, as when each header was stored in turn
  media.writeHeaders(seed);
  // only now the regions' committed ends: a reader in another Worker
  // reads headers up to them, and before the headers were stored it read
  // zeros there (a follower yielded entries of timestamp 0)
  for (let j = 0; j < ends.length; j += 4) {
    s.setCommitted(ends[j], ends[j + 1], ends[j + 2], ends[j + 3]);
  }
  s.committed = end;
  s.bump();
  return true;
}

/** Zero the header after a region's last committed entry. */
function terminate(
  s: SharedState,
  media: StreamMedia,
  k: number,
  end: number,
): void {
  media.zero(s.offset(k) + (end % s.size(k)), ENTRY_HEADER);
}

/**
 * Make every committed entry durable with one fence: each entry with
 * its header, and each region's terminator.
 */
export function persistCommitted(s: SharedState, media: StreamMedia): void {
  const f64 = s.f64;
  const i32 = s.i32;
  const p = s.persisted;
  const c = s.committed;
  if (p >= c) return;
  const ranges: Range[] = [];
  let regions: number[] | undefined;
  let first = -1;
  let open: Range | undefined;
  for (let ts = p + 1; ts <= c; ts++) {
    const f = s.slotF(ts);
    const i = s.slotI(ts);
    const k = i32[i + 1];
    const at = f64[f + 1];
    const total = entryTotal((i32[i + 2] & ~PAD_BIT) >>> 0);
    if (first < 0) first = k;
    else if (k !== first && !(regions ??= [first]).includes(k)) {
      regions.push(k);
    }
    if (open !== undefined && open.offset + open.length === at) {
      open.length += total;
    } else {
      open = { offset: at, length: total };
      ranges.push(open);
    }
    i32[i] = RING_EMPTY;
  }
  for (const k of regions ?? [first]) {
    const at = s.offset(k) + (s.committedEnd(k) % s.size(k));
    let r = ranges[ranges.length - 1];
    if (r.offset + r.length !== at) {
      r = ranges.find((x) => x.offset + x.length === at) ??
        { offset: at, length: 0 };
      if (r.length === 0) ranges.push(r);
    }
    r.length += ENTRY_HEADER;
  }
  media.persistRanges(ranges);
  s.persisted = c;
  s.bump();
  if (media.traced) media.mark(`persisted ${c}`);
}
