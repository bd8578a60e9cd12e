// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The objects a running `Transaction` (`obj/tx.ts`) allocated, and how they
 * reach the log. A small one (header included, up to
 * {@linkcode SMALL_MAX} bytes) is built in the log itself: its first
 * write stages one copy of its header and data, which later writes
 * change in place; one never written is logged as its header and a fill
 * of zeros when the callback returns. A large one is logged as its
 * header and a fill of zeros at once, then its writes. Internal to
 * `obj/`.
 *
 * @module
 */
import type { Engine } from "./engine.ts";
import { writeHeader } from "./object_bytes.ts";
import { OBJECT_HEADER } from "./layout.ts";
import type { Group } from "./log_group.ts";
import type { PendingObject } from "./pending.ts";

/** Objects up to this size (header included) are built in the log. */
export const SMALL_MAX = 16384;
/** `Fresh.rel` of a small object not written yet. */
export const UNWRITTEN = -1;
/** `Fresh.rel` of a large object (logged at allocation). */
export const LARGE = -2;

/** An object allocated in the running transaction. */
export interface Fresh extends PendingObject {
  block: number;
  /**
   * Small and written: where its COPY entry's payload (header, then
   * data) lies, in bytes from the start of the record (a record may move
   * in the ring; this does not change). UNWRITTEN or LARGE otherwise.
   */
  rel: number;
}

/**
 * Record the object just allocated at `block` (its data at `offset`) as
 * the running transaction's, logging it now if it is large.
 */
export function addFresh(
  e: Engine,
  g: Group,
  block: number,
  offset: number,
  size: number,
  type: number,
  gen: number,
  op: string,
): Fresh {
  const large = OBJECT_HEADER + size > SMALL_MAX;
  if (large) {
    const log = e.log;
    const at = log.open(g, block, OBJECT_HEADER, op, offset);
    writeHeader(e.media, at, size, gen, type);
    if (size > 0) log.zero(g, offset, size, op, offset);
  }
  const f: Fresh = { gen, size, type, block, rel: large ? LARGE : UNWRITTEN };
  e.locals.set(offset, f);
  return f;
}

/** The object at `offset` if the running transaction allocated it (and did not free it). */
export function freshAt(e: Engine, offset: number): Fresh | undefined {
  const f = e.locals.get(offset);
  return f === undefined || f.gen === 0 ? undefined : f as Fresh;
}

/**
 * Stage the copy of `f`, a small object not written yet (data at
 * `offset`): its header and zeros. Where its data now lies in the log.
 */
export function stageFresh(
  e: Engine,
  g: Group,
  f: Fresh,
  offset: number,
  op: string,
): number {
  const log = e.log;
  const at = log.open(g, f.block, OBJECT_HEADER + f.size, op, offset);
  writeHeader(e.media, at, f.size, f.gen, f.type);
  e.media.fill(0, at + OBJECT_HEADER, f.size);
  f.rel = at - log.at(g, 0);
  return at + OBJECT_HEADER;
}

/**
 * Log the freeing of the object whose data is at `offset` (`f` when the
 * running transaction allocated it): a copy staged for it writes no
 * header; an object logged otherwise has its header zeroed.
 */
export function logFree(
  e: Engine,
  g: Group,
  f: Fresh | undefined,
  offset: number,
): void {
  if (f !== undefined && f.rel >= 0) {
    // its copy stays in the record: let it write no header
    e.media.fill(0, e.log.at(g, f.rel), OBJECT_HEADER);
  }
  if (f === undefined || f.rel === LARGE) {
    e.log.zero(g, offset - OBJECT_HEADER, OBJECT_HEADER, "free", offset);
  }
}

/** Log the small objects never written: their headers and zeros. */
export function logUnwritten(e: Engine, g: Group): void {
  e.locals.forEach((p, offset) => {
    const f = p as Fresh;
    if (p.gen === 0 || f.rel !== UNWRITTEN) return;
    const at = e.log.open(g, f.block, OBJECT_HEADER, "commit", offset);
    writeHeader(e.media, at, f.size, f.gen, f.type);
    if (f.size > 0) e.log.zero(g, offset, f.size, "commit", offset);
  });
}
