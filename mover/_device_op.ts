// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * {@linkcode DeviceOp}: one operation on a {@linkcode CompletionDevice},
 * split at the device's maximum transfer size, with partial completions
 * resubmitted. The same future drives the software device and a DSA work
 * queue: it sees only records.
 *
 * @module
 */
import { ClosedError } from "../errors/mod.ts";
import { native, nativeError } from "../ffi/lib.ts";
import {
  Future,
  type FutureOptions,
  NOT_STARTED,
  PENDING,
  type PollContext,
  type Step,
} from "../future/future.ts";
import { executeOnCpu } from "./cpu.ts";
import type { CompletionDevice } from "./_device.ts";
import {
  BUSY,
  BUSY_LIMIT,
  descriptorFlags,
  GEN_CAP_OVERLAP,
  lostError,
  MAX_RESUBMITS,
  persistOnCpu,
  pin,
  SENT,
  type Sent,
  sent,
  statusError,
  submit,
} from "./_device_submit.ts";
import { DSA_STATUS_MASK, DsaStatus } from "./dsa_format.ts";
import type { CheckedOp } from "./vdm.ts";

/**
 * One operation on a device. Large transfers go in chunks of the device's
 * maximum; an overlapping memmove with the destination above the source
 * goes top-down. Each chunk that completes partially (a page fault) has
 * the faulting page touched (when it lies in the operation's own buffers)
 * and its remainder resubmitted once, then is finished on the CPU.
 */
export class DeviceOp extends Future<void> {
  #dev: CompletionDevice;
  #op: CheckedOp;
  #flags: number;
  #rec = -1;
  #descending = false;
  #next = 0; // ascending: first byte not yet done; descending: end of undone
  #chunkStart = 0;
  #chunkLen = 0;
  #resubmits = 0;
  #needSubmit = false;
  #busy = 0;
  /** The destination needs a CPU persist once the device wrote it. */
  persist = false;

  constructor(dev: CompletionDevice, op: CheckedOp, options?: FutureOptions) {
    super(options);
    this.#dev = dev;
    this.#op = op;
    this.#flags = descriptorFlags(op);
    pin(op);
  }

  #planNext(): boolean {
    const max = this.#dev.info.maxTransfer;
    if (this.#descending) {
      if (this.#next <= 0) return false;
      this.#chunkLen = Math.min(max, this.#next);
      this.#chunkStart = this.#next - this.#chunkLen;
      this.#next = this.#chunkStart;
    } else {
      if (this.#next >= this.#op.length) return false;
      this.#chunkStart = this.#next;
      this.#chunkLen = Math.min(max, this.#op.length - this.#next);
      this.#next += this.#chunkLen;
    }
    this.#resubmits = 0;
    return true;
  }

  /** Submit the current chunk. */
  #submit(ctx: PollContext): Sent {
    const rc = submit(
      this.#dev,
      this.#rec,
      this.#op,
      this.#flags,
      this.#chunkStart,
      this.#chunkLen,
    );
    const got = sent(rc, this.#dev, this.#op.op, this);
    if (got === SENT) this.#dev.submitted();
    else if (got === BUSY) {
      this.#busy++;
      ctx.pollSoon?.(); // back off through the event loop, not a sleep
    }
    return got;
  }

  /** Whether a shared WQ refused this operation often enough to give up. */
  get #givenUp(): boolean {
    return this.#busy >= BUSY_LIMIT;
  }

  /**
   * Finish everything not yet done on the CPU: the current chunk's
   * remainder, then the chunks not yet planned, in the device's order
   * (a partial completion of a descending copy left the chunk's top
   * done: only what lies below it is redone).
   */
  #finishOnCpu(): void {
    this.#dev.stats.cpuFallbacks++;
    const op = this.#op;
    if (this.#rec < 0) {
      executeOnCpu(op);
      return;
    }
    do {
      executeOnCpu(op, this.#chunkStart, this.#chunkStart + this.#chunkLen);
    } while (this.#planNext());
  }

  /** Overlapping copies a device cannot make (no GENCAP bit 1). */
  #cpuOverlap(): boolean {
    const op = this.#op;
    return op.op === "memmove" &&
      (this.#dev.info.genCap & GEN_CAP_OVERLAP) === 0 &&
      native.ap_overlap(
          op.dst,
          op.dst.byteLength,
          op.dstOffset,
          op.src!,
          op.src!.byteLength,
          0,
          op.length,
        ) !== 0;
  }

  protected step(ctx: PollContext): Step<void> {
    const dev = this.#dev;
    const op = this.#op;
    if (this.#rec < 0) {
      if (dev.closed) throw new ClosedError(dev.name, op.op);
      if (op.length === 0) return;
      if (this.#cpuOverlap()) {
        executeOnCpu(op);
        return;
      }
      if (op.op === "memmove" && op.length > dev.info.maxTransfer) {
        const dir = native.ap_overlap(
          op.dst,
          op.dst.byteLength,
          op.dstOffset,
          op.src!,
          op.src!.byteLength,
          0,
          op.length,
        );
        this.#descending = dir === 1;
        this.#next = this.#descending ? op.length : 0;
      }
      ctx.waitOn(dev);
      const rec = dev.acquireRecord(this);
      if (rec < 0) return NOT_STARTED;
      this.#rec = rec;
      this.#planNext();
      if (this.#submit(ctx) !== SENT) {
        // refused: undo and retry on a later poll
        dev.releaseRecord(rec);
        this.#rec = -1;
        this.#next = this.#descending ? op.length : 0;
        if (!this.#givenUp) return NOT_STARTED;
        this.#finishOnCpu();
        return;
      }
      return PENDING;
    }
    ctx.waitOn(dev);
    if (this.#needSubmit) {
      if (dev.closed) throw new ClosedError(dev.name, op.op);
      if (this.#submit(ctx) === SENT) this.#needSubmit = false;
      else if (this.#givenUp) return this.#done(true);
      return PENDING;
    }
    const rec = this.#rec;
    const status = dev.status(rec);
    if (status === 0) {
      if (dev.closed) throw lostError(op.op, dev.name);
      return PENDING;
    }
    dev.observed();
    const code = status & DSA_STATUS_MASK;
    if (code === DsaStatus.PAGE_FAULT_NOBOF) {
      dev.stats.partialCompletions++;
      const done = dev.bytesCompleted(rec);
      const top = dev.result(rec) === 1;
      if (!top) this.#chunkStart += done;
      this.#chunkLen -= done;
      if (this.#resubmits++ < MAX_RESUBMITS && !dev.closed && this.#touch()) {
        dev.stats.resubmissions++;
        return this.#resubmitChunk(ctx);
      }
      dev.stats.cpuFallbacks++;
      executeOnCpu(op, this.#chunkStart, this.#chunkStart + this.#chunkLen);
    } else if (code !== DsaStatus.SUCCESS) {
      throw statusError(op.op, status, dev.name);
    }
    if (this.#planNext()) return this.#resubmitChunk(ctx);
    return this.#done(false);
  }

  /**
   * Touch the page a partial completion faulted on, so the resubmitted
   * remainder does not fault there again; false when the address lies
   * outside the operation's buffers (the shim checks), which are all a
   * touch may reach.
   */
  #touch(): boolean {
    const op = this.#op;
    const src = op.src ?? null;
    const rc = native.ap_dev_touch(
      this.#dev.handle(op.op),
      this.#rec,
      op.dst,
      op.dst.byteLength,
      src,
      src?.byteLength ?? 0,
    );
    if (rc < 0) throw nativeError(rc, op.op);
    if (rc === 1) this.#dev.stats.pagesTouched++;
    return rc === 1;
  }

  /** Every byte is done: persist on the CPU what the device could not. */
  #done(rest: boolean): Step<void> {
    if (rest) this.#finishOnCpu();
    if (this.persist) persistOnCpu(this.#dev, this.#op);
  }

  #resubmitChunk(ctx: PollContext): Step<void> {
    if (this.#dev.closed) {
      this.#dev.stats.cpuFallbacks++;
      executeOnCpu(
        this.#op,
        this.#chunkStart,
        this.#chunkStart + this.#chunkLen,
      );
      if (this.#planNext()) return this.#resubmitChunk(ctx);
      return this.#done(false);
    }
    const got = this.#submit(ctx);
    if (got !== SENT && this.#givenUp) return this.#done(true);
    this.#needSubmit = got !== SENT;
    return PENDING;
  }

  protected override settle(): void {
    if (this.#rec >= 0) {
      this.#dev.releaseRecord(this.#rec);
      this.#rec = -1;
    }
    this.#op = undefined as unknown as CheckedOp;
  }
}
