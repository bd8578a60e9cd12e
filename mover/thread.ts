// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * {@linkcode ThreadMover}: a software DSA device in the native shim. Worker
 * threads execute 64-byte DSA descriptors and write 32-byte DSA completion
 * records; futures poll the records' status bytes from TypeScript.
 *
 * @module
 */
import { native } from "../ffi/lib.ts";
import { checkSize, readOptions } from "../ffi/validate.ts";
import { CompletionDevice } from "./_device.ts";
import { DeviceMover, moverDevice } from "./_device_mover.ts";
import { VdmFlags } from "./vdm.ts";

/**
 * Options of {@linkcode ThreadMover}. An option not listed here is refused,
 * with a `TypeError` naming it and the option it likely stands for.
 */
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
   * `bench/NOTES.md`). A batch the polling thread would only wait for
   * (nothing else pending on it) runs inline up to 64 times this: handing
   * it off costs a wake-up on each side. 0 sends everything to the
   * workers.
   * @default 262144
   */
  inlineThreshold?: number;
}

/**
 * The software device behind a ThreadMover (for the testing entry point's
 * fault injection and counters). Internal.
 */
export function threadMoverDevice(mover: ThreadMover): CompletionDevice {
  if (!(mover instanceof ThreadMover)) {
    throw new TypeError("Cannot reach the device: mover must be a ThreadMover");
  }
  return moverDevice(mover, "ThreadMover");
}

function defaultThreads(): number {
  const n = (globalThis as { navigator?: { hardwareConcurrency?: number } })
    .navigator?.hardwareConcurrency ?? 2;
  return Math.max(1, Math.min(8, n));
}

/**
 * {@linkcode ThreadMoverOptions} read once and checked, defaults filled
 * in: a TypeError or RangeError before anything native. Internal:
 * `DsaMover.openOrFallback` checks its fallback's with it before it
 * tries DSA (they went unchecked where DSA opened).
 */
export function checkThreadMoverOptions(
  options: ThreadMoverOptions,
): Required<ThreadMoverOptions> {
  options = readOptions(options, [
    "threads",
    "queueSize",
    "records",
    "batchLists",
    "maxTransfer",
    "inlineThreshold",
  ], "create ThreadMover");
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
  const inlineThreshold = checkSize(
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
  return {
    threads,
    queueSize,
    records,
    batchLists: lists,
    maxTransfer,
    inlineThreshold,
  };
}

/** Check the options (before anything native) and start the device. */
function createDevice(
  options: ThreadMoverOptions,
): { device: CompletionDevice; inlineThreshold: number } {
  const {
    threads,
    queueSize,
    records,
    batchLists: lists,
    maxTransfer,
    inlineThreshold,
  } = checkThreadMoverOptions(options);
  const device = new CompletionDevice(
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
  return { device, inlineThreshold };
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
 * mappings never move. An operation over a resizable ArrayBuffer runs
 * inline, whatever its size (a `resize()` down frees memory a worker
 * might be writing). Transferring an array's buffer while an operation
 * on it runs is not allowed: the engine may free or move the memory
 * under the worker (an operation not yet started fails with
 * `ClosedError`).
 *
 * In a JavaScript Worker, an operation over the Worker's own arrays
 * (anything but views of native memory, such as a mapping's) runs
 * inline: the runtime frees a Worker's heap as soon as it ends
 * (`terminate()`, or its own `close()`), and nothing tells the native
 * side before the Worker's thread ends, so a device thread still copying
 * would write to freed memory. Copies between views of mappings still go
 * to the device threads there. When the thread ends, the device finishes
 * what it accepted and stops its threads before the ended Worker's pools
 * and logs let other opens in, so a copy of the Worker's never lands
 * under a later opener's writes. The same holds for a `DsaMover`. (An
 * uncaught error or rejection is covered on Deno: each open device waits
 * for the work it accepted before the isolate goes.)
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
export class ThreadMover extends DeviceMover {
  /**
   * Start a software DSA device with its worker threads.
   *
   * @param options threads, queue and record counts, thresholds
   * @throws {RangeError} for an option out of range
   * @throws {PmemError} when the device cannot start
   */
  constructor(options: ThreadMoverOptions = {}) {
    const { device, inlineThreshold } = createDevice(options);
    super(
      "ThreadMover",
      "threads",
      VdmFlags.DURABLE | VdmFlags.NO_CACHE_HINT,
      device,
      inlineThreshold,
    );
  }

  /** Its engines share the CPUs with the poller. */
  protected override get sharesWithPoller(): boolean {
    return true;
  }
}
