// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * A {@linkcode DsaMover} on a test portal -- the hardware path end to
 * end, with the software device behind the WQ's interface (see
 * `c/dsa_test.c`) -- and the portal's counters and busy answers: what
 * tests need of the DSA mover, apart from the mover itself. Reached
 * through the testing entry point (`testing/movers.ts`); not exported
 * from the mover module.
 *
 * @module
 */
import { ShimCode } from "../errors/mod.ts";
import { native, nativeError } from "../ffi/lib.ts";
import { checkSize } from "../ffi/validate.ts";
import { CompletionDevice } from "./_device.ts";
import {
  type DsaMover,
  dsaMoverDevice,
  LISTS,
  makeDsaMover,
  option,
  RECORDS,
} from "./dsa.ts";

/** Options of {@linkcode openDsaTestPortal}. */
export interface DsaTestPortalOptions {
  /**
   * How the mover submits: MOVDIR64B into a watched page (`dedicated`),
   * an emulated ENQCMD into it (`shared`), or `write(2)` to a socket
   * (`write`, which takes no BATCH). @default "dedicated"
   */
  mode?: "dedicated" | "shared" | "write";
  /** WQ size, a power of two in 2..32. @default 16 */
  queueSize?: number;
  /** Most BATCH members, 0 or 2..32. @default 32 */
  maxBatch?: number;
  /** Largest transfer of one descriptor. @default 2 MiB */
  maxTransfer?: number;
  /** Engines (threads) of the software device behind it. @default 2 */
  engines?: number;
  /** Completion records. @default 1024 */
  records?: number;
  /** Batch lists. @default 64 */
  batchLists?: number;
  /** See {@linkcode DsaMoverOptions.inlineThreshold}. @default 0 */
  inlineThreshold?: number;
  /**
   * Whether the device copies overlapping ranges (GENCAP bit 1). Without
   * it the device fails an overlapping MEMMOVE with status 0x16, as such
   * hardware does, and the mover copies those ranges on the CPU.
   * @default true
   */
  overlappingCopies?: boolean;
}

const KINDS = { dedicated: 1, shared: 2, write: 3 } as const;
/** `ap_dsa_open_test`'s flag: GENCAP bit 1 clear. */
const NO_OVERLAP = 1;

/**
 * Assert that a checked size option fits the shim's u32 parameter: Deno's
 * FFI refuses a larger one with its own TypeError, and Bun keeps its low
 * 32 bits (2^32 + 32 opened a portal of 32).
 */
function u32(value: number, name: string): number {
  if (value > 0xffffffff) {
    throw new RangeError(
      `Cannot open a test portal: ${name} must be at most 2^32 - 1, got ${value}`,
    );
  }
  return value;
}

/**
 * A {@linkcode DsaMover} on a test portal: the hardware path end to end,
 * with the software device behind the WQ's interface (see
 * `c/dsa_test.c`). Reached through the testing entry point.
 *
 * @throws {RangeError} for an option out of range
 * @throws {TypeError} when `options` is not an object or `overlappingCopies`
 *   not a boolean
 */
export function openDsaTestPortal(
  options: DsaTestPortalOptions = {},
): DsaMover {
  if (typeof options !== "object" || options === null) {
    throw new TypeError("Cannot open a test portal: options must be an object");
  }
  const mode = options.mode ?? "dedicated";
  if (typeof mode !== "string" || !Object.hasOwn(KINDS, mode)) {
    throw new RangeError(`Cannot open a test portal: unknown mode '${mode}'`);
  }
  const size = u32(option(options.queueSize, 16, "queueSize"), "queueSize");
  const maxBatch = u32(option(options.maxBatch, 32, "maxBatch"), "maxBatch");
  const maxTransfer = option(options.maxTransfer, 2 ** 21, "maxTransfer");
  const engines = u32(option(options.engines, 2, "engines"), "engines");
  const records = u32(option(options.records, RECORDS, "records"), "records");
  const lists = u32(
    option(options.batchLists, LISTS, "batchLists"),
    "batchLists",
  );
  const threshold = option(options.inlineThreshold, 0, "inlineThreshold");
  const overlapping = options.overlappingCopies ?? true;
  if (typeof overlapping !== "boolean") {
    throw new TypeError(
      "Cannot open a test portal: overlappingCopies must be a boolean",
    );
  }
  const device = new CompletionDevice("DsaMover", (cell) => {
    const rc = native.ap_dsa_open_test(
      cell,
      KINDS[mode],
      size,
      maxBatch,
      maxTransfer,
      engines,
      records,
      lists,
      overlapping ? 0 : NO_OVERLAP,
    );
    if (rc === ShimCode.INVALID_ARG) {
      throw new RangeError(
        `Cannot open a test portal: ${nativeError(rc, "open").message}`,
      );
    }
    return rc;
  });
  return makeDsaMover(device, threshold, {
    device: "test",
    name: `test-portal-${mode}`,
    mode: mode === "shared" ? "shared" : "dedicated",
    path: "",
    size,
  });
}

/** A WQ's counters (see `ap_dsa_counters`). */
export interface PortalCounters {
  /** Submissions refused for want of a dedicated WQ's credit. */
  creditWaits: number;
  /** "Retry" answers of ENQCMD (or the test portal's emulation). */
  retries: number;
  /** Submissions given up as busy after the shim's retries. */
  busy: number;
  /** Descriptors a test portal's WQ dropped: it was full (a credit bug). */
  drops: number;
  /** Descriptors sent. */
  sent: number;
  /** Completions the watcher noticed. */
  reaped: number;
  /** Completions a submitter noticed before the watcher. */
  reapedInline: number;
  /** Sleeps of the watcher while work was in flight. */
  watcherSleeps: number;
}

/** The counters `ap_dsa_counters` fills, in its order. */
const COUNTERS = [
  "creditWaits",
  "retries",
  "busy",
  "drops",
  "sent",
  "reaped",
  "reapedInline",
  "watcherSleeps",
] as const;

/** A DsaMover's WQ counters. Internal (testing hooks). */
export function portalCounters(mover: DsaMover): PortalCounters {
  const dev = dsaMoverDevice(mover);
  const out = new Float64Array(COUNTERS.length);
  const rc = native.ap_dsa_counters(dev.handle("counters"), out, out.length);
  if (rc < 0) throw nativeError(rc, "counters");
  const counters = {} as Record<(typeof COUNTERS)[number], number>;
  COUNTERS.forEach((name, i) => counters[name] = out[i]);
  return counters;
}

/** Make a shared test portal answer "retry" `count` times. Internal. */
export function injectBusy(mover: DsaMover, count: number): void {
  const dev = dsaMoverDevice(mover);
  const n = checkSize(count, "count", "inject busy answers");
  const rc = native.ap_dsa_inject_busy(dev.handle("injectBusy"), n);
  if (rc < 0) throw nativeError(rc, "injectBusy");
}
