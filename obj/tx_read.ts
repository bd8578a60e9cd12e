// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Reads in a running `Transaction` (`obj/tx.ts`): an object as the
 * transaction sees it, with its own writes and those of the transactions
 * staged before it. A small object it allocated reads from its copy in
 * the log (zeros before its first write); an object no pending write
 * covers reads from its home; any other reads its home overlaid with the
 * pending writes that cover it. Internal to `obj/`.
 *
 * @module
 */
import type { Engine } from "./engine.ts";
import type { ObjectHandle } from "./handle.ts";
import { load32 } from "./object_bytes.ts";
import { OBJECT_HEADER, OP_COPY } from "./layout.ts";
import type { Group } from "./log_group.ts";
import { freshAt, LARGE, UNWRITTEN } from "./tx_fresh.ts";

/**
 * Where `offset` of an object reads from when nothing pending covers it:
 * its staged copy, or its home; -1 when pending writes may cover it, -2
 * when it is a small object of the transaction not written yet (zeros).
 */
export function directAt(
  e: Engine,
  g: Group,
  o: ObjectHandle,
  offset: number,
): number {
  const fresh = freshAt(e, o.offset);
  if (fresh !== undefined && fresh.rel !== LARGE) {
    return fresh.rel === UNWRITTEN
      ? -2
      : e.log.at(g, fresh.rel) + OBJECT_HEADER + offset;
  }
  return e.writes(o.offset) === undefined ? o.offset + offset : -1;
}

/** A copy of `length` bytes at `offset` of an object. */
export function readAt(
  e: Engine,
  g: Group,
  o: ObjectHandle,
  offset: number,
  length: number,
): Uint8Array {
  const direct = directAt(e, g, o, offset);
  if (direct === -2) return new Uint8Array(length);
  if (direct >= 0) return e.media.copy(direct, length);
  const at = o.offset + offset;
  const out = e.media.copy(at, length);
  for (const x of e.writes(o.offset)!) {
    const lo = Math.max(at, x.target);
    const hi = Math.min(at + length, x.target + x.length);
    if (lo >= hi) continue;
    if (x.op === OP_COPY) {
      e.media.copyInto(x.at + lo - x.target, hi - lo, out, lo - at);
    } else out.fill(0, lo - at, hi - at);
  }
  return out;
}

/** The u32 at `offset` of an object. */
export function load32At(
  e: Engine,
  g: Group,
  o: ObjectHandle,
  offset: number,
): number {
  const direct = directAt(e, g, o, offset);
  if (direct === -2) return 0;
  if (direct >= 0) return e.media.load32(direct);
  return load32(readAt(e, g, o, offset, 4), 0);
}
