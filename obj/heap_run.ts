// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * {@linkcode Run}: the volatile state of one run, a chunk of the heap
 * (`obj/heap.ts`) cut into blocks of one size class, and its reading from
 * the run's bitmap in the pool at open ({@linkcode loadRun}). Internal to
 * `obj/`.
 *
 * @module
 */
import type { CorruptPoolError } from "./errors.ts";
import { RUNS } from "./layout.ts";
import type { ObjMedia } from "./media.ts";

/** A run's volatile state. */
export class Run {
  readonly chunk: number;
  readonly cls: number;
  /** File offset of the chunk. */
  readonly base: number;
  /** Allocated blocks, bit per block (bits past the last block set). */
  readonly bits: Uint32Array;
  free: number;
  /** A word to search from. */
  cursor = 0;
  /** Whether it is in its class's list of runs with room. */
  listed = false;

  constructor(chunk: number, cls: number, base: number) {
    this.chunk = chunk;
    this.cls = cls;
    this.base = base;
    const { blocks, bitmapBytes } = RUNS[cls];
    this.bits = new Uint32Array(bitmapBytes / 4);
    for (let b = blocks; b < this.bits.length * 32; b++) {
      this.bits[b >>> 5] |= 1 << (b & 31);
    }
    this.free = blocks;
  }

  /** The file offset of block `b`'s header. */
  block(b: number): number {
    const r = RUNS[this.cls];
    return this.base + r.bitmapBytes + b * r.blockSize;
  }
}

/**
 * The run of class `cls` in chunk `k` (at file offset `base`), as its
 * bitmap in the pool says.
 *
 * @param bad makes the error that names the chunk's table entry
 * @throws {CorruptPoolError} for a bit set past the run's blocks
 */
export function loadRun(
  media: ObjMedia,
  k: number,
  cls: number,
  base: number,
  bad: (detail: string) => CorruptPoolError,
): Run {
  const run = new Run(k, cls, base);
  const bitmap = run.base;
  const { blocks } = RUNS[cls];
  for (let i = 0; i < run.bits.length; i++) {
    run.bits[i] |= media.getU32(bitmap + 4 * i);
  }
  for (let b = blocks; b < run.bits.length * 32; b++) {
    if (media.getU32(bitmap + 4 * (b >>> 5)) & (1 << (b & 31))) {
      throw bad(`bit ${b} is set, past the run's ${blocks} blocks`);
    }
  }
  let used = 0;
  for (let b = 0; b < blocks; b++) {
    if (run.bits[b >>> 5] & (1 << (b & 31))) used++;
  }
  run.free = blocks - used;
  return run;
}
