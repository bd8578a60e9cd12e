// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Persistence models and the crash points of a trace.
 *
 * | Model | Written back by a flush | Atomic unit | Pending at a crash |
 * |---|---|---|---|
 * | {@linkcode CACHE_LINE} (ADR) | its cache lines | an 8-byte word | every word flushed since the last fence, and every dirty word (a cache may evict it any time) |
 * | {@linkcode PAGE} (msync) | its pages | a 512-byte sector | the sectors of the pages flushed since the last fence, in any order, and of every dirty page (writeback may happen any time) |
 *
 * A fence makes everything flushed before it durable. A crash image is
 * the durable image plus any subset of the pending units.
 *
 * @module
 */
import type { TraceEvent } from "./tracer.ts";
import { WORD, Words } from "./words.ts";

/** A persistence model. */
export interface PersistenceModel {
  /** Its name. */
  readonly name: "cache-line" | "page";
  /** Bytes a flush writes back at least. */
  readonly flushGranularity: number;
  /** Bytes that reach the media all or nothing. */
  readonly atomicUnit: number;
  /**
   * The value of `PMEM2_FORCE_GRANULARITY` that makes a mapping of a
   * file-system file behave under this model, or `undefined` for the
   * natural (page) granularity.
   */
  readonly forceGranularity: string | undefined;
  /** The granularity a mapping must report under this model. */
  readonly mappingGranularity: "cache-line" | "page";
}

/** Cache-line granularity (ADR): flushes by line, 8-byte atomic words. */
export const CACHE_LINE: PersistenceModel = {
  name: "cache-line",
  flushGranularity: 64,
  atomicUnit: WORD,
  forceGranularity: "CACHE_LINE",
  mappingGranularity: "cache-line",
};

/** Page granularity (msync): flushes by page, sectors land in any order. */
export const PAGE: PersistenceModel = {
  name: "page",
  flushGranularity: 4096,
  atomicUnit: 512,
  forceGranularity: undefined,
  mappingGranularity: "page",
};

/** Every model, by name. */
export const MODELS: Readonly<Record<string, PersistenceModel>> = {
  "cache-line": CACHE_LINE,
  page: PAGE,
};

/** Words that reach the media together (one word, or one sector's). */
export interface Unit {
  /** The words and the values they would get. */
  words: Words;
  /** Whether a flush covered them (else they could only be evicted). */
  flushed: boolean;
}

/** The state of the media if the program crashed after one event. */
export interface CrashPoint {
  /** Index of the event the crash follows; -1 before the first. */
  event: number;
  /** Fences before the crash. */
  fences: number;
  /**
   * Words the fences since the previous crash point made durable, in
   * order: apply them to that point's durable image to get this one's.
   */
  fenced: Words[];
  /** Units a crash may or may not have persisted: flushed ones first, in
   * program order, then the dirty ones. */
  pending: Unit[];
  /** Labels marked since the previous crash point, in order. */
  marks: string[];
}

/** The words of one atomic unit that differ from the durable image. */
type UnitWords = Map<number, [number, number]>;

function unitOf(words: UnitWords, flushed: boolean): Unit {
  const list = new Words(words.size);
  for (const w of [...words.keys()].sort((a, b) => a - b)) {
    const [lo, hi] = words.get(w)!;
    list.push(w, lo, hi);
  }
  return { words: list, flushed };
}

/** Split words by atomic unit (unit number → its words). */
function byUnit(words: Words, perUnit: number): Map<number, UnitWords> {
  const units = new Map<number, UnitWords>();
  for (let i = 0; i < words.length; i++) {
    const w = words.index(i);
    const k = Math.floor(w / perUnit);
    let u = units.get(k);
    if (u === undefined) units.set(k, u = new Map());
    u.set(w, [words.lo(i), words.hi(i)]);
  }
  return units;
}

/**
 * The crash points of a trace: one before the first event and one after
 * each event (after a flush: before its fence; after a fence; after a
 * mark). Points whose image sets repeat the previous point's are still
 * produced; the sweep removes duplicate images.
 *
 * A unit written back carries every word of it that differs from the
 * durable image at that moment: a sector flushed twice in one epoch is
 * written whole both times, so its second unit includes the first's
 * words, and an evicted sector carries its flushed words too.
 *
 * @param events the trace (from {@linkcode CrashTracer.finish})
 * @param model the persistence model the trace was recorded under
 */
export function* crashPoints(
  events: readonly TraceEvent[],
  model: PersistenceModel,
): Generator<CrashPoint> {
  const perUnit = model.atomicUnit / WORD;
  /** Words flushed in the current epoch, by unit, latest values. */
  let epoch = new Map<number, UnitWords>();
  let flushedUnits: Unit[] = [];
  let flushed: Words[] = [];
  let fenced: Words[] = [];
  let marks: string[] = [];
  let fences = 0;
  yield { event: -1, fences, fenced: [], pending: [], marks: [] };
  for (let i = 0; i < events.length; i++) {
    const e = events[i];
    if (e.kind === "flush") {
      if (e.stores.length > 0) flushed.push(e.stores);
      for (const [k, words] of byUnit(e.stores, perUnit)) {
        let u = epoch.get(k);
        if (u === undefined) epoch.set(k, u = new Map());
        for (const [w, v] of words) u.set(w, v);
        flushedUnits.push(unitOf(u, true));
      }
    } else if (e.kind === "drain") {
      fenced.push(...flushed);
      flushed = [];
      flushedUnits = [];
      epoch = new Map();
      fences++;
    } else if (e.kind === "mark") {
      marks.push(e.label);
    }
    const pending = [...flushedUnits];
    for (const [k, words] of byUnit(e.dirty, perUnit)) {
      const merged: UnitWords = new Map(epoch.get(k));
      for (const [w, v] of words) merged.set(w, v);
      pending.push(unitOf(merged, false));
    }
    yield { event: i, fences, fenced, pending, marks };
    fenced = [];
    marks = [];
  }
}
