// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The options and argument shapes of {@linkcode BlockPool}'s methods, and
 * their checks. Internal to `blk/` (the types are exported by `mod.ts`).
 *
 * @module
 */
import {
  byteLengthOf,
  checkAttached,
  isBytes,
  readOptions,
} from "../ffi/validate.ts";
import type { Vdm } from "../mover/vdm.ts";
import { describe } from "./open.ts";

// one copy of the engine's byteLength getter (see `byteLengthOf`),
// re-exported for pool.ts
export { byteLengthOf };

/**
 * Check an LBA: an integer in `[0, blockCount)`.
 *
 * @throws {TypeError} when `lba` is not a number
 * @throws {RangeError} when it is not an integer or out of range
 */
export function checkLba(lba: unknown, blockCount: number, op: string): number {
  if (typeof lba !== "number") {
    throw new TypeError(
      `Cannot ${op}: lba must be a number, got ${describe(lba)}`,
    );
  }
  if (!Number.isInteger(lba)) {
    throw new RangeError(
      `Cannot ${op}: lba must be an integer, got ${lba}`,
    );
  }
  if (lba < 0 || lba >= blockCount) {
    throw new RangeError(
      `Cannot ${op}: lba ${lba} is out of range [0, ${blockCount})`,
    );
  }
  return lba;
}

/**
 * Check where a read of one block copies to: absent, or a Uint8Array of
 * at least `size` bytes (the engine's length, see `byteLengthOf`).
 *
 * @throws {TypeError} when `into` is not a Uint8Array
 * @throws {RangeError} when it is too short
 */
export function checkInto(
  into: unknown,
  size: number,
  op: string,
): Uint8Array | undefined {
  if (into === undefined) return undefined;
  if (!isBytes(into)) {
    throw new TypeError(`Cannot ${op}: into must be a Uint8Array`);
  }
  if (byteLengthOf(into) < size) {
    throw new RangeError(
      `Cannot ${op}: into has ${
        byteLengthOf(into)
      } bytes, the block size is ${size}`,
    );
  }
  return into;
}

const TYPED_AT = Object.getPrototypeOf(Uint8Array.prototype).at as (
  this: ArrayLike<number>,
  index: number,
) => unknown;

/**
 * Whether a typed array's bytes are gone (its buffer detached, or resized
 * below it): `at` validates the array as the engine knows it and throws
 * then (an empty array that is whole answers undefined).
 */
export function goneTyped(view: ArrayLike<number>): boolean {
  try {
    TYPED_AT.call(view, 0);
    return false;
  } catch {
    return true;
  }
}

/** Whether `data` (a Uint8Array) is detached (see `checkAttached`). */
function isDetachedBytes(data: Uint8Array): boolean {
  try {
    checkAttached(data, "data", "write");
    return false;
  } catch {
    return true;
  }
}

/**
 * Check a block's data: a Uint8Array of exactly `size` bytes whose
 * `byteLength` tells the truth (the copies that follow read it).
 */
export function checkBlockData(
  data: unknown,
  size: number,
  op: string,
): Uint8Array {
  if (!isBytes(data)) {
    throw new TypeError(`Cannot ${op}: data must be a Uint8Array`);
  }
  const n = byteLengthOf(data);
  if (n !== size) {
    // a block has a fixed length: a detached array (0 bytes) is a wrong
    // length, as in write(), writeAsync() and writeMany() alike; said so,
    // since the caller's array had its bytes once
    const why = n === 0 && isDetachedBytes(data)
      ? " (detached: its buffer was transferred, or its mapping closed)"
      : "";
    throw new RangeError(
      `Cannot ${op}: data has ${n} bytes${why}, the block size is ${size}`,
    );
  }
  if (data.byteLength !== n) {
    throw new TypeError(
      `Cannot ${op}: data's byteLength property says ${data.byteLength}, it has ${n} bytes`,
    );
  }
  return data;
}

/**
 * Options of {@linkcode BlockPool.create}. An option not listed here is
 * refused, with a `TypeError` naming it and the option it likely stands for.
 */
export interface BlockPoolCreateOptions {
  /**
   * Bytes per block, 1 to 2^32-1 (libpmemblk's `bsize`). Blocks take
   * `roundup(max(blockSize, 512), 256)` bytes on the media.
   */
  blockSize: number;
  /**
   * Size of the new file; it must not exist yet. At least 16 785 408
   * (16 MiB + 8 KiB). With 0, an existing file is used at its current
   * size; its first 4 KiB must be zero.
   * @default 0
   */
  poolSize?: number;
  /** Permission bits of the new file. @default 0o644 */
  mode?: number;
  /**
   * The data mover that copies block data for `writeAsync`, `writeMany`
   * and `readAsync`. The pool does not close it. @default a shared CpuMover
   */
  mover?: Vdm;
}

/**
 * Options of {@linkcode BlockPool.open}. An option not listed here is refused,
 * with a `TypeError` naming it and the option it likely stands for.
 */
export interface BlockPoolOpenOptions {
  /**
   * The block size the caller expects; opening fails when the pool's
   * differs. 0 or absent accepts the pool's.
   * @default 0
   */
  blockSize?: number;
  /** See {@linkcode BlockPoolCreateOptions.mover}. */
  mover?: Vdm;
  /**
   * Open without writing the file: the pool is mapped privately, so what
   * recovery would finish is done in memory only (`check().repaired`
   * lists it), and every update throws a `PmemError` of code -30
   * (EROFS). For inspecting a pool. @default false
   */
  readOnly?: boolean;
}

/** Options of the pool's long reads ({@linkcode BlockPool.check}, {@linkcode BlockPool.info}). */
export interface ProgressOptions {
  /** Called now and then with the blocks done of the total. */
  onProgress?: (done: number, total: number) => void;
}

export function checkProgress(
  options: ProgressOptions,
  op: string,
): ((done: number, total: number) => void) | undefined {
  // unknown keys refused, the option read once (see `readOptions`)
  const f = readOptions(options, ["onProgress"], op).onProgress;
  if (f !== undefined && typeof f !== "function") {
    throw new TypeError(`Cannot ${op}: onProgress must be a function`);
  }
  return f;
}

/** One block of {@linkcode BlockPool.writeMany}. */
export interface BlockWrite {
  /** The block. */
  lba: number;
  /** Exactly `blockSize` bytes. */
  data: Uint8Array;
}

/**
 * Keep the last update of each LBA, in the order of those last updates
 * (a block listed twice gets its last entry).
 */
function lastOfEach(
  lbas: number[],
  data: Uint8Array[],
): [number[], Uint8Array[]] {
  const last = new Map<number, number>();
  lbas.forEach((lba, i) => last.set(lba, i));
  const keep = lbas.flatMap((lba, i) => last.get(lba) === i ? [i] : []);
  return [keep.map((i) => lbas[i]), keep.map((i) => data[i])];
}

/**
 * Check the entries of {@linkcode BlockPool.writeMany}: an array of
 * objects, each with a valid LBA and a block's data; returns their LBAs
 * and data, the last entry of each LBA only when one is listed twice.
 *
 * @throws {TypeError} / {RangeError} for a bad entry
 */
export function checkWrites(
  entries: readonly BlockWrite[],
  blockCount: number,
  blockSize: number,
): [number[], Uint8Array[]] {
  if (!Array.isArray(entries)) {
    throw new TypeError("Cannot writeMany: entries must be an array");
  }
  const n = entries.length;
  const lbas = new Array<number>(n);
  const data = new Array<Uint8Array>(n);
  const seen = new Set<number>();
  for (let i = 0; i < n; i++) {
    const e = entries[i];
    if (typeof e !== "object" || e === null) {
      throw new TypeError("Cannot writeMany: each entry must be an object");
    }
    lbas[i] = checkLba(e.lba, blockCount, "writeMany");
    data[i] = checkBlockData(e.data, blockSize, "writeMany");
    seen.add(lbas[i]);
  }
  return seen.size === n ? [lbas, data] : lastOfEach(lbas, data);
}
