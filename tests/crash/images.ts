// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The crash images of a trace, as every store's sweep checks them
 * (`sweep.ts`, `stream_sweep.ts`, `obj_sweep.ts`): at each crash point
 * (`model.ts`) the scratch file moves to the point's durable image, the
 * point's marks go to the store's ledger, and each sampled subset of its
 * pending units (`subsets.ts`) not seen before is an image to check.
 *
 * @module
 */
import { crashPoints, type PersistenceModel } from "./model.ts";
import type { ScratchImage } from "./scratch.ts";
import { type SubsetOptions, subsets } from "./subsets.ts";
import type { TraceEvent } from "./tracer.ts";
import type { Words } from "./words.ts";

/** One crash image: what a crash after an event persisted. */
export interface CrashImage {
  /** The event the crash followed (-1: before the first). */
  event: number;
  /** The pending units the image kept (indexes). */
  units: number[];
  /** Their words, in order, to store over the durable image. */
  image: Words[];
}

/** How to walk a trace's crash images. */
export interface CrashImageWalk {
  /** The trace's scratch file (its durable image follows the walk). */
  scratch: ScratchImage;
  /** The trace. */
  events: readonly TraceEvent[];
  /** The persistence model. */
  model: PersistenceModel;
  /** A seeded random source (the subsets). */
  rand: () => number;
  /** Which subsets of each crash point's pending units to try. */
  subsets: SubsetOptions;
  /** Receives each mark, in order, before its crash point's images. */
  mark(label: string): void;
  /** Whether the images of the point reached are checked. @default always */
  ready?(): boolean;
}

/**
 * The distinct crash images of a trace, in order: an image is a subset
 * of a crash point's pending units, the same words after as many marks
 * being the same image. Counts the crash points visited and the subsets
 * skipped as seen in `counts`.
 *
 * @param w the trace, its scratch file and how to walk it
 * @param counts where the counts go (a sweep's report)
 */
export function* crashImages(
  w: CrashImageWalk,
  counts: { crashPoints: number; duplicates: number },
): Generator<CrashImage> {
  const seen = new Set<string>();
  let marks = 0;
  for (const p of crashPoints(w.events, w.model)) {
    for (const words of p.fenced) w.scratch.commit(words);
    for (const label of p.marks) {
      marks++;
      w.mark(label);
    }
    if (w.ready !== undefined && !w.ready()) continue;
    counts.crashPoints++;
    for (const sub of subsets(p.pending, w.rand, w.subsets)) {
      const image = sub.units.map((i) => p.pending[i].words);
      const key = `${w.scratch.fingerprint(image)}:${marks}`;
      if (seen.has(key)) {
        counts.duplicates++;
        continue;
      }
      seen.add(key);
      yield { event: p.event, units: sub.units, image };
    }
  }
}
