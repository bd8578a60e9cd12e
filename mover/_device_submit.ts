// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * What the futures over a {@linkcode CompletionDevice} share: the flags
 * and opcode of an operation's descriptor, one submission and the three
 * answers to it -- sent, full (retry when something completes), busy (a
 * shared WQ kept answering retry: back off in the event loop, then finish
 * on the CPU) -- and the errors a record can end in.
 *
 * @module
 */
import { PmemError } from "../errors/mod.ts";
import { check, native, nativeError } from "../ffi/lib.ts";
import { bufferOf, byteLengthOf } from "../ffi/validate.ts";
import { assertAttached } from "./cpu.ts";
import type { CompletionDevice } from "./_device.ts";
import { DsaFlag, DsaOpcode, DsaStatus, dsaStatusName } from "./dsa_format.ts";
import { type CheckedOp, VdmFlags } from "./vdm.ts";
import { EAGAIN, EBUSY, EFAULT, EIO } from "../errors/errno.ts";

/** After this many partial completions of one chunk, finish it on the CPU. */
export const MAX_RESUBMITS = 1;
/**
 * After this many busy answers of a shared WQ to one operation (each after
 * the shim's own retries with backoff), finish it on the CPU: others keep
 * the WQ full, and waiting longer only delays the work (DTO gives up at
 * once; the reference advises a bounded backoff).
 */
export const BUSY_LIMIT = 16;
/** GENCAP bit 1: the device copies overlapping ranges itself. */
export const GEN_CAP_OVERLAP = 2;

/**
 * Whether `op` is a copy between overlapping ranges that `dev` cannot
 * make (no GENCAP bit 1: it would fail with status 0x16), so the CPU
 * makes it.
 */
export function overlapOnCpu(dev: CompletionDevice, op: CheckedOp): boolean {
  return op.op === "memmove" &&
    (dev.info.genCap & GEN_CAP_OVERLAP) === 0 &&
    overlapOf(op) !== 0;
}

/**
 * How a copy's ranges overlap (`ap_overlap`): 1 when the destination lies
 * above the source and they overlap, -1 below, 0 when disjoint.
 */
export function overlapOf(op: CheckedOp): number {
  return native.ap_overlap(
    op.dst,
    byteLengthOf(op.dst),
    op.dstOffset,
    op.src!,
    byteLengthOf(op.src!),
    op.srcOffset,
    op.length,
  );
}

/**
 * The parts of one batch that go out as several futures (see
 * `DeviceMover.runBatch`). Once any part has started, the batch has: a
 * part that a close() then finds not started runs on the CPU instead of
 * failing with ClosedError, as the device finishes what it accepted.
 */
export interface BatchStart {
  started: boolean;
}

/** What a submission got: queued, or refused for now. */
export const SENT = 0;
/** The queue is full: retry once something completed. */
export const FULL = 1;
/** A shared WQ answered retry: retry soon. */
export const BUSY = 2;

/** The outcome of {@linkcode submit}: SENT, FULL, BUSY. */
export type Sent = typeof SENT | typeof FULL | typeof BUSY;

/**
 * Classify a submission's return code: 1 asks for a CPU persist of the
 * destination after completion (see `ap_dev_submit`).
 */
export function sent(
  rc: number,
  dev: CompletionDevice,
  op: string,
  persist: { persist: boolean },
): Sent {
  if (rc === -EAGAIN) return FULL; // the queue is full (or no credit is left)
  if (rc === -EBUSY) { // a shared WQ kept answering retry
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
export function lostError(op: string, device: string): PmemError {
  return new PmemError(
    op,
    -EIO,
    `${device} closed without completing the operation (its descriptor ` +
      "or record was lost)",
  );
}

/** Persist a range the device wrote but could not make durable. */
export function persistOnCpu(
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
      byteLengthOf(op.dst),
      op.dstOffset + from,
      to - from,
    ),
    op.op,
  );
}

/** The DSA opcode of each operation. */
export const OPCODES = {
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
  // CC=1 asks to allocate destination lines in the LLC; NO_CACHE_HINT
  // clears it. A durable write clears it too: on an ADR platform the LLC
  // is outside the persistence domain, and destination readback is only
  // sure to reach memory for lines written to memory (CC=0) — the
  // conservative reading of the spec, at no cost on pmem, where DSA
  // writes to memory anyway.
  if (
    !(op.flags & (VdmFlags.NO_CACHE_HINT | VdmFlags.DURABLE)) &&
    op.op !== "flush"
  ) {
    f |= DsaFlag.CACHE_CONTROL;
  }
  return f;
}

/**
 * The error for a record that completed with a failure status: EFAULT
 * for an address that could not be translated or a fault the OS could
 * not resolve (a bad address, not worth a retry), EIO for the others.
 */
export function statusError(
  op: string,
  status: number,
  device: string,
): PmemError {
  const errno = status === DsaStatus.PAGE_FAULT_IR ||
      status === DsaStatus.TRANSLATION_FAIL
    ? EFAULT
    : EIO;
  return new PmemError(
    op,
    -errno,
    `${device} completed with status ${dsaStatusName(status)}`,
    { errno },
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
export function pin(op: CheckedOp): void {
  // the engine's getter (see `bufferOf`): a subclass's `buffer` getter
  // would leave the bytes where they are
  bufferOf(op.dst);
  if (op.src !== undefined) bufferOf(op.src);
}

/** Submit `[start, start+len)` of `op` into `rec`; a negative code on failure. */
export function submit(
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
    byteLengthOf(op.dst),
    op.dstOffset + start,
    src,
    byteLengthOf(src),
    op.src === undefined ? op.dstOffset + start : op.srcOffset + start,
    len,
    op.value,
  );
}

/**
 * Write `op` (all of it) as member `idx` of batch list `list`, completing
 * into `rec`; the return code of `ap_dev_batch_set` (1: persist after).
 */
export function setMember(
  dev: CompletionDevice,
  list: number,
  idx: number,
  rec: number,
  op: CheckedOp,
  flags: number,
): number {
  const src = op.src ?? op.dst;
  return native.ap_dev_batch_set(
    dev.handle("batch"),
    list,
    idx,
    rec,
    OPCODES[op.op],
    flags,
    op.dst,
    byteLengthOf(op.dst),
    op.dstOffset,
    src,
    byteLengthOf(src),
    op.src === undefined ? op.dstOffset : op.srcOffset,
    op.length,
    op.value,
  );
}
