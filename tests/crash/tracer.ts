// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * {@linkcode CrashTracer}: a {@linkcode PersistTracer} that records what a
 * program made durable, and when, by diffing the live file against a
 * shadow of it (pmemcheck's store log, rebuilt from the funnel's events).
 *
 * At a flush, every word of the written-back range (widened to the flush
 * granularity) that differs from the shadow is a store that is now
 * flushed; the shadow takes its value. After every event the whole file
 * is compared with the shadow: what still differs are stores not flushed
 * yet, which a crash may or may not have evicted to the media. Stores made
 * through raw views are caught the same way as those of `memcpy`.
 *
 * @module
 */
import { mapFile, type Mapping } from "../../pmem2/mod.ts";
import type { PersistTracer } from "../../pmem2/tracer.ts";
import type { PersistenceModel } from "./model.ts";
import { spareCopy } from "./spare_buffers.ts";
import { diffWords, WORD, Words } from "./words.ts";

/** A flush: the words it wrote back. */
export interface FlushEvent {
  /** Discriminant. */
  kind: "flush";
  /** The range the program flushed. */
  offset: number;
  /** Its length. */
  length: number;
  /** Start of the range written back (widened to the flush granularity). */
  start: number;
  /** End of the range written back. */
  end: number;
  /** Words changed since their last flush, with the values flushed. */
  stores: Words;
  /** Flush granules of `[start, end)` that held no changed word. */
  cleanLines: number;
  /** Stores not flushed yet, after this event. */
  dirty: Words;
}

/** A fence (drain): every flushed word is now durable. */
export interface DrainEvent {
  /** Discriminant. */
  kind: "drain";
  /** Stores not flushed yet, after this event. */
  dirty: Words;
}

/** A labelled point of the program (an operation issued or acknowledged). */
export interface MarkEvent {
  /** Discriminant. */
  kind: "mark";
  /** The label. */
  label: string;
  /** Stores not flushed yet, at this point. */
  dirty: Words;
}

/** The end of the trace. */
export interface EndEvent {
  /** Discriminant. */
  kind: "end";
  /** Stores never flushed. */
  dirty: Words;
}

/** One recorded event, in program order. */
export type TraceEvent = FlushEvent | DrainEvent | MarkEvent | EndEvent;

/** Options of {@linkcode CrashTracer}. */
export interface CrashTracerOptions {
  /**
   * The live bytes of the traced file: a view of a shared mapping of it,
   * or a function that maps it when the first event arrives (for a file
   * that does not exist yet when tracing is set up).
   */
  live: Uint8Array | (() => Uint8Array);
  /**
   * What the media holds when tracing starts, as long as the file. The
   * tracer updates it in place at every flush.
   */
  shadow: Uint8Array;
  /** Bytes a flush writes back at least: 64 (a cache line) or 4096 (a page). */
  flushGranularity: number;
  /**
   * Where the program stores, when that is a small part of a large file
   * (a pool past the size Bun views whole): every scan, the one of
   * {@linkcode CrashTracer.finish} included, compares only these ranges,
   * so a trace or a checked open costs what they cost, not what the file
   * does. A flush that writes back a store outside them counts in
   * {@linkcode CrashTracer.strays} (that store was never seen unflushed),
   * and {@linkcode CrashTracer.unscanned} finds stores outside them never
   * flushed: a sweep asserts there are none. Disjoint, at multiples of 8.
   * Unset: the whole file.
   */
  scan?: readonly { offset: number; length: number }[];
}

/**
 * Records a program's flushes, fences and marks, with the stores each
 * flush covered and the stores still unflushed after every event.
 *
 * @example Usage
 * ```ts
 * import { mapFile } from "../../pmem2/mod.ts";
 * import { setTracer } from "../../testing/mod.ts";
 * import { CrashTracer } from "./tracer.ts";
 * import assert from "node:assert/strict";
 * import { mkdtempSync, rmSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 *
 * const dir = mkdtempSync(join(tmpdir(), "asyncpmem-"));
 * using map = mapFile(join(dir, "data"), { size: 65536 });
 * const tracer = new CrashTracer({
 *   live: map.view(),
 *   shadow: map.view().slice(),
 *   flushGranularity: 64,
 * });
 * setTracer(map, tracer);
 * map.view(0, 8).fill(1); // a raw store
 * map.persist(0, 8);
 * const [flush, drain, end] = tracer.finish();
 * assert.equal(flush.kind === "flush" && flush.stores.length, 1);
 * assert.deepEqual([drain.kind, end.kind], ["drain", "end"]);
 * rmSync(dir, { recursive: true });
 * ```
 */
export class CrashTracer implements PersistTracer {
  #live: Uint8Array | undefined;
  #open: (() => Uint8Array) | undefined;
  #shadow: Uint8Array;
  #granularity: number;
  #events: TraceEvent[] = [];
  #scan: readonly { offset: number; length: number }[] | undefined;
  /** Words flushed outside the `scan` ranges (0 without them). */
  strays = 0;
  /**
   * Whether every event compares the whole file with the shadow to find
   * the stores not flushed yet (the `dirty` words). Turn it off for a
   * stretch whose crash points will not be checked: flushes still record
   * their stores, and a store left dirty there is found by the first
   * scan after it ({@linkcode CrashTracer.finish} always scans).
   */
  scanning = true;

  /** @param options the live file, its shadow and the flush granularity */
  constructor(options: CrashTracerOptions) {
    if (options.live instanceof Uint8Array) this.#live = options.live;
    else this.#open = options.live;
    this.#shadow = options.shadow;
    this.#granularity = options.flushGranularity;
    // in file order, so a scan lists words as one of the whole file does
    this.#scan = options.scan === undefined
      ? undefined
      : [...options.scan].sort((a, b) => a.offset - b.offset);
    // 0 would make every flush cover no store: a trace of nothing flushed
    if (
      !Number.isInteger(this.#granularity) || this.#granularity <= 0 ||
      this.#granularity % WORD !== 0
    ) {
      throw new RangeError(
        `Cannot trace: flushGranularity must be a positive multiple of ${WORD}, got ${this.#granularity}`,
      );
    }
    // a live file given as bytes is checked now, one opened later at its
    // first use: words past the shorter would compare with nothing
    if (this.#live !== undefined) this.#checkLength(this.#live);
  }

  #checkLength(live: Uint8Array): void {
    if (live.byteLength !== this.#shadow.byteLength) {
      throw new RangeError(
        `Cannot trace: the file has ${live.byteLength} bytes, the shadow ${this.#shadow.byteLength}`,
      );
    }
  }

  #view(): Uint8Array {
    if (this.#live === undefined) {
      const live = this.#open!();
      this.#checkLength(live);
      this.#live = live;
    }
    return this.#live;
  }

  /** Every event so far, in program order. */
  get events(): readonly TraceEvent[] {
    return this.#events;
  }

  /** Forget the events recorded so far (the shadow is kept). */
  restart(): void {
    this.#events = [];
  }

  /** Record a flush of `[offset, offset + length)`. */
  flush(offset: number, length: number): void {
    const live = this.#view();
    const g = this.#granularity;
    const start = Math.floor(offset / g) * g;
    const end = Math.min(live.byteLength, Math.ceil((offset + length) / g) * g);
    const stores = new Words();
    diffWords(live, this.#shadow, start, end, stores, true);
    let touched = 0;
    let last = -1;
    for (let i = 0; i < stores.length; i++) {
      if (this.#scan !== undefined && !this.#scanned(stores.index(i) * WORD)) {
        this.strays++;
      }
      const line = Math.floor(stores.index(i) * WORD / g);
      if (line !== last) touched++;
      last = line;
    }
    this.#events.push({
      kind: "flush",
      offset,
      length,
      start,
      end,
      stores,
      cleanLines: Math.max(0, (end - start) / g - touched),
      dirty: this.#dirty(),
    });
  }

  /** Record a fence. */
  drain(): void {
    this.#events.push({ kind: "drain", dirty: this.#dirty() });
  }

  /** Record a labelled point. */
  mark(label: string): void {
    this.#events.push({ kind: "mark", label, dirty: this.#dirty() });
  }

  /**
   * End the trace: record the stores never flushed.
   *
   * @returns every event, the end included
   */
  finish(): TraceEvent[] {
    this.#events.push({ kind: "end", dirty: this.#dirty(true) });
    return this.#events;
  }

  /** Whether the byte at `offset` lies in a `scan` range. */
  #scanned(offset: number): boolean {
    return this.#scan!.some((r) =>
      offset >= r.offset && offset < r.offset + r.length
    );
  }

  /**
   * The stores outside the `scan` ranges not flushed yet (a whole-file
   * scan: once per trace, after {@linkcode CrashTracer.finish}).
   */
  unscanned(): number {
    const live = this.#view();
    const all = new Words();
    diffWords(live, this.#shadow, 0, live.byteLength, all, false);
    let n = 0;
    for (let i = 0; i < all.length; i++) {
      if (this.#scan !== undefined && !this.#scanned(all.index(i) * WORD)) n++;
    }
    return n;
  }

  #dirty(always = false): Words {
    const live = this.#view();
    const dirty = new Words();
    if (!always && !this.scanning) return dirty;
    if (this.#scan === undefined) {
      diffWords(live, this.#shadow, 0, live.byteLength, dirty, false);
      return dirty;
    }
    for (const r of this.#scan) {
      const end = Math.min(live.byteLength, r.offset + r.length);
      diffWords(live, this.#shadow, r.offset, end, dirty, false);
    }
    return dirty;
  }
}

/**
 * The tracer a recording hands the store: `tracer`, or with
 * `faults.dropFences` the same with every fence hidden, as if the
 * program never fenced (the fault the checkers' own tests inject, to
 * show that they find the lost and torn writes it leaves).
 */
export function faultyTracer(
  tracer: CrashTracer,
  faults: { dropFences?: boolean },
): PersistTracer {
  if (!faults.dropFences) return tracer;
  return {
    flush: (offset, length) => tracer.flush(offset, length),
    drain() {},
    mark: (label) => tracer.mark(label),
  };
}

/**
 * Trace the file at `path` from now on, as it is: a recording that
 * prepared it untraced maps it and starts the tracer's shadow from its
 * bytes, so that only what follows is traced.
 *
 * @param scan where the program stores, in a large file (see
 *   {@linkcode CrashTracerOptions.scan})
 * @returns the mapping (the recording closes it), the file's bytes now
 *   (the trace's base), the tracer and its shadow (spare buffers: the
 *   recording may `recycle` the shadow once the tracer is finished, a
 *   sweep the base once the trace is checked)
 */
export function traceFile(
  path: string,
  model: PersistenceModel,
  scan?: readonly { offset: number; length: number }[],
): {
  probe: Mapping;
  base: Uint8Array;
  tracer: CrashTracer;
  shadow: Uint8Array;
} {
  const probe = mapFile(path);
  const base = spareCopy(probe.view());
  const shadow = spareCopy(base);
  const tracer = new CrashTracer({
    live: probe.view(),
    shadow,
    flushGranularity: model.flushGranularity,
    scan,
  });
  return { probe, base, tracer, shadow };
}
