// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * {@linkcode StreamImageChecker}: what must hold for every crash image of
 * a log stream. The image is opened (recovered) in place on the scratch
 * file, then:
 *
 * - its regions and entries are what the ledger allows (see
 *   `stream_ledger.ts`: whole entries, persisted ⊆ visible ⊆ committed,
 *   no gap, regions consistent with the allocations and frees);
 * - recovery stored nothing it did not persist;
 * - one new entry appended to every region after recovery shows up after
 *   a reopen, and nothing else appears (no stale entry comes back);
 * - the reopen recovers nothing (recovery is idempotent);
 * - a crash during the recovery (a sample of its crash images) recovers
 *   to exactly the same entries.
 *
 * @module
 */
import type { LogStream } from "../../stream/mod.ts";
import { openStreamWith } from "../../stream/stream.ts";
import { closeNoting, describeError, isTypedError } from "./checker.ts";
import type { PersistenceModel } from "./model.ts";
import type { ScratchImage } from "./scratch.ts";
import type { StreamLedger, Visible } from "./stream_ledger.ts";
import { decodeEntry, entryPayload, regionKey } from "./stream_workload.ts";
import {
  crashRecovery,
  finishOpen,
  openScanned,
  RECOVERED,
  RECOVERY_SUBSETS,
  recoveryTracer,
} from "./recovery_crash.ts";
import type { CrashTracer, TraceEvent } from "./tracer.ts";
import type { Words } from "./words.ts";

/** How to check one image. */
export interface StreamCheckOptions {
  /** The open may refuse the image (the stream's creation was not
   * acknowledged yet). */
  mayRefuse: boolean;
  /** Append to every region after recovery and reopen. */
  probe: boolean;
  /** Check at most this many images of a crash during the recovery. */
  recoveryImages: number;
  /** A seeded random source. */
  rand: () => number;
}

/** What checking one image found and did. */
export interface StreamOutcome {
  /** One sentence per violated invariant. */
  problems: string[];
  /** The open refused the image (allowed by `mayRefuse`). */
  refused: boolean;
  /** Recovery wrote to the media. */
  recovered: boolean;
  /** Entries recovery dropped beyond a gap, or cut. */
  dropped: number;
  /** Images of a crash during recovery checked. */
  recoveryImages: number;
}

/** Probe entries use op numbers from here. */
const PROBE_OP = 0x70000000;

/** A stream's regions and entries, for a {@linkcode StreamLedger}. */
export function readVisible(
  s: LogStream,
  lengthOf: (op: number) => number | null,
): Visible {
  const regions: Visible["regions"] = new Map();
  for (const r of s.regions()) {
    const entries = [...s.entries(r)].map((e) => ({
      ts: e.timestamp,
      op: decodeEntry(e.data, lengthOf),
    }));
    regions.set(regionKey(r), { size: r.size, entries });
  }
  return { regions };
}

/**
 * A stable text form of what a stream showed, to compare opens; probe
 * entries show as `new=OP` (their timestamps are checked on their own).
 */
function fingerprint(v: Visible): string {
  return [...v.regions].sort(([a], [b]) => a < b ? -1 : 1).map(([k, r]) =>
    `${k}:${
      r.entries.map((e) =>
        `${typeof e.op === "number" && e.op >= PROBE_OP ? "new" : e.ts}=${e.op}`
      ).join(",")
    }`
  ).join(" ");
}

/** The highest timestamp a stream showed (0: none). */
function highest(v: Visible, probes: boolean): number {
  let max = 0;
  for (const r of v.regions.values()) {
    for (const e of r.entries) {
      const probe = typeof e.op === "number" && e.op >= PROBE_OP;
      if (probe === probes) max = Math.max(max, e.ts);
    }
  }
  return max;
}

/** The lowest timestamp of the probes a stream showed. */
function lowestProbe(v: Visible): number {
  let min = Infinity;
  for (const r of v.regions.values()) {
    for (const e of r.entries) {
      if (typeof e.op === "number" && e.op >= PROBE_OP) {
        min = Math.min(min, e.ts);
      }
    }
  }
  return min;
}

/** What one open found. */
interface Opened {
  problems: string[];
  refused: boolean;
  visible?: Visible;
  wrote: boolean;
  dropped: number;
  /** Events up to the end of recovery. */
  recovery: TraceEvent[];
}

/** Checks crash images of a stream on a {@linkcode ScratchImage}. */
export class StreamImageChecker {
  #scratch: ScratchImage;
  #model: PersistenceModel;
  #tracer: CrashTracer;

  /**
   * @param scratch the trace's scratch file
   * @param model the persistence model
   * @param scan where recovery stores, in a large file (see
   *   `CrashTracer`): a store outside is caught by the scratch file's
   *   `verify()`, which the sweep runs
   */
  constructor(
    scratch: ScratchImage,
    model: PersistenceModel,
    scan?: readonly { offset: number; length: number }[],
  ) {
    this.#scratch = scratch;
    this.#model = model;
    this.#tracer = recoveryTracer(scratch, model, scan);
  }

  /**
   * Check the durable image with `image` stored over it, then undo
   * everything on the scratch file.
   */
  check(
    image: readonly Words[],
    ledger: StreamLedger,
    options: StreamCheckOptions,
  ): StreamOutcome {
    const s = this.#scratch;
    const out: StreamOutcome = {
      problems: [],
      refused: false,
      recovered: false,
      dropped: 0,
      recoveryImages: 0,
    };
    const lengthOf = (op: number) =>
      op >= PROBE_OP ? op - PROBE_OP + 12 : ledger.entry(op)?.length ?? null;
    try {
      for (const w of image) s.apply(w);
      const first = this.#open(
        options.mayRefuse,
        lengthOf,
        options.probe,
        options.recoveryImages > 0,
      );
      out.problems.push(...first.problems);
      out.refused = first.refused;
      if (first.visible === undefined) return out;
      out.recovered = first.wrote;
      out.dropped = first.dropped;
      out.problems.push(...ledger.judge(first.visible));
      if (options.probe || first.wrote) {
        const second = this.#open(false, lengthOf, false);
        out.problems.push(...second.problems.map((p) => `reopen: ${p}`));
        if (second.wrote) {
          out.problems.push(
            "reopen: recovery is not idempotent (it wrote again)",
          );
        }
        if (second.visible !== undefined) {
          const want = withProbes(first.visible, options.probe);
          const got = fingerprint(second.visible);
          if (got !== want) {
            out.problems.push(
              `reopen after recovery${
                options.probe ? " and one append per region" : ""
              } shows ${got}, expected ${want}`,
            );
          }
          if (
            options.probe &&
            lowestProbe(second.visible) <= highest(first.visible, false)
          ) {
            out.problems.push(
              "an entry appended after recovery has a timestamp not above the recovered ones",
            );
          }
        }
      }
      if (first.wrote && options.recoveryImages > 0) {
        out.recoveryImages = this.#crashRecovery(
          image,
          first.recovery,
          fingerprint(first.visible),
          lengthOf,
          options,
          out.problems,
        );
      }
      return out;
    } finally {
      s.revert();
    }
  }

  /**
   * Open the scratch stream traced, read it, maybe probe it, close it;
   * with `scan`, the open's recovery is traced scanning (its crashes are
   * checked: {@linkcode openScanned}).
   */
  #open(
    mayRefuse: boolean,
    lengthOf: (op: number) => number | null,
    probe: boolean,
    scan = false,
  ): Opened {
    const tracer = this.#tracer;
    tracer.restart();
    const out: Opened = {
      problems: [],
      refused: false,
      wrote: false,
      dropped: 0,
      recovery: [],
    };
    let s: LogStream | undefined;
    try {
      s = openScanned(
        tracer,
        scan,
        () => openStreamWith(this.#scratch.path, {}, { tracer }),
      );
    } catch (e) {
      if (mayRefuse && isTypedError(e)) out.refused = true;
      else out.problems.push(`open failed: ${describeError(e)}`);
    }
    tracer.mark(RECOVERED);
    if (s !== undefined) {
      try {
        out.wrote = s.recovery.wrote;
        out.dropped = s.recovery.dropped;
        out.visible = readVisible(s, lengthOf);
        if (probe) {
          for (const r of s.regions()) {
            const op = PROBE_OP + r.id;
            s.append(r, entryPayload(op, r.id + 12));
          }
        }
      } catch (e) {
        out.problems.push(
          `using the recovered stream failed: ${describeError(e)}`,
        );
      } finally {
        closeNoting(s, out.problems);
      }
    }
    out.recovery = finishOpen(tracer, this.#scratch, out.problems);
    return out;
  }

  /**
   * Crash the recovery of `image` at its crash points; each such image
   * must recover to exactly `expected`.
   */
  #crashRecovery(
    image: readonly Words[],
    events: readonly TraceEvent[],
    expected: string,
    lengthOf: (op: number) => number | null,
    options: StreamCheckOptions,
    problems: string[],
  ): number {
    return crashRecovery({
      scratch: this.#scratch,
      image,
      events,
      model: this.#model,
      subsets: RECOVERY_SUBSETS,
      limit: options.recoveryImages,
      rand: options.rand,
      skipFinished: true,
      problems,
    }, () => {
      const r = this.#open(false, lengthOf, false);
      const got = r.visible === undefined ? "nothing" : fingerprint(r.visible);
      if (got === expected) return r.problems;
      return [
        ...r.problems,
        `the stream shows ${got}, the recovery without a crash gave ${expected}`,
      ];
    });
  }
}

/** The fingerprint of `v` after one probe entry in each region. */
function withProbes(v: Visible, probe: boolean): string {
  if (!probe) return fingerprint(v);
  const copy: Visible = { regions: new Map() };
  for (const [k, r] of v.regions) {
    const id = Number(k.split("/")[0]);
    copy.regions.set(k, {
      size: r.size,
      entries: [...r.entries, { ts: -1, op: PROBE_OP + id }],
    });
  }
  return fingerprint(copy);
}
