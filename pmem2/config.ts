// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Mapping configuration: granularity, range, sharing, protection, mover.
 * A plain object checked in TypeScript; the shim applies it to a
 * `pmem2_config` inside the one native call that maps.
 *
 * @module
 */
import { checkSize, readOptions } from "../ffi/validate.ts";
import { checkMoverOption, type Vdm } from "../mover/vdm.ts";

/**
 * Store granularity: the smallest unit a store becomes persistent in.
 * `"byte"` (eADR), `"cache-line"` (ADR: flush + fence), `"page"` (msync).
 */
export type Granularity = "byte" | "cache-line" | "page";

/** Numeric values, as libpmem2's `enum pmem2_granularity`. */
export const GRANULARITY_VALUES: Readonly<Record<Granularity, number>> = {
  byte: 0,
  "cache-line": 1,
  page: 2,
};

/** The granularity name of a libpmem2 value. */
export function granularityName(value: number): Granularity {
  const name = (Object.keys(GRANULARITY_VALUES) as Granularity[]).find((g) =>
    GRANULARITY_VALUES[g] === value
  );
  if (name === undefined) throw new RangeError(`Unknown granularity ${value}`);
  return name;
}

/** Page protection of a mapping. */
export type Protection = "read" | "read-write" | "none";

const PROT_READ = 1 << 30;
const PROT_WRITE = 2 ** 31;

/**
 * Options that shape a mapping (libpmem2's `pmem2_config`). An option not
 * listed here is refused, with a `TypeError` naming it and the option it likely
 * stands for.
 */
export interface MapConfig {
  /**
   * The coarsest granularity the caller can cope with; the mapping gets
   * the finest the platform offers. Files that are not on DAX storage
   * (tmpfs, ext4 without `-o dax`) support only `"page"`.
   * @default "page"
   */
  granularity?: Granularity;
  /** Offset into the source, a multiple of its alignment. @default 0 */
  offset?: number;
  /** Bytes to map; 0 maps to the end of the source. @default 0 */
  length?: number;
  /** `"private"` maps copy-on-write (never persistent). @default "shared" */
  sharing?: "shared" | "private";
  /** Page protection. @default "read-write" */
  protection?: Protection;
  /**
   * The data mover of `memcpyAsync` and friends (`pmem2_config_set_vdm`).
   * The mapping does not close it. @default a CpuMover of its own
   */
  mover?: Vdm;
}

/** The keys of {@linkcode MapConfig}. */
export const MAP_CONFIG_KEYS = [
  "granularity",
  "offset",
  "length",
  "sharing",
  "protection",
  "mover",
] as const;

/**
 * The options of `config` read once each, into a plain object (see
 * `readOptions`): a getter read again could answer otherwise, and a
 * mapping the shim made read-only once recorded itself read-write from a
 * second read (its views then faulted the process on a store).
 *
 * @throws {TypeError} when `config` is not an object, or has a key that
 *   is no option
 */
export function readMapConfig(config: MapConfig): MapConfig {
  return readOptions(config, MAP_CONFIG_KEYS, "map");
}

/** A checked {@linkcode MapConfig} in native terms. */
export interface NativeMapConfig {
  /** `enum pmem2_granularity`. */
  granularity: number;
  /** Offset into the source. */
  offset: number;
  /** Bytes, 0 = to the end. */
  length: number;
  /** 0 shared, 1 private. */
  sharing: number;
  /** `PMEM2_PROT_*` bits. */
  protection: number;
}

/**
 * Check a {@linkcode MapConfig} and convert it for the shim. Its mover
 * (none, or null: the default) is checked to implement Vdm, last.
 *
 * @throws {TypeError} for a value of the wrong kind
 * @throws {RangeError} for an out-of-range number
 * @throws {ClosedError} for a closed mover
 */
export function toNativeConfig(config: MapConfig): NativeMapConfig {
  if (typeof config !== "object" || config === null) {
    throw new TypeError("Cannot map: config must be an object");
  }
  const g = config.granularity ?? "page";
  // own properties only: `in` also finds the prototype's ("toString"),
  // whose value is no number for the shim
  if (typeof g !== "string" || !Object.hasOwn(GRANULARITY_VALUES, g)) {
    throw new TypeError(
      `Cannot map: granularity must be "byte", "cache-line" or "page", got ${
        // (JSON.stringify throws its own TypeError for a bigint)
        typeof g === "string" ? JSON.stringify(g) : typeof g}`,
    );
  }
  const sharing = config.sharing ?? "shared";
  if (sharing !== "shared" && sharing !== "private") {
    throw new TypeError(`Cannot map: sharing must be "shared" or "private"`);
  }
  const prot = config.protection ?? "read-write";
  const protection = prot === "read-write"
    ? PROT_READ + PROT_WRITE
    : prot === "read"
    ? PROT_READ
    : prot === "none"
    ? 0
    : undefined;
  if (protection === undefined) {
    throw new TypeError(
      `Cannot map: protection must be "read", "read-write" or "none"`,
    );
  }
  const native = {
    granularity: GRANULARITY_VALUES[g],
    offset: checkSize(config.offset ?? 0, "offset", "map"),
    length: checkSize(config.length ?? 0, "length", "map"),
    sharing: sharing === "private" ? 1 : 0,
    protection,
  };
  checkMoverOption(config.mover, "map");
  return native;
}
