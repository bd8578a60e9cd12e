// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * {@linkcode CpuMover}: the default mover. Work runs inline on the polling
 * thread and completes on the first poll.
 *
 * @module
 */
import { ClosedError, PmemError } from "../ffi/errors.ts";
import { check, native } from "../ffi/lib.ts";
import { Future, type FutureOptions, type Step } from "../future/future.ts";
import {
  type BatchEntry,
  checkBatch,
  type CheckedOp,
  checkOp,
  type Vdm,
  VdmFlags,
} from "./vdm.ts";

/**
 * Throw if a buffer of `op` no longer covers `[0, to)`: it was detached
 * (its mapping closed) after the operation was built. Checked before any
 * native code touches the buffers.
 */
export function assertAttached(op: CheckedOp, to: number): void {
  if (
    op.dst.byteLength < to || (op.src !== undefined && op.src.byteLength < to)
  ) {
    throw new PmemError(
      op.op,
      -200003,
      "a buffer was detached before the operation ran (its mapping closed)",
    );
  }
}

/**
 * Run `[from, to)` of a checked operation on this thread. Durable ops
 * finish with a flush that persists through the owning mapping.
 *
 * @throws {PmemError} when a buffer was detached (its mapping closed)
 */
export function executeOnCpu(op: CheckedOp, from = 0, to = op.length): void {
  const { dst, src, flags } = op;
  const n = to - from;
  if (n <= 0) return;
  assertAttached(op, to);
  const nt = (flags & VdmFlags.NO_CACHE_HINT) !== 0 ? 1 : 0;
  switch (op.op) {
    case "memcpy":
      if (nt) check(native.ap_cpu_copy(dst, from, src!, from, n, 1), "memcpy");
      else if (from === 0 && n === src!.byteLength) dst.set(src!);
      else dst.set(src!.subarray(from, to), from);
      break;
    case "memmove":
      // native memmove: views of different buffers may alias one mapping
      check(native.ap_cpu_copy(dst, from, src!, from, n, nt), "memmove");
      break;
    case "memset":
      dst.fill(op.value, from, to);
      break;
    case "flush":
      check(native.ap_cpu_flush(dst, from, n), "flush");
      return;
  }
  if (flags & VdmFlags.DURABLE) {
    check(native.ap_cpu_flush(dst, from, n), op.op);
  }
}

class CpuOp extends Future<void> {
  #ops: CheckedOp[] | undefined;
  #mover: CpuMover;

  constructor(mover: CpuMover, ops: CheckedOp[], options?: FutureOptions) {
    super(options);
    this.#mover = mover;
    this.#ops = ops;
  }

  protected step(): Step<void> {
    if (this.#mover.closed) throw new ClosedError("CpuMover", "poll");
    for (const op of this.#ops!) executeOnCpu(op);
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
export class CpuMover implements Vdm {
  #closed = false;

  /** "cpu". */
  get name(): string {
    return "cpu";
  }

  /** DURABLE | NO_CACHE_HINT. */
  get capabilities(): number {
    return VdmFlags.DURABLE | VdmFlags.NO_CACHE_HINT;
  }

  /** Whether every bit of `flags` is honoured. */
  supports(flags: number): boolean {
    return (flags & this.capabilities) === flags;
  }

  /** Whether {@linkcode CpuMover.close} has run. */
  get closed(): boolean {
    return this.#closed;
  }

  #op(
    op: "memcpy" | "memmove" | "memset" | "flush",
    dst: unknown,
    src: unknown,
    value: unknown,
    flags: unknown,
    options?: FutureOptions,
  ): Future<void> {
    if (this.#closed) throw new ClosedError("CpuMover", op);
    const checked = checkOp(
      "cpu",
      this.capabilities,
      op,
      dst,
      src,
      value,
      flags,
    );
    return new CpuOp(this, [checked], options);
  }

  /** Copy `src` into the start of `dst`. */
  memcpy(
    dst: Uint8Array,
    src: Uint8Array,
    flags = 0,
    options?: FutureOptions,
  ): Future<void> {
    return this.#op("memcpy", dst, src, 0, flags, options);
  }

  /** Copy between possibly overlapping ranges. */
  memmove(
    dst: Uint8Array,
    src: Uint8Array,
    flags = 0,
    options?: FutureOptions,
  ): Future<void> {
    return this.#op("memmove", dst, src, 0, flags, options);
  }

  /** Fill `dst` with `value`. */
  memset(
    dst: Uint8Array,
    value: number,
    flags = 0,
    options?: FutureOptions,
  ): Future<void> {
    return this.#op("memset", dst, undefined, value, flags, options);
  }

  /** Make `range` durable (write back its cache lines or msync its pages). */
  flush(range: Uint8Array, flags = 0, options?: FutureOptions): Future<void> {
    return this.#op("flush", range, undefined, 0, flags, options);
  }

  /** Run several operations in order as one future. */
  batch(entries: readonly BatchEntry[], options?: FutureOptions): Future<void> {
    if (this.#closed) throw new ClosedError("CpuMover", "batch");
    return new CpuOp(
      this,
      checkBatch("cpu", this.capabilities, entries),
      options,
    );
  }

  /** Idempotent; later operations throw `ClosedError`. */
  close(): void {
    this.#closed = true;
  }

  /** Same as {@linkcode CpuMover.close}. */
  [Symbol.dispose](): void {
    this.close();
  }
}
