// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Crashing a recovery: the images of a crash during an open's recovery,
 * made on the scratch file of the image it recovered, for each store's
 * checker (`checker.ts`, `stream_checker.ts`, `obj_sweep.ts`) to open
 * again and compare with what the uninterrupted recovery gave; and the
 * tracer those checkers trace their opens with.
 *
 * @module
 */
import { crashPoints, type PersistenceModel } from "./model.ts";
import { shuffle } from "./random.ts";
import type { ScratchImage } from "./scratch.ts";
import { type SubsetOptions, subsets } from "./subsets.ts";
import { CrashTracer, type TraceEvent } from "./tracer.ts";
import type { Words } from "./words.ts";

/**
 * Subsets of a crash during recovery (the block store's and the
 * stream's): recovery stores are few, so more of them can be tried.
 */
export const RECOVERY_SUBSETS: SubsetOptions = {
  exhaustiveLimit: 6,
  prefixes: 6,
  random: 3,
  evict: 0.5,
};

/**
 * The tracer of a checker's opens of the scratch file: it traces each
 * open's recovery, whose crash images {@linkcode crashRecovery} makes.
 * It does not scan for unflushed stores (a scan of the whole file at
 * every event costs more than the open), except during an open traced
 * by {@linkcode openScanned}: the open whose recovery is crashed, where a
 * store made early and flushed late may be evicted in between. The scan
 * at the end of every trace still catches a store never flushed.
 *
 * @param scan where recovery stores, in a large file (`CrashTracer`'s
 *   `scan`): a store outside is caught by the scratch file's `verify()`
 */
export function recoveryTracer(
  scratch: ScratchImage,
  model: PersistenceModel,
  scan?: readonly { offset: number; length: number }[],
): CrashTracer {
  const tracer = new CrashTracer({
    live: scratch.live,
    shadow: scratch.shadow,
    flushGranularity: model.flushGranularity,
    scan,
  });
  tracer.scanning = false;
  return tracer;
}

/**
 * Run `open` (a checker's open of the scratch file, which recovers it)
 * with `tracer` scanning at every event when `scan` is set: the crash
 * points of a recovery that {@linkcode crashRecovery} will crash must
 * offer its stores not flushed yet for eviction, as the program's own
 * traces do. Without the scan, a recovery that stores a word early and
 * flushes it only after persisting something else (the settled
 * timestamp before the cut headers of a stream, say) shows no crash in
 * which that word reached the media first, and the sweep passes it.
 * Scanning stops when `open` returns: the checks after it are not
 * crashed.
 */
export function openScanned<T>(
  tracer: CrashTracer,
  scan: boolean,
  open: () => T,
): T {
  tracer.scanning = scan;
  try {
    return open();
  } finally {
    tracer.scanning = false;
  }
}

/** The label a checker marks where its traced open's recovery ends. */
export const RECOVERED = "recovered";

/**
 * End a checker's traced open of the scratch file (the object store's
 * and the stream's): the scratch file is told every word the open
 * stored, to undo it with the image; a store never flushed is reported
 * in `problems` and made durable, as the scan found it.
 *
 * @returns the open's events up to the {@linkcode RECOVERED} mark: the
 *   recovery's trace, whose crashes {@linkcode crashRecovery} checks
 */
export function finishOpen(
  tracer: CrashTracer,
  scratch: ScratchImage,
  problems: string[],
): TraceEvent[] {
  const events = tracer.finish();
  const end = events.findIndex((e) =>
    e.kind === "mark" && e.label === RECOVERED
  );
  for (const e of events) {
    if (e.kind === "flush") scratch.touch(e.stores);
  }
  const unflushed = events[events.length - 1].dirty;
  if (unflushed.length > 0) {
    problems.push(`${unflushed.length} stores were never persisted`);
    scratch.settle(unflushed);
  }
  return events.slice(0, end);
}

/** What {@linkcode crashRecovery} crashes. */
export interface RecoveryCrash {
  /** The scratch file, holding the durable image of the trace's point. */
  scratch: ScratchImage;
  /** The crash image whose recovery is crashed (its pending words). */
  image: readonly Words[];
  /** The recovery's trace. */
  events: readonly TraceEvent[];
  /** The persistence model. */
  model: PersistenceModel;
  /** Which subsets of each of the recovery's crash points to try. */
  subsets: SubsetOptions;
  /** Images to check at most. */
  limit: number;
  /** A seeded random source (the subsets, then their order). */
  rand: () => number;
  /**
   * Whether to skip the image of the whole recovery made durable too
   * (when it equals the recovered file the recovery already gave).
   */
  skipFinished: boolean;
  /** Where each image's problems go, marked as a crash during recovery. */
  problems: string[];
}

/**
 * Store each sampled image of a crash during the recovery of `c.image`
 * (its durable part, then a subset of a crash point's pending stores)
 * over the image on the scratch file, and call `check` on it: at most
 * `c.limit` images, each once, never `c.image` itself. The problems
 * `check` finds go to `c.problems`, each marked as found after a crash
 * during recovery.
 *
 * @param c the image, its recovery's trace and the budget
 * @param check opens and checks the scratch file, giving its problems
 * @returns the number of images checked
 */
export function crashRecovery(
  c: RecoveryCrash,
  check: () => readonly string[],
): number {
  const s = c.scratch;
  const candidates: Words[][] = [];
  let durable: Words[] = [];
  for (const p of crashPoints(c.events, c.model)) {
    durable = [...durable, ...p.fenced];
    for (const sub of subsets(p.pending, c.rand, c.subsets)) {
      candidates.push([
        ...durable,
        ...sub.units.map((i) => p.pending[i].words),
      ]);
    }
  }
  const skip = new Set([s.fingerprint(c.image)]);
  if (c.skipFinished) skip.add(s.fingerprint([...c.image, ...durable]));
  let checked = 0;
  for (const extra of shuffle(candidates, c.rand)) {
    if (checked >= c.limit) break;
    const fp = s.fingerprint([...c.image, ...extra]);
    if (skip.has(fp)) continue;
    skip.add(fp);
    s.revert();
    for (const w of c.image) s.apply(w);
    for (const w of extra) s.apply(w);
    for (const p of check()) c.problems.push(`crash during recovery: ${p}`);
    checked++;
  }
  return checked;
}
