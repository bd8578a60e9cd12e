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
import type { Future, FutureOptions } from "../future/future.ts";
import { waitAll } from "../future/executor.ts";
import { FutureRegistry } from "../future/registry.ts";
import type { Vdm } from "../mover/vdm.ts";
import {
  deadlock,
  type Level,
  type LogCore,
  RESERVATION,
  type Reserved,
} from "./core.ts";
import {
  type AppendFuture,
  CopyScheduler,
  StreamAppendFuture,
  WaitFuture,
} from "./futures.ts";
import { follow, type FollowOptions, SnapshotIterator } from "./iterate.ts";
import { alignUp, ENTRY_HEADER, entryTotal, MAX_ENTRY } from "./layout.ts";
import {
  type AppendOptions,
  checkCreateOptions,
  checkInt,
  checkOpenOptions,
  checkPath,
  checkSize,
  type LogStreamCreateOptions,
  type LogStreamOpenOptions,
} from "./options.ts";
import {
  createStream,
  openStream,
  releaseCore,
  type StreamTestHooks,
} from "./open.ts";
import type { RecoveryReport } from "./recovery.ts";
import type { StreamMedia } from "./media.ts";
import { inspectStream, type StreamInspection } from "./inspect.ts";
import {
  type LogEntry,
  Region,
  Reservation,
  reservationPlace,
  settleReservationOf,
} from "./region.ts";
import { REGION_ALLOCATED } from "./shared.ts";
import { allocateSlot, freeSlot, truncateRegion } from "./table.ts";

let createWith: (
  path: string,
  options: LogStreamCreateOptions,
  hooks: StreamTestHooks,
) => LogStream;
let openWith: (
  path: string,
  options: LogStreamOpenOptions,
  hooks: StreamTestHooks,
) => LogStream;

/** {@linkcode LogStream.create} with test hooks. Internal. */
export function createStreamWith(
  path: string,
  options: LogStreamCreateOptions,
  hooks: StreamTestHooks,
): LogStream {
  return createWith(path, options, hooks);
}

let mediaOf: (s: LogStream) => StreamMedia;

/** The media of an open stream (tests look at its views). Internal. */
export function streamMedia(s: LogStream): StreamMedia {
  return mediaOf(s);
}

/** {@linkcode LogStream.open} with test hooks. Internal. */
export function openStreamWith(
  path: string,
  options: LogStreamOpenOptions,
  hooks: StreamTestHooks,
): LogStream {
  return openWith(path, options, hooks);
}

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
 *   locked against other processes (`flock`).
 *
 * @example Usage
 * ```ts
 * import { LogStream } from "@asyncpmem/asyncpmem/stream";
 * import assert from "node:assert/strict";
 *
 * const path = `${await Deno.makeTempDir()}/log`;
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
  #scheduler: CopyScheduler;
  #recovery: RecoveryReport;
  #inflight = new FutureRegistry();
  #regions = new Map<number, Region>();
  /** Reservations not yet published or cancelled (cancelled at close). */
  #reservations = new Set<Reservation>();
  #source = {
    size: (k: number) => this.#live("size").shared.size(k),
    used: (k: number) => {
      const s = this.#live("used").shared;
      return s.tail(k) - s.head(k);
    },
    alive: (k: number, gen: number) => {
      const core = this.#core;
      return core !== null && core.shared.regionState(k) === REGION_ALLOCATED &&
        core.shared.generation(k) === gen;
    },
  };

  private constructor(
    path: string,
    core: LogCore,
    recovery: RecoveryReport,
    mover: Vdm,
  ) {
    this.#path = path;
    this.#core = core;
    this.#recovery = recovery;
    this.#scheduler = new CopyScheduler(core, mover);
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
   *
   * @example Usage
   * ```ts
   * import { LogStream } from "@asyncpmem/asyncpmem/stream";
   * import assert from "node:assert/strict";
   *
   * const path = `${await Deno.makeTempDir()}/log`;
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
    createWith = (path, options, hooks) =>
      LogStream.#create(path, options, hooks);
    openWith = (path, options, hooks) => LogStream.#open(path, options, hooks);
    mediaOf = (s) => s.#live("media").media;
  }

  static #create(
    path: string,
    options: LogStreamCreateOptions,
    hooks: StreamTestHooks,
  ): LogStream {
    const op = "create";
    const g = checkCreateOptions(path, options, op);
    const opened = createStream(path, g, g.mode, hooks);
    return new LogStream(
      path,
      opened.core,
      opened.recovery,
      options.mover ?? opened.core.media.mapping.mover,
    );
  }

  static #open(
    path: string,
    options: LogStreamOpenOptions,
    hooks: StreamTestHooks,
  ): LogStream {
    const op = "open";
    const { size, blockSize } = checkOpenOptions(path, options, op);
    const opened = openStream(path, { size, blockSize }, hooks);
    return new LogStream(
      path,
      opened.core,
      opened.recovery,
      options.mover ?? opened.core.media.mapping.mover,
    );
  }

  #live(op: string): LogCore {
    const core = this.#core;
    if (core === null) throw new ClosedError("LogStream", op);
    return core;
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
    return this.#scheduler.mover;
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

  /** The handle of allocated region `k`. */
  #region(k: number): Region {
    const gen = this.#live("regions").shared.generation(k);
    let r = this.#regions.get(k);
    if (r === undefined || r.generation !== gen) {
      r = new Region(this, this.#source, k, gen);
      this.#regions.set(k, r);
    }
    return r;
  }

  /** Check a region handle; its slot. */
  #slot(r: unknown, op: string): number {
    const core = this.#live(op);
    if (!(r instanceof Region) || r.stream !== this) {
      throw new TypeError(
        `Cannot ${op}: region must be a Region of this stream`,
      );
    }
    if (
      core.shared.regionState(r.id) !== REGION_ALLOCATED ||
      core.shared.generation(r.id) !== r.generation
    ) {
      throw new ClosedError(`region ${r.id} (freed)`, op);
    }
    return r.id;
  }

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
   *
   * const path = `${await Deno.makeTempDir()}/log`;
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
    const g = core.geometry;
    const size = alignUp(Math.max(n, 2 * ENTRY_HEADER), g.blockSize);
    const s = core.shared;
    s.lockReserve();
    let k: number;
    try {
      k = allocateSlot(core.media, s, g, size, op);
    } finally {
      s.unlockReserve();
    }
    return this.#region(k);
  }

  /**
   * Free a region, crash-consistently. Its entries are gone; its handle
   * becomes invalid.
   *
   * @throws {PmemError} code -16 (EBUSY) when appends to it are in flight
   */
  freeRegion(region: Region): void {
    const op = "freeRegion";
    const k = this.#slot(region, op);
    freeSlot(this.#core!, k, op);
    this.#regions.delete(k);
  }

  /** The allocated regions, by id. */
  regions(): Region[] {
    const core = this.#live("regions");
    const out: Region[] = [];
    for (let k = 0; k < core.geometry.regionSlots; k++) {
      if (core.shared.regionState(k) === REGION_ALLOCATED) {
        out.push(this.#region(k));
      }
    }
    return out;
  }

  // ---- appends ----

  /** Check `data` for an append to region `k`. */
  #checkData(data: unknown, k: number, op: string): Uint8Array {
    if (!(data instanceof Uint8Array)) {
      throw new TypeError(`Cannot ${op}: data must be a Uint8Array`);
    }
    this.#checkLength(data.byteLength, k, op);
    return data;
  }

  #checkLength(length: number, k: number, op: string): void {
    const size = this.#core!.shared.size(k);
    if (length > MAX_ENTRY || entryTotal(length) + ENTRY_HEADER > size) {
      throw new RangeError(
        `Cannot ${op}: an entry of ${length} bytes does not fit region ${k} of ${size} bytes`,
      );
    }
  }

  /** Reserve, committing and persisting to make room when the ring is full. */
  #reserve(k: number, gen: number, length: number, op: string): Reserved {
    const core = this.#core!;
    for (;;) {
      const res = core.reserve(k, gen, length, op);
      if (res !== null) return res;
      core.waitFor(core.shared.persisted + 1, "persisted", op);
    }
  }

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
      this.#slot(region, op); // throws the right error
    }
    // the region's state is checked under the lock
    const k = region.id;
    this.#checkData(data, k, op);
    if (core.reservations > 0) this.#noReservation(op);
    const alone = core.appendAlone(k, region.generation, data, op);
    if (alone >= 0) return alone;
    const res = this.#reserve(k, region.generation, data.byteLength, op);
    core.media.set(res.at + ENTRY_HEADER, data);
    core.ready(res.ts);
    core.waitFor(res.ts, "persisted", op);
    return res.ts;
  }

  /** Throw EDEADLK when a reservation of this isolate is outstanding. */
  #noReservation(op: string): void {
    const oldest = this.#live(op).oldestReservation();
    if (oldest !== Infinity) throw deadlock(op, oldest);
  }

  /**
   * Reserve an entry of `length` bytes: its timestamp and its place are
   * taken now; fill `data` in place, then {@linkcode LogStream.publish}.
   * Until then no later timestamp is committed.
   *
   * @throws {OutOfSpaceError} when the region is full (nothing reserved)
   */
  reserve(region: Region, length: number): Reservation {
    const op = "reserve";
    const k = this.#slot(region, op);
    const n = checkInt(length, "length", op);
    this.#checkLength(n, k, op);
    const core = this.#core!;
    const res = this.#reserve(k, region.generation, n, op);
    core.own(res.ts, RESERVATION);
    const out = new Reservation(
      this,
      region,
      res,
      core.media.bytes(res.at + ENTRY_HEADER, n),
    );
    this.#reservations.add(out);
    return out;
  }

  #takeReservation(res: unknown, op: string): Reserved {
    this.#live(op);
    const r = res instanceof Reservation && res.stream === this
      ? reservationPlace(res)
      : undefined;
    if (r === undefined) {
      throw new TypeError(
        `Cannot ${op}: not an outstanding reservation of this stream`,
      );
    }
    return r;
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
    const res = this.#takeReservation(reservation, op);
    const core = this.#core!;
    if (core.reservations > 1) {
      const oldest = core.oldestReservation();
      if (oldest < res.ts) throw deadlock(op, oldest);
    }
    this.#reservations.delete(reservation);
    settleReservationOf(reservation);
    core.disown(res.ts);
    core.ready(res.ts);
    if (!core.publishAlone(res)) core.waitFor(res.ts, "persisted", op);
    return res.ts;
  }

  /** Give a reservation up: its timestamp is committed as padding. */
  cancel(reservation: Reservation): void {
    const res = this.#takeReservation(reservation, "cancel");
    const core = this.#core!;
    this.#reservations.delete(reservation);
    settleReservationOf(reservation);
    core.abandon(res.ts);
    core.disown(res.ts);
    core.advance(res.ts, "committed");
  }

  /**
   * Append through the stream's mover. The timestamp is reserved now
   * (`future.timestamp`); the copy starts when the future is first
   * polled, together with every append polled in the same sweep (one
   * mover batch), and appends whose copies completed together are
   * committed and persisted together (one persist). Nothing is copied
   * until the future is polled or awaited; an append left unpolled holds
   * back later timestamps until it is driven (a synchronous append or a
   * wait drives it).
   *
   * @returns a future of the timestamp
   * @throws {TypeError} / {RangeError} / {OutOfSpaceError} at once
   *
   * @example Usage
   * ```ts
   * import { LogStream } from "@asyncpmem/asyncpmem/stream";
   * import { all, ThreadMover } from "@asyncpmem/asyncpmem";
   * import assert from "node:assert/strict";
   *
   * using mover = new ThreadMover();
   * const path = `${await Deno.makeTempDir()}/log`;
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
    const k = this.#slot(region, op);
    this.#checkData(data, k, op);
    const level = options?.level ?? "persisted";
    if (level !== "persisted" && level !== "committed") {
      throw new TypeError(
        `Cannot ${op}: level must be "persisted" or "committed"`,
      );
    }
    const core = this.#core!;
    const res = this.#reserve(k, region.generation, data.byteLength, op);
    let slot = -1;
    const f = new StreamAppendFuture(
      core,
      this.#scheduler,
      res,
      data,
      level,
      () => this.#inflight.remove(slot),
      options,
    );
    slot = this.#inflight.add(f);
    return f;
  }

  /**
   * A future that resolves once `timestamp` is committed (visible),
   * committing what it can on the way.
   *
   * @param timestamp one already reserved in the stream (by an append or
   *   a reservation of any Worker of the process), or below
   * @throws {RangeError} at once when `timestamp` is above every
   *   timestamp reserved so far: nothing could make the wait end
   */
  waitCommitted(timestamp: number, options?: FutureOptions): Future<void> {
    return this.#wait(timestamp, "committed", options);
  }

  /**
   * A future that resolves once `timestamp` is persisted (durable):
   * every committed entry is persisted with one fence on the way.
   *
   * @param timestamp one already reserved in the stream (by an append or
   *   a reservation of any Worker of the process), or below
   * @throws {RangeError} at once when `timestamp` is above every
   *   timestamp reserved so far: nothing could make the wait end
   *
   * @example Usage
   * ```ts
   * import { LogStream } from "@asyncpmem/asyncpmem/stream";
   * import assert from "node:assert/strict";
   *
   * const path = `${await Deno.makeTempDir()}/log`;
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
    return this.#wait(timestamp, "persisted", options);
  }

  #wait(ts: number, level: Level, options?: FutureOptions): Future<void> {
    const op = level === "committed" ? "waitCommitted" : "waitPersisted";
    const core = this.#live(op);
    checkInt(ts, "timestamp", op);
    const last = core.lastReserved(ts);
    if (ts > last) {
      // nothing may ever reserve it: a blocking wait for it (or one whose
      // signal needs the event loop) would never return
      throw new RangeError(
        `Cannot ${op}: timestamp ${ts} was never reserved (the last reserved is ${last})`,
      );
    }
    return new WaitFuture(core, ts, level, (o) => this.#live(o), options);
  }

  // ---- reading ----

  /**
   * The committed entries of a region, oldest first, as they were when
   * iteration began. Iteration never writes.
   */
  entries(region: Region): IterableIterator<LogEntry> {
    const k = this.#slot(region, "entries");
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
   *
   * const path = `${await Deno.makeTempDir()}/log`;
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
    const k = this.#slot(region, "follow");
    const gen = region.generation;
    if (options.from !== undefined) checkInt(options.from, "from", "follow");
    return follow(
      this.#core!,
      k,
      () => this.#core !== null && this.#source.alive(k, gen),
      options,
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
   *
   * const path = `${await Deno.makeTempDir()}/log`;
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
    const k = this.#slot(region, op);
    checkInt(upto, "upto", op);
    return truncateRegion(this.#core!, k, upto, op);
  }

  /**
   * Close: wait for this stream's appends in flight, cancel its
   * reservations not published, persist everything committed; the last
   * open in the process records the stream as cleanly closed. Idempotent.
   */
  close(): void {
    const core = this.#core;
    if (core === null) return;
    let failure: unknown;
    try {
      const running = this.#inflight.pending();
      this.#inflight.clear();
      try {
        waitAll(running);
      } catch {
        // each failure is reported to its own awaiter
      }
      for (const res of this.#reservations) {
        const r = reservationPlace(res)!;
        settleReservationOf(res);
        core.abandon(r.ts);
        core.disown(r.ts);
      }
      this.#reservations.clear();
      core.waitFor(core.shared.committed, "persisted", "close");
    } catch (e) {
      failure = e;
    }
    this.#core = null;
    this.#regions.clear();
    try {
      releaseCore(core);
    } catch (e) {
      failure ??= e;
    }
    if (failure !== undefined) throw failure;
  }

  /** Same as {@linkcode LogStream.close}. */
  [Symbol.dispose](): void {
    this.close();
  }
}
