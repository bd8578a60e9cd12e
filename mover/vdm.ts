// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The virtual data mover interface (miniasync's vdm): memcpy, memmove,
 * memset and flush as futures, plus batches and an honest capability query.
 *
 * @module
 */
import { ClosedError, NotSupportedError } from "../errors/mod.ts";
import {
  byteLengthOf,
  checkAttached,
  checkByte,
  checkBytes,
  checkSize,
  holds,
} from "../ffi/validate.ts";
import type { Future, FutureOptions } from "../future/future.ts";
import { ENOTSUP } from "../errors/errno.ts";

/**
 * Operation flags.
 *
 * @example Usage
 * ```ts
 * import { CpuMover, VdmFlags } from "@asyncpmem/asyncpmem";
 * import assert from "node:assert/strict";
 *
 * using mover = new CpuMover();
 * assert.ok(mover.supports(VdmFlags.DURABLE | VdmFlags.NO_CACHE_HINT));
 * ```
 */
export const VdmFlags = {
  /** The written range is in the persistence domain when the op completes. */
  DURABLE: 1,
  /** Do not leave the destination in the CPU cache (non-temporal writes). */
  NO_CACHE_HINT: 2,
} as const;

/** Every {@linkcode VdmFlags} bit. */
export const VDM_VALID_FLAGS = 3;

/** One entry of {@linkcode Vdm.batch}. */
export type BatchEntry =
  | {
    op: "memcpy" | "memmove";
    dst: Uint8Array;
    src: Uint8Array;
    /**
     * Where in `dst` the copy lands: a batch can address blocks of one
     * large view (a mapping) without a view per block. @default 0
     */
    dstOffset?: number;
    /**
     * Where in `src` the copy starts: a batch can copy blocks out of one
     * large view (a mapping) without a view per block. @default 0
     */
    srcOffset?: number;
    /** Bytes to copy. @default the rest of `src` from `srcOffset` */
    length?: number;
    flags?: number;
  }
  | { op: "memset"; dst: Uint8Array; value: number; flags?: number }
  | { op: "flush"; dst: Uint8Array; flags?: number };

/**
 * A data mover. Operations are lazy futures: nothing moves until they are
 * polled or awaited. A future keeps its buffers alive until it settles;
 * a mover whose work outlives the call that submitted it pins them too
 * (see `ThreadMover`). A buffer changed between the call and the work
 * fails the operation: detached (transferred) with a `TypeError`,
 * resized below the operation's range with a `RangeError`, a view of a
 * mapping closed since with a `ClosedError`; so do the stores' calls.
 */
export interface Vdm extends Disposable {
  /** A short name: "cpu", "threads", "dsa". */
  readonly name: string;
  /** The {@linkcode VdmFlags} this mover honours. */
  readonly capabilities: number;
  /** Whether every bit of `flags` is honoured (a bitwise test). */
  supports(flags: number): boolean;
  /** Copy `src` into the start of `dst`. */
  memcpy(
    dst: Uint8Array,
    src: Uint8Array,
    flags?: number,
    options?: FutureOptions,
  ): Future<void>;
  /** Like memcpy; the ranges may overlap. */
  memmove(
    dst: Uint8Array,
    src: Uint8Array,
    flags?: number,
    options?: FutureOptions,
  ): Future<void>;
  /** Fill `dst` with the byte `value`. */
  memset(
    dst: Uint8Array,
    value: number,
    flags?: number,
    options?: FutureOptions,
  ): Future<void>;
  /** Write `range` back to memory (durably, for mapped persistent memory). */
  flush(
    range: Uint8Array,
    flags?: number,
    options?: FutureOptions,
  ): Future<void>;
  /**
   * Several operations as one unit; completes when all have. The entries
   * run in no set order, and on some movers at the same time: entries
   * whose destinations overlap (or one's source another's destination)
   * leave an unspecified result.
   */
  batch(entries: readonly BatchEntry[], options?: FutureOptions): Future<void>;
  /** Whether {@linkcode Vdm.close} has run. */
  readonly closed: boolean;
  /** Finish or fail in-flight work, then release the mover. Idempotent. */
  close(): void;
}

/** The kind of an operation, for validation and messages. */
export type VdmOp = "memcpy" | "memmove" | "memset" | "flush";

/** A checked operation, shared by every mover. */
export interface CheckedOp {
  /** The operation. */
  op: VdmOp;
  /** The destination (or the range to flush). */
  dst: Uint8Array;
  /** Where in `dst` the operation starts (copies only; else 0). */
  dstOffset: number;
  /** The source of a copy. */
  src: Uint8Array | undefined;
  /** Where in `src` a copy starts (else 0). */
  srcOffset: number;
  /** The fill byte of a memset. */
  value: number;
  /** Bytes to move, fill or flush. */
  length: number;
  /** {@linkcode VdmFlags}. */
  flags: number;
}

/**
 * Check an operation's arguments against a mover's capabilities.
 *
 * @throws {TypeError} for buffers that are not Uint8Arrays, or detached
 *   ones (transferred, or a view of a closed mapping)
 * @throws {RangeError} for unknown flags or a source longer than `dst`
 * @throws {NotSupportedError} for flags the mover does not honour
 */
export function checkOp(
  mover: string,
  capabilities: number,
  op: VdmOp,
  dst: unknown,
  src: unknown,
  value: unknown,
  flags: unknown,
  dstOffset: unknown = 0,
  srcOffset: unknown = 0,
  length?: unknown,
): CheckedOp {
  const d = checkAttached(checkBytes(dst, "dst", op), "dst", op);
  const f = flags ?? 0;
  if (typeof f !== "number" || !Number.isInteger(f)) {
    throw new TypeError(`Cannot ${op}: flags must be an integer`);
  }
  // a range test, not `f & ~VDM_VALID_FLAGS`: `&` sees only the low 32
  // bits, so 2^32 + 1 passed it (and got NotSupportedError, flags 0x0);
  // every bit below VDM_VALID_FLAGS is a flag
  if (f < 0 || f > VDM_VALID_FLAGS) {
    throw new RangeError(`Cannot ${op}: unknown flags 0x${f.toString(16)}`);
  }
  if ((f & capabilities) !== f) {
    throw new NotSupportedError(
      op,
      -ENOTSUP,
      `the ${mover} mover does not support flags 0x${
        (f & ~capabilities).toString(16)
      }`,
    );
  }
  let s: Uint8Array | undefined;
  // the engine's lengths (see `byteLengthOf`), never the `byteLength`
  // property: a Uint8Array claiming 1 MiB over its 16 bytes had the
  // native copies read and write past it. At most one lookup per
  // operation (on JavaScriptCore one costs several property reads): a
  // copy's dst, and its src when a length is given, are measured by
  // their elements (see `holds`)
  let n = 0;
  let v = 0;
  let at = 0;
  let from = 0;
  if (op === "memcpy" || op === "memmove") {
    s = checkAttached(checkBytes(src, "src", op), "src", op);
    at = checkSize(dstOffset, "dstOffset", op);
    from = checkSize(srcOffset, "srcOffset", op);
    if (length === undefined) n = sourceRest(s, from, op);
    else {
      n = checkSize(length, "length", op);
      // a given length is checked by the elements (see `holds`)
      if (n > 0 ? !holds(s, from + n) : from > byteLengthOf(s)) {
        const rest = sourceRest(s, from, op); // throws for from past it
        throw new RangeError(
          `Cannot ${op}: ${n} bytes from ${from} do not fit the source ` +
            `(${from + rest} bytes)`,
        );
      }
    }
    if (n > 0 ? !holds(d, at + n) : at > byteLengthOf(d)) {
      throw new RangeError(
        `Cannot ${op}: source (${n} bytes) is longer than the ` +
          `destination (${byteLengthOf(d)} bytes${at ? ` from ${at}` : ""})`,
      );
    }
  } else {
    // a memset or flush covers its whole dst: offsets a batch entry
    // carried anyway were ignored, and a memset meant for a block of a
    // large view filled all of it
    if (dstOffset !== 0 || srcOffset !== 0 || length !== undefined) {
      throw new TypeError(
        `Cannot ${op}: it takes no dstOffset, srcOffset or length ` +
          "(pass a subarray of dst)",
      );
    }
    if (op === "memset") v = checkByte(value, "value", op);
    n = byteLengthOf(d);
  }
  return {
    op,
    dst: d,
    dstOffset: at,
    src: s,
    srcOffset: from,
    value: v,
    length: n,
    flags: f,
  };
}

/**
 * The bytes of `src` from `from` on, by the engine's length.
 *
 * @throws {RangeError} when `from` lies past its end
 */
function sourceRest(src: Uint8Array, from: number, op: VdmOp): number {
  const sn = byteLengthOf(src);
  if (from > sn) {
    throw new RangeError(
      `Cannot ${op}: srcOffset ${from} is beyond the source (${sn} bytes)`,
    );
  }
  return sn - from;
}

/** The operations a batch entry may name. */
const BATCH_OPS: ReadonlySet<string> = new Set([
  "memcpy",
  "memmove",
  "memset",
  "flush",
]);

/** Check a batch's entries (see {@linkcode checkOp}). */
export function checkBatch(
  mover: string,
  capabilities: number,
  entries: unknown,
): CheckedOp[] {
  if (!Array.isArray(entries)) {
    throw new TypeError("Cannot batch: entries must be an array");
  }
  // a loop, not entries.map(): a batch is checked per write of the block
  // store, and Bun does not inline map's callback
  const ops = new Array<CheckedOp>(entries.length);
  for (let i = 0; i < entries.length; i++) {
    const e: BatchEntry = entries[i];
    if (typeof e !== "object" || e === null) {
      throw new TypeError("Cannot batch: each entry must be an object");
    }
    // read once: a getter answering "memcpy" to the check and anything
    // else to checkOp got an operation no mover knows past it (a batch
    // that completed with nothing written, or a native call given an
    // undefined opcode)
    const op: unknown = e.op;
    if (typeof op !== "string" || !BATCH_OPS.has(op)) {
      // JSON.stringify throws on a bigint or a cyclic object: name only
      // a string op
      const name = typeof op === "string" ? JSON.stringify(op) : typeof op;
      throw new TypeError(`Cannot batch: unknown op ${name}`);
    }
    ops[i] = checkOp(
      mover,
      capabilities,
      op as VdmOp,
      e.dst,
      "src" in e ? e.src : undefined,
      "value" in e ? e.value : undefined,
      e.flags,
      "dstOffset" in e ? e.dstOffset : 0,
      "srcOffset" in e ? e.srcOffset : 0,
      "length" in e ? e.length : undefined,
    );
  }
  return ops;
}

/** The methods of {@linkcode Vdm}, each of which the stores or mappings call. */
const VDM_METHODS = [
  "supports",
  "memcpy",
  "memmove",
  "memset",
  "flush",
  "batch",
] as const;

/**
 * Throw a TypeError unless `mover`, a factory's `mover` option, is absent
 * (undefined or null: the default mover) or implements {@linkcode Vdm}:
 * before the store creates or maps anything. Every method is looked for
 * (one was: the stores asked for `batch`, a mapping for `memcpy`, and a
 * mover without the others failed at its first use, in the engine's
 * words); the message names the first one missing. `what` names the call ("create pool", "open log").
 * Internal (not exported by `mover/mod.ts`).
 *
 * @throws {ClosedError} for a closed mover
 */
export function checkMoverOption(
  mover: unknown,
  what: string,
): Vdm | undefined {
  // null is no mover, as undefined: the default one (as Mapping.map)
  if (mover === undefined || mover === null) return undefined;
  if (
    (typeof mover !== "object" && typeof mover !== "function") ||
    mover === null
  ) {
    throw new TypeError(`Cannot ${what}: mover must implement Vdm`);
  }
  for (const method of VDM_METHODS) {
    if (typeof (mover as Record<string, unknown>)[method] !== "function") {
      throw new TypeError(
        `Cannot ${what}: mover must implement Vdm (it has no ${method} method)`,
      );
    }
  }
  // a use after close: taken, it failed only at the store's first
  // asynchronous call (or, for a mapping, its first async copy)
  if ((mover as Vdm).closed === true) {
    throw new ClosedError("mover", what, "the mover is closed");
  }
  return mover as Vdm;
}
