// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Block workloads for the crash sweep of the view windows
 * (`window_sweep.ts`): a pool past the size Bun views whole
 * (`VIEW_WINDOWS.whole`, 64 MiB), so on Bun the store reaches it through
 * even windows of 4 MiB, and traced writes (synchronous, `writeAsync`
 * and `writeMany` through the mover) into data blocks that cross those
 * windows' ends: the store copies such a block in two pieces, in one
 * mover batch or with the CPU.
 *
 * The placement: 5000-byte blocks take 5120 bytes each, which does not
 * divide a window, so some blocks cross its end. With one lane a write
 * lands in the block the previous write freed (the lane's free block,
 * then the block the written LBA held), so once each crossing LBA was
 * written once (untraced) the traced writes of those LBAs rotate through
 * their own blocks and the lane's first free block: all but one of them
 * cross an end. Only those blocks and the pool's metadata (header, info
 * blocks, map, flog) are written while traced, so the tracers scan only
 * them.
 *
 * On Deno the same pool is seen whole (one buffer: V8 does not count
 * external memory), so the same workloads run without windows there.
 *
 * @module
 */
import { BTT_OFFSET, poolGeometry } from "../../blk/layout.ts";
import { pick } from "./random.ts";
import { crossesEnd, EVEN_END } from "./window_ends.ts";
import type { Driver, Workload } from "./workload.ts";

const MiB = 1 << 20;
/** The windowed pool: just past the 64 MiB Bun views whole. */
export const BLK_WINDOW_POOL = { size: 66 * MiB, blockSize: 5000 } as const;
/** How many of the blocks across a window's end the workloads write. */
const CROSSING_BLOCKS = 4;

const arena = poolGeometry(BLK_WINDOW_POOL.size, BLK_WINDOW_POOL.blockSize)
  .arenas[0];
/** File offset of the data area (the only arena's). */
const DATA = BTT_OFFSET + arena.offset + arena.dataOff;
/** Bytes a block takes on the media. */
const BLOCK = arena.internalLbaSize;
/** The end of the data area: the map, flog and backup info follow. */
const DATA_END = DATA + arena.internalNlba * BLOCK;
/** Lane 0's free block in a new pool (`flog.ts`: `externalNlba + i`). */
const FIRST_FREE = arena.externalNlba;

/** The file offset of data block `b`. */
function blockAt(b: number): number {
  return DATA + b * BLOCK;
}

/**
 * The first {@linkcode CROSSING_BLOCKS} data blocks (and so LBAs, as a new
 * pool maps each LBA to its own block) across an even window's end.
 */
export const CROSSING_LBAS: readonly number[] = (() => {
  const out: number[] = [];
  for (let end = EVEN_END; end < DATA_END; end += EVEN_END) {
    const b = Math.floor((end - DATA) / BLOCK);
    if (crossesEnd(blockAt(b), BLOCK) && b < arena.externalNlba) out.push(b);
  }
  if (out.length < CROSSING_BLOCKS) {
    throw new Error(`only ${out.length} blocks cross a window's end`);
  }
  return out.slice(0, CROSSING_BLOCKS);
})();

/**
 * What the traces store to: the metadata before the data area (pool
 * header, descriptor, info block), the crossing blocks and the lane's
 * first free block, and the map, flog and backup info after it.
 */
function scanCrossing(): { offset: number; length: number }[] {
  const blocks = [...CROSSING_LBAS, FIRST_FREE].sort((a, b) => a - b);
  return [
    { offset: 0, length: DATA },
    ...blocks.map((b) => ({ offset: blockAt(b), length: BLOCK })),
    { offset: DATA_END, length: BLK_WINDOW_POOL.size - DATA_END },
  ];
}

/** One crossing LBA. */
function anyCrossing(rand: () => number): number {
  return CROSSING_LBAS[pick(rand, CROSSING_LBAS.length)];
}

/** Each crossing LBA written once: the lane's free block is one of them. */
function prepareCrossing(d: Driver): void {
  for (const lba of CROSSING_LBAS) d.write(lba);
}

const COMMON = {
  blockSize: BLK_WINDOW_POOL.blockSize,
  poolSize: BLK_WINDOW_POOL.size,
  lanes: 1,
  lbas: CROSSING_LBAS,
  fromCreate: false,
  warmup: 0,
  scan: scanCrossing,
  prepare: prepareCrossing,
} as const;

/**
 * The workloads of the window sweep: one, so that each mover's trace
 * (a 66 MiB file to set up and scan: most of a trace's cost) runs every
 * kind of write.
 */
export const BLK_WINDOW_WORKLOADS: readonly Workload[] = [
  {
    ...COMMON,
    name: "windows",
    description:
      "write, writeAsync groups, writeMany, setZero and setError of 5000-byte blocks across window ends",
    run(d, rand, ops) {
      for (let i = 0; i < ops;) {
        const lba = anyCrossing(rand);
        const r = rand();
        if (r < 0.05) {
          d.zero(lba);
          i++;
        } else if (r < 0.1) {
          d.error(lba);
          i++;
        } else if (r < 0.35) {
          d.write(lba);
          i++;
        } else if (r < 0.6) {
          // one block, perhaps listed twice (its last entry counts): a
          // batch of distinct blocks needs a lane for each (it waits for
          // all of them), and the pool has one
          d.writeMany(rand() < 0.3 ? [lba, lba] : [lba]);
          i++;
        } else {
          const k = 2 + pick(rand, 4);
          d.writeAsync(Array.from({ length: k }, () => anyCrossing(rand)));
          i += k;
        }
      }
    },
  },
];
