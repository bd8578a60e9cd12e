// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Which format a pool file holds, from its first bytes: libpmemblk's,
 * libpmemlog's, libpmemobj's (PMDK pool headers), or asyncpmem's log
 * stream or object pool.
 *
 * @module
 */
import { closeSync, openSync, readSync } from "node:fs";

/** The formats the CLI knows. */
export type PoolKind = "blk" | "log" | "pmemobj" | "stream" | "obj";

const SIGNATURES: readonly [string, PoolKind][] = [
  ["PMEMBLK\0", "blk"],
  ["PMEMLOG\0", "log"],
  ["PMEMOBJ\0", "pmemobj"],
  ["ASYNCPMEM-STREAM", "stream"],
  ["ASYNCPMEM-OBJECT", "obj"],
];

/**
 * The format of the file at `path`, or null when its first bytes match
 * none (an empty or foreign file).
 *
 * @throws {Error} from the file system when it cannot be read
 */
export function detectKind(path: string): PoolKind | null {
  const head = new Uint8Array(16);
  const fd = openSync(path, "r");
  try {
    readSync(fd, head, 0, head.length, 0);
  } finally {
    closeSync(fd);
  }
  const text = new TextDecoder("latin1").decode(head);
  for (const [sig, kind] of SIGNATURES) {
    if (text.startsWith(sig)) return kind;
  }
  return null;
}
