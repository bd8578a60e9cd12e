// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * {@linkcode ThreadMover}: a software DSA device in the native shim. Worker
 * threads execute 64-byte DSA descriptors and write 32-byte DSA completion
 * records; futures poll the records' status bytes from TypeScript.
 *
 * @module
 */
import { ClosedError } from "../errors/mod.ts";
import { native } from "../ffi/lib.ts";
import { checkSize } from "../ffi/validate.ts";
import { all, map } from "../future/combinators.ts";
import {
  Future,
  type FutureOptions,
  PENDING,
  type PollContext,
  type Step,
} from "../future/future.ts";
import { CompletionDevice, type DeviceInfo } from "./_device.ts";
import { CpuOp, executeOnCpu } from "./cpu.ts";
import { DeviceBatch, DeviceOp } from "./_device_op.ts";
import { BaseMover } from "./_base.ts";
import { type CheckedOp, VdmFlags } from "./vdm.ts";

/** Options of {@linkcode ThreadMover}. */
export interface ThreadMoverOptions {
  /** Worker threads (engines). @default the number of CPUs, at most 8 */
  threads?: number;
  /** Work-queue slots, a power of two. @default 256 */
  queueSize?: number;
  /** Completion records, i.e. operations in flight at most. @default 1024 */
  records?: number;
  /** Batch descriptor lists. @default 64 */
  batchLists?: number;
  /** Largest transfer of one descriptor; larger ops go in chunks. @default 2 MiB */
  maxTransfer?: number;
  /**
   * Operations smaller than this many bytes run inline on the polling
   * thread: a hand-off to a worker costs more than a small copy (the
   * default is where offloading began to pay on a 2-CPU machine; see
   * `bench/RESULTS.md`). 0 sends everything to the workers.
   * @default 262144
   */
  inlineThreshold?: number;
}

let deviceOf: (mover: ThreadMover) => CompletionDevice;

/** How a batch splits at its first poll (see `ThreadMover.runBatch`). */
let split: (
  mover: ThreadMover,
  ops: CheckedOp[],
  bytes: number,
  ctx: PollContext,
  options?: FutureOptions,
) => { inline: CheckedOp[]; offloaded: Future<void> | undefined };

/**
 * The software device behind a ThreadMover (for the testing entry point's
 * fault injection and counters). Internal.
 */
export function threadMoverDevice(mover: ThreadMover): CompletionDevice {
  if (!(mover instanceof ThreadMover)) {
    throw new TypeError("Cannot reach the device: mover must be a ThreadMover");
  }
  return deviceOf(mover);
}

function defaultThreads(): number {
  const n = (globalThis as { navigator?: { hardwareConcurrency?: number } })
    .navigator?.hardwareConcurrency ?? 2;
  return Math.max(1, Math.min(8, n));
}

/**
 * The thread-pool mover: a software DSA device. Operations at or above
 * `inlineThreshold` bytes go to worker threads as DSA descriptors; the
 * polling thread is free meanwhile. Durable writes into a mapping are
 * persisted (libpmem2 copy + persist) by the worker before it completes
 * the record.
 *
 * Arrays handed to a worker are pinned, not copied: before the first
 * descriptor is submitted the operation reads each array's `.buffer`,
 * which makes the engine move a small array's bytes out of its heap now
 * (JavaScriptCore and V8 both may, the first time `.buffer` is read)
 * rather than while a worker writes through their address; the future
 * then holds the arrays until it settles. Large arrays and views of
 * mappings never move.
 *
 * @example Usage
 * ```ts
 * import { ThreadMover, wait } from "@asyncpmem/asyncpmem";
 * import assert from "node:assert/strict";
 *
 * using mover = new ThreadMover({ threads: 2, inlineThreshold: 0 });
 * const src = new Uint8Array(1 << 20).fill(7);
 * const dst = new Uint8Array(1 << 20);
 * await mover.memcpy(dst, src);           // copied by a worker thread
 * assert.equal(dst[12345], 7);
 * wait(mover.memset(dst, 1));              // the blocking form
 * assert.equal(dst[0], 1);
 * ```
 */
export class ThreadMover extends BaseMover {
  #device: CompletionDevice;
  #inlineThreshold: number;

  /**
   * Start a software DSA device with its worker threads.
   *
   * @param options threads, queue and record counts, thresholds
   * @throws {RangeError} for an option out of range
   * @throws {PmemError} when the device cannot start
   */
  constructor(options: ThreadMoverOptions = {}) {
    super("ThreadMover", "threads", VdmFlags.DURABLE | VdmFlags.NO_CACHE_HINT);
    if (typeof options !== "object" || options === null) {
      throw new TypeError(
        "Cannot create ThreadMover: options must be an object",
      );
    }
    const threads = checkSize(
      options.threads ?? defaultThreads(),
      "threads",
      "create ThreadMover",
    );
    const queueSize = checkSize(
      options.queueSize ?? 256,
      "queueSize",
      "create ThreadMover",
    );
    const records = checkSize(
      options.records ?? 1024,
      "records",
      "create ThreadMover",
    );
    const lists = checkSize(
      options.batchLists ?? 64,
      "batchLists",
      "create ThreadMover",
    );
    const maxTransfer = checkSize(
      options.maxTransfer ?? 2 ** 21,
      "maxTransfer",
      "create ThreadMover",
    );
    this.#inlineThreshold = checkSize(
      options.inlineThreshold ?? 262144,
      "inlineThreshold",
      "create ThreadMover",
    );
    if (threads < 1 || threads > 64) {
      throw new RangeError("Cannot create ThreadMover: threads must be 1..64");
    }
    if (queueSize < 2 || queueSize > 4096 || (queueSize & (queueSize - 1))) {
      throw new RangeError(
        "Cannot create ThreadMover: queueSize must be a power of two in 2..4096",
      );
    }
    if (records < 1 || records > 2 ** 20) {
      throw new RangeError(
        "Cannot create ThreadMover: records must be 1..2^20",
      );
    }
    if (lists > 4096) {
      throw new RangeError(
        "Cannot create ThreadMover: batchLists must be <= 4096",
      );
    }
    if (maxTransfer < 1 || maxTransfer > 2 ** 31) {
      throw new RangeError(
        "Cannot create ThreadMover: maxTransfer must be 1..2^31",
      );
    }
    this.#device = new CompletionDevice(
      "ThreadMover",
      (cell) =>
        native.ap_dev_new(
          cell,
          threads,
          queueSize,
          records,
          lists,
          maxTransfer,
        ),
    );
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

  static {
    deviceOf = (mover) => mover.#device;
  }

  /** Whether {@linkcode ThreadMover.close} has run. */
  get closed(): boolean {
    return this.#device.closed;
  }

  /** One operation: inline below the threshold, else a descriptor. */
  protected run(op: CheckedOp, options?: FutureOptions): Future<void> {
    if (op.length < this.#inlineThreshold) {
      return new CpuOp(this, "ThreadMover", op, options);
    }
    return new DeviceOp(this.#device, op, options);
  }

  /**
   * Several operations, run inline when they are small in all; else split
   * at their first poll, by what is waiting: with every engine busy, all
   * inline (queued behind them they would only wait); with other futures
   * waiting on the poller, all to the engines (the poller goes on to drive
   * those); otherwise a share for each idle engine, as DSA BATCH
   * descriptors, and one for the polling thread, copied inline meanwhile
   * (it would only wait). The poller's share on an idle device of two
   * engines measured on the 2-CPU VM: `writeMany` of 256 × 4 KiB blocks
   * ran at 1.0× libpmemblk's writes when all went to the engines.
   */
  protected runBatch(ops: CheckedOp[], options?: FutureOptions): Future<void> {
    const bytes = ops.reduce((n, op) => n + op.length, 0);
    if (ops.length <= 1 || bytes < this.#inlineThreshold) {
      return this.#group(ops, bytes < this.#inlineThreshold, options);
    }
    if (this.#inlineThreshold === 0) return this.#offload(ops, options);
    return new SplitBatch(this, ops, bytes, options);
  }

  /** Everything to the engines, as DSA BATCH descriptors where they fit. */
  #offload(ops: CheckedOp[], options?: FutureOptions): Future<void> {
    // a batch needs a record per member plus its own; members longer than
    // one descriptor's transfer go alone, in chunks
    const { maxBatch, records, maxTransfer } = this.#device.info;
    const max = Math.min(maxBatch, records - 1);
    if (max < 2) return this.#group(ops, false, options);
    const parts: Future<void>[] = ops.filter((op) => op.length > maxTransfer)
      .map((op) => new DeviceOp(this.#device, op, options));
    const small = ops.filter((op) => op.length <= maxTransfer);
    for (let i = 0; i < small.length; i += max) {
      const slice = small.slice(i, i + max);
      parts.push(
        slice.length === 1
          ? new DeviceOp(this.#device, slice[0], options)
          : new DeviceBatch(this.#device, slice, options),
      );
    }
    return parts.length === 1 ? parts[0] : map(all(parts), () => undefined);
  }

  static {
    split = (mover, ops, bytes, ctx, options) => {
      const device = mover.#device;
      const idle = device.info.threads - device.inFlight;
      if (idle <= 0) return { inline: ops, offloaded: undefined };
      if ((ctx.pending ?? 1) > 1) {
        return { inline: [], offloaded: mover.#offload(ops, options) };
      }
      // the poller's share: 1 / (idle engines + 1) of the bytes, from the end
      let mine = 0;
      let k = ops.length;
      while (k > 1 && (mine + ops[k - 1].length) * (idle + 1) <= bytes) {
        mine += ops[--k].length;
      }
      return {
        inline: ops.slice(k),
        offloaded: mover.#offload(ops.slice(0, k), options),
      };
    };
  }

  #group(
    ops: CheckedOp[],
    inline: boolean,
    options?: FutureOptions,
  ): Future<void> {
    if (inline) return new CpuOp(this, "ThreadMover", ops, options);
    const parts = ops.map((op) => new DeviceOp(this.#device, op, options));
    if (parts.length === 1) return parts[0];
    return map(all(parts), () => undefined);
  }

  /**
   * Stop the device. Every operation already handed to it runs to
   * completion (its future still reports the outcome); operations not yet
   * started fail with `ClosedError`. Idempotent.
   */
  close(): void {
    this.#device.close();
  }
}

/**
 * A batch too large to copy inline without thought: at its first poll it
 * splits between the engines and the polling thread (see
 * `ThreadMover.runBatch`), starts the engines' part, copies its own, and
 * completes when the engines' part has.
 */
class SplitBatch extends Future<void> {
  #mover: ThreadMover;
  #ops: CheckedOp[] | undefined;
  #bytes: number;
  #options: FutureOptions | undefined;
  #offloaded: Future<void> | undefined;
  /** Why the inline share failed (reported once the engines' part ends). */
  #failure: unknown;

  constructor(
    mover: ThreadMover,
    ops: CheckedOp[],
    bytes: number,
    options?: FutureOptions,
  ) {
    super(options);
    this.#mover = mover;
    this.#ops = ops;
    this.#bytes = bytes;
    this.#options = options;
  }

  protected step(ctx: PollContext): Step<void> {
    const ops = this.#ops;
    if (ops !== undefined) {
      this.#ops = undefined;
      if (this.#mover.closed) throw new ClosedError("ThreadMover", "poll");
      const { inline, offloaded } = split(
        this.#mover,
        ops,
        this.#bytes,
        ctx,
        this.#options,
      );
      this.#offloaded = offloaded;
      offloaded?.poll(ctx); // the engines start first
      try {
        for (const op of inline) executeOnCpu(op);
      } catch (e) {
        this.#failure = e; // the engines' part still runs: wait for it
      }
    }
    const rest = this.#offloaded;
    if (rest !== undefined) {
      const state = rest.poll(ctx);
      if (state !== "complete" && state !== "failed") return PENDING;
    }
    if (this.#failure !== undefined) throw this.#failure;
    if (rest?.state === "failed") throw rest.error;
  }

  protected override settle(): void {
    this.#ops = undefined;
    this.#offloaded = undefined;
  }
}
