// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * {@linkcode LogAppender}: the asynchronous appends of a libpmemlog-format
 * log. A future is queued when first polled; the appends polled in one
 * sweep of the executor take their places in the log, in that order, and
 * start their copies as one batch of the mover; the appends at the head of the queue whose copies are
 * done are committed together: one persist of their data, then the
 * 8-byte write offset (libpmemlog's commit point) and its persist. An
 * append whose copy the mover failed fails, and the write offset stays
 * before it: the appends placed after it are placed again.
 *
 * @module
 */
import { ClosedError } from "../errors/mod.ts";
import { byteLengthOf, trueBytes } from "../ffi/validate.ts";
import {
  Future,
  type FutureOptions,
  PENDING,
  type PollContext,
  type Step,
} from "../future/future.ts";
import { waitAll } from "../future/blocking.ts";
import type { BatchEntry, Vdm } from "../mover/vdm.ts";
import { refusedBy } from "../mover/_refused.ts";
import { moverFuture } from "../mover/_user_future.ts";
import type { StreamMedia } from "./media.ts";
import { LOG_START, WRITE_OFFSET_AT } from "./pmemlog_format.ts";
import { goneData, isDetached } from "./options.ts";

// stages of an append
const WAITING = 0;
const COPYING = 1;
const COPIED = 2;
const COMMITTED = 3;
const FAILED = 4;
/**
 * Its copy failed (the mover's error): it fails once it heads the queue,
 * its place and those after it given back (see `LogAppender.#dropLost`).
 */
const LOST = 5;

/** An asynchronous append in flight: its place, copy and outcome. */
interface Pending {
  start: number;
  end: number;
  data: Uint8Array;
  stage: number;
  copy?: Future<void>;
  error?: unknown;
}

/** What an appender needs from its log. */
export interface AppenderHost {
  /** The log's mapping. */
  media: StreamMedia;
  /** The mover of the copies. */
  mover: Vdm;
  /** Take `n` bytes at the log's cursor (throws when full or read-only). */
  take(n: number): number;
  /** Store and persist the write offset. */
  commitTo(end: number): void;
  /**
   * Give back the places from `start` (the durable write offset) on: the
   * cursor and the stored write offset go back there.
   */
  giveBack(start: number): void;
  /** Whether the log was closed. */
  closed(): boolean;
  /**
   * An operation of the log begins (here: an append's step): a close
   * asked for until it ends (by a testing tracer's callback) waits for
   * it. Paired with {@linkcode AppenderHost.leave}.
   */
  enter(): void;
  /** An operation ends; the last to end runs a close asked for in it. */
  leave(): void;
}

/** The asynchronous appends of one log. */
export class LogAppender {
  #host: AppenderHost;
  #pending: Pending[] = [];
  #queued: Pending[] = [];
  #futures = new Set<Future<number>>();

  /** @param host the log */
  constructor(host: AppenderHost) {
    this.#host = host;
  }

  /** An append of `data` (checked by the caller), as a future. */
  append(data: Uint8Array, options?: FutureOptions): Future<number> {
    const f = new LogAppendFuture(this, data, options);
    this.#futures.add(f);
    return f;
  }

  /** Queue an append: its place is taken when its copy starts. */
  queue(data: Uint8Array): Pending {
    const p: Pending = { start: -1, end: -1, data, stage: WAITING };
    this.#queued.push(p);
    return p;
  }

  /**
   * Take the places of the queued appends, in the order they were
   * queued, and start their copies as one mover batch. The place and the
   * copy are made together, with the data's length then: data resized or
   * detached after its place was taken would be copied short (stale
   * bytes in the log) or long (over the next append's place).
   */
  startAll(): void {
    const queued = this.#queued;
    this.#queued = [];
    if (queued.length === 0) return;
    const media = this.#host.media;
    const ops: BatchEntry[] = [];
    const started: Pending[] = [];
    for (const p of queued) {
      const n = byteLengthOf(p.data); // the engine's (see `byteLengthOf`)
      try {
        // detached or shrunk since the call: an empty append would stand
        // for it
        if (n === 0 && isDetached(p.data)) {
          throw goneData("appendAsync", p.data);
        }
        p.start = this.#host.take(n);
      } catch (e) {
        p.stage = FAILED;
        p.error = e;
        continue;
      }
      p.end = p.start + n;
      this.#pending.push(p);
      started.push(p);
    }
    if (started.length === 0) return;
    // a view of the mapping over the places taken (kept across a rewind):
    // the mover copies in pieces (per window, per transfer limit) that run
    // in any order or at once, so one piece would overwrite what another
    // still reads; such bytes are copied out first (as LogStream's)
    const from = started[0].start;
    const span = started[started.length - 1].end - from;
    for (const p of started) {
      const n = p.end - p.start;
      if (n === 0) continue;
      if (media.overlaps(from, p.data, n, span)) {
        p.data = trueBytes(p.data).slice();
      }
      media.copyOps(p.start, p.data, ops);
    }
    const mover = this.#host.mover;
    let copy: Future<void>;
    try {
      copy = moverFuture(mover.batch(ops), mover, "batch", "appendAsync");
    } catch (e) {
      // refused by a mover closed by its owner: copied here (README)
      if (closedMover(e, mover)) {
        for (const p of started) {
          media.set(p.start, p.data);
          p.stage = COPIED;
        }
        return;
      }
      const error = refusedBy(e, mover, "appendAsync");
      for (const p of started) {
        p.stage = LOST;
        p.error = error;
      }
      return;
    }
    for (const p of started) {
      p.stage = COPYING;
      p.copy = copy;
    }
  }

  /**
   * An append's copy settled. A failed one is lost, in the words every
   * store gives a mover's failure (`refusedBy`): it is not redone here,
   * which hid a broken mover (a device's error status, a user's mover
   * whose future fails) from every caller. A copy a mover closed by its
   * owner refused is made here (README), as the object pool's is.
   */
  copied(p: Pending): void {
    const copy = p.copy!;
    if (copy.state === "failed") {
      const mover = this.#host.mover;
      if (!closedMover(copy.error, mover)) {
        p.stage = LOST;
        p.error = refusedBy(copy.error, mover, "appendAsync");
        return;
      }
      this.#host.media.set(p.start, p.data);
    }
    p.stage = COPIED;
  }

  /**
   * Commit the copied appends at the head of the queue: one persist of
   * their data (from the durable write offset on), one of the write
   * offset; then a lost one that heads it is dropped (`#dropLost`). The
   * copies ahead are driven here, not only by their own futures: an
   * append's future polled once and then left (or not polled by a
   * blocking `wait` of a later one) held every later append back for
   * good.
   */
  commit(ctx: PollContext): void {
    const pending = this.#pending;
    let k = 0;
    for (; k < pending.length; k++) {
      const p = pending[k];
      if (p.stage === COPYING) {
        const copy = p.copy!;
        if (!copy.done) copy.poll(ctx);
        if (copy.done) this.copied(p);
      }
      if (p.stage !== COPIED) break;
    }
    if (k > 0) {
      const done = pending.splice(0, k);
      const media = this.#host.media;
      const start = media.read64(WRITE_OFFSET_AT);
      const end = done[k - 1].end;
      try {
        if (end > start) media.persist(start, end - start);
        this.#host.commitTo(end);
        for (const p of done) p.stage = COMMITTED;
      } catch (e) {
        this.#failFrom(done, start, e);
        return;
      }
    }
    if (pending.length > 0 && pending[0].stage === LOST) this.#dropLost(ctx);
  }

  /**
   * The append at the head of the queue lost its copy (see `copied`):
   * the write offset, durable at its place, must never cover those bytes.
   * It fails, as do the others whose copies failed; the appends placed
   * after it, copied into places past the lost bytes, are placed again
   * (ahead of the appends queued since: their order is kept) once no
   * copy runs into those places, and the next append goes at its place.
   * The other stores' appends do the same: those of a failed mover batch
   * fail, the rest go on.
   */
  #dropLost(ctx: PollContext): void {
    const rest = this.#pending.splice(0);
    const copies = new Set<Future<void>>();
    for (const p of rest) if (p.copy?.done === false) copies.add(p.copy);
    if (copies.size > 0) {
      try {
        waitAll([...copies]);
      } catch {
        // each failed copy is seen by `copied`
      }
    }
    const again: Pending[] = [];
    for (const p of rest) {
      if (p.stage === COPYING) this.copied(p);
      if (p.stage === LOST) {
        p.stage = FAILED;
        continue;
      }
      p.stage = WAITING;
      p.start = p.end = -1;
      p.copy = undefined;
      again.push(p);
    }
    this.#host.giveBack(rest[0].start);
    if (again.length === 0) return;
    this.#queued = [...again, ...this.#queued];
    // their futures place them when next polled
    ctx.pollSoon?.();
  }

  /**
   * A commit from `start` (the durable write offset) failed: its appends
   * fail, and so does every one placed after them (the next commit, which
   * persists from the write offset on, made the failed bytes part of the
   * log under them). Their places are given back once no copy runs into
   * them, so the next append goes at `start`.
   */
  #failFrom(done: Pending[], start: number, error: unknown): void {
    const later = this.#pending.splice(0);
    const copies = new Set<Future<void>>();
    for (const p of later) if (p.copy?.done === false) copies.add(p.copy);
    if (copies.size > 0) {
      try {
        waitAll([...copies]);
      } catch {
        // a failed copy writes nothing more
      }
    }
    for (const p of [...done, ...later]) {
      // (one whose copy failed keeps the mover's error)
      if (p.stage !== LOST) p.error = error;
      p.stage = FAILED;
    }
    this.#host.giveBack(start);
  }

  /** The log's, for its appends' steps: see {@linkcode AppenderHost}. */
  get host(): AppenderHost {
    return this.#host;
  }

  /** A future settled. */
  settled(f: Future<number>): void {
    this.#futures.delete(f);
  }

  /**
   * Finish the appends in flight: those polled at least once (their
   * places are queued or taken), before a synchronous change (`append`,
   * `appendv`, `rewind`). An append never polled has done nothing
   * (miniasync's lazy futures): it takes its place when first polled,
   * after the change. Run here, `f = log.appendAsync(x); log.rewind();
   * await f` appended x and then rewound it away. With `all`, for
   * `close`, the unpolled ones too (the README's table: close finishes
   * them, their data is appended).
   */
  drain(all = false): void {
    if (this.#futures.size === 0) return;
    const started: Future<number>[] = [];
    for (const f of this.#futures) {
      if (all || f.state !== "idle") started.push(f);
    }
    if (started.length === 0) return;
    try {
      waitAll(started);
    } catch {
      // each failure is reported to its own awaiter
    }
  }
}

/** An asynchronous append of a libpmemlog-format log. */
class LogAppendFuture extends Future<number> {
  #log: LogAppender;
  #data: Uint8Array | undefined;
  #p: Pending | undefined;
  /** Whether the log was closed in the middle of a step of it. */
  #closedDuring = false;

  constructor(log: LogAppender, data: Uint8Array, options?: FutureOptions) {
    super(options);
    this.#log = log;
    this.#data = data;
  }

  /**
   * {@linkcode LogAppendFuture.advance} as an operation of the log (see
   * {@linkcode AppenderHost.enter}): a close asked for in its middle (by
   * a testing tracer's callback, in the group persist) runs as it ends.
   * That close waits for this append too, polling it again: the append
   * goes on to its end (committed, or given back; its copy done), then
   * fails with a `ClosedError`. Run at once instead, the close's wait
   * polled this append from inside its own commit, where it could never
   * end: the close never returned.
   */
  protected step(ctx: PollContext): Step<number> {
    const host = this.#log.host;
    const open = !host.closed();
    let out: Step<number> = PENDING;
    let failure: unknown;
    let failed = false;
    host.enter();
    try {
      out = this.#advance(ctx);
    } catch (e) {
      failed = true;
      failure = e;
    }
    // before the close runs: its poll of this append sees it
    if (open && host.closed()) this.#closedDuring = true;
    host.leave();
    if (this.#closedDuring && (failed || out !== PENDING)) {
      throw new ClosedError("PmemLog", "appendAsync");
    }
    if (failed) throw failure;
    return out;
  }

  /** The step: from the stage reached on, as far as it goes now. */
  #advance(ctx: PollContext): Step<number> {
    if (this.#p === undefined) {
      this.#p = this.#log.queue(this.#data!);
      // yield once, so the appends polled after this one copy with it
      ctx.pollSoon?.();
      return PENDING;
    }
    const p = this.#p;
    for (;;) {
      switch (p.stage) {
        case WAITING:
          this.#log.startAll();
          continue;
        case COPYING: {
          const copy = p.copy!;
          if (!copy.done) copy.poll(ctx);
          if (!copy.done) return PENDING;
          this.#log.copied(p);
          continue;
        }
        case COPIED:
        case LOST: {
          const stage = p.stage;
          this.#log.commit(ctx);
          if (p.stage === stage) return PENDING; // behind an earlier one
          continue;
        }
        case COMMITTED:
          return p.start - LOG_START;
        default:
          throw p.error;
      }
    }
  }

  protected override settle(): void {
    this.#data = undefined;
    this.#log.settled(this);
  }
}

/**
 * Whether `error`, of a copy's batch (thrown by `batch`, or its future's
 * failure), is the refusal of a mover closed by its owner (one shared
 * by stores): the copy is then made on this thread (README), as the
 * object pool applies a committed transaction (`Applier.appliedHere`).
 */
function closedMover(error: unknown, mover: Vdm): boolean {
  return error instanceof ClosedError && mover.closed === true;
}
