// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * {@linkcode PmemLog}: libpmemlog's append-only log, byte-compatible with
 * libpmemlog 1.12.1 pools (a migration path off that discontinued
 * library), with asynchronous appends through a data mover.
 *
 * @module
 */
import { ClosedError, OutOfSpaceError, PmemError } from "../errors/mod.ts";
import type { DeviceShutdownState } from "../pmdk/pool_header.ts";
import { storeShutdownState } from "../pmdk/shutdown_state.ts";
import {
  checkFutureOptions,
  type Future,
  type FutureOptions,
} from "../future/future.ts";
import type { FileLock } from "../pmem2/file_lock.ts";
import type { Mapping } from "../pmem2/mapping.ts";
import type { Vdm } from "../mover/vdm.ts";
import { LOG_START, WRITE_OFFSET_AT } from "./pmemlog_format.ts";
import { StreamMedia } from "./media.ts";
import { checkInt, detachedData, isDetached } from "./options.ts";
import {
  byteLengthOf,
  isBytes,
  notConstructible,
  trueBytes,
} from "../ffi/validate.ts";
import { LogAppender } from "./pmemlog_async.ts";
import { createLogPool, type MakeLog, openLogPool } from "./pmemlog_pool.ts";
import type {
  PmemLogCreateOptions,
  PmemLogOpenOptions,
  PmemLogTestHooks,
} from "./pmemlog_options.ts";
import { EROFS } from "../errors/errno.ts";

/** Set by PmemLog's static block: {@linkcode openPmemLogToInspect}. */
let openPrivately: (path: string) => PmemLog;

/**
 * Open a log pool for tools that only read it (the CLI's info, check,
 * dump and convert): on a private (copy-on-write) mapping, as a log with
 * ro_compat features is opened, so nothing reaches the file -- not even
 * the shutdown state PmemLog.open marks dirty while the log is open and
 * clean at its close, which would erase the trace of a writer that ended
 * with it open. Appends throw EROFS. Not exported from the module.
 *
 * @throws {PmemError} as {@linkcode PmemLog.open}
 */
export function openPmemLogToInspect(path: string): PmemLog {
  return openPrivately(path);
}

/** Set by PmemLog's static block: {@linkcode createPmemLogWith}. */
let createWith: (
  path: string,
  options: PmemLogCreateOptions,
  hooks: PmemLogTestHooks,
) => PmemLog;

/** {@linkcode PmemLog.create} with test hooks. Internal. */
export function createPmemLogWith(
  path: string,
  options: PmemLogCreateOptions,
  hooks: PmemLogTestHooks,
): PmemLog {
  return createWith(path, options, hooks);
}

/** Set by PmemLog's static block: {@linkcode openPmemLogWith}. */
let openWith: (
  path: string,
  options: PmemLogOpenOptions,
  hooks: PmemLogTestHooks,
) => PmemLog;

/** {@linkcode PmemLog.open} with test hooks. Internal. */
export function openPmemLogWith(
  path: string,
  options: PmemLogOpenOptions,
  hooks: PmemLogTestHooks,
): PmemLog {
  return openWith(path, options, hooks);
}

/**
 * An append-only log in libpmemlog's format: pools it creates open in
 * libpmemlog and pass `pmempool check`, and libpmemlog's pools open here.
 * Each append is atomic and durable on return (data persisted, then the
 * 8-byte write offset), as in libpmemlog; `appendAsync` copies through a
 * data mover, and appends completing together share their two persists.
 *
 * The file is locked while open (`flock`, as libpmemlog does): a second
 * open, here or in libpmemlog, fails with EAGAIN.
 *
 * @example Usage
 * ```ts
 * import { PmemLog } from "@asyncpmem/asyncpmem/stream";
 * import assert from "node:assert/strict";
 * import { mkdtempSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 *
 * const path = join(mkdtempSync(join(tmpdir(), "asyncpmem-")), "pool.log");
 * using log = PmemLog.create(path, { poolSize: 2 << 20 });
 * log.append(new TextEncoder().encode("hello "));
 * log.appendv([new TextEncoder().encode("wor"), new TextEncoder().encode("ld")]);
 * await log.appendAsync(new TextEncoder().encode("!"));
 * assert.equal(log.tell(), 12);
 * let text = "";
 * log.walk(0, (chunk) => {
 *   text = new TextDecoder().decode(chunk);
 *   return true;
 * });
 * assert.equal(text, "hello world!");
 * ```
 */
export class PmemLog implements Disposable {
  #path: string;
  #map: Mapping | null;
  #media: StreamMedia;
  #lock: FileLock;
  #end: number;
  #readOnly: boolean;
  /**
   * The device's shutdown state, kept in the header as libpmem keeps it
   * (dirty while open); null when the header does not keep one.
   */
  #device: DeviceShutdownState | null;
  #mover: Vdm;
  /** Where the next append goes (past asynchronous appends in flight). */
  #cursor: number;
  #appender: LogAppender;
  /** Rewinds so far (a walk stops at one made by its callback). */
  #rewinds = 0;
  /** Operations under way (nested ones too): see `#operate`. */
  #depth = 0;
  /** The mapping of a close asked for inside an operation, closed as it ends. */
  #closeLater: Mapping | null = null;

  private constructor(
    path: string,
    map: Mapping,
    lock: FileLock,
    readOnly: boolean,
    mover: Vdm,
    device: DeviceShutdownState | null,
  ) {
    if (path === undefined) {
      notConstructible("PmemLog", "use PmemLog.open() or PmemLog.create()");
    }
    this.#path = path;
    this.#device = device;
    this.#map = map;
    this.#media = new StreamMedia(map);
    this.#lock = lock;
    this.#end = map.size;
    this.#readOnly = readOnly;
    this.#mover = mover;
    this.#cursor = this.#media.read64(WRITE_OFFSET_AT);
    this.#appender = new LogAppender({
      media: this.#media,
      mover,
      take: (n) => {
        this.#writable("appendAsync");
        return this.#take(n, "appendAsync");
      },
      commitTo: (end) => this.#commitTo(end),
      giveBack: (start) => this.#giveBack(start),
      closed: () => this.#map === null,
      enter: () => void this.#depth++,
      leave: () => this.#leave(),
    });
  }

  /**
   * Create a log pool (like `pmemlog_create`).
   *
   * @param path the file; it must not exist unless `poolSize` is 0
   * @throws {TypeError} when an argument has the wrong type, or an option
   *   is none of {@linkcode PmemLogCreateOptions}'s
   * @throws {RangeError} when `poolSize` is below 2 MiB
   * @throws {PmemError} code -17 (EEXIST) when the file exists (or, with
   *   `poolSize` 0, its header is not zero); -2 (ENOENT) when, with
   *   `poolSize` 0, it does not exist (the message says to pass
   *   `poolSize`); -22 (EINVAL) when, with `poolSize` 0, it has less than
   *   2 MiB; -11 (EAGAIN) when it is open elsewhere; -95 (ENOTSUP) on a
   *   host other than x86-64 and aarch64 (libpmemlog's format is defined
   *   for those)
   */
  static create(path: string, options: PmemLogCreateOptions = {}): PmemLog {
    return PmemLog.#create(path, options, {});
  }

  /** {@linkcode PmemLog.create}, with test hooks. */
  static #create(
    path: string,
    options: PmemLogCreateOptions,
    hooks: PmemLogTestHooks,
  ): PmemLog {
    return createLogPool(path, options, hooks, PmemLog.#make(path));
  }

  /**
   * Open a log pool (like `pmemlog_open`), libpmemlog's included. A pool
   * whose header has ro_compat features opens read-only, as in
   * libpmemlog: its appends and `rewind` throw code -30 (EROFS).
   *
   * After an unclean shutdown (the header's shutdown state dirty: a
   * process killed with the log open; or a header that keeps no state)
   * the stores its last writer made may be visible and not durable: the
   * open persists the log's data and write offset before handing the log
   * out, so what `tell()` and `walk()` report survives a power failure
   * (a flush of the used part of the log, once). A read-only open
   * cannot (nothing reaches the file): a power failure may then still
   * take back what it read.
   *
   * @throws {TypeError} when an argument has the wrong type, or an option
   *   is none of {@linkcode PmemLogOpenOptions}'s
   * @throws {PmemError} code -22 (EINVAL) when the file is not an intact
   *   log pool (the message says what is wrong); -2 (ENOENT) when it does
   *   not exist; -11 (EAGAIN) when it is open elsewhere
   */
  static open(path: string, options: PmemLogOpenOptions = {}): PmemLog {
    return PmemLog.#open(path, options, false, {});
  }

  static {
    openPrivately = (path) => PmemLog.#open(path, {}, true, {});
    openWith = (path, options, hooks) =>
      PmemLog.#open(path, options, false, hooks);
    createWith = (path, options, hooks) =>
      PmemLog.#create(path, options, hooks);
  }

  /** {@linkcode PmemLog.open}; with `inspect`, as {@linkcode openPmemLogToInspect}. */
  static #open(
    path: string,
    options: PmemLogOpenOptions,
    inspect: boolean,
    hooks: PmemLogTestHooks,
  ): PmemLog {
    return openLogPool(path, options, inspect, hooks, PmemLog.#make(path));
  }

  /** How `pmemlog_pool.ts` makes the log at `path` over the pool it readied. */
  static #make(path: string): MakeLog {
    return (map, lock, readOnly, mover, device) =>
      new PmemLog(path, map, lock, readOnly, mover, device);
  }

  #live(op: string): StreamMedia {
    if (this.#map === null) throw new ClosedError("PmemLog", op);
    return this.#media;
  }

  /**
   * Run `f`, the part of `op` that changes the log, as an operation: a
   * close asked for inside it (by a testing tracer's callback, in its
   * persist) waits for its end, so the change ends as it would have (an
   * append whole and its write offset persisted, or not made), then the
   * close runs and `op` fails with ClosedError. Closed at once, the log's
   * mapping was gone under the rest of the change, which failed with the
   * engine's TypeError (a view of the closed media read).
   */
  #operate<T>(op: string, f: () => T): T {
    this.#depth++;
    let out: T;
    try {
      out = f();
    } catch (e) {
      this.#leaveOp(op);
      throw e;
    }
    this.#leaveOp(op);
    return out;
  }

  /**
   * End an operation {@linkcode PmemLog.#operate} (or `#appendv`) began:
   * run a close asked for in it, and fail `op` if one closed the log.
   */
  #leaveOp(op: string): void {
    this.#leave();
    if (this.#map === null) throw new ClosedError("PmemLog", op);
  }

  /** An operation ends; the last to end runs a close asked for in it. */
  #leave(): void {
    const map = this.#closeLater;
    if (--this.#depth > 0 || map === null) return;
    this.#closeLater = null;
    this.#map = map;
    this.close();
  }

  #writable(op: string): StreamMedia {
    const media = this.#live(op);
    if (this.#readOnly) {
      throw new PmemError(
        op,
        -EROFS,
        `'${this.#path}' is read-only (its header has ro_compat features)`,
      );
    }
    return media;
  }

  /** Whether {@linkcode PmemLog.close} has run. */
  get closed(): boolean {
    return this.#map === null;
  }

  /** The data mover of `appendAsync`. */
  get mover(): Vdm {
    return this.#mover;
  }

  /** Bytes appended and durable (`pmemlog_tell`). */
  tell(): number {
    return this.#live("tell").read64(WRITE_OFFSET_AT) - LOG_START;
  }

  /** The log's capacity in bytes, used or not (`pmemlog_nbyte`). */
  nbyte(): number {
    this.#live("nbyte");
    return this.#end - LOG_START;
  }

  /**
   * Check buffers; their lengths as the engine knows them once the array
   * is read (see `byteLengthOf`: a lying `byteLength` took a place of
   * another size than the bytes copied into it). Each is read once, into
   * `bufs`: an array read again to copy (a getter, a Proxy) gave other
   * elements than those counted, and the copy threw after the place was
   * taken (a hole in the log) or wrote other bytes than those counted.
   */
  #checkBuffers(
    data: readonly Uint8Array[],
    op: string,
    bufs: Uint8Array[] = [],
    lengths: number[] = [],
  ): number {
    for (const b of data) {
      if (!isBytes(b)) {
        throw new TypeError(`Cannot ${op}: data must be Uint8Arrays`);
      }
      bufs.push(b);
    }
    // measured once the array is read: its reads (an iterator, a Proxy's
    // traps) may resize a buffer taken before, which was then copied at
    // its new length into a place of its old one (stale log bytes
    // committed after it, or the next buffer's place overwritten)
    let n = 0;
    for (const b of bufs) {
      const m = byteLengthOf(b);
      if (m === 0 && isDetached(b)) throw detachedData(op, b);
      lengths.push(m);
      n += m;
    }
    return n;
  }

  /** Take `n` bytes at the cursor, or throw as libpmemlog's append does. */
  #take(n: number, op: string): number {
    const at = this.#cursor;
    if (at >= this.#end || n > this.#end - at) {
      throw new OutOfSpaceError(
        op,
        `the log is full: ${n} bytes asked, ${
          Math.max(0, this.#end - at)
        } free`,
      );
    }
    this.#cursor = at + n;
    return at;
  }

  /**
   * Append atomically and durably (`pmemlog_append`): the data is
   * persisted, then the write offset (two persists, as libpmemlog).
   *
   * @throws {OutOfSpaceError} when it does not fit (nothing is written;
   *   like libpmemlog, even an empty append fails on a full log)
   * @throws {PmemError} code -30 (EROFS) on a log opened read-only (see
   *   {@linkcode PmemLog.open})
   */
  append(data: Uint8Array): void {
    const op = "append";
    this.#writable(op);
    if (!isBytes(data)) {
      throw new TypeError(`Cannot ${op}: data must be a Uint8Array`);
    }
    this.#appendv([data], op);
  }

  /**
   * Append several buffers as one atomic entry (`pmemlog_appendv`).
   *
   * @throws {OutOfSpaceError} when they do not fit together (nothing is
   *   written)
   * @throws {PmemError} code -30 (EROFS) on a log opened read-only
   */
  appendv(data: readonly Uint8Array[]): void {
    const op = "appendv";
    this.#writable(op);
    if (!Array.isArray(data)) {
      throw new TypeError(`Cannot ${op}: data must be an array`);
    }
    this.#appendv(data, op);
  }

  /** `appendv` under the name of the public method called (`op`). */
  #appendv(data: readonly Uint8Array[], op: string): void {
    const bufs: Uint8Array[] = [];
    const lengths: number[] = [];
    const n = this.#checkBuffers(data, op, bufs, lengths);
    // after the array was read: its iterator or getters may have closed
    // the log
    const media = this.#writable(op);
    // #operate's steps written out: no closure per append
    this.#depth++;
    try {
      this.#appendAt(media, bufs, lengths, n, op);
    } catch (e) {
      this.#leaveOp(op);
      throw e;
    }
    this.#leaveOp(op);
  }

  /** `appendv`'s change: the buffers (`n` bytes) appended and persisted. */
  #appendAt(
    media: StreamMedia,
    bufs: Uint8Array[],
    lengths: number[],
    n: number,
    op: string,
  ): void {
    this.#drain();
    // an empty vector too fails on a full log, as in libpmemlog
    const at = this.#take(n, op);
    if (n === 0) return;
    // a view of the mapping over the place taken (kept across a rewind):
    // the buffers are copied one after another, and on Bun a large log a
    // view window at a time, so a copy would overwrite bytes a later one
    // (or a later piece of its own) still reads; such bytes are copied
    // out first, and the append holds what the views held at the call
    for (let i = 0; i < bufs.length; i++) {
      if (lengths[i] > 0 && media.overlaps(at, bufs[i], lengths[i], n)) {
        bufs[i] = trueBytes(bufs[i]).slice();
      }
    }
    try {
      let p = at;
      for (let i = 0; i < bufs.length; i++) {
        media.set(p, bufs[i]);
        p += lengths[i];
      }
      media.persist(at, n);
      this.#commitTo(at + n);
    } catch (e) {
      // not appended: the next append takes this place (no async append
      // holds a place after it: those polled were drained, the others
      // take theirs when first polled)
      this.#giveBack(at);
      throw e;
    }
  }

  /**
   * An append from `start` (the durable write offset) failed: the next
   * one goes there, and a write offset stored but not persisted goes
   * back (`tell()` counted the failed append).
   */
  #giveBack(start: number): void {
    this.#cursor = start;
    if (this.#media.read64(WRITE_OFFSET_AT) !== start) {
      this.#media.write64(WRITE_OFFSET_AT, start);
    }
  }

  /** Store and persist the write offset (the commit point). */
  #commitTo(end: number): void {
    this.#media.write64(WRITE_OFFSET_AT, end);
    this.#media.persist(WRITE_OFFSET_AT, 8);
  }

  /**
   * Append through the log's mover. Appends take effect in the order
   * they are first polled: the appends polled in one sweep take their
   * places together, with their data's length then, and their copies
   * start as one mover batch; appends whose copies completed together
   * are made durable together (one persist of their data, one of the write
   * offset). Resolves with the entry's offset in the log (`tell()` before
   * it). Nothing happens at the call: a synchronous `append`, `appendv`
   * or `rewind` made before the first poll goes first (it finishes the
   * appends already polled, not this one); `close` finishes it.
   *
   * Should the mover fail a copy (a device's error status; a mover of
   * the user's whose future fails), the appends of that batch fail with
   * its error, in every store's words (a `PmemError` code -5, EIO, for
   * a mover that failed without an error or broke the `Vdm` contract),
   * and nothing of them is appended: the write offset never covers their
   * bytes. An append placed after them, in a later batch, takes its place
   * again (a log has no holes), and the log goes on. A copy refused by a
   * mover its owner closed (one shared by stores) is made on this thread.
   * An append that does not fit when its place is taken fails with an
   * `OutOfSpaceError` (even an empty one on a full log, as `append`).
   *
   * @example Usage
   * ```ts
   * import { PmemLog } from "@asyncpmem/asyncpmem/stream";
   * import { all, ThreadMover } from "@asyncpmem/asyncpmem";
   * import assert from "node:assert/strict";
   * import { mkdtempSync } from "node:fs";
   * import { tmpdir } from "node:os";
   * import { join } from "node:path";
   *
   * using mover = new ThreadMover();
   * const path = join(mkdtempSync(join(tmpdir(), "asyncpmem-")), "pool.log");
   * using log = PmemLog.create(path, { poolSize: 2 << 20, mover });
   * const offsets = await all([1, 2, 3].map((n) => log.appendAsync(new Uint8Array(n))));
   * assert.deepEqual(offsets, [0, 1, 3]);
   * assert.equal(log.tell(), 6);
   * ```
   *
   * @throws {TypeError} at once for bad data, options that are not an
   *   object, or a signal that is not an AbortSignal
   * @throws {PmemError} code -30 (EROFS) at once on a log opened read-only
   */
  appendAsync(data: Uint8Array, options?: FutureOptions): Future<number> {
    const op = "appendAsync";
    this.#writable(op);
    if (!isBytes(data)) {
      throw new TypeError(`Cannot ${op}: data must be a Uint8Array`);
    }
    this.#checkBuffers([data], op);
    // as LogStream's: refused in this call's words (not an object, an
    // unknown key, a signal that is no AbortSignal), each option read
    // once (a getter could give the future a value never checked)
    return this.#appender.append(data, checkFutureOptions(options, op));
  }

  /**
   * Finish the asynchronous appends in flight (before a sync change):
   * those polled at least once, or with `all` (close) every one made.
   */
  #drain(all = false): void {
    this.#appender.drain(all);
  }

  /**
   * Empty the log (`pmemlog_rewind`): the write offset goes back to the
   * start and is persisted. The data is not erased. Asynchronous
   * appends in flight (polled at least once) finish first; one never
   * polled has done nothing yet, and appends after the rewind when it is
   * first polled (as after a synchronous `append`).
   *
   * @throws {PmemError} when the persist fails (the log is left as it
   *   was); code -30 (EROFS) on a log opened read-only
   */
  rewind(): void {
    const op = "rewind";
    const media = this.#writable(op);
    this.#operate(op, () => this.#rewind(media));
  }

  /** `rewind`'s change. */
  #rewind(media: StreamMedia): void {
    this.#drain();
    const was = media.read64(WRITE_OFFSET_AT);
    media.write64(WRITE_OFFSET_AT, LOG_START);
    try {
      media.persist(WRITE_OFFSET_AT, 8);
    } catch (e) {
      // not rewound: the offset goes back, as a failed append's does (left
      // at the start, tell() said 0 while the next append went after the
      // old data, and brought it back)
      media.write64(WRITE_OFFSET_AT, was);
      throw e;
    }
    this.#cursor = LOG_START;
    this.#rewinds++;
  }

  /**
   * Read the log in chunks (`pmemlog_walk`), zero-copy: `callback` gets
   * views of the mapping, each valid during the call. With `chunkSize` 0
   * it is called once with all the data (even when there is none); else
   * with consecutive chunks of `chunkSize` bytes (the last may be
   * shorter). A falsy return stops the walk. It covers what the log held
   * when it began (appends made by the callback are not walked), and never
   * goes past the write offset (a rewind by the callback cuts it short).
   *
   * @throws {RangeError} when `chunkSize` is not a non-negative integer
   * @throws {TypeError} when `callback` is not a function
   */
  walk(chunkSize: number, callback: (chunk: Uint8Array) => unknown): void {
    const op = "walk";
    const media = this.#live(op);
    const size = checkInt(chunkSize, "chunkSize", op);
    if (typeof callback !== "function") {
      throw new TypeError(`Cannot ${op}: callback must be a function`);
    }
    let end = media.read64(WRITE_OFFSET_AT);
    const rewinds = this.#rewinds;
    if (size === 0) {
      callback(media.bytes(LOG_START, end - LOG_START));
      return;
    }
    for (let at = LOG_START; at < end; at += size) {
      if (at > LOG_START) {
        // the callback may have closed the log (its mapping is gone) or
        // rewound it (what lies past the write offset is not the log's)
        end = Math.min(end, this.#live(op).read64(WRITE_OFFSET_AT));
        // after a rewind the bytes are another log's, appended since
        if (at >= end || this.#rewinds !== rewinds) return;
      }
      if (!callback(media.bytes(at, Math.min(size, end - at)))) return;
    }
  }

  /**
   * Close: finish every `appendAsync` not settled, polled or not (its
   * data is appended, as `LogStream.close` appends its appends in flight
   * and `ObjectPool.close` applies its transactions; the README's table),
   * then unmap and unlock. An append whose copy the mover fails fails
   * with the mover's error (see `appendAsync`); the close itself does not
   * throw it. Idempotent. The header's shutdown state is marked clean,
   * unless a persist of the log failed while it was open.
   *
   * Inside an operation of the log (code it runs: a testing tracer's
   * callback), the log reads as closed at once, and closes when the
   * operation ends, which then fails with a `ClosedError` naming it: the
   * operation goes on using the mapping after the callback.
   */
  close(): void {
    const map = this.#map;
    if (map === null) return;
    if (this.#depth > 0) {
      this.#closeLater = map;
      this.#map = null;
      return;
    }
    // its drain is an operation: a close asked for in it is this one
    this.#depth++;
    try {
      this.#drain(true);
    } finally {
      this.#depth--;
      this.#closeLater = null;
    }
    this.#map = null;
    // a failed persist may have left stores visible that the media lacks:
    // the state stays dirty (an ADR failure after it is then not missed)
    const failed = this.#media.persistFailed;
    this.#media.close();
    try {
      // clean again: the log was closed (libpmemlog's close does the same)
      if (this.#device !== null && !failed) {
        storeShutdownState(map, this.#device, false);
      }
    } finally {
      try {
        map.close();
      } finally {
        this.#lock.release();
      }
    }
  }

  /** Same as {@linkcode PmemLog.close}. */
  [Symbol.dispose](): void {
    this.close();
  }
}
