// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Reading a region's entries: a snapshot iterator, and a follower that
 * waits for new entries. Both only read: recovery happened at open.
 *
 * @module
 */
import { ClosedError } from "../errors/mod.ts";
import type { LogCore } from "./core.ts";
import { ENTRY_HEADER, entryTotal, normalize, PAD_BIT } from "./layout.ts";
import type { LogEntry } from "./region.ts";
import { regionAllocated } from "./handles.ts";

/**
 * The committed entries of a region, oldest first, as they were when
 * iteration began: a cursor over the region's headers from its head to
 * the committed end read at the start. A class, not a generator: a
 * generator's resumption costs more than a call of `next()`, and small
 * entries are read at the rate of the per-entry work.
 */
export class SnapshotIterator implements IterableIterator<LogEntry> {
  #core: LogCore;
  #k: number;
  #gen: number;
  /** Logical position of the next header. */
  #pos: number;
  /** The committed end when iteration began. */
  #end: number;
  /**
   * The stream's committed timestamp when iteration began: a region's
   * committed end can pass it (a commit pass whose thread ended between
   * the two, until the next pass finishes it), and what lies between is
   * not committed in order yet.
   */
  #limit: number;
  #size: number;
  #offset: number;
  #closed: () => boolean;

  /**
   * @param core the stream's engine
   * @param k the region slot
   * @param gen its generation (iteration stops with an error once freed)
   * @param closed whether the stream that made it closed
   */
  constructor(core: LogCore, k: number, gen: number, closed: () => boolean) {
    this.#core = core;
    this.#closed = closed;
    this.#k = k;
    this.#gen = gen;
    const s = core.shared;
    this.#size = s.size(k);
    this.#offset = s.offset(k);
    this.#end = s.committedEnd(k);
    this.#limit = s.committed;
    this.#pos = s.head(k);
  }

  [Symbol.iterator](): this {
    return this;
  }

  next(): IteratorResult<LogEntry, undefined> {
    const core = this.#core;
    const s = core.shared;
    if (
      this.#closed() || !regionAllocated(core, this.#k, "entries") ||
      s.generation(this.#k) !== this.#gen
    ) {
      throw new ClosedError(
        this.#closed() ? "LogStream" : `region ${this.#k} (freed)`,
        "entries",
      );
    }
    const media = core.media;
    const size = this.#size;
    for (;;) {
      let pos = this.#pos;
      const head = s.head(this.#k);
      if (pos < head) pos = head; // truncated meanwhile
      let phys = pos % size;
      if (size - phys < ENTRY_HEADER) {
        pos += size - phys;
        phys = 0;
      }
      if (pos >= this.#end) {
        this.#pos = pos;
        return { value: undefined, done: true };
      }
      const at = this.#offset + phys;
      const word = media.read32(at + 4);
      const length = (word & ~PAD_BIT) >>> 0;
      if (word & PAD_BIT) {
        this.#pos = pos + entryTotal(length);
        continue;
      }
      const timestamp = media.read32(at + 8) +
        media.read32(at + 12) * 4294967296;
      if (timestamp > this.#limit) {
        // the rest of the region is later still: done, and stays so
        this.#pos = this.#end = pos;
        return { value: undefined, done: true };
      }
      this.#pos = pos + entryTotal(length);
      return {
        value: { timestamp, data: media.bytes(at + ENTRY_HEADER, length) },
        done: false,
      };
    }
  }
}

/** Where a follower is in a region. */
interface Cursor {
  /** Logical position of the next header. */
  pos: number;
}

/**
 * Read the entry at the cursor if it lies before `end` (and its
 * timestamp is at most `limit`), and move past it. Padding is skipped.
 *
 * @returns the entry, `null` when there is nothing more before `end`
 */
function readNext(
  core: LogCore,
  k: number,
  cur: Cursor,
  end: number,
  limit: number,
): LogEntry | null {
  const s = core.shared;
  const media = core.media;
  const size = s.size(k);
  const offset = s.offset(k);
  for (;;) {
    if (cur.pos < s.head(k)) cur.pos = s.head(k); // truncated meanwhile
    const pos = normalize(cur.pos, size);
    if (pos >= end) return null;
    const at = offset + (pos % size);
    const word = media.read32(at + 4);
    const ts = media.read64(at + 8);
    if (ts > limit) return null;
    const length = (word & ~PAD_BIT) >>> 0;
    cur.pos = pos + entryTotal(length);
    if (word & PAD_BIT) continue;
    return { timestamp: ts, data: media.bytes(at + ENTRY_HEADER, length) };
  }
}

/** Options of {@linkcode follow}. */
export interface FollowOptions {
  /** Yield entries with this timestamp or a later one. @default 0 */
  from?: number;
  /**
   * "committed" yields entries once visible; "persisted" only once
   * durable. @default "committed"
   */
  level?: "committed" | "persisted";
  /** Stop following (the iteration then ends). */
  signal?: AbortSignal;
}

/** Longest sleep between looks for entries of other Workers (ms). */
const FOLLOW_MAX_MS = 16;

/**
 * Entries of region `k` from `from` on, waiting for new ones: commits in
 * this isolate wake it at once; commits of other Workers are seen within
 * a few milliseconds. It ends when `signal` aborts or the stream closes.
 *
 * @param live returns false once the stream closed or the region was
 *   freed (the iteration then ends)
 */
export function follow(
  core: LogCore,
  k: number,
  live: () => boolean,
  options: FollowOptions,
): AsyncIterableIterator<LogEntry> {
  const stop: Stop = { stopped: false, wake: undefined };
  // read now: the generator's body runs only at the first next(), and the
  // caller's object may have changed by then (checked at the call)
  const { from, level, signal } = options;
  const gen = followEntries(core, k, live, { from, level, signal }, stop);
  // on the async iterator prototype, as the generator was (its
  // Symbol.asyncIterator, and Symbol.asyncDispose where there is one)
  const it = Object.create(ASYNC_ITERATOR) as AsyncIterableIterator<LogEntry>;
  return Object.assign(it, {
    next: () => gen.next(),
    // an async generator queues return() and throw() behind a next() in
    // progress, which waits for an entry that may never come: stop the
    // wait first
    return: (value?: unknown) => {
      stopFollower(stop);
      return gen.return(value as undefined);
    },
    throw: (e?: unknown) => {
      stopFollower(stop);
      return gen.throw(e);
    },
  });
}

/** %AsyncIteratorPrototype%. */
const ASYNC_ITERATOR: object = Object.getPrototypeOf(
  Object.getPrototypeOf(async function* () {}).prototype,
);

/** End a follower: its loop stops, its wait in progress ends now. */
function stopFollower(stop: Stop): void {
  stop.stopped = true;
  stop.wake?.();
}

/** A follower's stop, set by its iterator's return() or throw(). */
interface Stop {
  stopped: boolean;
  /** Ends the follower's wait in progress, if any. */
  wake: (() => void) | undefined;
}

async function* followEntries(
  core: LogCore,
  k: number,
  live: () => boolean,
  options: FollowOptions,
  stop: Stop,
): AsyncGenerator<LogEntry, void, undefined> {
  const from = options.from ?? 0;
  const durable = options.level === "persisted";
  const signal = options.signal;
  const s = core.shared;
  const cur: Cursor = { pos: s.head(k) };
  let sleep = 0.25;
  while (!stop.stopped && live() && !signal?.aborted) {
    const limit = durable ? s.persisted : s.committed;
    const e = readNext(core, k, cur, s.committedEnd(k), limit);
    if (e !== null) {
      sleep = 0.25;
      if (e.timestamp >= from) yield e;
      continue;
    }
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        unlisten();
        signal?.removeEventListener("abort", done);
        stop.wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, sleep);
      const unlisten = core.listen(done);
      signal?.addEventListener("abort", done);
      stop.wake = done;
    });
    sleep = Math.min(sleep * 2, FOLLOW_MAX_MS);
  }
}
