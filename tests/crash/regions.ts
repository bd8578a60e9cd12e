// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The on-media regions of a block pool (libpmemblk's layout), to name the
 * place of a finding and to aim the fuzzer's mutations.
 *
 * @module
 */
import { DESCRIPTOR_OFFSET } from "../../blk/header.ts";
import { HEADER_SIZE } from "../../pmdk/pool_header.ts";
import {
  BTT_OFFSET,
  FLOG_SLOT_SIZE,
  INFO_SIZE,
  MAP_ENTRY_SIZE,
  poolGeometry,
} from "../../blk/layout.ts";

/** What a region holds. */
export type RegionKind =
  | "header"
  | "descriptor"
  | "info"
  | "data"
  | "map"
  | "flog"
  | "backup";

/** One region of a pool file. */
export interface Region {
  /** What it holds. */
  kind: RegionKind;
  /** Its arena (-1 for the pool header and descriptor). */
  arena: number;
  /** File offset. */
  offset: number;
  /** Length in bytes. */
  length: number;
  /** Bytes per item for `data` (the internal block size), `map` (4) and
   * `flog` (64); the region's length otherwise. */
  item: number;
}

/**
 * The regions of a pool file of `fileSize` bytes and `blockSize` blocks,
 * in file order. The BTT's unused gaps are not listed.
 */
export function poolRegions(fileSize: number, blockSize: number): Region[] {
  const regions: Region[] = [
    {
      kind: "header",
      arena: -1,
      offset: 0,
      length: HEADER_SIZE,
      item: HEADER_SIZE,
    },
    {
      kind: "descriptor",
      arena: -1,
      offset: DESCRIPTOR_OFFSET,
      length: BTT_OFFSET - DESCRIPTOR_OFFSET,
      item: BTT_OFFSET - DESCRIPTOR_OFFSET,
    },
  ];
  poolGeometry(fileSize, blockSize).arenas.forEach((a, k) => {
    const base = BTT_OFFSET + a.offset;
    const add = (kind: RegionKind, at: number, length: number, item = length) =>
      regions.push({ kind, arena: k, offset: base + at, length, item });
    add("info", 0, INFO_SIZE);
    add(
      "data",
      a.dataOff,
      a.internalNlba * a.internalLbaSize,
      a.internalLbaSize,
    );
    add("map", a.mapOff, a.externalNlba * MAP_ENTRY_SIZE, MAP_ENTRY_SIZE);
    add("flog", a.flogOff, a.nfree * FLOG_SLOT_SIZE, FLOG_SLOT_SIZE);
    add("backup", a.infoOff, INFO_SIZE);
  });
  return regions;
}

/**
 * Name the place of a file offset: "arena 0 flog slot 3", "arena 0 map
 * entry 12", "arena 0 data block 7", "pool header", or "unused".
 */
export function regionName(regions: readonly Region[], offset: number): string {
  const r = regions.find((r) =>
    offset >= r.offset && offset < r.offset + r.length
  );
  if (r === undefined) return "unused";
  const where = r.arena < 0 ? "" : `arena ${r.arena} `;
  const n = Math.floor((offset - r.offset) / r.item);
  switch (r.kind) {
    case "header":
      return "pool header";
    case "descriptor":
      return "pmemblk descriptor";
    case "info":
      return `${where}info block`;
    case "backup":
      return `${where}backup info block`;
    case "data":
      return `${where}data block ${n}`;
    case "map":
      return `${where}map entry ${n}`;
    case "flog":
      return `${where}flog slot ${n}`;
  }
}
