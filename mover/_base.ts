// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The part every mover shares: argument checks, the capability query and
 * the public operations, over two hooks a mover implements.
 *
 * @module
 */
import { ClosedError } from "../errors/mod.ts";
import { byteLengthOf } from "../ffi/validate.ts";
import {
  checkFutureOptions,
  type Future,
  type FutureOptions,
} from "../future/future.ts";
import {
  type BatchEntry,
  checkBatch,
  type CheckedOp,
  checkOp,
  type Vdm,
  type VdmOp,
} from "./vdm.ts";

/**
 * A {@linkcode Vdm} built from two hooks: `run` (one checked operation)
 * and `runBatch` (several). The base checks arguments against the
 * capabilities and throws `ClosedError` once closed; a custom mover only
 * builds futures.
 *
 * @example Usage
 * ```ts
 * import { BaseMover, type CheckedOp, CpuMover, type Future } from "@asyncpmem/asyncpmem";
 * import assert from "node:assert/strict";
 *
 * // a mover that counts operations and lets the CPU mover do them
 * class CountingMover extends BaseMover {
 *   count = 0;
 *   #inner = new CpuMover();
 *   constructor() {
 *     super("CountingMover", "counting", 0);
 *   }
 *   get closed(): boolean {
 *     return this.#inner.closed;
 *   }
 *   protected run(op: CheckedOp): Future<void> {
 *     this.count++;
 *     return op.op === "memset"
 *       ? this.#inner.memset(op.dst, op.value)
 *       : op.op === "flush"
 *       ? this.#inner.flush(op.dst)
 *       : this.#inner.memmove(op.dst, op.src!);
 *   }
 *   protected runBatch(ops: CheckedOp[]): Future<void> {
 *     return this.#inner.batch(ops.map((op) => ({ op: "memset" as const, dst: op.dst, value: op.value })));
 *   }
 *   close(): void {
 *     this.#inner.close();
 *   }
 * }
 * using mover = new CountingMover();
 * await mover.memset(new Uint8Array(8), 1);
 * assert.equal(mover.count, 1);
 * ```
 */
export abstract class BaseMover implements Vdm {
  #className: string;
  #name: string;
  #capabilities: number;

  /**
   * Set the names and capabilities a mover reports.
   *
   * @param className for errors ("ThreadMover")
   * @param name the short name ("threads")
   * @param capabilities the VdmFlags honoured
   */
  protected constructor(className: string, name: string, capabilities: number) {
    this.#className = className;
    this.#name = name;
    this.#capabilities = capabilities;
  }

  /** Start nothing: build the future of one checked operation. */
  protected abstract run(op: CheckedOp, options?: FutureOptions): Future<void>;

  /** Build the future of checked operations run as one unit. */
  protected abstract runBatch(
    ops: CheckedOp[],
    options?: FutureOptions,
  ): Future<void>;

  /**
   * Whether `run` and `runBatch` honour {@linkcode CheckedOp.dstOffset}.
   * When not (the default, so movers written before it stay correct),
   * the base hands them a view of each destination range instead, with
   * `dstOffset` 0.
   */
  protected get takesDstOffset(): boolean {
    return false;
  }

  /**
   * Whether `run` and `runBatch` honour {@linkcode CheckedOp.srcOffset}
   * (and a copy's `length` short of its source's end). When not (the
   * default), the base hands them a view of each source range instead.
   */
  protected get takesSrcOffset(): boolean {
    return false;
  }

  /** Whether {@linkcode BaseMover.close} has run. */
  abstract get closed(): boolean;

  /** Finish or fail in-flight work and release the mover. Idempotent. */
  abstract close(): void;

  /** A short name: "cpu", "threads". */
  get name(): string {
    return this.#name;
  }

  /** The {@linkcode VdmFlags} this mover honours. */
  get capabilities(): number {
    return this.#capabilities;
  }

  /** Whether every bit of `flags` is honoured (a bitwise test). */
  supports(flags: number): boolean {
    return (flags & this.capabilities) === flags;
  }

  #check(
    op: VdmOp,
    dst: unknown,
    src: unknown,
    value: unknown,
    flags: unknown,
  ): CheckedOp {
    if (this.closed) throw new ClosedError(this.#className, op);
    return checkOp(this.#name, this.capabilities, op, dst, src, value, flags);
  }

  /** Copy `src` into the start of `dst`. */
  memcpy(
    dst: Uint8Array,
    src: Uint8Array,
    flags = 0,
    options?: FutureOptions,
  ): Future<void> {
    const op = this.#check("memcpy", dst, src, 0, flags);
    return this.run(op, checkFutureOptions(options, "memcpy"));
  }

  /** Copy between possibly overlapping ranges. */
  memmove(
    dst: Uint8Array,
    src: Uint8Array,
    flags = 0,
    options?: FutureOptions,
  ): Future<void> {
    const op = this.#check("memmove", dst, src, 0, flags);
    return this.run(op, checkFutureOptions(options, "memmove"));
  }

  /** Fill `dst` with the byte `value`. */
  memset(
    dst: Uint8Array,
    value: number,
    flags = 0,
    options?: FutureOptions,
  ): Future<void> {
    const op = this.#check("memset", dst, undefined, value, flags);
    return this.run(op, checkFutureOptions(options, "memset"));
  }

  /**
   * Make `range` durable: write back its cache lines, or persist it
   * through its mapping (msync on page-granularity maps).
   */
  flush(range: Uint8Array, flags = 0, options?: FutureOptions): Future<void> {
    const op = this.#check("flush", range, undefined, 0, flags);
    return this.run(op, checkFutureOptions(options, "flush"));
  }

  /** Several operations as one unit; completes when all have. */
  batch(entries: readonly BatchEntry[], options?: FutureOptions): Future<void> {
    if (this.closed) throw new ClosedError(this.#className, "batch");
    const ops = checkBatch(this.#name, this.capabilities, entries);
    // (checked once here: a device mover splits a batch into parts, and
    // only the part or join that carries a signal would look at them)
    options = checkFutureOptions(options, "batch");
    if (!this.takesDstOffset) {
      for (const op of ops) {
        if (op.dstOffset === 0) continue;
        op.dst = op.dst.subarray(op.dstOffset, op.dstOffset + op.length);
        op.dstOffset = 0;
      }
    }
    if (!this.takesSrcOffset) {
      for (const op of ops) {
        const src = op.src;
        if (src === undefined) continue;
        if (op.srcOffset === 0 && op.length === byteLengthOf(src)) continue;
        op.src = src.subarray(op.srcOffset, op.srcOffset + op.length);
        op.srcOffset = 0;
      }
    }
    return this.runBatch(ops, options);
  }

  /** Same as `close()`. */
  [Symbol.dispose](): void {
    this.close();
  }
}
