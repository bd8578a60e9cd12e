// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Futures over a {@linkcode CompletionDevice}: one operation (split at the
 * device's maximum transfer size, with partial completions resubmitted)
 * and a batch (one BATCH descriptor over up to maxBatch members).
 *
 * @module
 */
import { ClosedError, PmemError } from "../errors/mod.ts";
import { native, nativeError } from "../ffi/lib.ts";
import {
  Future,
  type FutureOptions,
  NOT_STARTED,
  PENDING,
  type PollContext,
  type Step,
} from "../future/future.ts";
import { assertAttached, executeOnCpu } from "./cpu.ts";
import type { CompletionDevice } from "./_device.ts";
import {
  DSA_STATUS_MASK,
  DsaFlag,
  DsaOpcode,
  DsaStatus,
  dsaStatusName,
} from "./dsa_format.ts";
import { type CheckedOp, VdmFlags } from "./vdm.ts";

const EAGAIN = -11;
/** After this many partial completions of one chunk, finish it on the CPU. */
const MAX_RESUBMITS = 1;

const OPCODES = {
  memcpy: DsaOpcode.MEMMOVE,
  memmove: DsaOpcode.MEMMOVE,
  memset: DsaOpcode.MEMFILL,
  flush: DsaOpcode.CFLUSH,
} as const;

/** DSA descriptor flags for a checked operation's VdmFlags. */
export function descriptorFlags(op: CheckedOp): number {
  let f = 0;
  if (op.flags & VdmFlags.DURABLE && op.op !== "flush") {
    f |= DsaFlag.DEST_READBACK;
  }
  // CC=1 asks to allocate destination lines in cache; NO_CACHE_HINT clears it
  if (!(op.flags & VdmFlags.NO_CACHE_HINT) && op.op !== "flush") {
    f |= DsaFlag.CACHE_CONTROL;
  }
  return f;
}

/** The error for a record that completed with a failure status. */
function statusError(op: string, status: number, device: string): PmemError {
  return new PmemError(
    op,
    -5,
    `${device} completed with status ${dsaStatusName(status)}`,
    { errno: 5 },
  );
}

/**
 * Pin an operation's arrays for a device: a worker writes through their
 * addresses after the submitting call returned, so their storage must not
 * move. An engine may keep a small typed array's bytes inside its heap and
 * move them to a separate store when its `.buffer` is first read
 * (JavaScriptCore relocates them then; V8 does the same for arrays of up
 * to 64 bytes): reading `.buffer` once before the first submission makes
 * that move happen now, after which the storage stays put while the
 * operation holds the array.
 */
function pin(op: CheckedOp): void {
  void op.dst.buffer;
  if (op.src !== undefined) void op.src.buffer;
}

/** Submit `[start, start+len)` of `op` into `rec`; a negative code on failure. */
function submit(
  dev: CompletionDevice,
  rec: number,
  op: CheckedOp,
  flags: number,
  start: number,
  len: number,
): number {
  assertAttached(op, start + len);
  const src = op.src ?? op.dst;
  return native.ap_dev_submit(
    dev.handle(op.op),
    rec,
    OPCODES[op.op],
    flags,
    op.dst,
    op.dst.byteLength,
    op.dstOffset + start,
    src,
    src.byteLength,
    op.src === undefined ? op.dstOffset + start : op.srcOffset + start,
    len,
    op.value,
  );
}

/**
 * One operation on a device. Large transfers go in chunks of the device's
 * maximum; an overlapping memmove with the destination above the source
 * goes top-down. Each chunk that completes partially (a page fault) is
 * resubmitted once, then finished on the CPU.
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

  /** Submit the current chunk; false if the queue is full. */
  #submit(): boolean {
    const rc = submit(
      this.#dev,
      this.#rec,
      this.#op,
      this.#flags,
      this.#chunkStart,
      this.#chunkLen,
    );
    if (rc === EAGAIN) return false;
    if (rc < 0) throw nativeError(rc, this.#op.op); // nothing was queued
    this.#dev.submitted();
    return true;
  }

  protected step(ctx: PollContext): Step<void> {
    const dev = this.#dev;
    const op = this.#op;
    if (this.#rec < 0) {
      if (dev.closed) throw new ClosedError(dev.name, op.op);
      if (op.length === 0) return;
      if (op.op === "memmove" && op.length > dev.info.maxTransfer) {
        const dir = native.ap_overlap(
          op.dst,
          op.dst.byteLength,
          op.dstOffset,
          op.src!,
          op.src!.byteLength,
          op.srcOffset,
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
      if (!this.#submit()) {
        // queue full: undo and retry on a later poll
        dev.releaseRecord(rec);
        this.#rec = -1;
        this.#next = this.#descending ? op.length : 0;
        return NOT_STARTED;
      }
      return PENDING;
    }
    ctx.waitOn(dev);
    if (this.#needSubmit) {
      if (dev.closed) throw new ClosedError(dev.name, op.op);
      if (!this.#submit()) return PENDING;
      this.#needSubmit = false;
      return PENDING;
    }
    const status = dev.status(this.#rec);
    if (status === 0) return PENDING;
    dev.observed();
    const code = status & DSA_STATUS_MASK;
    if (code === DsaStatus.PAGE_FAULT_NOBOF) {
      dev.stats.partialCompletions++;
      const done = dev.bytesCompleted(this.#rec);
      const top = dev.result(this.#rec) === 1;
      if (!top) this.#chunkStart += done;
      this.#chunkLen -= done;
      if (this.#resubmits++ >= MAX_RESUBMITS || dev.closed) {
        dev.stats.cpuFallbacks++;
        executeOnCpu(op, this.#chunkStart, this.#chunkStart + this.#chunkLen);
      } else {
        dev.stats.resubmissions++;
        return this.#resubmitChunk();
      }
    } else if (code !== DsaStatus.SUCCESS) {
      throw statusError(op.op, status, dev.name);
    }
    if (this.#planNext()) return this.#resubmitChunk();
    return;
  }

  #resubmitChunk(): Step<void> {
    if (this.#dev.closed) {
      this.#dev.stats.cpuFallbacks++;
      executeOnCpu(
        this.#op,
        this.#chunkStart,
        this.#chunkStart + this.#chunkLen,
      );
      if (this.#planNext()) return this.#resubmitChunk();
      return;
    }
    this.#needSubmit = !this.#submit();
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

/**
 * A BATCH descriptor over 2..maxBatch members, each with its own record.
 * Members that fail with a page fault, or were not executed, are finished
 * on the CPU; any other member failure fails the batch.
 */
export class DeviceBatch extends Future<void> {
  #dev: CompletionDevice;
  #ops: CheckedOp[];
  #list = -1;
  #batchRec = -1;
  #recs: number[] = [];
  #built = false;
  #submitted = false;

  constructor(
    dev: CompletionDevice,
    ops: CheckedOp[],
    options?: FutureOptions,
  ) {
    super(options);
    this.#dev = dev;
    this.#ops = ops;
    for (const op of ops) pin(op);
  }

  #release(): void {
    const dev = this.#dev;
    if (this.#built && !this.#submitted && !dev.closed) {
      for (const rec of this.#recs) {
        native.ap_dev_release(dev.handle("batch"), rec);
      }
    }
    for (const rec of this.#recs) dev.releaseRecord(rec);
    if (this.#batchRec >= 0) dev.releaseRecord(this.#batchRec);
    if (this.#list >= 0) dev.releaseList(this.#list);
    this.#recs = [];
    this.#batchRec = -1;
    this.#list = -1;
    this.#built = false;
  }

  /** Take a list and records, and write the member descriptors. */
  #build(): boolean {
    const dev = this.#dev;
    this.#list = dev.acquireList();
    this.#batchRec = dev.acquireRecord(this);
    for (let i = 0; i < this.#ops.length; i++) {
      const rec = dev.acquireRecord(this);
      if (rec < 0) break;
      this.#recs.push(rec);
    }
    if (
      this.#list < 0 || this.#batchRec < 0 ||
      this.#recs.length < this.#ops.length
    ) {
      this.#release();
      return false;
    }
    const h = dev.handle("batch");
    for (let i = 0; i < this.#ops.length; i++) {
      const op = this.#ops[i];
      try {
        assertAttached(op, op.length);
      } catch (e) {
        for (let j = 0; j < i; j++) native.ap_dev_release(h, this.#recs[j]);
        this.#release();
        throw e;
      }
      const src = op.src ?? op.dst;
      const rc = native.ap_dev_batch_set(
        h,
        this.#list,
        i,
        this.#recs[i],
        OPCODES[op.op],
        descriptorFlags(op),
        op.dst,
        op.dst.byteLength,
        op.dstOffset,
        src,
        src.byteLength,
        op.src === undefined ? op.dstOffset : op.srcOffset,
        op.length,
        op.value,
      );
      if (rc < 0) {
        const err = nativeError(rc, op.op);
        for (let j = 0; j < i; j++) native.ap_dev_release(h, this.#recs[j]);
        this.#release();
        throw err;
      }
    }
    this.#built = true;
    return true;
  }

  protected step(ctx: PollContext): Step<void> {
    const dev = this.#dev;
    if (!this.#submitted) {
      if (dev.closed) throw new ClosedError(dev.name, "batch");
      ctx.waitOn(dev);
      if (!this.#build()) return NOT_STARTED;
      const rc = native.ap_dev_batch_submit(
        dev.handle("batch"),
        this.#batchRec,
        this.#list,
        this.#ops.length,
      );
      if (rc < 0) {
        // Nothing was queued. Give back the members' mapping references
        // now rather than hold them until a later poll, which may never
        // come (a close() on this thread would wait for them forever).
        this.#release();
        if (rc === EAGAIN) return NOT_STARTED;
        throw nativeError(rc, "batch");
      }
      this.#submitted = true;
      dev.submitted();
      return PENDING;
    }
    ctx.waitOn(dev);
    const status = dev.status(this.#batchRec);
    if (status === 0) return PENDING;
    dev.observed();
    if ((status & DSA_STATUS_MASK) === DsaStatus.SUCCESS) return;
    if ((status & DSA_STATUS_MASK) !== DsaStatus.BATCH_FAIL) {
      throw statusError("batch", status, dev.name);
    }
    for (let i = 0; i < this.#ops.length; i++) {
      const member = dev.status(this.#recs[i]);
      const code = member & DSA_STATUS_MASK;
      if (code === DsaStatus.SUCCESS) continue;
      const op = this.#ops[i];
      if (member === 0) {
        dev.stats.cpuFallbacks++;
        executeOnCpu(op); // abandoned: never executed
      } else if (code === DsaStatus.PAGE_FAULT_NOBOF) {
        dev.stats.partialCompletions++;
        dev.stats.cpuFallbacks++;
        const done = dev.bytesCompleted(this.#recs[i]);
        if (dev.result(this.#recs[i]) === 1) {
          executeOnCpu(op, 0, op.length - done);
        } else executeOnCpu(op, done, op.length);
      } else {
        throw statusError(op.op, member, dev.name);
      }
    }
  }

  protected override settle(): void {
    this.#release();
    this.#ops = [];
  }
}
