// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * {@linkcode mapSource}: the native mapping of a source, what
 * `Mapping.map` builds a `Mapping` on: the source and configuration
 * checked, the shim's one call that maps, and its refusals worded.
 * Internal to `pmem2/`.
 *
 * @module
 */
import { check, native, newCell } from "../ffi/lib.ts";
import { CpuMover } from "../mover/cpu.ts";
import type { Vdm } from "../mover/vdm.ts";
import {
  type Granularity,
  type MapConfig,
  type Protection,
  readMapConfig,
  toNativeConfig,
} from "./config.ts";
import { Source, sourceHandle } from "./source.ts";

/** A native mapping made, and what its `Mapping` keeps of the config. */
export interface MappedSource {
  /** The cell that holds the native mapping's handle. */
  cell: BigUint64Array;
  /** The granularity that was required. */
  required: Granularity;
  /** The page protection. */
  protection: Protection;
  /** The mover of its asynchronous copies. */
  mover: Vdm;
}

/**
 * Map `source` with `config`, as `Mapping.map` documents.
 *
 * @throws {TypeError} when `source` is no Source, or `config` is wrong
 * @throws {RangeError} when the range holds no byte
 * @throws {PmemError} when libpmem2 or the shim refuses the mapping
 */
export function mapSource(source: Source, config: MapConfig): MappedSource {
  if (!(source instanceof Source)) {
    throw new TypeError("Cannot map: source must be a Source");
  }
  const checked = readMapConfig(config);
  const c = toNativeConfig(checked);
  const handle = sourceHandle(source, "map");
  const size = c.length === 0 ? source.size : 0;
  if (size > 0 && c.offset === size) {
    // the rest of the source from its end holds no byte: libpmem2's
    // mmap of 0 bytes failed with -22 "Invalid argument", naming neither
    // number (a range past the end is its PMEM2_E_MAP_RANGE, an empty
    // source its PMEM2_E_SOURCE_EMPTY: both clear)
    throw new RangeError(
      `Cannot map: offset ${c.offset} is the end of the source ` +
        `(${size} bytes): the range holds no byte`,
    );
  }
  const mover = checked.mover ?? defaultMover();
  const cell = newCell();
  const rc = native.ap_map_new(
    cell,
    handle,
    c.granularity,
    c.offset,
    c.length,
    c.sharing,
    c.protection,
  );
  if (rc === -100009 && c.granularity < 2) {
    const e = (() => {
      try {
        check(rc, "map");
      } catch (err) {
        return err as Error;
      }
    })()!;
    e.message += ". This file is not on DAX storage: map it with " +
      'granularity "page" (the default), or for tests set ' +
      "PMEM2_FORCE_GRANULARITY (not durable)";
    throw e;
  }
  check(rc, "map");
  return {
    cell,
    required: checked.granularity ?? "page",
    protection: checked.protection ?? "read-write",
    mover,
  };
}

/**
 * The mover of a mapping configured without one: its own. One shared by
 * every such mapping was closed for all by `map.mover.close()` on any of
 * them (and stayed closed for mappings made later): their async copies
 * threw ClosedError. A CpuMover holds nothing native; one per mapping
 * costs an object per map, nothing per operation.
 */
function defaultMover(): Vdm {
  return new CpuMover();
}
