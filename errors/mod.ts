// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The errors of asyncpmem. Bad arguments raise `TypeError` or `RangeError`
 * before any native call; everything after raises a
 * {@linkcode PmemError}, or a subclass where callers branch on it.
 *
 * ```ts
 * import { ClosedError, PmemError } from "@asyncpmem/asyncpmem/errors";
 * import assert from "node:assert/strict";
 *
 * const e = new ClosedError("Mapping", "persist");
 * assert.ok(e instanceof PmemError);
 * assert.equal(e.codeName, "AP_E_CLOSED");
 * ```
 *
 * @module
 */
import { EBADF, EIO, ENOSPC } from "./errno.ts";

/**
 * The native shim's own error codes (`AP_E_*` in `c/asyncpmem.h`; a test
 * checks the two agree). They lie below `PMEM2_E_*` and `-errno`.
 *
 * @example Usage
 * ```ts
 * import { PmemError, ShimCode } from "@asyncpmem/asyncpmem/errors";
 * import assert from "node:assert/strict";
 *
 * const e = new PmemError("read", ShimCode.RANGE, "out of range");
 * assert.equal(e.codeName, "AP_E_RANGE");
 * ```
 */
export const ShimCode = {
  /** An argument the shim refused. */
  INVALID_ARG: -200001,
  /** A range leaving its buffer or mapping. */
  RANGE: -200002,
  /** The object (mapping, device) is closed or closing. */
  CLOSED: -200003,
  /** A resource is still in use (a record, a mapping with references). */
  BUSY: -200004,
} as const;

/**
 * libpmem2 and shim error code names, by value.
 *
 * @example Usage
 * ```ts
 * import { ERROR_CODES } from "@asyncpmem/asyncpmem/errors";
 * import assert from "node:assert/strict";
 *
 * assert.equal(ERROR_CODES[-100001], "PMEM2_E_NOSUPP");
 * ```
 */
export const ERROR_CODES: Readonly<Record<number, string>> = {
  [-100000]: "PMEM2_E_UNKNOWN",
  [-100001]: "PMEM2_E_NOSUPP",
  [-100003]: "PMEM2_E_FILE_HANDLE_NOT_SET",
  [-100004]: "PMEM2_E_INVALID_FILE_HANDLE",
  [-100005]: "PMEM2_E_INVALID_FILE_TYPE",
  [-100006]: "PMEM2_E_MAP_RANGE",
  [-100007]: "PMEM2_E_MAPPING_EXISTS",
  [-100008]: "PMEM2_E_GRANULARITY_NOT_SET",
  [-100009]: "PMEM2_E_GRANULARITY_NOT_SUPPORTED",
  [-100010]: "PMEM2_E_OFFSET_OUT_OF_RANGE",
  [-100011]: "PMEM2_E_OFFSET_UNALIGNED",
  [-100012]: "PMEM2_E_INVALID_ALIGNMENT_FORMAT",
  [-100013]: "PMEM2_E_INVALID_ALIGNMENT_VALUE",
  [-100014]: "PMEM2_E_INVALID_SIZE_FORMAT",
  [-100015]: "PMEM2_E_LENGTH_UNALIGNED",
  [-100016]: "PMEM2_E_MAPPING_NOT_FOUND",
  [-100017]: "PMEM2_E_BUFFER_TOO_SMALL",
  [-100018]: "PMEM2_E_SOURCE_EMPTY",
  [-100019]: "PMEM2_E_INVALID_SHARING_VALUE",
  [-100020]: "PMEM2_E_SRC_DEVDAX_PRIVATE",
  [-100021]: "PMEM2_E_INVALID_ADDRESS_REQUEST_TYPE",
  [-100022]: "PMEM2_E_ADDRESS_UNALIGNED",
  [-100023]: "PMEM2_E_ADDRESS_NULL",
  [-100024]: "PMEM2_E_DEEP_FLUSH_RANGE",
  [-100025]: "PMEM2_E_INVALID_REGION_FORMAT",
  [-100026]: "PMEM2_E_DAX_REGION_NOT_FOUND",
  [-100027]: "PMEM2_E_INVALID_DEV_FORMAT",
  [-100028]: "PMEM2_E_CANNOT_READ_BOUNDS",
  [-100029]: "PMEM2_E_NO_BAD_BLOCK_FOUND",
  [-100030]: "PMEM2_E_LENGTH_OUT_OF_RANGE",
  [-100031]: "PMEM2_E_INVALID_PROT_FLAG",
  [-100032]: "PMEM2_E_NO_ACCESS",
  [-100033]: "PMEM2_E_VM_RESERVATION_NOT_EMPTY",
  [-100034]: "PMEM2_E_MAP_EXISTS",
  [-100035]: "PMEM2_E_FILE_DESCRIPTOR_NOT_SET",
  [-100036]: "PMEM2_E_SOURCE_TYPE_NOT_SUPPORTED",
  [-100037]: "PMEM2_E_IO_FAIL",
  [ShimCode.INVALID_ARG]: "AP_E_INVALID_ARG",
  [ShimCode.RANGE]: "AP_E_RANGE",
  [ShimCode.CLOSED]: "AP_E_CLOSED",
  [ShimCode.BUSY]: "AP_E_BUSY",
};

/** Options of {@linkcode PmemError}. */
export interface PmemErrorOptions extends ErrorOptions {
  /** errno equivalent (0 when none applies). */
  errno?: number;
}

/**
 * A failure reported by native code: libpmem2, the shim, or a data mover.
 *
 * @example Usage
 * ```ts
 * import { PmemError } from "@asyncpmem/asyncpmem/errors";
 * import assert from "node:assert/strict";
 *
 * const e = new PmemError("map", -100009, "granularity not supported");
 * assert.equal(e.codeName, "PMEM2_E_GRANULARITY_NOT_SUPPORTED");
 * assert.equal(e.op, "map");
 * ```
 */
export class PmemError extends Error {
  /** The negative code (`-errno`, `PMEM2_E_*`, or `AP_E_*`). */
  readonly code: number;
  /** The errno equivalent of {@linkcode PmemError.code}. */
  readonly errno: number;
  /** The operation that failed, e.g. `"map"` or `"memcpyAsync"`. */
  readonly op: string;

  /**
   * Create an error for a failed native operation.
   *
   * @param op the operation that failed
   * @param code the negative native code
   * @param message the native message
   */
  constructor(
    op: string,
    code: number,
    message: string,
    options?: PmemErrorOptions,
  ) {
    super(`${op}: ${message}`, options);
    this.name = "PmemError";
    this.op = op;
    this.code = code;
    this.errno = options?.errno ?? (code < 0 && code > -100000 ? -code : 0);
  }

  /** The symbolic name of {@linkcode PmemError.code}, when it has one. */
  get codeName(): string {
    return ERROR_CODES[this.code] ?? `errno ${-this.code}`;
  }
}

/**
 * The operation is not supported here (a RAS query on a non-DAX file, a
 * flag a mover cannot honour).
 *
 * @example Usage
 * ```ts
 * import { NotSupportedError, PmemError } from "@asyncpmem/asyncpmem/errors";
 * import assert from "node:assert/strict";
 *
 * const e = new NotSupportedError("deviceUsc", -100001, "no usc here");
 * assert.ok(e instanceof PmemError);
 * ```
 */
export class NotSupportedError extends PmemError {
  /**
   * Create an error for an unsupported operation.
   *
   * @param op the operation
   * @param code the negative native code
   * @param message the native message
   */
  constructor(
    op: string,
    code: number,
    message: string,
    options?: PmemErrorOptions,
  ) {
    super(op, code, message, options);
    this.name = "NotSupportedError";
  }
}

/**
 * The object was closed; the operation did not touch native memory.
 *
 * @example Usage
 * ```ts
 * import { ClosedError } from "@asyncpmem/asyncpmem/errors";
 * import assert from "node:assert/strict";
 *
 * assert.equal(new ClosedError("Map", "persist").message, "persist: Map is closed");
 * ```
 */
export class ClosedError extends PmemError {
  /**
   * Create the error for an operation on a closed object.
   *
   * @param what the kind of object that is closed
   * @param op the operation attempted
   * @param message what happened, when more than "`what` is closed"
   */
  constructor(what: string, op: string, message?: string) {
    super(op, ShimCode.CLOSED, message ?? `${what} is closed`, {
      errno: EBADF,
    });
    this.name = "ClosedError";
  }
}

/**
 * A block store block is in the error state (libpmemblk's EIO).
 *
 * @example Usage
 * ```ts
 * import { BadBlockError } from "@asyncpmem/asyncpmem/errors";
 * import assert from "node:assert/strict";
 *
 * assert.equal(new BadBlockError("read", 7).lba, 7);
 * ```
 */
export class BadBlockError extends PmemError {
  /** The logical block address in the error state. */
  readonly lba: number;
  /**
   * Create the error for a block in the error state.
   *
   * @param op the operation that hit the block
   * @param lba the block
   */
  constructor(op: string, lba: number) {
    super(op, -EIO, `block ${lba} is in the error state`);
    this.name = "BadBlockError";
    this.lba = lba;
  }
}

/**
 * There is no room left (a full log region, a full pool).
 *
 * @example Usage
 * ```ts
 * import { OutOfSpaceError } from "@asyncpmem/asyncpmem/errors";
 * import assert from "node:assert/strict";
 *
 * assert.equal(new OutOfSpaceError("append", "region full").errno, 28);
 * ```
 */
export class OutOfSpaceError extends PmemError {
  /**
   * Create an out-of-space error.
   *
   * @param op the operation that ran out of space
   * @param message what was full
   */
  constructor(op: string, message: string) {
    super(op, -ENOSPC, message);
    this.name = "OutOfSpaceError";
  }
}
