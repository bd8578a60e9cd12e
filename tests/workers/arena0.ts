// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Where arena 0 of a block pool file keeps its map and flog, read from
 * its info block: for the test Workers that stop at, or spoil, a part of
 * a commit.
 *
 * @module
 */
import { closeSync, openSync, readSync } from "node:fs";
import {
  BTT_OFFSET,
  decodeBttInfo,
  FLOG_SLOT_SIZE,
  INFO_SIZE,
  MAP_ENTRY_SIZE,
} from "../../blk/layout.ts";

/** Arena 0's map and flog, as file ranges `[start, end)`. */
export function arena0Regions(path: string): { map: number[]; flog: number[] } {
  const bytes = new Uint8Array(INFO_SIZE);
  const fd = openSync(path, "r");
  try {
    readSync(fd, bytes, 0, INFO_SIZE, BTT_OFFSET);
  } finally {
    closeSync(fd);
  }
  const info = decodeBttInfo(bytes);
  const mapAt = BTT_OFFSET + info.mapOff;
  const flogAt = BTT_OFFSET + info.flogOff;
  return {
    map: [mapAt, mapAt + info.externalNlba * MAP_ENTRY_SIZE],
    flog: [flogAt, flogAt + info.nfree * FLOG_SLOT_SIZE],
  };
}
