// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Images of a crash of the process alone (a kill) and of the power after
 * it, for the stores' recovery-after-a-kill tests: the next open of a
 * killed process's file reads every store it made, fenced or not (the
 * page cache and the CPU caches keep them), while the media holds only
 * the fenced ones until a power failure shows which.
 *
 * @module
 */
import { mapFile, type Mapping } from "../../pmem2/mod.ts";
import { CACHE_LINE, crashPoints, type PersistenceModel } from "./model.ts";
import { copyBytes } from "./spare_buffers.ts";
import type { PersistTracer } from "../../pmem2/tracer.ts";
import { CrashTracer, type TraceEvent } from "./tracer.ts";
import { u32View } from "./words.ts";

/** The durable image at the end of `events` (from `before`): only what was fenced. */
export function fencedImage(
  before: Uint8Array,
  events: TraceEvent[],
): Uint8Array {
  const image = copyBytes(before);
  const image32 = u32View(image);
  for (const p of crashPoints(events, CACHE_LINE)) {
    for (const w of p.fenced) w.applyTo(image32);
  }
  return image;
}

/** What a kill at one crash point leaves. */
export interface KillState {
  /** The event the kill followed (-1: before the first). */
  event: number;
  /** Every store made so far: what the next open reads. */
  visible: Uint8Array;
  /** The fenced stores only: what the media holds. */
  durable: Uint8Array;
}

/**
 * What a kill at each crash point of `events` (from `base`, recorded
 * under `model`) leaves, in order. The two arrays are the same ones
 * every time, changed between points: read them before asking for the
 * next (copy what must stay).
 */
export function* killStates(
  base: Uint8Array,
  events: readonly TraceEvent[],
  model: PersistenceModel = CACHE_LINE,
): Generator<KillState> {
  const durable = copyBytes(base);
  const durable32 = u32View(durable);
  // One image of every point's visible stores, equal to `durable` between
  // points: its pending words are stored, then put back, not the whole
  // pool copied per point (a fresh 16 MiB array per point took seconds in
  // page faults on Bun, a refill of one still a second a test).
  const visible = copyBytes(durable);
  const visible32 = u32View(visible);
  for (const p of crashPoints(events, model)) {
    for (const w of p.fenced) {
      w.applyTo(durable32);
      w.applyTo(visible32);
    }
    for (const u of p.pending) u.words.applyTo(visible32);
    yield { event: p.event, visible, durable };
    for (const u of p.pending) {
      for (let i = 0; i < u.words.length; i++) {
        const w = u.words.index(i) * 2;
        visible32[w] = durable32[w];
        visible32[w + 1] = durable32[w + 1];
      }
    }
  }
}

/**
 * The first crash point of `events` (from `base`) where `killedThere`
 * holds of what a killed process leaves (`visible`: every store made)
 * and what the media holds (`durable`: the fenced ones), or undefined.
 */
export function killImage(
  base: Uint8Array,
  events: TraceEvent[],
  killedThere: (visible: Uint8Array, durable: Uint8Array) => boolean,
): { visible: Uint8Array; durable: Uint8Array } | undefined {
  for (const { visible, durable } of killStates(base, events)) {
    if (killedThere(visible, durable)) return { visible, durable };
  }
  return undefined;
}

/**
 * Open a store of the file at `path` traced, its media starting as
 * `durable` (`open` takes the tracer), run `body` on it and close it:
 * the trace's events, flushes written back by `model`'s granularity.
 */
export function tracedRun<S extends { close(): void }>(
  path: string,
  durable: Uint8Array,
  open: (tracer: CrashTracer) => S,
  body: (store: S) => void,
  model: PersistenceModel = CACHE_LINE,
): TraceEvent[] {
  let probe: Mapping | undefined;
  const tracer = new CrashTracer({
    live: () => (probe = mapFile(path)).view(),
    shadow: copyBytes(durable),
    flushGranularity: model.flushGranularity,
  });
  const store = open(tracer);
  try {
    body(store);
  } finally {
    store.close();
  }
  const events = tracer.finish();
  probe?.close();
  return events;
}

/**
 * `tracer` whose flushes over file offset `at` fail while `armed()`
 * says so (the media's EIO), and pass every other one on.
 */
export function failingAt(
  tracer: PersistTracer,
  at: number,
  armed: () => boolean,
): PersistTracer {
  return {
    flush(offset, length) {
      if (offset <= at && at < offset + length && armed()) {
        throw new Error("injected EIO: a flush failed");
      }
      tracer.flush(offset, length);
    },
    drain: () => tracer.drain(),
    mark: (label) => tracer.mark?.(label),
  };
}
