// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Finding DSA work queues: the shim enumerates them with libaccel-config
 * (loaded with dlopen) and answers with one JSON document; this module
 * parses it and chooses the WQ to open, or says plainly why there is
 * none. No library, no idxd driver and zero devices are normal answers.
 *
 * @module
 */
import { accessSync, constants } from "node:fs";
import { check, cString, native } from "../ffi/lib.ts";

/** A work queue as libaccel-config reports it. */
export interface DsaWqInfo {
  /** "wq0.0". */
  name: string;
  /** Its character device, "/dev/dsa/wq0.0". */
  path: string;
  /** Whether libaccel-config found `path` under /dev/dsa. */
  pathFound: boolean;
  /** "enabled", "disabled", "quiescing", "locked" or "unknown". */
  state: string;
  /** "user" (submittable from user space), "kernel" or "none". */
  type: string;
  /** "dedicated" (MOVDIR64B, one opener) or "shared" (ENQCMD). */
  mode: string;
  /** Descriptors the WQ holds. */
  size: number;
  /** Most members of one BATCH. */
  maxBatch: number;
  /** Largest transfer of one descriptor, in bytes. */
  maxTransfer: number;
  /** Whether the WQ honours block-on-fault. */
  blockOnFault: number;
  /** A shared WQ's limited-portal threshold. */
  threshold: number;
  /** Its priority. */
  priority: number;
  /** DSA 2.0: the low 64 bits of the WQ's op_config, as hex; else null. */
  opConfig: string | null;
}

/** A DSA device as libaccel-config reports it. */
export interface DsaDeviceInfo {
  /** "dsa0". */
  name: string;
  /** "dsa" (IAA devices are left out of {@linkcode DsaMover.devices}). */
  type: string;
  /** "enabled", "disabled" or "unknown". */
  state: string;
  /** Whether PASID (SVA) is on: user WQs need it. */
  pasidEnabled: boolean;
  /** 0x100 for DSA 1.0, 0x200 for 2.0. */
  version: number;
  /** The GENCAP register, as hex. */
  genCap: string;
  /** The device's NUMA node (-1: none). */
  numaNode: number;
  /** Device-wide maximum members of a BATCH. */
  maxBatch: number;
  /** Device-wide largest transfer. */
  maxTransfer: number;
  /** Engines. */
  engines: number;
  /** Completion record size (32 for DSA). */
  complSize: number;
  /** The low 64 bits of OPCAP, as hex (null when sysfs lacks it). */
  opCap: string | null;
  /** Its work queues. */
  wqs: DsaWqInfo[];
}

/** The shim's answer. */
export interface DsaListing {
  /** The libaccel-config asked for. */
  library: string;
  /** Whether it loaded. */
  loaded: boolean;
  /** dlopen's message when it did not. */
  loadError: string | null;
  /** Whether the idxd driver is loaded (/sys/bus/dsa exists). */
  driver: boolean;
  /** What this CPU can submit with. */
  cpu: { movdir64b: boolean; enqcmd: boolean; waitpkg: boolean };
  /** Every accelerator device listed (DSA and IAA). */
  devices: DsaDeviceInfo[];
  /** accfg_new's return code (0: fine). */
  contextError: number;
}

/** Ask the shim for the devices; `library` as given to dlopen. */
export function listDsa(library = ""): DsaListing {
  const lib = cString(library);
  let out = new Uint8Array(16384);
  let n = check(
    native.ap_dsa_list(lib, lib.byteLength, out, out.length),
    "devices",
  );
  if (n >= out.length) {
    out = new Uint8Array(n + 1);
    n = check(
      native.ap_dsa_list(lib, lib.byteLength, out, out.length),
      "devices",
    );
  }
  return JSON.parse(new TextDecoder().decode(out.subarray(0, n)));
}

/** What {@linkcode chooseWq} chose, or why nothing. */
export type Choice =
  | {
    device: DsaDeviceInfo;
    wq: DsaWqInfo;
    /** Every usable WQ, best first (`device`/`wq` is the first). */
    candidates: { device: DsaDeviceInfo; wq: DsaWqInfo }[];
    reason?: undefined;
  }
  | { reason: string; device?: undefined; wq?: undefined };

/** What a caller may name. */
export interface WqSelector {
  /** The WQ by name ("wq0.0"). */
  wq?: string;
  /** The device by name ("dsa0"). */
  device?: string;
}

/** The DSA operations a DsaMover submits (opcode: bit of OPCAP). */
const NEEDED: readonly [string, bigint][] = [
  ["MEMMOVE", 0x03n],
  ["MEMFILL", 0x04n],
  ["CFLUSH", 0x20n],
];
const BATCH_BIT = 0x01n;

/**
 * The operations a WQ accepts: its op_config (DSA 2.0, which may narrow
 * the device's), else its device's OPCAP; undefined when neither is known
 * (DSA 1.0 offers every operation a DsaMover submits).
 */
function wqOps(dev: DsaDeviceInfo, wq: DsaWqInfo): bigint | undefined {
  const hex = wq.opConfig ?? dev.opCap;
  if (typeof hex !== "string") return undefined;
  try {
    return BigInt(hex);
  } catch {
    return undefined;
  }
}

/** Whether `ops` (undefined: unknown, so all) has opcode `bit`. */
function offers(ops: bigint | undefined, bit: bigint): boolean {
  return ops === undefined || ((ops >> bit) & 1n) === 1n;
}

/** What a DsaMover opens a WQ with. */
export interface WqLimits {
  /** Descriptors the WQ holds (a dedicated WQ's credits). */
  size: number;
  /** Most members of a BATCH; 0 where the WQ takes no BATCH. */
  maxBatch: number;
  /** Largest transfer of one descriptor. */
  maxTransfer: number;
}

/**
 * The limits to open a usable WQ with: the smaller of the WQ's and its
 * device's (an attribute libaccel-config could not read comes as a
 * negative errno and counts as unknown); no BATCH where the WQ's
 * operations lack it (the WQ would refuse every one with BAD_OPCODE).
 */
export function wqLimits(dev: DsaDeviceInfo, wq: DsaWqInfo): WqLimits {
  const known = (v: number, min: number) =>
    Number.isSafeInteger(v) && v >= min ? v : Infinity;
  let maxBatch = Math.min(known(wq.maxBatch, 0), known(dev.maxBatch, 1));
  if (maxBatch === Infinity || !offers(wqOps(dev, wq), BATCH_BIT)) {
    maxBatch = 0;
  }
  // neither known: the kernel's default of a WQ's maximum
  const xfer = Math.min(known(wq.maxTransfer, 1), known(dev.maxTransfer, 1));
  const maxTransfer = xfer === Infinity ? 2 ** 21 : Math.min(xfer, 2 ** 31);
  return { size: Math.min(wq.size, 4096), maxBatch, maxTransfer };
}

/** Why a WQ cannot be used, or undefined when it can. */
function wqProblem(dev: DsaDeviceInfo, wq: DsaWqInfo): string | undefined {
  if (wq.type !== "user") return `${wq.name} is a ${wq.type} WQ, not a user WQ`;
  if (wq.state !== "enabled") return `${wq.name} is ${wq.state}`;
  if (wq.mode !== "dedicated" && wq.mode !== "shared") {
    return `${wq.name} has mode ${wq.mode}`;
  }
  // a dedicated WQ's size is its credits: never guess it
  if (!Number.isSafeInteger(wq.size) || wq.size < 1) {
    return `${wq.name} has no usable size (${wq.size})`;
  }
  const ops = wqOps(dev, wq);
  const missing = NEEDED.filter(([, bit]) => !offers(ops, bit));
  if (missing.length !== 0) {
    return `${wq.name} does not offer ${
      missing.map(([n]) => n).join(", ")
    } (operations ${wq.opConfig ?? dev.opCap})`;
  }
  return undefined;
}

/** Why a device cannot be used, or undefined when it can. */
function deviceProblem(dev: DsaDeviceInfo): string | undefined {
  if (dev.state !== "enabled") return `${dev.name} is ${dev.state}`;
  if (!dev.pasidEnabled) {
    return `${dev.name} has PASID (SVA) off: user WQs need the IOMMU in ` +
      `scalable mode (intel_iommu=on,sm_on)`;
  }
  return undefined;
}

/** Whether the current process may read and write `path`. */
function permitted(path: string): boolean {
  try {
    accessSync(path, constants.R_OK | constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

const CONFIGURE = "configure one with accel-config (README: DSA hardware)";

/**
 * The WQ to open: the one named, else the first usable one, dedicated
 * before shared (a dedicated WQ cannot be kept full by another process,
 * reference dsa.md 5.3), with the others in that order for an open that
 * fails (a dedicated WQ another process holds answers EBUSY).
 * `checkAccess` also skips WQs this process may not open.
 */
export function chooseWq(
  listing: DsaListing,
  selector: WqSelector = {},
  checkAccess = false,
): Choice {
  if (!listing.loaded) {
    return {
      reason: `libaccel-config is not installed (cannot load ` +
        `'${listing.library}': ${listing.loadError}); install it with ` +
        `'apt-get install -y libaccel-config1'`,
    };
  }
  if (!listing.driver) {
    return {
      reason: "the idxd driver is not loaded (no /sys/bus/dsa): load it " +
        "with 'modprobe idxd' on a machine with DSA",
    };
  }
  const all = listing.devices.filter((d) => d.type === "dsa");
  if (all.length === 0) {
    return { reason: "no DSA device found (libaccel-config lists none)" };
  }
  const devices = selector.device === undefined
    ? all
    : all.filter((d) => d.name === selector.device);
  if (devices.length === 0) {
    return {
      reason: `no DSA device named '${selector.device}' (found: ${
        all.map((d) => d.name).join(", ")
      })`,
    };
  }
  const why: string[] = [];
  const usable: { device: DsaDeviceInfo; wq: DsaWqInfo }[] = [];
  let named = false;
  for (const device of devices) {
    const problem = deviceProblem(device);
    for (const wq of device.wqs) {
      if (selector.wq !== undefined && wq.name !== selector.wq) continue;
      named = true;
      const p = problem ?? wqProblem(device, wq) ??
        (checkAccess && !permitted(wq.path)
          ? `no permission on ${wq.path}`
          : undefined);
      if (p === undefined) usable.push({ device, wq });
      else why.push(p);
    }
    if (device.wqs.length === 0) why.push(`${device.name} has no WQ`);
  }
  if (selector.wq !== undefined && !named) {
    return {
      reason: `no work queue named '${selector.wq}' on ${
        devices.map((d) => d.name).join(", ")
      } (found: ${
        devices.flatMap((d) => d.wqs.map((w) => w.name)).join(", ") ||
        "none"
      })`,
    };
  }
  const candidates = [
    ...usable.filter((u) => u.wq.mode === "dedicated"),
    ...usable.filter((u) => u.wq.mode !== "dedicated"),
  ];
  if (candidates.length > 0) return { ...candidates[0], candidates };
  return {
    reason: `no enabled user work queue: ${why.join("; ")}; ${CONFIGURE}`,
  };
}
