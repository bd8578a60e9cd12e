// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * {@linkcode DeviceOp}: one operation on a {@linkcode CompletionDevice},
 * split at the device's maximum transfer size, with partial completions
 * resubmitted. The same future drives the software device and a DSA work
 * queue: it sees only records. On a WQ that takes BATCH, the operations
 * polled in one executor sweep go out together as one BATCH descriptor.
 *
 * @module
 */
import { ClosedError } from "../errors/mod.ts";
import { native, nativeError } from "../ffi/lib.ts";
import { byteLengthOf } from "../ffi/validate.ts";
import { fromStep } from "../future/combinators.ts";
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
import { type CompletionDevice, setGatherSender } from "./_device.ts";
import {
  type BatchStart,
  BUSY,
  BUSY_LIMIT,
  descriptorFlags,
  lostError,
  MAX_RESUBMITS,
  overlapOf,
  overlapOnCpu,
  persistOnCpu,
  pin,
  SENT,
  type Sent,
  sent,
  setMember,
  statusError,
  submit,
} from "./_device_submit.ts";
import { DSA_STATUS_MASK, DsaStatus } from "./dsa_format.ts";
import type { CheckedOp } from "./vdm.ts";

/** Not gathered (yet): submits itself. */
const ALONE = 0;
/** Waiting in its device's list for the sweep's batch. */
const GATHERED = 1;
/** Was gathered; whatever came of it, from now on it submits itself. */
const GATHERED_ONCE = 2;

/**
 * The BATCH descriptor that carried the operations of one sweep: its
 * record (the members' own records are theirs) and list, given back once
 * every member saw the batch complete.
 */
class SweepBatch {
  rec = -1;
  pending = 0;
  #observed = false;
  constructor(readonly list: number) {}

  /** A member saw the batch's record written (or settled without it). */
  memberDone(dev: CompletionDevice): void {
    if (!this.#observed) {
      this.#observed = true;
      dev.observed(); // the batch was the submission the device counted
    }
    if (--this.pending === 0) {
      dev.releaseRecord(this.rec);
      dev.releaseList(this.list);
    }
  }
}

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
  #gathering = ALONE;
  /** The sweep's BATCH this operation went out in, until it completed. */
  #sweep: SweepBatch | null = null;
  /** The batch this operation is a part of, if any. */
  #batch: BatchStart | undefined;
  /** The destination needs a CPU persist once the device wrote it. */
  persist = false;

  /** @param batch the batch it is a part of (see {@linkcode BatchStart}) */
  constructor(
    dev: CompletionDevice,
    op: CheckedOp,
    options?: FutureOptions,
    batch?: BatchStart,
  ) {
    super(options);
    this.#dev = dev;
    this.#op = op;
    this.#batch = batch;
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

  /** Its work began (on the device or the CPU): so did its batch's. */
  #started(): void {
    if (this.#batch !== undefined) this.#batch.started = true;
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

  protected step(ctx: PollContext): Step<void> {
    const dev = this.#dev;
    const op = this.#op;
    if (this.#rec < 0) {
      if (dev.closed) {
        if (this.#batch?.started !== true) {
          throw new ClosedError(dev.name, op.op);
        }
        this.#finishOnCpu(); // its batch started (see `BatchStart`)
        return;
      }
      if (op.length === 0) return;
      if (overlapOnCpu(dev, op)) {
        this.#started();
        executeOnCpu(op);
        return;
      }
      if (op.op === "memmove" && op.length > dev.info.maxTransfer) {
        this.#descending = overlapOf(op) === 1;
        this.#next = this.#descending ? op.length : 0;
      }
      ctx.waitOn(dev);
      if (
        ctx.sweeping === true && this.#gathering === ALONE && dev.gathers &&
        op.length <= dev.info.maxTransfer
      ) {
        // wait for the rest of this sweep: at its end the device sends
        // every operation gathered in it (sweepEnded), and this one is
        // polled again right after. PENDING, not NOT_STARTED: the sweep's
        // end submits it without another poll, and an idle future is one
        // that holds nothing -- race() dropped idle losers and a
        // mapping's close() passed them over, so a gathered loser kept
        // its record, and its batch's record and list, for good
        this.#gathering = GATHERED;
        dev.gathered.push(this);
        ctx.pollSoon?.();
        return PENDING;
      }
      if (this.#gathering === GATHERED) {
        DeviceOp.#sendGathered(dev);
        if (this.#sweep !== null) return PENDING;
      }
      let rec = dev.acquireRecord(this);
      if (rec < 0 && ctx.blocking === true) {
        dev.reclaim(); // a blocked poller: see `CompletionDevice.reclaim`
        rec = dev.acquireRecord(this);
      }
      if (rec < 0) return NOT_STARTED;
      this.#rec = rec;
      this.#planNext();
      if (this.#submit(ctx) !== SENT) {
        // refused: undo and retry on a later poll
        dev.releaseRecord(rec);
        this.#rec = -1;
        this.#next = this.#descending ? op.length : 0;
        if (!this.#givenUp) return NOT_STARTED;
        this.#started();
        this.#finishOnCpu();
        return;
      }
      this.#started();
      // polled by hand, outside an executor's sweep: the executor sees it
      // to its end, so a future dropped now still gives its record back
      // (it stayed taken for good, and a device whose records all were
      // never started another operation)
      if (ctx.sweeping !== true) adopt(this);
      return PENDING;
    }
    ctx.waitOn(dev);
    const sweep = this.#sweep;
    if (sweep !== null) {
      // a member's record is written before its batch's: wait for both
      if (dev.status(sweep.rec) === 0) {
        if (dev.closed) throw lostError(op.op, dev.name);
        return PENDING;
      }
      this.#sweep = null;
      sweep.memberDone(dev);
      // not executed (the batch refused, its list unreadable): alone now
      if (dev.status(this.#rec) === 0) return this.#resubmitChunk(ctx);
      return this.#completed(ctx, false);
    }
    if (this.#needSubmit) {
      // started and closed meanwhile: finish on the CPU, as the device
      // finishes what it accepted (and `#resubmitChunk` a remainder)
      if (dev.closed) return this.#done(true);
      if (this.#submit(ctx) === SENT) this.#needSubmit = false;
      else if (this.#givenUp) return this.#done(true);
      return PENDING;
    }
    if (dev.status(this.#rec) === 0) {
      if (dev.closed) throw lostError(op.op, dev.name);
      return PENDING;
    }
    return this.#completed(ctx, true);
  }

  /**
   * The current chunk's record is written: go on with the next chunk,
   * resubmit a partial completion's remainder, or fail with the status.
   * `observe`: the record was this operation's own submission (not a
   * member of a sweep's batch, which its batch counts).
   */
  #completed(ctx: PollContext, observe: boolean): Step<void> {
    const dev = this.#dev;
    const op = this.#op;
    const rec = this.#rec;
    const status = dev.status(rec);
    if (observe) dev.observed();
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
      byteLengthOf(op.dst),
      src,
      src === null ? 0 : byteLengthOf(src),
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

  /**
   * Send the operations gathered in this sweep as BATCH descriptors of up
   * to maxBatch members (a record each, and one for the batch); whatever
   * cannot go in one (no list or records left, a member refused by the
   * builder, a refused BATCH, a lone operation) submits itself.
   */
  static #sendGathered(dev: CompletionDevice): void {
    const gathered = dev.gathered as DeviceOp[];
    dev.gathered = [];
    const ops = gathered.filter((o) => o.#gathering === GATHERED && !o.done);
    for (const o of ops) o.#gathering = GATHERED_ONCE;
    if (dev.closed) return;
    const max = Math.min(dev.info.maxBatch, dev.info.records - 1);
    for (let i = 0; i + 1 < ops.length; i += max) {
      DeviceOp.#sendBatch(dev, ops.slice(i, i + max));
    }
  }

  /** One BATCH over `ops` (each one descriptor long), or nothing. */
  static #sendBatch(dev: CompletionDevice, ops: DeviceOp[]): void {
    const list = dev.acquireList();
    if (list < 0) return;
    const sweep = new SweepBatch(list);
    sweep.rec = dev.acquireRecord(sweep);
    const members: DeviceOp[] = [];
    for (const o of ops) {
      if (sweep.rec < 0) break;
      const rec = dev.acquireRecord(o);
      if (rec < 0) break;
      let rc: number;
      try {
        assertAttached(o.#op, o.#op.length);
        rc = setMember(dev, list, members.length, rec, o.#op, o.#flags);
      } catch {
        rc = -1; // it fails on its own path, with its own error
      }
      if (rc < 0) {
        dev.releaseRecord(rec);
        continue;
      }
      o.#rec = rec;
      o.#planNext();
      o.persist = rc === 1;
      members.push(o);
    }
    const h = dev.handle("batch");
    // refused (a full or busy WQ, any error): the members go alone, and
    // meet whatever it was on their own
    if (
      members.length < 2 ||
      native.ap_dev_batch_submit(h, sweep.rec, list, members.length) !== 0
    ) {
      for (const o of members) {
        native.ap_dev_release(h, o.#rec); // its mapping references
        dev.releaseRecord(o.#rec);
        o.#rec = -1;
        o.#next = 0;
        o.persist = false;
      }
      if (sweep.rec >= 0) dev.releaseRecord(sweep.rec);
      dev.releaseList(list);
      return;
    }
    dev.submitted();
    dev.stats.sweepBatches++;
    sweep.pending = members.length;
    for (const o of members) {
      o.#sweep = sweep;
      o.#started();
    }
  }

  static {
    setGatherSender((dev) => DeviceOp.#sendGathered(dev));
  }

  protected override settle(): void {
    const sweep = this.#sweep;
    if (sweep !== null) {
      // settled while its batch may still run (an abort between the
      // sweep's end and its next poll): the record is the device's until
      // the batch completes, so a small adopted future gives it back then
      this.#sweep = null;
      const dev = this.#dev;
      const rec = this.#rec;
      this.#rec = -1;
      const release = () => {
        sweep.memberDone(dev);
        dev.releaseRecord(rec);
      };
      if (dev.closed || dev.status(sweep.rec) !== 0) release();
      else {
        adopt(fromStep((ctx) => {
          ctx.waitOn(dev);
          if (!dev.closed && dev.status(sweep.rec) === 0) return PENDING;
          release();
        }));
      }
    }
    if (this.#rec >= 0) {
      this.#dev.releaseRecord(this.#rec);
      this.#rec = -1;
    }
    this.#op = undefined as unknown as CheckedOp;
  }
}
