// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Log-stream workloads for the crash sweep of the view windows: a stream
 * past the size Bun views whole (`VIEW_WINDOWS.whole`, 64 MiB), so on Bun
 * the store reaches it through even windows of 4 MiB, with small regions
 * placed across the ends of the first three (4, 8 and 12 MiB) and their
 * write positions prepared just short of those ends. The traced appends
 * (synchronous, reserved, asynchronous through the mover) then store
 * entries across a window's end: the store copies them in pieces, splits
 * a mover batch per window, views them through an odd window and CRCs
 * them piecewise on recovery. Only those regions and the stream's first
 * blocks are written while traced, so the tracer scans only them.
 *
 * On Deno the same stream is seen whole (one buffer: V8 does not count
 * external memory), so the same workloads run without windows there.
 *
 * @module
 */
import { LogStream, type Region } from "../../stream/mod.ts";
import { pick } from "./random.ts";
import { EVEN_END } from "./window_ends.ts";
import type {
  StreamDriver,
  StreamGeometry,
  StreamWorkload,
} from "./stream_workload.ts";

const MiB = 1 << 20;
/** The windowed stream: just past the 64 MiB Bun views whole. */
export const WINDOW_STREAM: StreamGeometry = {
  size: 66 * MiB,
  blockSize: 4096,
  regionSlots: 8,
  maxInFlight: 64,
};
/** The header, watermarks and region table: the first blocks. */
const META = 8192;
/** The straddling regions: the window's end in their middle. */
const STRADDLER = 8192;
/** The window ends the regions straddle. */
const ENDS = [EVEN_END, 2 * EVEN_END, 3 * EVEN_END];

/** The regions across a window's end (the pads are larger). */
function straddlers(d: StreamDriver): Region[] {
  return d.regions().filter((r) => r.size === STRADDLER);
}

/**
 * Pad regions and straddling ones, then entries until each straddler's
 * write position is a random 70 to 1600 bytes short of its window's end
 * (at the start of the region's second half): an entry is 928 bytes at
 * most, so the prepared ones stop short of it and the traced ones cross.
 */
function prepareStraddlers(d: StreamDriver): void {
  const rand = d.rand;
  let at = META;
  for (const end of ENDS) {
    const start = end - STRADDLER / 2;
    d.allocate(start - at);
    d.allocate(STRADDLER);
    at = start + STRADDLER;
  }
  for (const r of straddlers(d)) {
    const stop = STRADDLER / 2 - 1000 - pick(rand, 600);
    while (r.used < stop) d.append(r);
  }
}

/** The straddlers, the stream's first blocks: what the trace stores to. */
function scanStraddlers(path: string): { offset: number; length: number }[] {
  const ranges = [{ offset: 0, length: META }];
  for (const r of LogStream.inspect(path).regions) {
    if (r.size === STRADDLER) {
      ranges.push({ offset: r.offset, length: r.size });
    }
  }
  return ranges;
}

/** The workloads, in the order the window sweep uses them. */
export const STREAM_WINDOW_WORKLOADS: readonly StreamWorkload[] = [
  {
    name: "windows-sync",
    fromCreate: false,
    geometry: WINDOW_STREAM,
    scan: scanStraddlers,
    prepare: prepareStraddlers,
    run(d, rand, ops) {
      for (let i = 0; i < ops; i++) {
        const rs = straddlers(d);
        const r = rs[pick(rand, rs.length)];
        const x = rand();
        if (x < 0.55) d.append(r);
        else if (x < 0.9) d.reserve(r, rand() < 0.2);
        else d.truncate(r, rand());
      }
    },
  },
  {
    name: "windows-async",
    fromCreate: false,
    geometry: WINDOW_STREAM,
    scan: scanStraddlers,
    prepare: prepareStraddlers,
    run(d, rand, ops) {
      let done = 0;
      while (done < ops) {
        const n = 2 + pick(rand, 6);
        const x = rand();
        d.appendAsync(straddlers(d), n, {
          committed: x < 0.3,
          nudge: x > 0.8,
        });
        done += n;
        if (rand() < 0.1) {
          const rs = straddlers(d);
          d.truncate(rs[pick(rand, rs.length)], rand());
        }
      }
    },
  },
];
