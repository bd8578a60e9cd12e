// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Which format a pool file holds, from its first bytes: libpmemblk's,
 * libpmemlog's, libpmemobj's (PMDK pool headers), or asyncpmem's log
 * stream or object pool; or a PMDK pool set file (`PMEMPOOLSET`), named
 * so that it is not taken for a damaged pool.
 *
 * @module
 */
import { closeSync, openSync, readSync, statSync } from "node:fs";
import {
  decodePoolHeader,
  HEADER_SIZE,
  shutdownStateProblem,
} from "../pmdk/pool_header.ts";
import { deviceShutdownState } from "../pmdk/shutdown_state.ts";
import { Source } from "../pmem2/source.ts";

/** The formats the CLI knows. */
export type PoolKind =
  | "blk"
  | "log"
  | "pmemobj"
  | "stream"
  | "obj"
  | "poolset";

const SIGNATURES: readonly [string, PoolKind][] = [
  ["PMEMBLK\0", "blk"],
  ["PMEMLOG\0", "log"],
  ["PMEMOBJ\0", "pmemobj"],
  ["ASYNCPMEM-STREAM", "stream"],
  ["ASYNCPMEM-OBJECT", "obj"],
  // a pool set file's first 11 bytes, as libpmem's util_is_poolset_file
  ["PMEMPOOLSET", "poolset"],
];

/**
 * The format of the file at `path`, or null when its first bytes match
 * none (an empty or foreign file).
 *
 * @throws {Error} when it cannot be read (the message names the file)
 */
export function detectKind(path: string): PoolKind | null {
  const head = new Uint8Array(16);
  try {
    // opening a FIFO for reading waits for a writer, forever: a FIFO or
    // a socket is no pool, told before any open
    const stat = statSync(path);
    if (stat.isFIFO() || stat.isSocket()) {
      throw new Error(`it is a ${stat.isFIFO() ? "FIFO" : "socket"}`);
    }
    const fd = openSync(path, "r");
    try {
      readSync(fd, head, 0, head.length, 0);
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    const code = (e as { code?: unknown })?.code;
    const why = code === "ENOENT"
      ? "no such file or directory"
      : code === "EISDIR"
      ? "it is a directory"
      : code === "EACCES"
      ? "permission denied"
      : (e as Error)?.message ?? String(e);
    throw new Error(`cannot read '${path}': ${why}`, { cause: e });
  }
  const text = new TextDecoder("latin1").decode(head);
  for (const [sig, kind] of SIGNATURES) {
    if (text.startsWith(sig)) return kind;
  }
  return null;
}

/**
 * What `pmempool check` finds wrong in a PMDK pool header beyond what
 * the libraries' open refuses: a shutdown state that is not zero though
 * the pool does not use it. Null when nothing is.
 */
export function pmdkHeaderProblem(path: string): string | null {
  const head = pmdkHeader(path);
  // a dirty state is judged against the device's own, as pmempool does
  const problem = head && shutdownStateProblem(head, true, () => {
    using source = Source.open(path, { readOnly: true });
    return deviceShutdownState(source);
  });
  return problem ? `pool header: ${problem}` : null;
}

/**
 * Whether a PMDK pool's header has ro_compat features: the libraries and
 * asyncpmem open such a pool read-only.
 */
export function pmdkReadOnly(path: string): boolean {
  const head = pmdkHeader(path);
  return head !== null && decodePoolHeader(head).roCompat !== 0;
}

/** The 4096 bytes of a PMDK pool header, or null for a shorter file. */
function pmdkHeader(path: string): Uint8Array | null {
  const head = new Uint8Array(HEADER_SIZE);
  const fd = openSync(path, "r");
  try {
    return readSync(fd, head, 0, HEADER_SIZE, 0) < HEADER_SIZE ? null : head;
  } finally {
    closeSync(fd);
  }
}
