// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * {@linkcode LogStream}: a log store of regions (circular logs) whose
 * entries, over all regions, take one timestamp order; appends are
 * synchronous, reserve-then-publish, or asynchronous through a data
 * mover, and stay consistent across failures (buffered durable
 * linearizability: an entry is committed, i.e. visible, in timestamp
 * order, and persisted, i.e. durable, in the same order).
 *
 * @module
 */
import { ClosedError } from "../errors/mod.ts";
import { checkPath, notConstructible } from "../ffi/validate.ts";
import type { Future, FutureOptions } from "../future/future.ts";
import type { Vdm } from "../mover/vdm.ts";
import type { LogCore } from "./core.ts";
import type { AppendFuture } from "./futures.ts";
import { follow, type FollowOptions, SnapshotIterator } from "./iterate.ts";
import {
  type AppendOptions,
  checkCreateOptions,
  checkFollowOptions,
  checkInt,
  checkOpenOptions,
  checkSize,
  type LogStreamCreateOptions,
  type LogStreamOpenOptions,
} from "./options.ts";
import {
  createStream,
  type Opened,
  openStream,
  releaseStream,
  setStreamInternals,
  type StreamTestHooks,
} from "./open.ts";
import type { RecoveryReport } from "./recovery.ts";
import { inspectStream, type StreamInspection } from "./inspect.ts";
import { type LogEntry, Region, type Reservation } from "./region.ts";
import { RegionHandles } from "./handles.ts";
import { allocateRegion, freeSlot, truncateRegion } from "./table.ts";
import {
  appendWaiting,
  checkData,
  checkLength,
  noReservation,
  Writes,
} from "./writes.ts";

export { createStreamWith, openStreamWith, streamMedia } from "./open.ts";

/**
 * A log store on a persistent-memory file (or any file: on storage
 * without DAX, persistence is `msync`).
 *
 * - **Regions** are circular logs allocated from the file:
 *   {@linkcode LogStream.allocateRegion}, {@linkcode LogStream.freeRegion},
 *   {@linkcode LogStream.truncate} (drop the oldest entries, reuse their
 *   space). Allocation and free are crash-consistent.
 * - **Timestamps** order every entry of every region. An entry is
 *   *committed* once its data and header are in place and every earlier
 *   timestamp is committed (iteration shows it), and *persisted* once it
 *   and every earlier one are durable. After a crash the stream shows
 *   every persisted entry, and beyond them committed entries only while
 *   they are intact (CRC-32C) and their timestamps run on without a gap:
 *   never a torn entry, a reordered one or a hole.
 * - **Appends**: `append` (committed and persisted on return, one
 *   persist), `reserve` + `publish` (fill the entry in place),
 *   `appendAsync` (copied by the mover; appends completing together are
 *   committed and persisted together, with one persist).
 * - **Workers**: each opens the file by path; opens in one process share
 *   the stream (its counters live in shared memory), and the file is
 *   locked against other processes (`flock`). A Worker should close its
 *   streams before it is terminated. If it does not, a reservation it
 *   never published is committed as padding, and a commit, reserve or
 *   append it left half done is finished by the next open that takes the
 *   lock it held over, as is a cancel, a region allocated or freed, a
 *   truncate or a last close it was in; a free it ended in between its
 *   two steps is rolled back (the region stays allocated). Its open no
 *   longer counts: the others' last close is the last. `close()`
 *   persists what is committed and returns normally.
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
 * {
 *   using s = LogStream.create(path, { size: 4 << 20 });
 *   const r = s.allocateRegion(1 << 20);
 *   s.append(r, new TextEncoder().encode("one"));   // durable on return
 *   await s.appendAsync(r, new TextEncoder().encode("two"));
 * }
 * using s = LogStream.open(path);
 * const [r] = s.regions();
 * const texts = [...s.entries(r)].map((e) => new TextDecoder().decode(e.data));
 * assert.deepEqual(texts, ["one", "two"]);
 * ```
 */
export class LogStream implements Disposable {
  #path: string;
  #core: LogCore | null;
  #writes: Writes;
  #recovery: RecoveryReport;
  #regions: RegionHandles;

  private constructor(path: string, opened: Opened, mover: Vdm | undefined) {
    if (opened === undefined) {
      notConstructible(
        "LogStream",
        "use LogStream.open() or LogStream.create()",
      );
    }
    const core = opened.core;
    this.#path = path;
    this.#core = core;
    this.#recovery = opened.recovery;
    this.#writes = new Writes(
      core,
      mover ?? core.media.mapping.mover,
      () => this.#core === null,
    );
    this.#regions = new RegionHandles(this, core);
  }

  /**
   * Create a stream file.
   *
   * @param path the file; it must not exist
   * @param options size, block size, region slots, mover
   * @throws {TypeError} / {RangeError} for bad options, before any file
   *   is touched
   * @throws {PmemError} code -17 (EEXIST) when the file exists
   */
  static create(path: string, options: LogStreamCreateOptions): LogStream {
    return LogStream.#create(path, options, {});
  }

  /**
   * Open a stream file, recovering it if it was not closed cleanly (the
   * first open in the process does; later ones, Workers included, join).
   *
   * Recovery drops what a crash can leave: entries above the settled
   * timestamp (every entry up to it was durable) that are torn, or that
   * follow a missing timestamp; {@linkcode LogStream.recovery} says what
   * it cut. An entry at or below the settled timestamp that fails its
   * checks is damage a crash cannot cause, so the file is refused, not
   * cut: the error names the region, the entry's file offset and its
   * timestamp, and the file is left as it was.
   *
   * @param path the file
   * @param options the geometry expected, the mover
   * @throws {PmemError} code -22 (EINVAL) when the geometry differs from
   *   what was asked or the file is not an intact stream (the message
   *   names the damaged structure: header, region table slot, or a
   *   region's durable entry); -11 (EAGAIN) when another process has it
   *   open
   */
  static open(path: string, options: LogStreamOpenOptions = {}): LogStream {
    return LogStream.#open(path, options, {});
  }

  /**
   * What a stream file holds — geometry, watermarks, regions — and what
   * recovery would do at its next open, found without changing the file
   * (it is mapped privately and recovery runs on that copy). For tools.
   * No lock is taken: a stream open elsewhere (another process writing
   * it) is read as it is at that moment, entries in flight included;
   * `asyncpmem info` and `check` take the stream's lock first, and refuse
   * a stream open elsewhere as they refuse every pool kind.
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
   * {
   *   using s = LogStream.create(path, { size: 1 << 20 });
   *   s.append(s.allocateRegion(4096), new Uint8Array(10));
   * }
   * const info = LogStream.inspect(path);
   * assert.equal(info.regions.length, 1);
   * assert.equal(info.regions[0].entries, 1);
   * assert.equal(info.recovery.writes, false); // closed cleanly
   * ```
   *
   * @param path the file
   * @throws {PmemError} code -22 (EINVAL) naming the damaged structure
   *   when the file is not an intact stream
   */
  static inspect(path: string): StreamInspection {
    checkPath(path, "inspect", "stream");
    return inspectStream(path);
  }

  static {
    setStreamInternals({
      create: (path, options, hooks) => LogStream.#create(path, options, hooks),
      open: (path, options, hooks) => LogStream.#open(path, options, hooks),
      media: (s) => s.#live("media").media,
      core: (s) => s.#live("core"),
    });
  }

  static #create(
    path: string,
    options: LogStreamCreateOptions,
    hooks: StreamTestHooks,
  ): LogStream {
    const g = checkCreateOptions(path, options, "create");
    const opened = createStream(path, g, g.mode, hooks);
    return new LogStream(path, opened, g.mover);
  }

  static #open(
    path: string,
    options: LogStreamOpenOptions,
    hooks: StreamTestHooks,
  ): LogStream {
    const { size, blockSize, mover } = checkOpenOptions(path, options, "open");
    const opened = openStream(path, { size, blockSize }, hooks);
    return new LogStream(path, opened, mover);
  }

  #live(op: string): LogCore {
    const core = this.#core;
    if (core === null) throw new ClosedError("LogStream", op);
    return core;
  }

  /**
   * Run `f`, the part of `op` that changes the stream, as an operation of
   * the stream's core (see {@linkcode LogCore.enter}): a close asked for
   * inside it (by a testing tracer's callback) waits for its end, so the
   * change ends as it would have (whole, or not made at all, as after a
   * crash), then the close runs and `op` fails with ClosedError. Refused
   * with a TypeError thrown from the tracer instead, the close broke off
   * the change in the middle of its persist, and left it half made.
   */
  #run<T>(op: string, core: LogCore, f: () => T): T {
    core.enter();
    let out: T;
    try {
      out = f();
    } catch (e) {
      this.#leave(op, core);
      throw e;
    }
    this.#leave(op, core);
    return out;
  }

  /**
   * End an operation {@linkcode LogStream.#run} (or `append`) began: run
   * the closes asked for in it, and fail `op` if one closed the stream.
   */
  #leave(op: string, core: LogCore): void {
    core.leave();
    if (this.#core === null) throw new ClosedError("LogStream", op);
  }

  /** Whether {@linkcode LogStream.close} has run. */
  get closed(): boolean {
    return this.#core === null;
  }

  /** The file. */
  get path(): string {
    return this.#path;
  }

  /** Bytes of the file the stream uses. */
  get size(): number {
    return this.#live("size").geometry.size;
  }

  /** The region alignment and size unit. */
  get blockSize(): number {
    return this.#live("blockSize").geometry.blockSize;
  }

  /** What recovery found at open (empty for a new stream). */
  get recovery(): RecoveryReport {
    return this.#recovery;
  }

  /** The data mover of `appendAsync`. */
  get mover(): Vdm {
    return this.#writes.mover;
  }

  /** Every timestamp up to this one is committed (visible) or never was. */
  get committedTimestamp(): number {
    return this.#live("committedTimestamp").shared.committed;
  }

  /** Every timestamp up to this one is persisted (durable) or never was. */
  get persistedTimestamp(): number {
    return this.#live("persistedTimestamp").shared.persisted;
  }

  // ---- regions ----

  /**
   * Allocate a region of at least `bytes` (rounded up to the block size),
   * crash-consistently: after a crash it exists, empty, or not at all.
   *
   * @throws {RangeError} when `bytes` is not a positive integer
   * @throws {OutOfSpaceError} when no region slot or no space is free
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
   * const r = s.allocateRegion(10_000);
   * assert.equal(r.size, 12288); // three 4 KiB blocks
   * s.freeRegion(r);
   * assert.deepEqual(s.regions(), []);
   * ```
   */
  allocateRegion(bytes: number): Region {
    const op = "allocateRegion";
    const core = this.#live(op);
    const n = checkSize(bytes, "bytes", op);
    const k = this.#run(op, core, () => allocateRegion(core, n, op));
    return this.#regions.get(k);
  }

  /**
   * Free a region, crash-consistently. Its entries are gone; its handle
   * becomes invalid. Appends to it of this thread whose copy has not
   * started (`appendAsync` futures not yet polled, perhaps dropped, which
   * hold the timestamp reserved at their call) are given up: each fails
   * with a `ClosedError` when polled, as an append made after the free,
   * and its timestamp is committed as padding (no gap in the order).
   *
   * @throws {PmemError} code -16 (EBUSY) when appends to it are in flight
   *   (copying, reserved by `reserve`, or of another Worker)
   */
  freeRegion(region: Region): void {
    const op = "freeRegion";
    const k = this.#regions.slot(region, op);
    const core = this.#core!;
    this.#run(op, core, () => freeSlot(core, k, region.generation, op));
    this.#regions.forget(k);
  }

  /** The allocated regions, by id. */
  regions(): Region[] {
    return this.#regions.all();
  }

  // ---- appends ----

  /**
   * Append an entry: committed and persisted on return (one persist of
   * the entry, its header and the next terminator).
   *
   * @returns its timestamp
   * @throws {TypeError} / {RangeError} for a bad region or data
   * @throws {OutOfSpaceError} when the region is full (nothing written)
   * @throws {PmemError} code -35 (EDEADLK) when a reservation of this
   *   thread is not yet published (the append would wait for it forever)
   */
  append(region: Region, data: Uint8Array): number {
    const op = "append";
    const core = this.#live(op);
    if (!(region instanceof Region) || region.stream !== this) {
      this.#regions.slot(region, op); // throws the right error
    }
    // the region's state is checked under the lock
    const k = region.id;
    try {
      checkData(core, data, k, op);
    } catch (e) {
      // the length was checked against the region the slot holds now: a
      // freed handle (its slot perhaps reused by a smaller region) is a
      // ClosedError, as appendAsync and reserve give
      if (e instanceof RangeError) this.#regions.slot(region, op);
      throw e;
    }
    if (core.reservations > 0) noReservation(core, op);
    // #run's steps written out: a closure per append cost Bun ~5 %
    core.enter();
    let ts: number;
    try {
      ts = core.appendAlone(k, region.generation, data, op);
      if (ts < 0) ts = appendWaiting(core, k, region.generation, data, op);
    } catch (e) {
      this.#leave(op, core);
      throw e;
    }
    this.#leave(op, core);
    return ts;
  }

  /**
   * Reserve an entry of `length` bytes: its timestamp and its place are
   * taken now; fill `data` in place, then {@linkcode LogStream.publish}.
   * Until then no later timestamp is committed.
   *
   * @throws {OutOfSpaceError} when the region is full (nothing reserved)
   * @throws {PmemError} code -35 (EDEADLK) when `maxInFlight` timestamps
   *   are in flight and the oldest is held by a reservation of this thread
   *   that is not published (nothing reserved)
   */
  reserve(region: Region, length: number): Reservation {
    const op = "reserve";
    const k = this.#regions.slot(region, op);
    const n = checkInt(length, "length", op);
    const core = this.#core!;
    checkLength(core, n, k, op);
    return this.#run(
      op,
      core,
      () => this.#writes.reserve(this, region, k, n, op),
    );
  }

  /**
   * Publish a reservation: committed and persisted on return.
   *
   * @returns its timestamp
   * @throws {PmemError} code -35 (EDEADLK) when an earlier reservation of
   *   this thread is outstanding (publish that first); nothing changes
   */
  publish(reservation: Reservation): number {
    const op = "publish";
    const core = this.#live(op);
    const res = Writes.take(reservation, this, op);
    return this.#run(
      op,
      core,
      () => this.#writes.publish(reservation, res, op),
    );
  }

  /**
   * Give a reservation up: its timestamp is committed as padding (no gap
   * in the order). When it is still its region's last reservation, the
   * padding is a bare entry header and the rest of its room goes back to
   * the region at once; otherwise (a later reservation follows it in the
   * region) the padding keeps its room until a truncate drops it.
   *
   * @throws {PmemError} -130 (EOWNERDEAD) when a Worker ended holding the
   *   reserve lock in work that cannot be taken over: the reservation
   *   stays outstanding (close gives it up)
   */
  cancel(reservation: Reservation): void {
    const op = "cancel";
    const core = this.#live(op);
    const res = Writes.take(reservation, this, op);
    this.#run(op, core, () => this.#writes.cancel(reservation, res));
  }

  /**
   * Append through the stream's mover. The timestamp is reserved now
   * (`future.timestamp`); the copy starts when the future is first
   * polled, together with every append polled in the same sweep (one
   * mover batch), and appends whose copies completed together are
   * committed and persisted together (one persist). Nothing is copied
   * until the future is polled or awaited; an append left unpolled holds
   * back later timestamps until it is driven (a synchronous append or a
   * wait drives it). Behind a reservation of this thread that is not
   * published, a blocking `wait`/`waitAll` of it throws EDEADLK (code
   * -35): nothing of this thread could publish the reservation
   * meanwhile. The wait is refused, not the append: the future stays
   * pending, the entry commits once the reservation is published (or
   * cancelled, or the stream closed), and the future can be waited for
   * or awaited again. `await` waits.
   *
   * The timestamp is taken at the call, not at the first poll (the one
   * exception to the library's lazy futures), so that the log's order is
   * the order of the calls and `timestamp` is known at once, as
   * pmemstream's `async_append` reserves before it returns its future.
   * An append whose copy has not started (never polled: dropped, say)
   * does not keep its region from being freed: {@linkcode freeRegion}
   * gives it up, and it fails with a `ClosedError` when polled.
   *
   * @returns a future of the timestamp
   * @throws {TypeError} / {RangeError} / {OutOfSpaceError} at once
   * @throws {PmemError} code -35 (EDEADLK) at once when `maxInFlight`
   *   timestamps are in flight and the oldest is held by a reservation of
   *   this thread that is not published (nothing is reserved)
   *
   * @example Usage
   * ```ts
   * import { LogStream } from "@asyncpmem/asyncpmem/stream";
   * import { all, ThreadMover } from "@asyncpmem/asyncpmem";
   * import assert from "node:assert/strict";
   * import { mkdtempSync } from "node:fs";
   * import { tmpdir } from "node:os";
   * import { join } from "node:path";
   *
   * using mover = new ThreadMover();
   * const path = join(mkdtempSync(join(tmpdir(), "asyncpmem-")), "log");
   * using s = LogStream.create(path, { size: 1 << 20, mover });
   * const r = s.allocateRegion(64 << 10);
   * const futures = [1, 2, 3].map((n) => s.appendAsync(r, new Uint8Array(n)));
   * assert.deepEqual(futures.map((f) => f.timestamp), [1, 2, 3]); // reserved
   * await all(futures); // copied by the mover, committed, one persist
   * assert.equal(s.persistedTimestamp, 3);
   * ```
   */
  appendAsync(
    region: Region,
    data: Uint8Array,
    options?: AppendOptions,
  ): AppendFuture {
    const op = "appendAsync";
    const k = this.#regions.slot(region, op);
    const core = this.#core!;
    const n = checkData(core, data, k, op);
    return this.#run(op, core, () =>
      this.#writes.appendAsync(
        region,
        k,
        data,
        n,
        options,
        op,
        (o) => this.#live(o),
      ));
  }

  /**
   * A future that resolves once `timestamp` is committed (visible),
   * committing what it can on the way. A blocking `wait` of it behind a
   * reservation of this thread that is not published throws EDEADLK;
   * the future stays usable (wait for it again after the publish).
   *
   * @param timestamp one already reserved in the stream (by an append or
   *   a reservation of any Worker of the process), or below
   * @param options an abort signal: a wait has no work of its own, so an
   *   abort fails it with the signal's reason whenever it comes before
   *   the timestamp is reached
   * @throws {RangeError} at once when `timestamp` is above every
   *   timestamp reserved so far: nothing could make the wait end
   */
  waitCommitted(timestamp: number, options?: FutureOptions): Future<void> {
    return this.#writes.wait(
      timestamp,
      "committed",
      (o) => this.#live(o),
      options,
    );
  }

  /**
   * A future that resolves once `timestamp` is persisted (durable):
   * every committed entry is persisted with one fence on the way. A
   * blocking `wait` of it behind a reservation of this thread that is not
   * published throws EDEADLK; the future stays usable.
   *
   * @param timestamp one already reserved in the stream (by an append or
   *   a reservation of any Worker of the process), or below
   * @param options an abort signal, as {@linkcode LogStream.waitCommitted}'s
   * @throws {RangeError} at once when `timestamp` is above every
   *   timestamp reserved so far: nothing could make the wait end
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
   * // visible once committed; persisted later, many at a time
   * const ts = await s.appendAsync(r, new Uint8Array(8), { level: "committed" });
   * assert.ok(s.persistedTimestamp < ts);
   * await s.waitPersisted(ts);
   * assert.equal(s.persistedTimestamp, ts);
   * ```
   */
  waitPersisted(timestamp: number, options?: FutureOptions): Future<void> {
    return this.#writes.wait(
      timestamp,
      "persisted",
      (o) => this.#live(o),
      options,
    );
  }

  // ---- reading ----

  /**
   * The committed entries of a region, oldest first, as they were when
   * iteration began. Iteration never writes.
   */
  entries(region: Region): IterableIterator<LogEntry> {
    const k = this.#regions.slot(region, "entries");
    return new SnapshotIterator(
      this.#core!,
      k,
      region.generation,
      () => this.#core === null,
    );
  }

  /**
   * The entries of a region from `from` on, waiting for new ones as they
   * are committed (in this thread, at once; by other Workers, within
   * milliseconds). It ends when `signal` aborts, the region is freed or
   * the stream closes.
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
   * const seen: number[] = [];
   * const reader = (async () => {
   *   for await (const e of s.follow(r)) {
   *     seen.push(e.data[0]);
   *     if (seen.length === 2) break;
   *   }
   * })();
   * s.append(r, Uint8Array.of(1));
   * await s.appendAsync(r, Uint8Array.of(2));
   * await reader;
   * assert.deepEqual(seen, [1, 2]);
   * ```
   */
  follow(
    region: Region,
    options: FollowOptions = {},
  ): AsyncIterableIterator<LogEntry> {
    const op = "follow";
    const k = this.#regions.slot(region, op);
    const gen = region.generation;
    const read = checkFollowOptions(options, op);
    // a getter of the options may have closed the stream
    const core = this.#live(op);
    return follow(
      core,
      k,
      () => this.#regions.alive(k, gen),
      read,
    );
  }

  /**
   * Drop a region's entries with timestamps up to `upto` from its start
   * (committed ones; entries in flight stay), and make their space
   * reusable. Durable on return.
   *
   * @returns the entries dropped (padding not counted)
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
   * const first = s.append(r, new Uint8Array(100));
   * s.append(r, new Uint8Array(100));
   * assert.equal(s.truncate(r, first), 1);
   * assert.equal([...s.entries(r)].length, 1);
   * ```
   */
  truncate(region: Region, upto: number): number {
    const op = "truncate";
    const k = this.#regions.slot(region, op);
    checkInt(upto, "upto", op);
    const core = this.#core!;
    return this.#run(
      op,
      core,
      () => truncateRegion(core, k, region.generation, upto, op),
    );
  }

  /**
   * Close: cancel this stream's reservations not published (appends
   * behind them commit only then), wait for its appends in flight,
   * persist everything committed; the last open in the process records
   * the stream as cleanly closed. Idempotent.
   *
   * A commit lock held by an open whose thread ended (a Worker
   * terminated before it closed the stream) does not fail the close: the
   * persist of what is committed takes it over, as PMDK's robust locks
   * hand a dead owner's lock to the next taker.
   *
   * Inside an operation of the stream (code it runs: a testing tracer's
   * callback), the stream reads as closed at once, and the close runs
   * when the operation ends, which then fails with a `ClosedError`
   * naming it: the operation may hold the lock the close would wait
   * for, and it goes on using the mapping after the callback.
   *
   * @throws {PmemError} code -35 (EDEADLK) when an append of this stream
   *   in flight is behind a reservation of another open of the file in
   *   this thread (publish or cancel it first): the stream stays open
   */
  close(): void {
    const core = this.#core;
    if (core === null) return;
    const writes = this.#writes;
    writes.checkClose();
    this.#core = null;
    this.#regions.close();
    if (core.operating) core.deferClose(() => releaseStream(core, writes));
    else releaseStream(core, writes);
  }

  /** Same as {@linkcode LogStream.close}. */
  [Symbol.dispose](): void {
    this.close();
  }
}
