// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * {@linkcode CpuMover}: the default mover. Work runs inline on the polling
 * thread and completes on the first poll.
 *
 * @module
 */
import { ClosedError } from "../errors/mod.ts";
import { check, native } from "../ffi/lib.ts";
import { checkStillAttached } from "../ffi/still_attached.ts";
import { byteLengthOf, holds, readOptions } from "../ffi/validate.ts";
import { Future, type FutureOptions, type Step } from "../future/future.ts";
import { BaseMover } from "./_base.ts";
import { type CheckedOp, VdmFlags } from "./vdm.ts";

/**
 * Throw if a buffer of `op` no longer covers `[0, to)`: it was detached
 * or, being resizable, shrunk after the operation was built. Checked
 * before any native code touches the buffers.
 *
 * @throws {TypeError} when a buffer was detached (transferred): the
 *   caller's error, as at the call
 * @throws {ClosedError} when a buffer is a view of a mapping closed since
 *   the call
 * @throws {RangeError} when a buffer shrank (resized): as every store
 *   words an array resized after its call (nothing closed)
 */
export function assertAttached(op: CheckedOp, to: number): void {
  // the elements, not a `byteLength` property (which may answer
  // anything, and change its answer after the check): a typed array's
  // elements answer from its storage alone (see `holds`)
  const dstShrank = !covers(op.dst, op.dstOffset + to);
  if (
    dstShrank || (op.src !== undefined && !covers(op.src, op.srcOffset + to))
  ) {
    checkStillAttached(op.dst, "dst", op.op);
    if (op.src !== undefined) checkStillAttached(op.src, "src", op.op);
    throw new RangeError(
      `Cannot ${op.op}: ${
        dstShrank ? "dst" : "src"
      } shrank before the operation ran (its buffer was resized)`,
    );
  }
}

/** Whether `bytes` has at least `end` bytes (trivially for 0). */
function covers(bytes: Uint8Array, end: number): boolean {
  return end === 0 || holds(bytes, end);
}

/**
 * Run `[from, to)` of a checked operation on this thread. Durable ops
 * finish with a flush that persists through the owning mapping.
 *
 * @throws {TypeError} when a buffer was detached (transferred)
 * @throws {ClosedError} when a buffer's mapping closed
 * @throws {RangeError} when a buffer shrank (resized)
 */
export function executeOnCpu(op: CheckedOp, from = 0, to = op.length): void {
  const { dst, src, flags, dstOffset, srcOffset } = op;
  if (
    flags === 0 && from === 0 && op.op === "memcpy" && src !== undefined &&
    srcOffset === 0 && to !== 0 && holds(src, to) && src[to] === undefined &&
    holds(dst, dstOffset + to)
  ) {
    // the common case, both buffers attached (`to` bytes of src exactly,
    // room for them in dst, by their elements): one check each
    dst.set(src, dstOffset);
    return;
  }
  const n = to - from;
  if (n <= 0) return;
  assertAttached(op, to);
  const at = dstOffset + from;
  const nt = (flags & VdmFlags.NO_CACHE_HINT) !== 0 ? 1 : 0;
  switch (op.op) {
    case "memcpy":
      if (nt || srcOffset !== 0) {
        // natively: no view of the source range to build (dear on Bun
        // over a mapping's large buffer)
        check(
          native.ap_cpu_copy(
            dst,
            byteLengthOf(dst),
            at,
            src!,
            byteLengthOf(src!),
            srcOffset + from,
            n,
            nt,
          ),
          "memcpy",
        );
      } else if (from === 0 && n === byteLengthOf(src!)) dst.set(src!, at);
      else dst.set(src!.subarray(from, to), at);
      break;
    case "memmove":
      // native memmove: views of different buffers may alias one mapping
      check(
        native.ap_cpu_copy(
          dst,
          byteLengthOf(dst),
          at,
          src!,
          byteLengthOf(src!),
          srcOffset + from,
          n,
          nt,
        ),
        "memmove",
      );
      break;
    case "memset":
      // natively when asked not to cache the destination: streaming
      // stores, as the copies take (fill() writes through the cache)
      if (nt) {
        check(
          native.ap_cpu_fill(dst, byteLengthOf(dst), at, n, op.value, 1),
          "memset",
        );
      } else dst.fill(op.value, at, at + n);
      break;
    case "flush":
      check(native.ap_cpu_flush(dst, byteLengthOf(dst), at, n), "flush");
      return;
  }
  if (flags & VdmFlags.DURABLE) {
    check(native.ap_cpu_flush(dst, byteLengthOf(dst), at, n), op.op);
  }
}

/** What an inline operation checks before it runs. */
interface MoverState {
  readonly closed: boolean;
}

/**
 * Operations run inline on the polling thread, complete on their first
 * poll. Internal: CpuMover's operations, and a ThreadMover's small ones.
 */
export class CpuOp extends Future<void> {
  #ops: CheckedOp | CheckedOp[] | undefined;
  #mover: MoverState;
  #name: string;

  /**
   * @param mover whose `closed` fails the operation when set
   * @param name the mover's class name, for errors
   * @param ops one operation, or several run in order
   */
  constructor(
    mover: MoverState,
    name: string,
    ops: CheckedOp | CheckedOp[],
    options?: FutureOptions,
  ) {
    super(options);
    this.#mover = mover;
    this.#name = name;
    this.#ops = ops;
  }

  protected step(): Step<void> {
    if (this.#mover.closed) throw new ClosedError(this.#name, "poll");
    const ops = this.#ops!;
    if (Array.isArray(ops)) { for (const op of ops) executeOnCpu(op); }
    else executeOnCpu(ops);
  }

  protected override settle(): void {
    this.#ops = undefined;
  }
}

/**
 * The in-thread mover: every operation completes on its first poll.
 * Durable operations persist through the mapping their buffer lies in.
 *
 * @example Usage
 * ```ts
 * import { CpuMover, wait } from "@asyncpmem/asyncpmem";
 * import assert from "node:assert/strict";
 *
 * using mover = new CpuMover();
 * const dst = new Uint8Array(4);
 * const f = mover.memcpy(dst, new Uint8Array([1, 2, 3, 4]));
 * assert.equal(f.state, "idle"); // lazy
 * wait(f);
 * assert.deepEqual([...dst], [1, 2, 3, 4]);
 * ```
 */
export class CpuMover extends BaseMover {
  #closed = false;

  /**
   * Create the mover (it holds no native resources). It takes no
   * options: an options object with a key (`{ threads: 4 }`, meant for a
   * `ThreadMover`) is a TypeError naming it.
   */
  constructor() {
    // JavaScript callers can pass what the signature does not take; it
    // was ignored, and the in-thread mover made where another was meant
    if (arguments.length > 0 && arguments[0] !== undefined) {
      readOptions(arguments[0] as object, [], "create CpuMover");
    }
    super("CpuMover", "cpu", VdmFlags.DURABLE | VdmFlags.NO_CACHE_HINT);
  }

  /** Its operations address `dst` by `dstOffset` themselves. */
  protected override get takesDstOffset(): boolean {
    return true;
  }

  /** And `src` by `srcOffset`. */
  protected override get takesSrcOffset(): boolean {
    return true;
  }

  /** Whether {@linkcode CpuMover.close} has run. */
  get closed(): boolean {
    return this.#closed;
  }

  /** The inline future of one checked operation. */
  protected run(op: CheckedOp, options?: FutureOptions): Future<void> {
    // as the public methods: at the call, not at the future's first poll
    // (a subclass calls it directly)
    if (this.#closed) throw new ClosedError("CpuMover", op.op);
    return new CpuOp(this, "CpuMover", op, options);
  }

  /** The inline future of several checked operations, run in order. */
  protected runBatch(ops: CheckedOp[], options?: FutureOptions): Future<void> {
    if (this.#closed) throw new ClosedError("CpuMover", "batch");
    return new CpuOp(this, "CpuMover", ops, options);
  }

  /** Idempotent; later operations throw `ClosedError`. */
  close(): void {
    this.#closed = true;
  }
}
