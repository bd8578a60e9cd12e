// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * {@linkcode DeviceMover}: what the movers over a
 * {@linkcode CompletionDevice} share -- the software device
 * ({@linkcode ThreadMover}) and a DSA work queue ({@linkcode DsaMover}).
 * Small operations run inline; the rest become descriptors, batches of
 * them where the device takes BATCH.
 *
 * @module
 */
import { ClosedError } from "../errors/mod.ts";
import { IN_WORKER, isNativeBuffer } from "../ffi/lib.ts";
import { bufferOf } from "../ffi/validate.ts";
import { all, fromStep, map } from "../future/combinators.ts";
import {
  type Future,
  type FutureOptions,
  NOT_STARTED,
  PENDING,
  type PollContext,
} from "../future/future.ts";
import { BaseMover } from "./_base.ts";
import { CompletionDevice, type DeviceInfo } from "./_device.ts";
import { DeviceBatch } from "./_device_batch.ts";
import { DeviceOp } from "./_device_op.ts";
import { type BatchStart, overlapOnCpu } from "./_device_submit.ts";
import { CpuOp } from "./cpu.ts";
import { SplitBatch } from "./_split_batch.ts";
import type { CheckedOp } from "./vdm.ts";

let deviceOf: (mover: DeviceMover) => CompletionDevice;
let thresholdOf: (mover: DeviceMover) => number;

/**
 * Whether a buffer of `op` lies in a resizable (non-shared) ArrayBuffer.
 * Such an operation runs inline: `resize()` to a smaller length releases
 * the memory past it at once (V8 and JavaScriptCore decommit those
 * pages), and an engine writing there after the submitting call returned
 * crashed the process with SIGSEGV. Inline, each range is checked against
 * the buffer's length right before it is copied. A growable
 * SharedArrayBuffer never shrinks, and reading `.buffer` here is what
 * `pin` does next anyway.
 */
function shrinkable(op: CheckedOp): boolean {
  // the engine's getter (see `bufferOf`): a `buffer` property that named
  // another, fixed buffer sent a resizable one to the workers
  return (bufferOf(op.dst) as ArrayBuffer).resizable === true ||
    (op.src !== undefined &&
      (bufferOf(op.src) as ArrayBuffer).resizable === true);
}

/**
 * Whether a buffer of `op` is memory of this Worker's heap (in a Worker:
 * anything but a view of native memory such as a mapping). Such an
 * operation runs inline: when the Worker ends (`terminate()`, its own
 * `close()`), the runtime frees its heap at once, and nothing tells the
 * native side before its thread ends, so an engine still copying into or
 * out of those arrays wrote to freed memory (SIGSEGV on Deno, measured
 * with 64 MiB arrays). A SharedArrayBuffer counts as the Worker's too: it
 * may be the last holder. In the main thread the heap lasts as long as
 * the process.
 */
function perishable(op: CheckedOp): boolean {
  return IN_WORKER &&
    (!isNativeBuffer(bufferOf(op.dst)) ||
      (op.src !== undefined && !isNativeBuffer(bufferOf(op.src))));
}

/** Whether `op` must run inline (see `shrinkable` and `perishable`). */
function mustRunInline(op: CheckedOp): boolean {
  return shrinkable(op) || perishable(op);
}

function anyMustRunInline(ops: CheckedOp[]): boolean {
  for (let i = 0; i < ops.length; i++) if (mustRunInline(ops[i])) return true;
  return false;
}

/**
 * One future over the parts of an operation, with the caller's signal on
 * it alone: it aborts the whole while no part has started. Each part used
 * to carry the signal itself, so an abort once some parts had run failed
 * the started batch with the abort's reason, half of it written (a batch
 * waiting for records: 2 of 8 copies made, and an AbortError).
 */
function joined(parts: Future<void>[], options?: FutureOptions): Future<void> {
  const whole = all(parts);
  if (options?.signal === undefined) return map(whole, () => undefined);
  return fromStep((ctx) => {
    const state = whole.poll(ctx);
    if (state === "complete") return;
    if (state === "failed") throw whole.error;
    return state === "idle" ? NOT_STARTED : PENDING;
  }, options);
}

/**
 * The device behind a mover (for the testing entry point's fault
 * injection and counters). Internal.
 *
 * @throws {TypeError} when `mover` is not a device mover
 */
export function moverDevice(mover: unknown, what: string): CompletionDevice {
  if (!(mover instanceof DeviceMover)) {
    throw new TypeError(`Cannot reach the device: mover must be a ${what}`);
  }
  return deviceOf(mover);
}

/**
 * How many times its inline threshold a batch that its poller would only
 * wait for may be and still run inline, all of it (see `runBatch`): the
 * hand-off to the engines costs a wake-up on each side, and the poller
 * sleeps meanwhile. On this 2-vCPU VM (Deno, 2026-12-07), a batch polled
 * alone took, split with 2 engines against inline: 256 KiB 62-107 us
 * against 9-11, 1 MiB 126-337 against 33-45, 4 MiB 328-477 against
 * 116-203, 16 MiB 1.2-4.3 ms against 0.8-1.7 (members of 4 KiB, 64 KiB
 * and 1 MiB alike); `writeMany` of 256 blocks of 4 KiB (groups of 64:
 * 256 KiB batches) wrote a block in 2.0-2.2 us split, 1.04 inline.
 * Where a hand-off is cheap and memory bandwidth grows with the cores,
 * very large batches still gain from the engines.
 */
const ALONE_INLINE_FACTOR = 64;

/**
 * The size below which a device mover runs an operation or a batch on
 * the polling thread (its `inlineThreshold`). Internal: see `runsInline`.
 */
export function inlineThresholdOf(mover: DeviceMover): number {
  return thresholdOf(mover);
}

/**
 * A mover whose operations a DSA-style device executes -- the software
 * device of a {@linkcode ThreadMover} or the work queue of a
 * {@linkcode DsaMover}: operations below `inlineThreshold` bytes run on
 * the polling thread, larger ones become descriptors (in chunks of the
 * device's maximum transfer), and a batch becomes BATCH descriptors of up
 * to the device's maxBatch members when the device takes them. Not
 * constructed directly.
 *
 * @example Usage
 * ```ts
 * import { DeviceMover, ThreadMover } from "@asyncpmem/asyncpmem/mover";
 * import assert from "node:assert/strict";
 *
 * using mover = new ThreadMover({ threads: 1 });
 * assert.ok(mover instanceof DeviceMover);
 * assert.equal(mover.info.submission, "ring"); // the software device
 * ```
 */
export abstract class DeviceMover extends BaseMover {
  #device: CompletionDevice;
  #inlineThreshold: number;
  #className: string;

  /**
   * Take over a device created by the subclass.
   *
   * @param className for errors ("ThreadMover")
   * @param name the short name ("threads")
   * @param capabilities the VdmFlags honoured
   * @param device the device, already created
   * @param inlineThreshold operations below it run inline
   */
  protected constructor(
    className: string,
    name: string,
    capabilities: number,
    device: CompletionDevice,
    inlineThreshold: number,
  ) {
    super(className, name, capabilities);
    // the constructors are private or protected to TypeScript only: from
    // JavaScript `new DsaMover()` made a mover without a device, which a
    // mapping took for a Vdm and whose every use, close() included, threw
    // the engine's TypeError about `closed` of undefined
    if (!(device instanceof CompletionDevice)) {
      throw new TypeError(
        `Cannot create ${
          typeof className === "string" ? className : "DeviceMover"
        }: a device mover comes from new ThreadMover(), ` +
          "DsaMover.open() or DsaMover.openOrFallback()",
      );
    }
    this.#className = className;
    this.#device = device;
    this.#inlineThreshold = inlineThreshold;
  }

  static {
    deviceOf = (mover) => mover.#device;
    thresholdOf = (mover) => mover.#inlineThreshold;
  }

  /** The device's reported configuration (DSA GENCAP, limits). */
  get info(): DeviceInfo {
    return this.#device.info;
  }

  /** Its operations address `dst` by `dstOffset` themselves. */
  protected override get takesDstOffset(): boolean {
    return true;
  }

  /** And `src` by `srcOffset`. */
  protected override get takesSrcOffset(): boolean {
    return true;
  }

  /**
   * Whether a large batch is split at its first poll between the engines
   * and the polling thread (see `runBatch`). The software device's engines
   * share the CPUs with the poller, and its idle engines are known; a DSA
   * queue's are not, so it takes the whole batch.
   */
  protected get sharesWithPoller(): boolean {
    return false;
  }

  /** Whether {@linkcode DeviceMover.close} has run. */
  get closed(): boolean {
    return this.#device.closed;
  }

  /**
   * One operation: inline below the threshold or over a resizable
   * buffer or over memory of this Worker's heap (see `mustRunInline`),
   * else a descriptor.
   */
  protected run(op: CheckedOp, options?: FutureOptions): Future<void> {
    // as the public methods: at the call, not at the future's first poll
    // (a subclass calls it directly)
    if (this.closed) throw new ClosedError(this.#className, op.op);
    if (op.length < this.#inlineThreshold || mustRunInline(op)) {
      return new CpuOp(this, this.#className, op, options);
    }
    return new DeviceOp(this.#device, op, options);
  }

  /**
   * Several operations, inline when they are small in all; else as BATCH
   * descriptors (up to the device's maxBatch members each); completes
   * when all members have. Where the mover shares the CPUs with its
   * engines (`sharesWithPoller`), a large batch is split at its first
   * poll by what is waiting: with every engine busy, all inline (queued
   * behind them it would only wait); with other futures waiting on the
   * poller, all to the engines (the poller goes on to drive those);
   * otherwise, below {@linkcode ALONE_INLINE_FACTOR} times the inline
   * threshold, all inline; above, a share for each idle engine and one
   * for the polling thread, copied inline meanwhile (it would only
   * wait). Measured on the
   * 2-CPU VM: `writeMany` of 256 × 4 KiB blocks ran at 1.0× libpmemblk's
   * writes when all went to the engines while the writer waited. Empty
   * members complete at once: DSA's behaviour for a zero-length transfer
   * is unverified, so none is submitted.
   */
  protected runBatch(ops: CheckedOp[], options?: FutureOptions): Future<void> {
    if (this.closed) throw new ClosedError(this.#className, "batch");
    const bytes = ops.reduce((n, op) => n + op.length, 0);
    const inline = bytes < this.#inlineThreshold || anyMustRunInline(ops);
    if (ops.length <= 1 || inline) return this.#group(ops, inline, options);
    if (this.sharesWithPoller && this.#inlineThreshold > 0) {
      return new SplitBatch(
        this,
        this.#className,
        (ctx) => this.#split(ops, bytes, ctx),
        options,
      );
    }
    return this.#offload(ops, options);
  }

  /**
   * The poller's share and the engines' future, at the first poll (the
   * batch has started then: its parts take no signal, and a close() does
   * not fail them, see {@linkcode BatchStart}).
   */
  #split(
    ops: CheckedOp[],
    bytes: number,
    ctx: PollContext,
  ): { inline: CheckedOp[]; offloaded: Future<void> | undefined } {
    const device = this.#device;
    const idle = device.info.threads - device.inFlight;
    if (idle <= 0) return { inline: ops, offloaded: undefined };
    if ((ctx.pending ?? 1) > 1) {
      return {
        inline: [],
        offloaded: this.#offload(ops, undefined, { started: true }),
      };
    }
    if (bytes < this.#inlineThreshold * ALONE_INLINE_FACTOR) {
      return { inline: ops, offloaded: undefined };
    }
    // the poller's share: 1 / (idle engines + 1) of the bytes, from the end
    let mine = 0;
    let k = ops.length;
    while (k > 1 && (mine + ops[k - 1].length) * (idle + 1) <= bytes) {
      mine += ops[--k].length;
    }
    return {
      inline: ops.slice(k),
      offloaded: this.#offload(ops.slice(0, k), undefined, { started: true }),
    };
  }

  /**
   * Everything to the device, as BATCH descriptors where they fit; the
   * parts share `batch` (see {@linkcode BatchStart}).
   */
  #offload(
    ops: CheckedOp[],
    options?: FutureOptions,
    batch: BatchStart = { started: false },
  ): Future<void> {
    const work = ops.filter((op) => op.length > 0);
    // a batch needs a list, and a record per member plus its own (without
    // them a BATCH future would wait for one forever); members longer
    // than one descriptor's transfer go alone, in chunks
    const { maxBatch, records, maxTransfer, batchLists } = this.#device.info;
    const max = Math.min(maxBatch, records - 1);
    if (max < 2 || batchLists < 1) {
      return this.#group(work, false, options, batch);
    }
    // so do copies between overlapping ranges the device cannot make: a
    // BATCH member fails with status 0x16, and the batch with it, where
    // an operation alone is copied on the CPU
    const device = this.#device;
    const alone = (op: CheckedOp) =>
      op.length > maxTransfer || overlapOnCpu(device, op);
    const large = work.filter(alone);
    const small = work.filter((op) => !alone(op));
    // a lone part carries the signal itself; several, their join (see
    // `joined`)
    const one = large.length + Math.ceil(small.length / max) === 1
      ? options
      : undefined;
    const parts: Future<void>[] = large.map((op) =>
      new DeviceOp(this.#device, op, one, batch)
    );
    for (let i = 0; i < small.length; i += max) {
      const slice = small.slice(i, i + max);
      parts.push(
        slice.length === 1
          ? new DeviceOp(this.#device, slice[0], one, batch)
          : new DeviceBatch(this.#device, slice, one, batch),
      );
    }
    if (parts.length === 0) {
      return new CpuOp(this, this.#className, [], options);
    }
    return parts.length === 1 ? parts[0] : joined(parts, options);
  }

  #group(
    ops: CheckedOp[],
    inline: boolean,
    options?: FutureOptions,
    batch?: BatchStart,
  ): Future<void> {
    if (inline) return new CpuOp(this, this.#className, ops, options);
    if (ops.length === 0) return new CpuOp(this, this.#className, [], options);
    if (ops.length === 1) {
      return new DeviceOp(this.#device, ops[0], options, batch);
    }
    // the signal on the join alone (see `joined`); the parts share one
    // BatchStart
    batch ??= { started: false };
    return joined(
      ops.map((op) => new DeviceOp(this.#device, op, undefined, batch)),
      options,
    );
  }

  /**
   * Stop the device. Every operation already handed to it runs to
   * completion (its future still reports the outcome), and so does every
   * batch of which a part was (the rest on the CPU); operations not yet
   * started fail with `ClosedError`. Idempotent.
   */
  close(): void {
    this.#device.close();
  }
}
