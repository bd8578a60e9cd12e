// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * A pmemcheck-style lint over a trace (run it on a cache-line trace: a
 * page flush writes back whole pages, which hides what was meant):
 *
 * - **unflushed**: stores never flushed by the end of the trace;
 * - **unfenced**: stores flushed after the last fence (not durable);
 * - **redundant-flush**: flushes of lines that held no new store (a
 *   double flush, or a flush of clean memory: a performance issue);
 * - **overwritten**: a word stored and flushed twice between two fences
 *   (pmemcheck's `--mult-stores`: memory used as if it were volatile).
 *
 * @module
 */
import type { TraceEvent } from "./tracer.ts";
import { WORD, type Words } from "./words.ts";

/** The lint rules. */
export type LintRule =
  | "unflushed"
  | "unfenced"
  | "redundant-flush"
  | "overwritten";

/** One finding. */
export interface LintFinding {
  /** The rule. */
  rule: LintRule;
  /** The event it concerns (the end of the trace for `unflushed`). */
  event: number;
  /** File offset of the range. */
  offset: number;
  /** Length of the range. */
  length: number;
  /** Where that is (from the namer). */
  place: string;
  /** Details: how many lines or words. */
  detail: string;
}

/** Every finding of a trace, by rule. */
export type LintReport = Record<LintRule, LintFinding[]>;

/** Contiguous runs of words, as [offset, length] pairs. */
function runs(words: Words): [number, number][] {
  const out: [number, number][] = [];
  for (let i = 0; i < words.length; i++) {
    const at = words.index(i) * WORD;
    const last = out[out.length - 1];
    if (last !== undefined && last[0] + last[1] === at) last[1] += WORD;
    else out.push([at, WORD]);
  }
  return out;
}

/**
 * Lint a trace.
 *
 * @param events the trace, ended by {@linkcode CrashTracer.finish}
 * @param name names the place of a file offset
 */
export function lint(
  events: readonly TraceEvent[],
  name: (offset: number) => string,
): LintReport {
  const report: LintReport = {
    unflushed: [],
    unfenced: [],
    "redundant-flush": [],
    overwritten: [],
  };
  const add = (
    rule: LintRule,
    event: number,
    offset: number,
    length: number,
    detail: string,
  ) =>
    report[rule].push({
      rule,
      event,
      offset,
      length,
      place: name(offset),
      detail,
    });
  let epoch = new Set<number>();
  let unfenced: number[] = [];
  events.forEach((e, i) => {
    if (e.kind === "flush") {
      if (e.cleanLines > 0) {
        const lines = e.cleanLines === 1 ? "line" : "lines";
        add(
          "redundant-flush",
          i,
          e.offset,
          e.length,
          `${e.cleanLines} clean ${lines} of ${
            e.end - e.start
          } bytes written back`,
        );
      }
      for (let j = 0; j < e.stores.length; j++) {
        const w = e.stores.index(j);
        if (epoch.has(w)) {
          add("overwritten", i, w * WORD, WORD, "flushed twice before a fence");
        }
        epoch.add(w);
      }
      if (e.stores.length > 0) unfenced.push(i);
    } else if (e.kind === "drain") {
      epoch = new Set();
      unfenced = [];
    } else if (e.kind === "end") {
      for (const [offset, length] of runs(e.dirty)) {
        add(
          "unflushed",
          i,
          offset,
          length,
          `${length / WORD} words never flushed`,
        );
      }
      for (const f of unfenced) {
        const flush = events[f] as Extract<TraceEvent, { kind: "flush" }>;
        add(
          "unfenced",
          f,
          flush.offset,
          flush.length,
          `${flush.stores.length} words flushed, no fence after`,
        );
      }
    }
  });
  return report;
}

/**
 * Summarise findings: one line per rule and kind of place (numbers in
 * place names folded to N), with counts.
 */
export function summarize(report: LintReport): string[] {
  const lines: string[] = [];
  for (const rule of Object.keys(report) as LintRule[]) {
    const byPlace = new Map<string, number>();
    for (const f of report[rule]) {
      const place = f.place.replace(/\d+/g, "N");
      byPlace.set(place, (byPlace.get(place) ?? 0) + 1);
    }
    for (const [place, n] of byPlace) lines.push(`${rule}: ${n} × ${place}`);
  }
  return lines;
}
