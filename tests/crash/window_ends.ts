// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Where Bun's even view windows end (`VIEW_WINDOWS` in
 * `pmem2/view_buffers.ts`: 4 MiB each, tiling a mapping past 64 MiB), for
 * the crash sweep that places the stores' work across those ends
 * (`window_sweep.ts`). The offsets are the same on Deno, where nothing is
 * windowed: the sweep runs the same work there, seen whole.
 *
 * @module
 */
import { RUNTIME } from "../../ffi/_runtime.ts";
import { VIEW_WINDOWS } from "../../pmem2/view_buffers.ts";
import type { TraceEvent } from "./tracer.ts";

/** Bun's even window size: its multiples are the windows' ends. */
export const EVEN_END = 4 << 20;
/** The largest mapping Bun views whole (`VIEW_WINDOWS.whole`). */
export const BUN_WHOLE = 64 << 20;

/** Whether `[offset, offset + length)` crosses an even window's end. */
export function crossesEnd(offset: number, length: number): boolean {
  return length > 0 &&
    Math.floor(offset / EVEN_END) !==
      Math.floor((offset + length - 1) / EVEN_END);
}

/** The flushes of a trace whose range crosses an even window's end. */
export function crossingFlushes(events: readonly TraceEvent[]): number {
  let n = 0;
  for (const e of events) {
    if (e.kind === "flush" && crossesEnd(e.offset, e.length)) n++;
  }
  return n;
}

/**
 * Whether this runtime's stores see a file past {@linkcode BUN_WHOLE}
 * through windows ending at multiples of {@linkcode EVEN_END}: true on
 * Bun, false on Deno (one buffer over any mapping).
 *
 * @throws {Error} when `VIEW_WINDOWS` changed so that the window sweep's
 *   placements no longer straddle window ends
 */
export function windowsHere(): boolean {
  if (RUNTIME !== "bun") {
    if (VIEW_WINDOWS.whole !== Infinity) {
      throw new Error(`${RUNTIME} views mappings in windows now`);
    }
    return false;
  }
  if (VIEW_WINDOWS.size !== EVEN_END || VIEW_WINDOWS.whole !== BUN_WHOLE) {
    throw new Error(
      `VIEW_WINDOWS changed (${
        JSON.stringify(VIEW_WINDOWS)
      }): move the window sweep's placements`,
    );
  }
  return true;
}
