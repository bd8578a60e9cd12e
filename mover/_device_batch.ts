// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * {@linkcode DeviceBatch}: several operations as one BATCH descriptor on a
 * {@linkcode CompletionDevice}, each member with its own record.
 *
 * @module
 */
import { ClosedError } from "../errors/mod.ts";
import { native, nativeError } from "../ffi/lib.ts";
import { adopt } from "../future/executor.ts";
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
  type BatchStart,
  BUSY_LIMIT,
  descriptorFlags,
  FULL,
  lostError,
  persistOnCpu,
  pin,
  SENT,
  sent,
  setMember,
  statusError,
} from "./_device_submit.ts";
import { DSA_STATUS_MASK, DsaStatus } from "./dsa_format.ts";
import type { CheckedOp } from "./vdm.ts";

/**
 * A BATCH descriptor over 2..maxBatch members, each with its own record.
 * Members that fail with a page fault, or were not executed (abandoned,
 * or the list itself faulted), are finished on the CPU; any other member
 * failure fails the batch with the member's status named.
 */
export class DeviceBatch extends Future<void> {
  #dev: CompletionDevice;
  #ops: CheckedOp[];
  #list = -1;
  #batchRec = -1;
  #recs: number[] = [];
  #persist: boolean[] = [];
  #built = false;
  #submitted = false;
  #busy = 0;
  /** The batch this descriptor is a part of, if any. */
  #batch: BatchStart | undefined;

  /** @param batch the batch it is a part of (see {@linkcode BatchStart}) */
  constructor(
    dev: CompletionDevice,
    ops: CheckedOp[],
    options?: FutureOptions,
    batch?: BatchStart,
  ) {
    super(options);
    this.#dev = dev;
    this.#ops = ops;
    this.#batch = batch;
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
    this.#persist = new Array(this.#ops.length).fill(false);
    for (let i = 0; i < this.#ops.length; i++) {
      const op = this.#ops[i];
      try {
        assertAttached(op, op.length);
      } catch (e) {
        for (let j = 0; j < i; j++) native.ap_dev_release(h, this.#recs[j]);
        this.#release();
        throw e;
      }
      const rc = setMember(
        dev,
        this.#list,
        i,
        this.#recs[i],
        op,
        descriptorFlags(op),
      );
      if (rc < 0) {
        const err = nativeError(rc, op.op);
        for (let j = 0; j < i; j++) native.ap_dev_release(h, this.#recs[j]);
        this.#release();
        throw err;
      }
      this.#persist[i] = rc === 1;
    }
    this.#built = true;
    return true;
  }

  protected step(ctx: PollContext): Step<void> {
    const dev = this.#dev;
    if (!this.#submitted) {
      if (dev.closed) {
        if (this.#batch?.started !== true) {
          throw new ClosedError(dev.name, "batch");
        }
        // its batch started (see `BatchStart`): finish it here
        dev.stats.cpuFallbacks++;
        for (const op of this.#ops) executeOnCpu(op);
        return;
      }
      ctx.waitOn(dev);
      if (!this.#build()) {
        // a blocked poller: see `CompletionDevice.reclaim`
        if (ctx.blocking !== true) return NOT_STARTED;
        dev.reclaim();
        if (!this.#build()) return NOT_STARTED;
      }
      const rc = native.ap_dev_batch_submit(
        dev.handle("batch"),
        this.#batchRec,
        this.#list,
        this.#ops.length,
      );
      const got = sent(rc, dev, "batch", { persist: false });
      if (got !== SENT) {
        // Nothing was queued. Give back the members' mapping references
        // now rather than hold them until a later poll, which may never
        // come (a close() on this thread would wait for them forever).
        this.#release();
        if (got === FULL) return NOT_STARTED;
        if (++this.#busy < BUSY_LIMIT) {
          ctx.pollSoon?.();
          return NOT_STARTED;
        }
        if (this.#batch !== undefined) this.#batch.started = true;
        dev.stats.cpuFallbacks++;
        for (const op of this.#ops) executeOnCpu(op);
        return;
      }
      this.#submitted = true;
      if (this.#batch !== undefined) this.#batch.started = true;
      dev.submitted();
      // polled by hand, outside an executor's sweep: the executor sees it
      // to its end, so a future dropped now still gives its records back
      // (they stayed taken for good, and a device whose records all were
      // never started another operation)
      if (ctx.sweeping !== true) adopt(this);
      return PENDING;
    }
    ctx.waitOn(dev);
    const status = dev.status(this.#batchRec);
    if (status === 0) {
      if (dev.closed) throw lostError("batch", dev.name);
      return PENDING;
    }
    dev.observed();
    const code = status & DSA_STATUS_MASK;
    if (code === DsaStatus.SUCCESS) return this.#persistMembers();
    // BATCH_FAIL: members say which failed; BATCH_PAGE_FAULT: the list
    // could not be read past descs_completed, so later members show 0
    if (code !== DsaStatus.BATCH_FAIL && code !== DsaStatus.BATCH_PAGE_FAULT) {
      throw statusError("batch", status, dev.name);
    }
    for (let i = 0; i < this.#ops.length; i++) {
      const member = dev.status(this.#recs[i]);
      const mcode = member & DSA_STATUS_MASK;
      if (mcode === DsaStatus.SUCCESS) continue;
      const op = this.#ops[i];
      if (member === 0) {
        dev.stats.cpuFallbacks++;
        executeOnCpu(op); // abandoned: never executed
        this.#persist[i] = false; // executeOnCpu persists durable ops
      } else if (mcode === DsaStatus.PAGE_FAULT_NOBOF) {
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
    return this.#persistMembers();
  }

  /** Persist the members the device wrote but could not make durable. */
  #persistMembers(): void {
    for (let i = 0; i < this.#ops.length; i++) {
      if (this.#persist[i]) persistOnCpu(this.#dev, this.#ops[i]);
    }
  }

  protected override settle(): void {
    this.#release();
    this.#ops = [];
  }
}
