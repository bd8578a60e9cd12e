// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Intel DSA's descriptor and completion-record constants, as raw values
 * (the kernel's `linux/idxd.h`; a test checks them against the header).
 * The software device and DSA hardware write the same 32-byte records, so
 * one polling path reads both.
 *
 * @module
 */

/**
 * Operation codes.
 *
 * @example Usage
 * ```ts
 * import { DsaDescriptor, DsaOpcode } from "@asyncpmem/asyncpmem/mover";
 * import assert from "node:assert/strict";
 *
 * const desc = new Uint8Array(DsaDescriptor.SIZE);
 * desc[DsaDescriptor.OPCODE] = DsaOpcode.MEMMOVE;
 * assert.equal(desc[7], 0x03);
 * ```
 */
export const DsaOpcode = {
  NOOP: 0x00,
  BATCH: 0x01,
  DRAIN: 0x02,
  MEMMOVE: 0x03,
  MEMFILL: 0x04,
  CFLUSH: 0x20,
} as const;

/**
 * Descriptor flags (bits 0-15).
 *
 * @example Usage
 * ```ts
 * import { DsaFlag } from "@asyncpmem/asyncpmem/mover";
 * import assert from "node:assert/strict";
 *
 * // what every descriptor asks for: a completion record, written
 * const flags = DsaFlag.COMPLETION_ADDR_VALID | DsaFlag.REQUEST_COMPLETION;
 * assert.equal(flags, 0x000c);
 * ```
 */
export const DsaFlag = {
  FENCE: 0x0001,
  BLOCK_ON_FAULT: 0x0002,
  COMPLETION_ADDR_VALID: 0x0004,
  REQUEST_COMPLETION: 0x0008,
  CACHE_CONTROL: 0x0100,
  DEST_READBACK: 0x4000,
} as const;

/**
 * Completion status codes (status byte & 0x7f): every one of `linux/idxd.h`.
 *
 * @example Usage
 * ```ts
 * import {
 *   DSA_STATUS_MASK,
 *   DSA_STATUS_WRITE_FAULT,
 *   DsaStatus,
 * } from "@asyncpmem/asyncpmem/mover";
 * import assert from "node:assert/strict";
 *
 * const status = 0x83; // a page fault on a write
 * assert.equal(status & DSA_STATUS_MASK, DsaStatus.PAGE_FAULT_NOBOF);
 * assert.ok(status & DSA_STATUS_WRITE_FAULT);
 * ```
 */
export const DsaStatus = {
  NONE: 0x00,
  SUCCESS: 0x01,
  SUCCESS_PRED: 0x02,
  PAGE_FAULT_NOBOF: 0x03,
  PAGE_FAULT_IR: 0x04,
  BATCH_FAIL: 0x05,
  BATCH_PAGE_FAULT: 0x06,
  DR_OFFSET_NOINC: 0x07,
  DR_OFFSET_ERANGE: 0x08,
  DIF_ERR: 0x09,
  BAD_OPCODE: 0x10,
  INVALID_FLAGS: 0x11,
  NOZERO_RESERVE: 0x12,
  XFER_ERANGE: 0x13,
  DESC_CNT_ERANGE: 0x14,
  DR_ERANGE: 0x15,
  OVERLAP_BUFFERS: 0x16,
  DCAST_ERR: 0x17,
  DESCLIST_ALIGN: 0x18,
  INT_HANDLE_INVAL: 0x19,
  CRA_XLAT: 0x1a,
  CRA_ALIGN: 0x1b,
  ADDR_ALIGN: 0x1c,
  PRIV_BAD: 0x1d,
  TRAFFIC_CLASS_CONF: 0x1e,
  PFAULT_RDBA: 0x1f,
  HW_ERR1: 0x20,
  /** A hardware error of the destination readback (DRDBK). */
  HW_ERR_DRB: 0x21,
  TRANSLATION_FAIL: 0x22,
} as const;

/**
 * Bit 7 of the status byte: the page fault was on a write.
 *
 * @example Usage
 * ```ts
 * import { DSA_STATUS_WRITE_FAULT } from "@asyncpmem/asyncpmem/mover";
 * import assert from "node:assert/strict";
 *
 * assert.ok(0x83 & DSA_STATUS_WRITE_FAULT); // faulted writing
 * assert.ok(!(0x03 & DSA_STATUS_WRITE_FAULT)); // faulted reading
 * ```
 */
export const DSA_STATUS_WRITE_FAULT = 0x80;
/**
 * Mask of the status code in the status byte.
 *
 * @example Usage
 * ```ts
 * import { DSA_STATUS_MASK, DsaStatus } from "@asyncpmem/asyncpmem/mover";
 * import assert from "node:assert/strict";
 *
 * assert.equal(0x81 & DSA_STATUS_MASK, DsaStatus.SUCCESS);
 * ```
 */
export const DSA_STATUS_MASK = 0x7f;

/**
 * Completion-record layout (bytes).
 *
 * @example Usage
 * ```ts
 * import { DsaRecord, DsaStatus } from "@asyncpmem/asyncpmem/mover";
 * import assert from "node:assert/strict";
 *
 * const record = new Uint8Array(DsaRecord.SIZE);
 * record[DsaRecord.STATUS] = DsaStatus.SUCCESS;
 * const view = new DataView(record.buffer);
 * assert.equal(view.getUint32(DsaRecord.BYTES_COMPLETED, true), 0);
 * ```
 */
export const DsaRecord = {
  SIZE: 32,
  STATUS: 0,
  RESULT: 1,
  BYTES_COMPLETED: 4,
  FAULT_ADDR: 8,
  INVALID_FLAGS: 16,
} as const;

/**
 * Descriptor layout (bytes).
 *
 * @example Usage
 * ```ts
 * import { DsaDescriptor } from "@asyncpmem/asyncpmem/mover";
 * import assert from "node:assert/strict";
 *
 * const desc = new DataView(new ArrayBuffer(DsaDescriptor.SIZE));
 * desc.setUint32(DsaDescriptor.XFER_SIZE, 4096, true);
 * assert.equal(desc.getUint32(32, true), 4096);
 * ```
 */
export const DsaDescriptor = {
  SIZE: 64,
  /** 24 bits of flags from here (bits 0-23 of the second dword). */
  FLAGS: 4,
  OPCODE: 7,
  COMPLETION_ADDR: 8,
  SRC_ADDR: 16,
  /** MEMFILL's 8-byte pattern, where a copy's source goes. */
  PATTERN: 16,
  /** BATCH's member list, where a copy's source goes. */
  DESC_LIST_ADDR: 16,
  DST_ADDR: 24,
  XFER_SIZE: 32,
  /** BATCH's member count, where a copy's size goes. */
  DESC_COUNT: 32,
  INT_HANDLE: 36,
  /** Reserved: must be zero. */
  RSVD1: 38,
} as const;

/**
 * The name of a status code, for messages.
 *
 * @example Usage
 * ```ts
 * import { dsaStatusName, DsaStatus } from "@asyncpmem/asyncpmem/mover";
 * import assert from "node:assert/strict";
 *
 * assert.equal(dsaStatusName(DsaStatus.SUCCESS), "0x01 (SUCCESS)");
 * // bit 7 (a fault on a write) is not part of the code
 * assert.equal(dsaStatusName(0x83), "0x83 (PAGE_FAULT_NOBOF)");
 * ```
 */
export function dsaStatusName(status: number): string {
  const code = status & DSA_STATUS_MASK;
  const name = Object.entries(DsaStatus).find(([, v]) => v === code)?.[0];
  return `0x${status.toString(16).padStart(2, "0")} (${name ?? "UNKNOWN"})`;
}
