// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * {@linkcode DsaMover}: Intel DSA hardware as a data mover. A work queue
 * found with libaccel-config is opened in the shim, which sends the same
 * 64-byte descriptors the software device executes (one builder) to the
 * WQ's portal -- MOVDIR64B for a dedicated WQ, ENQCMD for a shared one,
 * `write(2)` where the portal cannot be mapped -- and a watcher thread
 * turns the records the hardware writes into the completion sequence the
 * executor sleeps on. Futures poll the records exactly as the
 * {@linkcode ThreadMover}'s.
 *
 * @module
 */
import { NotSupportedError } from "../errors/mod.ts";
import { cString, native, nativeError } from "../ffi/lib.ts";
import { checkFlag, checkSize, readOptions } from "../ffi/validate.ts";
import { CompletionDevice } from "./_device.ts";
import { DeviceMover, moverDevice } from "./_device_mover.ts";
import {
  chooseWq,
  type DsaDeviceInfo,
  type DsaWqInfo,
  listDsa,
  wqLimits,
} from "./_dsa_discovery.ts";
import {
  checkThreadMoverOptions,
  ThreadMover,
  type ThreadMoverOptions,
} from "./thread.ts";
import { VdmFlags } from "./vdm.ts";
import { ENOTSUP } from "../errors/errno.ts";

export type { DsaDeviceInfo, DsaWqInfo };

/**
 * Options of {@linkcode DsaMover.open}. An option not listed here is refused,
 * with a `TypeError` naming it and the option it likely stands for.
 */
export interface DsaMoverOptions {
  /** The work queue to open, by name ("wq0.0"). @default the first usable, dedicated before shared */
  wq?: string;
  /** The device to take it from ("dsa0"). @default any */
  device?: string;
  /**
   * Operations smaller than this many bytes run inline on the polling
   * thread (submitting costs more than copying them; the reference puts
   * the crossover of asynchronous offload near 4 KiB, unmeasured here).
   * @default 4096
   */
  inlineThreshold?: number;
  /** Completion records, i.e. operations in flight at most. @default 1024 */
  records?: number;
  /** Batch descriptor lists. @default 64 */
  batchLists?: number;
  /** Submit with `write(2)` even where the portal could be mapped. @default false */
  writeOnly?: boolean;
  /** The libaccel-config to load (a soname or path). @default "libaccel-config.so.1" */
  library?: string;
}

/**
 * Options of {@linkcode DsaMover.openOrFallback}. An option not listed here is
 * refused, with a `TypeError` naming it and the option it likely stands for.
 */
export interface DsaFallbackOptions extends DsaMoverOptions {
  /** Options of the ThreadMover made when DSA is not available. */
  fallback?: ThreadMoverOptions;
}

/**
 * What {@linkcode DsaMover.openOrFallback} got; `close()` (idempotent) or
 * disposing closes the mover.
 */
export interface DsaChoice extends Disposable {
  /** Close the mover (as `mover.close()`); again does nothing. */
  close(): void;
  /** Whether the mover is closed (by `close()`, or `mover.close()`). */
  readonly closed: boolean;
  /** The DSA mover, or the ThreadMover made instead. */
  readonly mover: DsaMover | ThreadMover;
  /** Why there is no DSA mover (the open's message), or null. */
  readonly reason: string | null;
  /** The error that said so, or null. */
  readonly error: NotSupportedError | null;
}

/** The work queue a {@linkcode DsaMover} submits to. */
export interface DsaQueue {
  /** The device ("dsa0"; "test" for a test portal). */
  device: string;
  /** The WQ ("wq0.0"). */
  name: string;
  /** How descriptors reach it. */
  mode: "dedicated" | "shared";
  /** Its character device ("" for a test portal). */
  path: string;
  /** Descriptors it holds (a dedicated WQ's credits). */
  size: number;
}

/** Completion records by default (a test portal's too). */
export const RECORDS = 1024;
/** Batch lists by default (a test portal's too). */
export const LISTS = 64;

/** Set by DsaMover's static block: {@linkcode makeDsaMover}. */
let construct: (
  device: CompletionDevice,
  inlineThreshold: number,
  queue: DsaQueue,
) => DsaMover;

/**
 * A DsaMover over an opened `device` (its private constructor), for the
 * test portal (`_dsa_test_portal.ts`). Internal.
 */
export function makeDsaMover(
  device: CompletionDevice,
  inlineThreshold: number,
  queue: DsaQueue,
): DsaMover {
  return construct(device, inlineThreshold, queue);
}

/** The keys of {@linkcode DsaMoverOptions}. */
const DSA_OPTION_KEYS = [
  "wq",
  "device",
  "inlineThreshold",
  "records",
  "batchLists",
  "writeOnly",
  "library",
] as const;

/**
 * {@linkcode DsaMoverOptions} read once (see `readOptions`), the names
 * checked to be strings.
 */
function readDsaOptions(
  options: DsaMoverOptions,
  what: string,
): DsaMoverOptions {
  const read = readOptions(options, DSA_OPTION_KEYS, what);
  for (const k of ["wq", "device", "library"] as const) {
    if (read[k] !== undefined && typeof read[k] !== "string") {
      throw new TypeError(`Cannot ${what}: ${k} must be a string`);
    }
  }
  checkFlag(read.writeOnly, "writeOnly", what);
  return read;
}

/** A size option, checked before anything native (a test portal's too). */
export function option(value: unknown, fallback: number, name: string): number {
  return checkSize(value ?? fallback, name, "open DsaMover");
}

/**
 * A data mover over an Intel DSA work queue: written to the specification
 * and exercised through test portals and a fixture sysfs tree; see the
 * README's "DSA hardware" for what is unverified without the hardware.
 *
 * Arrays are pinned as {@linkcode ThreadMover}'s are: the device writes
 * through their addresses, so transferring an array's buffer while an
 * operation on it runs is not allowed (the device may write into memory
 * the engine has freed or reused); an operation over a resizable
 * ArrayBuffer runs inline.
 *
 * @experimental
 * @example Usage
 * ```ts
 * import { DsaMover } from "@asyncpmem/asyncpmem/mover";
 * import assert from "node:assert/strict";
 *
 * // the DSA mover where a usable work queue exists, else a ThreadMover
 * using choice = DsaMover.openOrFallback();
 * if (choice.reason !== null) console.log(`no DSA: ${choice.reason}`);
 * const dst = new Uint8Array(1 << 16);
 * await choice.mover.memset(dst, 7);
 * assert.equal(dst[65535], 7);
 * ```
 */
export class DsaMover extends DeviceMover {
  #queue: DsaQueue;

  private constructor(
    device: CompletionDevice,
    inlineThreshold: number,
    queue: DsaQueue,
  ) {
    super(
      "DsaMover",
      "dsa",
      VdmFlags.DURABLE | VdmFlags.NO_CACHE_HINT,
      device,
      inlineThreshold,
    );
    this.#queue = queue;
  }

  static {
    construct = (device, inlineThreshold, queue) =>
      new DsaMover(device, inlineThreshold, queue);
  }

  /** The work queue this mover submits to. */
  get queue(): DsaQueue {
    return { ...this.#queue };
  }

  /**
   * The DSA devices libaccel-config lists, each with its work queues
   * (usable or not). An empty array where there is no library, no idxd
   * driver or no device: never an exception for those.
   *
   * @example Usage
   * ```ts
   * import { DsaMover } from "@asyncpmem/asyncpmem/mover";
   *
   * for (const dev of DsaMover.devices()) {
   *   console.log(dev.name, dev.wqs.map((wq) => `${wq.name} ${wq.mode}`));
   * }
   * ```
   */
  static devices(options: { library?: string } = {}): DsaDeviceInfo[] {
    const { library } = readOptions(options, ["library"], "list DSA devices");
    if (library !== undefined && typeof library !== "string") {
      throw new TypeError("Cannot list DSA devices: library must be a string");
    }
    const listing = listDsa(library ?? "");
    return listing.devices.filter((d) => d.type === "dsa");
  }

  /**
   * Whether a usable work queue is listed: an enabled user WQ on an
   * enabled device with PASID, that this process may open. Never throws
   * for a machine without DSA. (A dedicated WQ another process holds is
   * only found out by {@linkcode DsaMover.open}.)
   *
   * @example Usage
   * ```ts
   * import { DsaMover } from "@asyncpmem/asyncpmem/mover";
   *
   * console.log(DsaMover.available() ? "DSA present" : "no DSA");
   * ```
   */
  static available(options: DsaMoverOptions = {}): boolean {
    // bad options are the caller's mistake, not a machine without DSA
    const checked = readDsaOptions(options, "look for DSA");
    try {
      const listing = listDsa(checked.library ?? "");
      return chooseWq(listing, checked, true).wq !== undefined;
    } catch {
      return false;
    }
  }

  /**
   * Open a work queue: the one named, else the first usable one
   * (dedicated before shared).
   *
   * @example Usage
   * ```ts
   * import { DsaMover } from "@asyncpmem/asyncpmem/mover";
   * import { NotSupportedError } from "@asyncpmem/asyncpmem/errors";
   *
   * try {
   *   using dsa = DsaMover.open({ wq: "wq0.0" });
   *   await dsa.memset(new Uint8Array(1 << 20), 0);
   * } catch (e) {
   *   if (!(e instanceof NotSupportedError)) throw e;
   *   console.log(e.message); // why not: no library, no driver, ...
   * }
   * ```
   *
   * @throws {TypeError | RangeError} for bad options
   * @throws {NotSupportedError} naming why no WQ can be used: no
   * libaccel-config, no idxd driver, no DSA device, no enabled user WQ,
   * no permission on its character device, a dedicated WQ already open
   * (without a named WQ, each usable one is tried, dedicated ones first)
   */
  static open(options: DsaMoverOptions = {}): DsaMover {
    options = readDsaOptions(options, "open DsaMover");
    const threshold = option(options.inlineThreshold, 4096, "inlineThreshold");
    const records = option(options.records, RECORDS, "records");
    const lists = option(options.batchLists, LISTS, "batchLists");
    if (records < 1 || records > 2 ** 20 || lists > 4096) {
      throw new RangeError(
        "Cannot open DsaMover: records must be 1..2^20, batchLists <= 4096",
      );
    }
    const choice = chooseWq(listDsa(options.library ?? ""), options);
    if (choice.wq === undefined) {
      throw new NotSupportedError("open", -ENOTSUP, choice.reason);
    }
    // the first WQ that opens: a dedicated one another process holds
    // answers EBUSY, and the next (a shared one, say) may serve
    const failures: NotSupportedError[] = [];
    for (const { device: dev, wq } of choice.candidates) {
      try {
        return openWq(dev, wq, { threshold, records, lists, options });
      } catch (e) {
        if (!(e instanceof NotSupportedError)) throw e;
        failures.push(e);
      }
    }
    if (failures.length === 1) throw failures[0];
    const last = failures[failures.length - 1];
    throw new NotSupportedError(
      "open",
      last.code,
      `no work queue could be opened: ${
        failures.map((f) => f.message.replace(/^open: /, "")).join("; ")
      }`,
      { errno: last.errno, cause: last },
    );
  }

  /**
   * {@linkcode DsaMover.open}, or -- when it says DSA cannot be used -- a
   * {@linkcode ThreadMover}, with the reason kept. Disposing the result
   * closes whichever mover it holds.
   *
   * @example Usage
   * ```ts
   * import { DsaMover } from "@asyncpmem/asyncpmem/mover";
   *
   * using choice = DsaMover.openOrFallback({ fallback: { threads: 2 } });
   * console.log(choice.mover.name, choice.reason ?? "");
   * ```
   *
   * @throws {TypeError | RangeError} for bad options, `fallback`'s
   * included (checked before DSA is tried, so a machine where it opens
   * finds them too); never for a machine without DSA
   */
  static openOrFallback(options: DsaFallbackOptions = {}): DsaChoice {
    const { fallback, ...dsa } = readOptions(
      options,
      [...DSA_OPTION_KEYS, "fallback"],
      "open DsaMover",
    );
    // checked before DSA is tried: where it opens, bad fallback options
    // went unnoticed until a machine without DSA ran the same code
    const fallbackOptions = checkThreadMoverOptions(
      fallback === undefined ? {} : fallback,
    );
    let mover: DsaMover | ThreadMover;
    let error: NotSupportedError | null = null;
    try {
      mover = DsaMover.open(dsa);
    } catch (e) {
      if (!(e instanceof NotSupportedError)) throw e;
      error = e;
      mover = new ThreadMover(fallbackOptions);
    }
    return {
      mover,
      error,
      reason: error === null ? null : error.message.replace(/^open: /, ""),
      get closed() {
        return mover.closed;
      },
      close: () => mover.close(),
      [Symbol.dispose]: () => mover.close(),
    };
  }
}

/** The device of a DsaMover (testing hooks). Internal. */
export function dsaMoverDevice(mover: DsaMover): CompletionDevice {
  if (!(mover instanceof DsaMover)) {
    throw new TypeError("Cannot reach the device: mover must be a DsaMover");
  }
  return moverDevice(mover, "DsaMover");
}

/** What {@linkcode openWq} needs besides the WQ. */
interface WqOpen {
  threshold: number;
  records: number;
  lists: number;
  options: DsaMoverOptions;
}

/**
 * Open a DsaMover on `wq` of `dev`.
 *
 * @throws {NotSupportedError} naming why the WQ cannot be opened
 */
function openWq(
  dev: DsaDeviceInfo,
  wq: DsaWqInfo,
  { threshold, records, lists, options }: WqOpen,
): DsaMover {
  const limits = wqLimits(dev, wq);
  const path = cString(wq.path);
  const device = new CompletionDevice("DsaMover", (cell) => {
    const rc = native.ap_dsa_open(
      cell,
      path,
      path.byteLength,
      wq.mode === "shared" ? 1 : 0,
      limits.size,
      limits.maxBatch,
      limits.maxTransfer,
      Number(BigInt(dev.genCap) & 0x1fffffffffffffn),
      Math.max(dev.engines, 0),
      records,
      lists,
      options.writeOnly ? 1 : 0,
    );
    if (rc < 0) {
      const e = nativeError(rc, "open");
      throw new NotSupportedError(
        "open",
        e.code,
        e.message.replace(/^open: /, ""),
        {
          errno: e.errno,
          cause: e,
        },
      );
    }
    return rc;
  });
  return construct(device, threshold, {
    device: dev.name,
    name: wq.name,
    mode: wq.mode === "shared" ? "shared" : "dedicated",
    path: wq.path,
    size: limits.size,
  });
}
