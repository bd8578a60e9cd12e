// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Futures over a {@linkcode CompletionDevice}: one operation (split at the
 * device's maximum transfer size, with partial completions resubmitted)
 * and a batch (one BATCH descriptor over up to maxBatch members). The
 * same futures drive the software device and a DSA work queue: they see
 * only records, and three answers to a submission -- sent, full (retry
 * when something completes), busy (a shared WQ kept answering retry:
 * back off in the event loop, then finish on the CPU).
 *
 * @module
 */
import { ClosedError, PmemError } from "../errors/mod.ts";
import { check, native, nativeError } from "../ffi/lib.ts";
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
const EBUSY = -16;
/** After this many partial completions of one chunk, finish it on the CPU. */
const MAX_RESUBMITS = 1;
/**
 * After this many busy answers of a shared WQ to one operation (each after
 * the shim's own retries with backoff), finish it on the CPU: others keep
 * the WQ full, and waiting longer only delays the work (DTO gives up at
 * once; the reference advises a bounded backoff).
 */
const BUSY_LIMIT = 16;
/** GENCAP bit 1: the device copies overlapping ranges itself. */
const GEN_CAP_OVERLAP = 2;

/** What a submission got: queued, or refused for now. */
const SENT = 0;
const FULL = 1; // the queue is full: retry once something completed
const BUSY = 2; // a shared WQ answered retry: retry soon

/** The outcome of {@linkcode submit}: SENT, FULL, BUSY. */
type Sent = typeof SENT | typeof FULL | typeof BUSY;

/**
 * Classify a submission's return code: 1 asks for a CPU persist of the
 * destination after completion (see `ap_dev_submit`).
 */
function sent(
  rc: number,
  dev: CompletionDevice,
  op: string,
  persist: { persist: boolean },
): Sent {
  if (rc === EAGAIN) return FULL;
  if (rc === EBUSY) {
    dev.stats.busyAnswers++;
    return BUSY;
  }
  if (rc < 0) throw nativeError(rc, op); // nothing was queued
  if (rc === 1) persist.persist = true;
  return SENT;
}

/**
 * The error for a record still unwritten after its device closed: closing
 * waits for every descriptor a device accepted, so this one was lost (a
 * WQ dropped it, or its record could not be written).
 */
function lostError(op: string, device: string): PmemError {
  return new PmemError(
    op,
    -5,
    `${device} closed without completing the operation (its descriptor ` +
      "or record was lost)",
    { errno: 5 },
  );
}

/** Persist a range the device wrote but could not make durable. */
function persistOnCpu(
  dev: CompletionDevice,
  op: CheckedOp,
  from = 0,
  to = op.length,
): void {
  if (to <= from) return;
  assertAttached(op, to);
  dev.stats.cpuPersists++;
  check(
    native.ap_cpu_flush(
      op.dst,
      op.dst.byteLength,
      op.dstOffset + from,
      to - from,
    ),
    op.op,
  );
}

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
    op.src === undefined ? op.dstOffset + start : start,
    len,
    op.value,
  );
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
        op.src === undefined ? op.dstOffset : 0,
        op.length,
        op.value,
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
      if (dev.closed) throw new ClosedError(dev.name, "batch");
      ctx.waitOn(dev);
      if (!this.#build()) return NOT_STARTED;
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
        dev.stats.cpuFallbacks++;
        for (const op of this.#ops) executeOnCpu(op);
        return;
      }
      this.#submitted = true;
      dev.submitted();
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
