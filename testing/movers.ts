// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * What tests do to the movers' devices: faults injected into the software
 * DSA device (a {@linkcode ThreadMover}'s, or the one behind a test
 * portal), a {@linkcode DsaMover} on a test portal (the hardware path
 * without the hardware), and the counters that show a test exercised what
 * it meant to. Re-exported by the testing entry point.
 *
 * @module
 */
import { check, native } from "../ffi/lib.ts";
import { checkSize } from "../ffi/validate.ts";
import type { CompletionDevice, DeviceStats } from "../mover/_device.ts";
import { DsaMover, dsaMoverDevice } from "../mover/dsa.ts";
import {
  type DsaTestPortalOptions,
  injectBusy as injectPortalBusy,
  openDsaTestPortal,
  type PortalCounters,
  portalCounters as readPortalCounters,
} from "../mover/_dsa_test_portal.ts";
import { DSA_STATUS_WRITE_FAULT, DsaStatus } from "../mover/dsa_format.ts";
import { ThreadMover, threadMoverDevice } from "../mover/thread.ts";

/**
 * The device of a ThreadMover or a DsaMover; a TypeError naming both, and
 * the call (`what`: its verb), for anything else.
 */
function deviceOf(mover: unknown, what: string): CompletionDevice {
  if (mover instanceof ThreadMover) return threadMoverDevice(mover);
  if (mover instanceof DsaMover) return dsaMoverDevice(mover);
  throw new TypeError(
    `Cannot ${what}: mover must be a ThreadMover or a DsaMover`,
  );
}

/** Options of {@linkcode injectFault}. */
export interface FaultOptions {
  /** The fault was on a write (status bit 7). @default true */
  write?: boolean;
  /**
   * The status byte to complete with instead of a page fault (then no
   * partial completion is modelled, only the failure): an integer in
   * [1, 255] (0 is no completion).
   */
  status?: number;
  /** How many descriptors fault. @default 1 */
  count?: number;
}

/**
 * Make the next `count` MEMMOVE/MEMFILL/CFLUSH descriptors of a
 * {@linkcode ThreadMover}'s device (or of the software device behind a
 * DsaMover's test portal) that are longer than `atByte` stop after
 * `atByte` bytes with a page-fault status: a partial completion, as DSA
 * hardware reports one. A negative `atByte` disarms it.
 *
 * @example Usage
 * ```ts
 * import { ThreadMover } from "@asyncpmem/asyncpmem";
 * import { deviceStats, injectFault } from "@asyncpmem/asyncpmem/testing";
 * import assert from "node:assert/strict";
 *
 * using mover = new ThreadMover({ threads: 1, inlineThreshold: 0 });
 * injectFault(mover, 100);
 * const dst = new Uint8Array(4096);
 * await mover.memset(dst, 9);
 * assert.equal(dst[4095], 9);
 * assert.equal(deviceStats(mover).partialCompletions, 1);
 * ```
 *
 * @throws {TypeError} when `mover` is neither a ThreadMover nor a DsaMover
 * @throws {RangeError} for an `atByte`, `count` or `status` out of range
 * @throws {ClosedError} when the mover is closed
 * @throws {NotSupportedError} for a DsaMover on real hardware
 */
export function injectFault(
  mover: ThreadMover | DsaMover,
  atByte: number,
  options: FaultOptions = {},
): void {
  const device = deviceOf(mover, "inject a fault");
  if (typeof options !== "object" || options === null) {
    throw new TypeError("Cannot inject a fault: options must be an object");
  }
  // anything else but a boolean read as true (a write fault)
  if (options.write !== undefined && typeof options.write !== "boolean") {
    throw new TypeError("Cannot inject a fault: write must be a boolean");
  }
  if (typeof atByte !== "number" || Number.isNaN(atByte)) {
    throw new TypeError("Cannot inject a fault: atByte must be a number");
  }
  const count = checkSize(options.count ?? 1, "count", "inject a fault");
  // a completion record's status byte: 0 means "not complete yet", so a
  // descriptor completed with it (or with 256, or NaN, both stored as
  // 0) would leave its future pending forever
  if (
    options.status !== undefined &&
    (!Number.isInteger(options.status) || options.status < 1 ||
      options.status > 255)
  ) {
    throw new RangeError(
      `Cannot inject a fault: status must be a completion status byte in [1, 255], got ${options.status}`,
    );
  }
  const status = options.status ?? (DsaStatus.PAGE_FAULT_NOBOF |
    (options.write === false ? 0 : DSA_STATUS_WRITE_FAULT));
  check(
    native.ap_dev_inject_fault(
      device.handle("injectFault"),
      atByte < 0 ? -1 : checkSize(atByte, "atByte", "inject a fault"),
      status,
      count,
    ),
    "injectFault",
  );
}

/**
 * A snapshot of what a {@linkcode ThreadMover}'s or DsaMover's device
 * counted: sleeps and lost wake-ups, partial completions, resubmissions,
 * CPU fallbacks, pages touched, busy answers, CPU persists.
 *
 * @example Usage
 * ```ts
 * import { ThreadMover } from "@asyncpmem/asyncpmem";
 * import { deviceStats } from "@asyncpmem/asyncpmem/testing";
 * import assert from "node:assert/strict";
 *
 * using mover = new ThreadMover({ threads: 1 });
 * assert.equal(deviceStats(mover).lostWakeups, 0);
 * ```
 *
 * @throws {TypeError} when `mover` is neither a ThreadMover nor a DsaMover
 */
export function deviceStats(mover: ThreadMover | DsaMover): DeviceStats {
  return { ...deviceOf(mover, "read device stats").stats };
}

/**
 * Bytes the native side has written with non-temporal stores on the CPU,
 * process-wide: the copies and fills asked not to leave their destination
 * in the cache (`VdmFlags.NO_CACHE_HINT`, a mapping's `NONTEMPORAL`) that
 * took that path, by the CPU mover, a `ThreadMover`'s engines or a
 * mapping. The bytes written are the same either way; this is what tells
 * a test the hint was honoured. Always 0 where the CPU has no such stores
 * (only x86-64 has them here).
 *
 * @example Usage
 * ```ts
 * import { CpuMover, VdmFlags, wait } from "@asyncpmem/asyncpmem";
 * import { streamedBytes } from "@asyncpmem/asyncpmem/testing";
 * import assert from "node:assert/strict";
 *
 * using mover = new CpuMover();
 * const before = streamedBytes();
 * wait(mover.memcpy(new Uint8Array(4096), new Uint8Array(4096), VdmFlags.NO_CACHE_HINT));
 * assert.ok(streamedBytes() >= before);
 * ```
 */
export function streamedBytes(): number {
  return native.ap_streamed_bytes();
}

/**
 * A {@linkcode DsaMover} on a test portal: everything of the hardware
 * path -- the descriptor builder, credits or ENQCMD's retry answers or
 * `write(2)`, the watcher thread that notices completions, the record
 * polling -- with the software device standing in for DSA behind the
 * work queue's interface (a page it watches, written with MOVDIR64B where
 * the CPU has it, or a socket).
 *
 * @example Usage
 * ```ts
 * import { openTestPortal, portalCounters } from "@asyncpmem/asyncpmem/testing";
 * import assert from "node:assert/strict";
 *
 * using dsa = openTestPortal({ mode: "dedicated", queueSize: 4 });
 * const dst = new Uint8Array(1 << 16);
 * await dsa.memset(dst, 5);
 * assert.equal(dst[65535], 5);
 * assert.equal(portalCounters(dsa).drops, 0);
 * ```
 *
 * @throws {RangeError} for an option out of range
 * @throws {TypeError} when `options` is not an object or `overlappingCopies`
 *   not a boolean
 */
export function openTestPortal(options: DsaTestPortalOptions = {}): DsaMover {
  return openDsaTestPortal(options);
}

/**
 * A DsaMover's work-queue counters: refusals for want of credit, retry
 * answers, busy give-ups, descriptors a test portal dropped (a full
 * dedicated WQ drops them: a credit bug), descriptors sent, completions
 * noticed by the watcher or by a submitter, watcher sleeps.
 *
 * @example Usage
 * ```ts
 * import { openTestPortal, portalCounters } from "@asyncpmem/asyncpmem/testing";
 * import assert from "node:assert/strict";
 *
 * using dsa = openTestPortal();
 * await dsa.memset(new Uint8Array(4096), 1);
 * assert.equal(portalCounters(dsa).sent, 1);
 * ```
 *
 * @throws {TypeError} when `mover` is not a DsaMover
 */
export function portalCounters(mover: DsaMover): PortalCounters {
  return readPortalCounters(mover);
}

/**
 * Make a shared test portal answer "retry" to the next `count` attempts
 * to enqueue, as a shared WQ that other processes keep full.
 *
 * @example Usage
 * ```ts
 * import { deviceStats, injectBusy, openTestPortal } from "@asyncpmem/asyncpmem/testing";
 * import assert from "node:assert/strict";
 *
 * using dsa = openTestPortal({ mode: "shared" });
 * injectBusy(dsa, 3); // the shim's own retries absorb these
 * await dsa.memset(new Uint8Array(4096), 1);
 * assert.equal(deviceStats(dsa).busyAnswers, 0);
 * ```
 *
 * @throws {NotSupportedError} unless `mover` is on a shared test portal
 */
export function injectBusy(mover: DsaMover, count: number): void {
  injectPortalBusy(mover, count);
}
