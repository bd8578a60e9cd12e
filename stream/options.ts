// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The options of {@linkcode LogStream}'s constructors and calls, and the
 * checks of its arguments (a `TypeError` or `RangeError` before anything
 * is touched).
 *
 * @module
 */
import {
  bufferOf,
  checkMode,
  checkOpenArgs,
  notSize,
  readOptions,
} from "../ffi/validate.ts";
import type { FutureOptions } from "../future/future.ts";
import { ClosedError } from "../errors/mod.ts";
import { detachedError } from "../ffi/still_attached.ts";
import { checkMoverOption, type Vdm } from "../mover/vdm.ts";
import type { Level } from "./core.ts";
import type { FollowOptions } from "./iterate.ts";
import {
  alignUp,
  MAX_BLOCK_SIZE,
  MAX_SLOTS,
  MIN_BLOCK_SIZE,
} from "./layout.ts";

/**
 * Options of {@linkcode LogStream.create}. An option not listed here is
 * refused, with a `TypeError` naming it and the option it likely stands for.
 */
export interface LogStreamCreateOptions {
  /**
   * Bytes of the new file (header, region table and regions): a multiple
   * of 4096, with room for the header, the table and one block (else a
   * `RangeError` says the least size of the geometry).
   */
  size: number;
  /**
   * Region alignment and size unit: a power of two from 64 to 2^30.
   * @default 4096
   */
  blockSize?: number;
  /** Regions at most (slots of the region table), 1 to 65536. @default 64 */
  regionSlots?: number;
  /**
   * Timestamps reserved and not yet persisted at most (a power of two
   * from 2 to 2^20); an append beyond it waits for earlier ones.
   * @default 1024
   */
  maxInFlight?: number;
  /** Permission bits of the new file. @default 0o644 */
  mode?: number;
  /**
   * The data mover of `appendAsync` (its copies into the mapping). The
   * stream does not close it. @default a shared CpuMover
   */
  mover?: Vdm;
}

/**
 * Options of {@linkcode LogStream.open}. An option not listed here is refused,
 * with a `TypeError` naming it and the option it likely stands for.
 */
export interface LogStreamOpenOptions {
  /** The size the caller expects; the open fails if it differs. */
  size?: number;
  /** The block size the caller expects; the open fails if it differs. */
  blockSize?: number;
  /** See {@linkcode LogStreamCreateOptions.mover}. */
  mover?: Vdm;
}

/** Options of {@linkcode LogStream.appendAsync}. */
export interface AppendOptions extends FutureOptions {
  /**
   * When the future resolves: "persisted" (durable) or "committed"
   * (visible; it becomes durable with a later persist: a sync append,
   * `waitPersisted`, a persisted append, or close). @default "persisted"
   */
  level?: Level;
}

/** Checked create options: the geometry and the file mode. */
export interface CreateSettings {
  /** Bytes of the file. */
  size: number;
  /** Region alignment. */
  blockSize: number;
  /** Region table slots. */
  regionSlots: number;
  /** Timestamps in flight at most. */
  maxInFlight: number;
  /** Permission bits. */
  mode: number;
  /** The mover, as checked. */
  mover?: Vdm;
}

/**
 * Check {@linkcode LogStream.create}'s arguments.
 *
 * @throws {TypeError} / {RangeError} for a bad path or option
 */
export function checkCreateOptions(
  path: unknown,
  options: LogStreamCreateOptions,
  op: string,
): CreateSettings {
  options = checkOpenArgs(
    path,
    options,
    op,
    "stream",
    [
      "size",
      "blockSize",
      "regionSlots",
      "maxInFlight",
      "mode",
      "mover",
    ],
    { poolSize: "size" },
    ["size"],
  ) as LogStreamCreateOptions;
  // every message names what is created: "Cannot create stream: ..."
  const what = `${op} stream`;
  const blockSize = checkSize(options.blockSize ?? 4096, "blockSize", what);
  if (
    blockSize < MIN_BLOCK_SIZE || blockSize > MAX_BLOCK_SIZE ||
    (blockSize & (blockSize - 1)) !== 0
  ) {
    throw new RangeError(
      `Cannot ${what}: blockSize must be a power of two in [${MIN_BLOCK_SIZE}, ${MAX_BLOCK_SIZE}], got ${blockSize}`,
    );
  }
  const regionSlots = checkInt(
    options.regionSlots ?? 64,
    "regionSlots",
    what,
  );
  if (regionSlots < 1 || regionSlots > MAX_SLOTS) {
    throw new RangeError(
      `Cannot ${what}: regionSlots must be in [1, ${MAX_SLOTS}], got ${regionSlots}`,
    );
  }
  const maxInFlight = checkInt(
    options.maxInFlight ?? 1024,
    "maxInFlight",
    what,
  );
  if (
    maxInFlight < 2 || maxInFlight > 1 << 20 ||
    (maxInFlight & (maxInFlight - 1)) !== 0
  ) {
    throw new RangeError(
      `Cannot ${what}: maxInFlight must be a power of two in [2, 2^20], got ${maxInFlight}`,
    );
  }
  const size = checkSize(options.size, "size", what);
  const least = alignUp(4096 + regionSlots * 64, blockSize) + blockSize;
  if (size < least) {
    throw new RangeError(
      `Cannot ${what}: size must be at least ${least} for this geometry, got ${size}`,
    );
  }
  if (size % 4096 !== 0) {
    // a mapping covers whole pages; a stream maps all of its file
    throw new RangeError(
      `Cannot ${what}: size must be a multiple of 4096, got ${size}`,
    );
  }
  const mode = checkMode(options.mode, what);
  const mover = options.mover;
  checkMover(mover, op);
  return { size, blockSize, regionSlots, maxInFlight, mode, mover };
}

/**
 * Check {@linkcode LogStream.open}'s arguments; the geometry asked for.
 *
 * @throws {TypeError} / {RangeError} for a bad path or option
 */
export function checkOpenOptions(
  path: unknown,
  options: LogStreamOpenOptions,
  op: string,
): { size?: number; blockSize?: number; mover?: Vdm } {
  options = checkOpenArgs(path, options, op, "stream", [
    "size",
    "blockSize",
    "mover",
  ], { poolSize: "size" });
  const what = `${op} stream`;
  const size = options.size === undefined
    ? undefined
    : checkSize(options.size, "size", what);
  const blockSize = options.blockSize === undefined
    ? undefined
    : checkSize(options.blockSize, "blockSize", what);
  const mover = options.mover;
  checkMover(mover, op);
  return { size, blockSize, mover };
}

/** `value` as a number, or a TypeError naming what it is instead. */
function checkNumber(value: unknown, name: string, op: string): number {
  if (typeof value !== "number") {
    throw new TypeError(
      `Cannot ${op}: ${name} must be a number, got ${
        value === null ? "null" : typeof value
      }`,
    );
  }
  return value;
}

/** A non-negative safe integer, or a TypeError / RangeError. */
export function checkInt(value: unknown, name: string, op: string): number {
  const n = checkNumber(value, name, op);
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new RangeError(`Cannot ${op}: ${name} ${notSize(n)}, got ${n}`);
  }
  return n;
}

/**
 * A size: a positive safe integer, or a TypeError / RangeError. Every
 * size of the stream is refused with the same words, zero and negative
 * alike.
 */
export function checkSize(value: unknown, name: string, op: string): number {
  const n = checkNumber(value, name, op);
  if (!Number.isSafeInteger(n) || n < 1) {
    const why = Number.isInteger(n) && n > 0
      ? notSize(n)
      : "must be a positive integer";
    throw new RangeError(`Cannot ${op}: ${name} ${why}, got ${n}`);
  }
  return n;
}

/** Throw unless `mover` is absent or a Vdm. */
export function checkMover(
  mover: unknown,
  op: string,
  what = "stream",
): void {
  checkMoverOption(mover, `${op} ${what}`);
}

const AT = Uint8Array.prototype.at;

/**
 * Whether `data`'s bytes are gone: its buffer was detached (transferred),
 * or shrunk (`resize`) below a fixed-length view of it. Either reads as
 * empty, so an empty append would stand for data never written. Asked of
 * empty data only: `at` validates the array as the engine knows it (a
 * `buffer` getter of a subclass could hide a detached one) and throws
 * for both.
 */
export function isDetached(data: Uint8Array): boolean {
  try {
    AT.call(data, 0);
    return false;
  } catch {
    return true;
  }
}

/** The error of data whose bytes are gone ({@linkcode isDetached}). */
export function detachedData(op: string, data?: Uint8Array): TypeError {
  const why = data === undefined ||
      (bufferOf(data) as { detached?: boolean }).detached === true
    ? "data's buffer is detached (transferred)"
    : "data lies past the end of its buffer, which was resized";
  return new TypeError(`Cannot ${op}: ${why}; nothing was written`);
}

/**
 * The error of an asynchronous append's data whose bytes went between the
 * call and its copy: a view of a mapping closed meanwhile is a
 * `ClosedError`, as for every other store (README), not the caller's
 * transfer that {@linkcode detachedData} describes.
 */
export function goneData(
  op: string,
  data: Uint8Array,
): TypeError | ClosedError {
  const e = detachedError(data, "data", op);
  return e instanceof ClosedError ? e : detachedData(op, data);
}

/**
 * Check {@linkcode LogStream.follow}'s options (a follower with a level
 * it does not know, or a signal it cannot listen to, would fail later,
 * inside the iteration, or silently follow the wrong level); returns them
 * as read, once each.
 */
export function checkFollowOptions(
  options: FollowOptions,
  op: string,
): FollowOptions {
  // unknown keys refused, each option read once (see `readOptions`)
  const read = readOptions(options, ["from", "level", "signal"], op);
  const { from, level, signal } = read;
  if (from !== undefined) checkInt(from, "from", op);
  if (level !== undefined && level !== "committed" && level !== "persisted") {
    throw new TypeError(
      `Cannot ${op}: level must be "committed" or "persisted"`,
    );
  }
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new TypeError(`Cannot ${op}: signal must be an AbortSignal`);
  }
  return read;
}
