// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * {@linkcode ImageChecker}: what must hold for every crash image. The
 * image is opened (which recovers it) in place on the scratch file, then:
 *
 * - `check()` finds the pool consistent;
 * - every block holds a state its ledger allows: the latest acknowledged
 *   write, or one in flight at the crash; whole, never torn;
 * - recovery stored nothing it did not flush;
 * - recovery is idempotent: a second open changes no byte and repairs
 *   nothing;
 * - `pmempool check` agrees (when asked: it is slow);
 * - a crash during the recovery (a sample of its crash images) recovers
 *   to exactly the same blocks.
 *
 * @module
 */
import type { BlockPool } from "../../blk/mod.ts";
import { BadBlockError, PmemError } from "../../errors/mod.ts";
import { ERROR, type Ledger, ZERO } from "./ledger.ts";
import type { PersistenceModel } from "./model.ts";
import type { Payloads } from "./payload.ts";
import { pmempoolCheck } from "./pmempool.ts";
import { type Region, regionName } from "./regions.ts";
import type { ScratchImage } from "./scratch.ts";
import {
  crashRecovery,
  openScanned,
  RECOVERY_SUBSETS,
  recoveryTracer,
} from "./recovery_crash.ts";
import type { CrashTracer, TraceEvent } from "./tracer.ts";
import { WORD, Words } from "./words.ts";
import { openBlockPool } from "../../testing/mod.ts";
import { SDS_OFFSET, SDS_SIZE } from "../../pmdk/pool_header.ts";

/**
 * The words of the header's shutdown state: every open sets it dirty and
 * the last close clean again, as libpmemblk does. That is no recovery, so
 * the idempotence checks leave these words out.
 */
const SDS_WORDS = [SDS_OFFSET / WORD, (SDS_OFFSET + SDS_SIZE) / WORD];

/** `words` less the shutdown state's. */
function recoveryWords(words: Words): Words {
  const kept = new Words(words.length);
  for (let i = 0; i < words.length; i++) {
    const w = words.index(i);
    if (w < SDS_WORDS[0] || w >= SDS_WORDS[1]) {
      kept.push(w, words.lo(i), words.hi(i));
    }
  }
  return kept;
}

/** A trace of an open and close as if it left the shutdown state alone. */
function withoutShutdownState(events: readonly TraceEvent[]): TraceEvent[] {
  return events.map((e) =>
    e.kind === "flush"
      ? { ...e, stores: recoveryWords(e.stores), dirty: recoveryWords(e.dirty) }
      : { ...e, dirty: recoveryWords(e.dirty) }
  );
}

/**
 * What a block held when read back: a state (a payload version ≥ 1,
 * {@linkcode ZERO} or {@linkcode ERROR}), or a sentence saying what is
 * wrong with it (torn, another block's payload, an unexpected error).
 */
export type Observed = number | string;

/** Describe a block state or observation for a report. */
export function describeState(s: Observed): string {
  if (typeof s === "string") return s;
  if (s === ZERO) return "zeros";
  if (s === ERROR) return "the error state";
  return `version ${s}`;
}

/** An error's class and message, for a report. */
export function describeError(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}

/**
 * Close what an image's check opened, noting a failure among `problems`
 * (a close that throws is a finding, not the end of the sweep).
 */
export function closeNoting(it: { close(): void }, problems: string[]): void {
  try {
    it.close();
  } catch (e) {
    problems.push(`close failed: ${describeError(e)}`);
  }
}

/**
 * Whether an error is one the library means to throw: a `PmemError` (or
 * subclass), or a `RangeError`/`TypeError` of the library's own wording
 * ("Cannot …"), as opposed to a runtime failure escaping from inside.
 */
export function isTypedError(e: unknown): boolean {
  if (e instanceof PmemError) return true;
  return (e instanceof RangeError || e instanceof TypeError) &&
    e.message.startsWith("Cannot ");
}

/**
 * Read blocks and classify each.
 *
 * @param pool an open pool
 * @param lbas the blocks
 * @param payloads the workload's payloads (their size is the block size)
 */
export function readBlocks(
  pool: BlockPool,
  lbas: readonly number[],
  payloads: Payloads,
): Map<number, Observed> {
  const out = new Map<number, Observed>();
  const buf = new Uint8Array(pool.blockSize);
  for (const lba of lbas) {
    try {
      pool.read(lba, buf);
    } catch (e) {
      out.set(
        lba,
        e instanceof BadBlockError
          ? ERROR
          : `a failed read (${describeError(e)})`,
      );
      continue;
    }
    const c = payloads.decode(buf);
    if (c.kind === "zero") out.set(lba, ZERO);
    else if (c.kind === "torn") out.set(lba, `a torn block (${c.why})`);
    else if (c.lba !== lba) {
      out.set(lba, `block ${c.lba}'s version ${c.version}`);
    } else out.set(lba, c.version);
  }
  return out;
}

/**
 * The blocks whose observed state the ledger does not allow.
 *
 * @returns one sentence per such block
 */
export function compareWithLedger(
  observed: ReadonlyMap<number, Observed>,
  ledger: Ledger,
): string[] {
  const problems: string[] = [];
  for (const [lba, o] of observed) {
    const allowed = ledger.allowed(lba);
    if (typeof o === "string" || !allowed.includes(o)) {
      problems.push(
        `block ${lba} holds ${describeState(o)}, expected ${
          allowed.map(describeState).join(" or ")
        }`,
      );
    }
  }
  return problems;
}

/** How to check one image. */
export interface ImageCheckOptions {
  /** Whether the open may refuse the image with a typed error (the pool's
   * creation was not acknowledged yet). */
  mayRefuse: boolean;
  /** Also run `pmempool check` on the recovered image. */
  pmempool: boolean;
  /** Check at most this many images of a crash during the recovery. */
  recoveryImages: number;
  /** A seeded random source. */
  rand: () => number;
}

/** What checking one image found and did. */
export interface ImageOutcome {
  /** One sentence per violated invariant; empty when all hold. */
  problems: string[];
  /** The open refused the image (allowed by `mayRefuse`). */
  refused: boolean;
  /** The recovery stored something (finished a write, repaired a block). */
  recovered: boolean;
  /** Images of a crash during the recovery that were checked. */
  recoveryImages: number;
  /** `pmempool check` runs. */
  pmempoolRuns: number;
}

/** What one open found. */
interface Recovery {
  problems: string[];
  /** Whether it stored anything (flushed or not). */
  changed: boolean;
  refused: boolean;
  repaired: string[];
  observed: Map<number, Observed> | undefined;
  events: TraceEvent[];
}

/** Checks crash images on a {@linkcode ScratchImage}. */
export class ImageChecker {
  #scratch: ScratchImage;
  #model: PersistenceModel;
  #payloads: Payloads;
  #lbas: readonly number[];
  #regions: readonly Region[];
  #tracer: CrashTracer;

  /**
   * @param scratch the trace's scratch file
   * @param setup the model, the workload's payloads, the blocks to read
   *   back, the pool's regions (to name places in reports) and the
   *   ranges recovery stores to (a large pool's: unset, the whole file)
   */
  constructor(
    scratch: ScratchImage,
    setup: {
      model: PersistenceModel;
      payloads: Payloads;
      lbas: readonly number[];
      regions: readonly Region[];
      /** Where recovery stores, in a large pool (`CrashTracer`'s `scan`). */
      scan?: readonly { offset: number; length: number }[];
    },
  ) {
    this.#scratch = scratch;
    this.#model = setup.model;
    this.#payloads = setup.payloads;
    this.#lbas = setup.lbas;
    this.#regions = setup.regions;
    // Recovery stores only to the pool's metadata, never to a data
    // block: scanning just that (its map and flog, not its 16 MiB) keeps the
    // scans of a traced open cheap. A store elsewhere would escape the
    // undo, which the scratch file's verify() reports.
    const metadata = setup.regions.filter((r) => r.kind !== "data").map((
      r,
    ) => ({ offset: r.offset, length: Math.ceil(r.length / WORD) * WORD }));
    this.#tracer = recoveryTracer(
      scratch,
      setup.model,
      setup.scan ?? metadata,
    );
  }

  /**
   * Check the durable image with `image` (pending units' words, in order)
   * stored over it, then undo everything on the scratch file.
   *
   * @param image the words the crash persisted beyond the durable image
   * @param ledger what each block may hold
   * @param options what else to run
   */
  check(
    image: readonly Words[],
    ledger: Ledger,
    options: ImageCheckOptions,
  ): ImageOutcome {
    const s = this.#scratch;
    const out: ImageOutcome = {
      problems: [],
      refused: false,
      recovered: false,
      recoveryImages: 0,
      pmempoolRuns: 0,
    };
    try {
      for (const w of image) s.apply(w);
      const first = this.#recover(
        options.mayRefuse,
        true,
        options.recoveryImages > 0,
      );
      out.problems.push(...first.problems);
      if (first.refused || first.observed === undefined) {
        out.refused = first.refused;
        return out;
      }
      out.problems.push(...compareWithLedger(first.observed, ledger));
      out.recovered = first.changed;
      if (options.pmempool) {
        out.pmempoolRuns++;
        const v = pmempoolCheck(s.path);
        if (!v.consistent) {
          out.problems.push(`pmempool check: ${v.output.replace(/\n/g, "; ")}`);
        }
      }
      // open is deterministic: on bytes it left unchanged a second open
      // would do the same, and a crash during it is the image itself
      if (!first.changed) return out;
      const second = this.#recover(false, false);
      out.problems.push(...second.problems.map((p) => `second open: ${p}`));
      if (second.repaired.length > 0) {
        out.problems.push(
          `second open repaired again: ${second.repaired.join("; ")}`,
        );
      }
      const changed = this.#stored(second.events);
      if (changed.length > 0) {
        out.problems.push(
          `recovery is not idempotent: the second open stored ${changed}`,
        );
      }
      if (options.recoveryImages > 0) {
        out.recoveryImages = this.#crashRecovery(
          image,
          first.events,
          first.observed,
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
   * Open the scratch pool traced, check it, read it back, close it; with
   * `scan`, the open's recovery is traced scanning (its crashes are
   * checked: {@linkcode openScanned}).
   */
  #recover(mayRefuse: boolean, read: boolean, scan = false): Recovery {
    const problems: string[] = [];
    const tracer = this.#tracer;
    tracer.restart();
    let refused = false;
    let repaired: string[] = [];
    let observed: Map<number, Observed> | undefined;
    let pool: BlockPool | undefined;
    try {
      pool = openScanned(
        tracer,
        scan,
        () => openBlockPool(this.#scratch.path, { tracer }),
      );
    } catch (e) {
      if (mayRefuse && isTypedError(e)) refused = true;
      else problems.push(`open failed: ${describeError(e)}`);
    }
    if (pool !== undefined) {
      try {
        const report = pool.check();
        repaired = report.repaired;
        if (!report.consistent) {
          problems.push(`check() found: ${report.problems.join("; ")}`);
        }
        if (read) observed = readBlocks(pool, this.#lbas, this.#payloads);
      } catch (e) {
        problems.push(`checking the open pool failed: ${describeError(e)}`);
      } finally {
        closeNoting(pool, problems);
      }
    }
    const traced = tracer.finish();
    for (const e of traced) {
      if (e.kind === "flush") this.#scratch.touch(e.stores);
    }
    const events = withoutShutdownState(traced);
    let changed = false;
    for (const e of events) {
      if (e.kind === "flush") changed ||= e.stores.length > 0;
    }
    const unflushed = events[events.length - 1].dirty;
    if (unflushed.length > 0) {
      problems.push(
        `recovery left ${unflushed.length} stores unflushed (${
          this.#where(unflushed)
        })`,
      );
      this.#scratch.settle(unflushed);
      changed = true;
    }
    return { problems, changed, refused, repaired, observed, events };
  }

  /** "N words (places)" stored by a trace, or "" when none. */
  #stored(events: readonly TraceEvent[]): string {
    let n = 0;
    const places = new Set<string>();
    for (const e of events) {
      if (e.kind !== "flush" || e.stores.length === 0) continue;
      n += e.stores.length;
      places.add(this.#where(e.stores));
    }
    return n === 0 ? "" : `${n} words (${[...places].join(", ")})`;
  }

  /** The places of some words, for a report (at most three named). */
  #where(words: Words): string {
    const names = new Set<string>();
    for (let i = 0; i < words.length; i++) {
      names.add(regionName(this.#regions, words.index(i) * WORD));
    }
    const list = [...names];
    return list.length <= 3
      ? list.join(", ")
      : `${list.slice(0, 3).join(", ")} and ${list.length - 3} more`;
  }

  /**
   * Crash the recovery of `image` at its crash points; each such image
   * must recover to exactly `expected`.
   *
   * @returns the number of images checked
   */
  #crashRecovery(
    image: readonly Words[],
    events: readonly TraceEvent[],
    expected: ReadonlyMap<number, Observed>,
    options: ImageCheckOptions,
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
      const r = this.#recover(false, true);
      const found = [...r.problems];
      for (const [lba, want] of expected) {
        const got = r.observed?.get(lba);
        if (got !== want) {
          found.push(
            `block ${lba} holds ${
              describeState(got ?? "nothing")
            }, the recovery without a crash gave ${describeState(want)}`,
          );
        }
      }
      return found;
    });
  }
}
