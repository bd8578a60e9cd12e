// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * {@linkcode ObjImageChecker}: what must hold for every crash image of the
 * object store's sweep (`obj_sweep.ts`, which lists the invariants). The
 * image is opened (recovered) in place on the scratch file and compared
 * with the states the workload's transactions leave.
 *
 * @module
 */
import { checkObjectPool, type ObjectPool } from "../../obj/mod.ts";
import { openPoolWith } from "../../obj/pool_access.ts";
import { closeNoting, describeError, isTypedError } from "./checker.ts";
import type { PersistenceModel } from "./model.ts";
import {
  fingerprint,
  type ModelState,
  OBJ_OPTIONS,
  observe,
} from "./obj_workload.ts";
import {
  crashRecovery,
  finishOpen,
  openScanned,
  RECOVERED,
  recoveryTracer,
} from "./recovery_crash.ts";
import type { ScratchImage } from "./scratch.ts";
import type { SubsetOptions } from "./subsets.ts";
import type { CrashTracer, TraceEvent } from "./tracer.ts";
import type { Words } from "./words.ts";
/** What checking images counts (a sweep's report has these). */
export interface ObjImageCounts {
  /** Images refused while the pool's creation was unacknowledged. */
  refused: number;
  /** Images whose open replayed log records. */
  recovered: number;
  /** Images of a crash during recovery checked. */
  recoveryImages: number;
  /** Images that showed a transaction issued but not acknowledged. */
  inFlightSeen: number;
  /** Recovered images a continuation committed to, closed and reopened. */
  continued: number;
}

/**
 * A transaction to commit on a recovered pool, chosen from where its log
 * stands (the wrap sweep's: one that ends exactly at the ring's end): its
 * effect on the model state, or null where there is none to commit.
 */
export type ObjContinuation = (
  pool: ObjectPool,
) => ((s: ModelState) => void) | null;

const RECOVERY_SUBSETS: SubsetOptions = {
  exhaustiveLimit: 4,
  prefixes: 4,
  random: 2,
  evict: 0.5,
};

/** Options of checking a trace. */
export interface ObjCheckSettings {
  subsets: SubsetOptions;
  /** Crash-during-recovery images per recovered image, at most. */
  recoveryImages: number;
  /** Check at most this many images of the trace. */
  maxImages: number;
  dir: string;
  /**
   * Continue every recovered image that shows an allowed state: commit
   * this transaction, close cleanly, reopen, and check the state is the
   * one shown plus its effect (what a crash lost must stay lost once
   * later records are written where it was); unset: no continuation.
   */
  continuation?: ObjContinuation;
}

/** What one open of an image showed. */
interface Opened {
  problems: string[];
  refused: boolean;
  state?: string;
  /** Every k whose state it shows. */
  ks?: number[];
  records: number;
  recovery: TraceEvent[];
}

/** Checks crash images of one trace on a scratch file. */
export class ObjImageChecker {
  #scratch: ScratchImage;
  #tracer: CrashTracer;
  #model: PersistenceModel;
  #states: Map<string, number[]>;

  /**
   * @param scan where recovery stores, in a large pool (`CrashTracer`): a
   *   store outside is caught by the scratch file's `verify()`
   */
  constructor(
    scratch: ScratchImage,
    model: PersistenceModel,
    states: string[],
    scan?: readonly { offset: number; length: number }[],
  ) {
    this.#scratch = scratch;
    this.#model = model;
    this.#tracer = recoveryTracer(scratch, model, scan);
    this.#states = new Map();
    states.forEach((s, k) => {
      const ks = this.#states.get(s);
      if (ks === undefined) this.#states.set(s, [k]);
      else ks.push(k);
    });
  }

  /**
   * Open the scratch pool traced, read it, check its heap, close it;
   * with `scan`, the open's recovery is traced scanning (its crashes are
   * checked: {@linkcode openScanned}).
   */
  open(created: boolean, scan = false): Opened {
    const tracer = this.#tracer;
    tracer.restart();
    const out: Opened = {
      problems: [],
      refused: false,
      records: 0,
      recovery: [],
    };
    let pool: ObjectPool | undefined;
    try {
      pool = openScanned(
        tracer,
        scan,
        () =>
          openPoolWith(this.#scratch.path, { layout: OBJ_OPTIONS.layout }, {
            tracer,
          }),
      );
    } catch (e) {
      if (!created && isTypedError(e)) out.refused = true;
      else out.problems.push(`open failed: ${describeError(e)}`);
    }
    tracer.mark(RECOVERED);
    if (pool !== undefined) {
      try {
        out.records = pool.recovery.records;
        if (pool.rootSize === 0) {
          // the setup transaction did not commit: the pool is empty
          out.state = "empty";
        } else {
          const seen = observe(pool);
          out.state = fingerprint(seen.state);
          const report = checkObjectPool(pool, { live: seen.live });
          out.problems.push(...report.problems);
        }
      } catch (e) {
        out.problems.push(
          `reading the recovered pool failed: ${describeError(e)}`,
        );
      } finally {
        closeNoting(pool, out.problems);
      }
    }
    out.recovery = finishOpen(tracer, this.#scratch, out.problems);
    if (out.state !== undefined && out.state !== "empty") {
      out.ks = this.#states.get(out.state);
    }
    return out;
  }

  /** Check the durable image with `image` stored over it. */
  check(
    image: readonly Words[],
    created: boolean,
    acked: number,
    issued: number,
    settings: ObjCheckSettings,
    rand: () => number,
    report: ObjImageCounts,
  ): string[] {
    const s = this.#scratch;
    const problems: string[] = [];
    try {
      for (const w of image) s.apply(w);
      const first = this.open(created, settings.recoveryImages > 0);
      problems.push(...first.problems);
      if (first.refused) {
        report.refused++;
        return problems;
      }
      if (first.state === undefined) return problems;
      if (first.state === "empty") {
        if (created) {
          problems.push("the pool is empty after its setup was acknowledged");
        }
        return problems;
      }
      const ks = first.ks;
      if (ks === undefined) {
        problems.push(
          `the pool shows a state no transaction prefix left (${
            first.state.slice(0, 80)
          })`,
        );
      } else if (!ks.some((k) => k >= acked && k <= issued)) {
        problems.push(
          ks[ks.length - 1] < acked
            ? `transaction ${acked} was acknowledged, the pool shows the state after ${
              ks[ks.length - 1]
            }`
            : `the pool shows the state after ${
              ks[0]
            }, only ${issued} were issued`,
        );
      } else {
        if (!ks.includes(acked)) report.inFlightSeen++;
        if (settings.continuation !== undefined && problems.length === 0) {
          problems.push(...this.#continue(settings.continuation, report));
        }
      }
      if (first.records > 0) {
        report.recovered++;
        report.recoveryImages += this.#crashRecovery(
          image,
          first.recovery,
          first.state,
          settings,
          rand,
          problems,
        );
      }
      return problems;
    } finally {
      s.revert();
    }
  }

  /**
   * Reopen the recovered scratch pool, commit `continuation`'s
   * transaction, close, reopen and compare (all traced, to undo it).
   */
  #continue(
    continuation: ObjContinuation,
    report: ObjImageCounts,
  ): string[] {
    const tracer = this.#tracer;
    tracer.restart();
    const problems: string[] = [];
    const open = () =>
      openPoolWith(this.#scratch.path, { layout: OBJ_OPTIONS.layout }, {
        tracer,
      });
    let pool: ObjectPool | undefined;
    try {
      pool = open();
      const { state } = observe(pool);
      const apply = continuation(pool);
      if (apply !== null) {
        report.continued++;
        apply(state);
        pool.close();
        pool = open();
        const seen = observe(pool);
        if (fingerprint(seen.state) !== fingerprint(state)) {
          problems.push(
            "after a transaction committed on the recovered pool, a clean close and a reopen, the pool shows another state",
          );
        }
        problems.push(
          ...checkObjectPool(pool, { live: seen.live }).problems.map((p) =>
            `after a continuation: ${p}`
          ),
        );
      }
    } catch (e) {
      problems.push(
        `continuing the recovered pool failed: ${describeError(e)}`,
      );
    } finally {
      if (pool !== undefined) closeNoting(pool, problems);
    }
    tracer.mark(RECOVERED);
    finishOpen(tracer, this.#scratch, problems);
    return problems;
  }

  #crashRecovery(
    image: readonly Words[],
    events: readonly TraceEvent[],
    expected: string,
    settings: ObjCheckSettings,
    rand: () => number,
    problems: string[],
  ): number {
    return crashRecovery({
      scratch: this.#scratch,
      image,
      events,
      model: this.#model,
      subsets: RECOVERY_SUBSETS,
      limit: settings.recoveryImages,
      rand,
      // as this sweep always did: the fully recovered image is checked
      // once more, as a crash at the recovery's end
      skipFinished: false,
      problems,
    }, () => {
      const r = this.open(true);
      if (r.state === expected) return r.problems;
      return [...r.problems, "the pool recovers to another state"];
    });
  }
}
