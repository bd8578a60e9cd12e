// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The log store's futures. An {@linkcode AppendFuture} owns a timestamp
 * reserved when it was made; polled, it joins the copies to start, and
 * the copies of every append polled in the same sweep of the executor
 * start together as one batch of the stream's mover (DSA-ready: the
 * mover writes into the mapping, not durably). When a batch completes
 * all its entries are marked ready at once, and the first of them to
 * commit commits every ready entry in timestamp order and persists them
 * with one fence. When the batch would run on the polling thread anyway
 * (a CpuMover's; a ThreadMover's or DsaMover's below its inline
 * threshold: `runsInline`), the copies are stored directly and the
 * entries are ready at once. A {@linkcode WaitFuture} waits for a timestamp to be
 * committed or persisted, committing and persisting on the way.
 *
 * @module
 */
import { ClosedError } from "../errors/mod.ts";
import { byteLengthOf, holds, trueBytes } from "../ffi/validate.ts";
import {
  Future,
  type FutureOptions,
  OWN_ABORT,
  PENDING,
  type PollContext,
  type Step,
  WAITS_ONLY,
} from "../future/future.ts";
import { runsInline } from "../mover/_inline.ts";
import { refusedBy } from "../mover/_refused.ts";
import { moverFuture } from "../mover/_user_future.ts";
import type { BatchEntry, Vdm } from "../mover/vdm.ts";
import type { Level, LogCore, Reserved } from "./core.ts";
import { RESERVATION } from "./owners.ts";
import { advance, blocker, deadlock } from "./progress.ts";
import { ENTRY_HEADER } from "./layout.ts";
import { goneData, isDetached } from "./options.ts";

/** The copy of the appends started together: one mover batch. */
interface Copy {
  future: Future<void>;
  members: StreamAppendFuture[];
  /** Whether its outcome was passed on to its members. */
  seen: boolean;
}

/**
 * The copies of one stream's appends: queued as their futures are first
 * polled, started together by whichever polls next.
 */
export class CopyScheduler {
  #core: LogCore;
  #mover: Vdm;
  #queued: StreamAppendFuture[] = [];

  constructor(core: LogCore, mover: Vdm) {
    this.#core = core;
    this.#mover = mover;
  }

  /** The mover. */
  get mover(): Vdm {
    return this.#mover;
  }

  /** Queue an append whose copy has not started. */
  queue(f: StreamAppendFuture): void {
    this.#queued.push(f);
  }

  /** Start every queued copy as one mover batch. */
  startAll(): void {
    const queued = this.#queued;
    if (queued.length === 0) return;
    this.#queued = [];
    const members: StreamAppendFuture[] = [];
    const ops: BatchEntry[] = [];
    const media = this.#core.media;
    const whole = media.whole;
    let bytes = 0;
    for (let i = 0; i < queued.length; i++) bytes += queued[i].length;
    const inline = runsInline(this.#mover, bytes);
    for (const f of queued) {
      const data = f.data;
      if (data === undefined || !f.queued) continue; // settled meanwhile
      const n = f.length;
      // exactly n elements: a typed array's elements answer from its
      // storage alone (see `holds`), cheaper than its length on Bun
      if (n === 0 ? data[0] !== undefined : !exactly(data, n)) {
        // detached or resized since the append was made: the place holds
        // the old length, so a longer copy would overwrite what follows
        // (another entry, another region) and a shorter one leave stale
        // bytes in the entry
        // (detached: the caller's error, as at the call)
        f.fail(
          n !== 0 && isDetached(data)
            ? goneData("appendAsync", data)
            : changedData(n, byteLengthOf(data)),
        );
        continue;
      }
      if (inline) {
        // its length checked by elements above, as the mover would
        try {
          if (n !== 0) media.set(f.at + ENTRY_HEADER, data);
        } catch (e) {
          f.fail(e);
          continue;
        }
        f.copiedInline();
        continue;
      }
      members.push(f);
      if (n === 0) continue;
      const at = f.at + ENTRY_HEADER;
      // a view of the mapping over the entry's own place (kept across a
      // truncate()): a mover copies in pieces (per window, per transfer
      // limit) that run in any order or at once, so one piece would
      // overwrite what another still reads; the bytes are copied out
      // first (the inline path's typed-array set handles overlap itself)
      const src = media.overlaps(at, data, n) ? trueBytes(data).slice() : data;
      if (whole !== undefined) {
        ops.push({
          op: "memcpy",
          dst: whole,
          dstOffset: at,
          src,
          length: n, // checked by elements above, and again by the mover
        });
      } else media.copyOps(at, src, ops); // windows: a piece per window
    }
    if (members.length === 0) return;
    let future: Future<void>;
    try {
      const mover = this.#mover;
      future = moverFuture(mover.batch(ops), mover, "batch", "appendAsync");
    } catch (e) {
      // (a closed mover's error named its batch, not the user's call)
      const error = refusedBy(e, this.#mover, "appendAsync");
      for (const f of members) f.fail(error);
      return;
    }
    const copy: Copy = { future, members, seen: false };
    for (const f of members) f.started(copy);
  }

  /** Pass a settled copy's outcome on to its members (once). */
  copied(copy: Copy): void {
    if (copy.seen) return;
    copy.seen = true;
    if (copy.future.state === "failed") {
      const error = refusedBy(copy.future.error, this.#mover, "appendAsync");
      for (const f of copy.members) f.fail(error);
    } else {
      for (const f of copy.members) f.copiedOk();
    }
  }
}

/** Whether `data` has exactly `n` (> 0) bytes. */
function exactly(data: Uint8Array, n: number): boolean {
  return holds(data, n) && data[n] === undefined;
}

/**
 * The error of an append whose data changed size before its copy: a
 * RangeError, as every store words an array resized after its call (a
 * detached one is the TypeError of `checkAttached`).
 */
function changedData(length: number, now: number): RangeError {
  return new RangeError(
    `Cannot appendAsync: data changed from ${length} to ${now} bytes (resized) before its copy started; nothing was written`,
  );
}

// stages of an append
const RESERVED = 0;
const QUEUED = 1;
const COPYING = 2;
const READY = 3;
const FAILED = 4;

/**
 * The future of {@linkcode LogStream.appendAsync}: its timestamp was
 * reserved when the append was made (`timestamp`); it resolves with it
 * once the entry reached the level asked for (persisted by default).
 *
 * @example Usage
 * ```ts
 * import { LogStream } from "@asyncpmem/asyncpmem/stream";
 * import assert from "node:assert/strict";
 * import { mkdtempSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 *
 * const path = join(mkdtempSync(join(tmpdir(), "asyncpmem-")), "log");
 * using s = LogStream.create(path, { size: 1 << 20 });
 * const r = s.allocateRegion(64 << 10);
 * const f = s.appendAsync(r, new Uint8Array(8));
 * assert.equal(await f, f.timestamp);
 * ```
 */
export interface AppendFuture extends Future<number> {
  /** The entry's timestamp (reserved when the append was made). */
  readonly timestamp: number;
}

/** The {@linkcode AppendFuture} of a stream's append. Internal. */
export class StreamAppendFuture extends Future<number> implements AppendFuture {
  #core: LogCore;
  #scheduler: CopyScheduler;
  #res: Reserved;
  #data: Uint8Array | undefined;
  #level: Level;
  #stage = RESERVED;
  #copy: Copy | undefined;
  #error: unknown;
  #onSettle: (f: StreamAppendFuture) => void;
  #closed: () => boolean;
  /** The error of a step in which the stream was closed. */
  #closedDuring: ClosedError | undefined;

  /**
   * @param core the stream's engine (the timestamp is owned here)
   * @param scheduler the stream's copy scheduler
   * @param res the reservation
   * @param data the bytes (kept until the future settles)
   * @param level what the future waits for
   * @param onSettle called once when it settles
   * @param closed whether the stream (the open that made it) was closed
   */
  constructor(
    core: LogCore,
    scheduler: CopyScheduler,
    res: Reserved,
    data: Uint8Array,
    level: Level,
    onSettle: (f: StreamAppendFuture) => void,
    closed: () => boolean,
    options?: FutureOptions,
  ) {
    super(options);
    this.#core = core;
    this.#scheduler = scheduler;
    this.#res = res;
    this.#data = data;
    this.#level = level;
    this.#onSettle = onSettle;
    this.#closed = closed;
    core.own(res.ts, this);
  }

  /** The entry's timestamp (reserved when the append was made). */
  get timestamp(): number {
    return this.#res.ts;
  }

  /** The bytes to copy (undefined once settled). @internal */
  get data(): Uint8Array | undefined {
    return this.#data;
  }

  /** Bytes of data reserved. @internal */
  get length(): number {
    return this.#res.length;
  }

  /** File offset of the entry's header. @internal */
  get at(): number {
    return this.#res.at;
  }

  /** The region slot of its entry. @internal */
  get region(): number {
    return this.#res.region;
  }

  /**
   * Give the append up for a free of its region, when its copy has not
   * started (never polled, or queued): it fails with `error` when it is
   * next polled, and its timestamp is committed as padding. Whether it
   * was given up. @internal
   */
  reclaim(error: unknown): boolean {
    if (this.#stage !== RESERVED && this.#stage !== QUEUED) return false;
    this.fail(error);
    return true;
  }

  /** Whether it waits for its copy to start. @internal */
  get queued(): boolean {
    return this.#stage === QUEUED;
  }

  /** The copy started. @internal */
  started(copy: Copy): void {
    this.#copy = copy;
    this.#stage = COPYING;
  }

  /** Copied on the polling thread as its copies started. @internal */
  copiedInline(): void {
    this.#core.ready(this.#res.ts);
    this.#stage = READY;
  }

  /** The copy completed: the data is in place. @internal */
  copiedOk(): void {
    if (this.#stage !== COPYING) return;
    this.#core.ready(this.#res.ts);
    this.#stage = READY;
  }

  /** The copy failed: the timestamp is given up. @internal */
  fail(error: unknown): void {
    if (this.#stage === READY || this.#stage === FAILED) return;
    this.#core.abandon(this.#res.ts);
    this.#error = error;
    this.#stage = FAILED;
  }

  /**
   * {@linkcode StreamAppendFuture.advance} as an operation of the core
   * (see {@linkcode LogCore.enter}): a close of the stream asked for in
   * its middle (by a testing tracer's callback, in the group persist)
   * waits for it, and runs as it ends. That close waits for this append
   * too, polling it again: the append goes on to its end (its entry
   * whole, its copy done), then fails with a `ClosedError`. Refused with
   * a TypeError thrown from the tracer instead, the close broke off the
   * persist and left the stream's counters half moved.
   */
  protected step(ctx: PollContext): Step<number> {
    const core = this.#core;
    const open = !this.#closed();
    let out: Step<number> = PENDING;
    let failure: unknown;
    let failed = false;
    core.enter();
    try {
      out = this.#advance(ctx);
    } catch (e) {
      failed = true;
      failure = e;
    }
    // before the close runs: its poll of this append sees it
    if (open && this.#closed()) {
      this.#closedDuring = new ClosedError("LogStream", "appendAsync");
    }
    core.leave();
    if (this.#closedDuring !== undefined && (failed || out !== PENDING)) {
      throw this.#closedDuring;
    }
    if (failed) throw failure;
    return out;
  }

  /** The step: from the stage reached on, as far as it goes now. */
  #advance(ctx: PollContext): Step<number> {
    for (;;) {
      switch (this.#stage) {
        case RESERVED:
          this.#scheduler.queue(this);
          this.#stage = QUEUED;
          // yield once, so the appends polled after this one copy with it
          ctx.pollSoon?.();
          return PENDING;
        case QUEUED:
          this.#scheduler.startAll();
          if (this.#stage === QUEUED) return PENDING;
          continue;
        case COPYING: {
          const copy = this.#copy!;
          if (!copy.future.done) copy.future.poll(ctx);
          if (!copy.future.done) return PENDING;
          this.#scheduler.copied(copy);
          continue;
        }
        case READY:
          return advance(this.#core, this.#res.ts, this.#level)
            ? this.#res.ts
            : this.#behind(ctx);
        case FAILED:
          throw this.#error;
      }
    }
  }

  /** Waiting behind an earlier timestamp: drive its owner if local. */
  #behind(ctx: PollContext): Step<number> {
    const b = blocker(this.#core);
    const owner = b?.owner;
    if (owner !== undefined && owner !== RESERVATION && owner !== this) {
      owner.poll(ctx);
      if (advance(this.#core, this.#res.ts, this.#level)) {
        return this.#res.ts;
      }
    } else if (owner === RESERVATION && ctx.blocking) {
      // a blocking wait: this thread cannot publish the reservation
      // meanwhile. The wait is refused, not the append: it stays ready,
      // commits once the reservation is published (or cancelled), and
      // its future can be waited for again. A blocking poller that cannot
      // refuse fails it instead, given up (padding) so that it never
      // commits after its future failed
      const error = deadlock("appendAsync", b!.ts);
      if (ctx.refuse !== undefined) {
        ctx.refuse(error);
        return PENDING;
      }
      if (this.#core.abandonReady(this.#res.ts)) throw error;
      // committed meanwhile by another Worker's commit pass (the commit
      // lock was its when this poll tried it): not given up, nor failed
      return advance(this.#core, this.#res.ts, this.#level)
        ? this.#res.ts
        : PENDING;
    }
    return PENDING;
  }

  protected override settle(): void {
    // an append abandoned before its data was in place gives its
    // timestamp up, so later ones still commit
    if (this.#stage === RESERVED || this.#stage === QUEUED) {
      this.#core.abandon(this.#res.ts);
    }
    this.#core.disown(this.#res.ts);
    this.#data = undefined;
    this.#copy = undefined;
    this.#onSettle(this);
  }
}

/** A wait for a timestamp to be committed or persisted. */
export class WaitFuture extends Future<void> {
  /**
   * A wait has no work of its own (see `WAITS_ONLY`): an `all` or `race`
   * of waits ends on its signal's abort.
   */
  [WAITS_ONLY](): boolean {
    return true;
  }

  /**
   * Its abort is seen in its step (see `OWN_ABORT`): a wait for a
   * timestamp already reached completes, whatever its signal says.
   */
  get [OWN_ABORT](): boolean {
    return true;
  }

  #core: LogCore;
  #ts: number;
  #level: Level;
  #live: (op: string) => void;
  #op: string;
  /**
   * The caller's signal, for the polls after the first: a wait has no
   * work of its own that an abort could leave half done, so the abort
   * ends it while it waits. (A future ignores an abort once started, and
   * an awaited wait behind a reservation nothing published waited for
   * ever, whatever its signal said.)
   */
  #signal: AbortSignal | undefined;

  constructor(
    core: LogCore,
    ts: number,
    level: Level,
    live: (op: string) => void,
    options?: FutureOptions,
  ) {
    super(options);
    this.#core = core;
    this.#ts = ts;
    this.#level = level;
    this.#live = live;
    this.#op = level === "committed" ? "waitCommitted" : "waitPersisted";
    this.#signal = options?.signal;
  }

  /**
   * As an operation of the core (see {@linkcode LogCore.enter}): a close
   * of the stream asked for in its middle (by a testing tracer's
   * callback, in a persist) runs as it ends, and the wait fails with a
   * `ClosedError`.
   */
  protected step(ctx: PollContext): Step<void> {
    this.#live(this.#op);
    const core = this.#core;
    core.enter();
    let out: Step<void>;
    try {
      out = this.#advance(ctx);
    } catch (e) {
      this.#leave(core);
      throw e;
    }
    this.#leave(core);
    return out;
  }

  /**
   * End the step as an operation of the core: run the closes asked for
   * in it, and fail the wait if one closed the stream.
   */
  #leave(core: LogCore): void {
    core.leave();
    this.#live(this.#op);
  }

  /** The step. */
  #advance(ctx: PollContext): Step<void> {
    if (advance(this.#core, this.#ts, this.#level)) return;
    // not there yet: an abort ends the wait, from its first poll on (see
    // OWN_ABORT)
    if (this.#signal?.aborted) throw this.#signal.reason;
    const b = blocker(this.#core);
    const owner = b?.owner;
    if (owner !== undefined && owner !== RESERVATION) {
      owner.poll(ctx);
      if (advance(this.#core, this.#ts, this.#level)) return;
    } else if (owner === RESERVATION && ctx.blocking) {
      // a blocking wait: this thread cannot publish the reservation
      // meanwhile; the wait is refused, and this future stays usable
      const error = deadlock(this.#op, b!.ts);
      if (ctx.refuse === undefined) throw error;
      ctx.refuse(error);
    }
    // not there yet: an abort ends the wait (reached, it resolves)
    if (this.#signal?.aborted) throw this.#signal.reason;
    return PENDING;
  }
}
