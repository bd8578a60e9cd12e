// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The writes behind {@linkcode LogStream}'s append methods, once their
 * region handle is checked: whether an entry fits its region, waiting
 * for room in a full ring, the slow path of a synchronous append, and
 * {@linkcode Writes}, what one open has in flight (its reservations not
 * yet published, its asynchronous appends), drained at close. Internal.
 *
 * @module
 */
import { byteLengthOf, isBytes } from "../ffi/validate.ts";
import {
  checkFutureOptions,
  type Future,
  type FutureOptions,
} from "../future/future.ts";
import { waitAll } from "../future/blocking.ts";
import { FutureRegistry } from "../future/registry.ts";
import type { Vdm } from "../mover/vdm.ts";
import type { Level, LogCore, Reserved } from "./core.ts";
import { RESERVATION } from "./owners.ts";
import { advance, deadlock, persistAtClose, waitFor } from "./progress.ts";
import {
  type AppendFuture,
  CopyScheduler,
  StreamAppendFuture,
  WaitFuture,
} from "./futures.ts";
import { ENTRY_HEADER, entryTotal, MAX_ENTRY } from "./layout.ts";
import {
  type AppendOptions,
  checkInt,
  detachedData,
  isDetached,
} from "./options.ts";
import {
  MINT,
  type Region,
  Reservation,
  reservationPlace,
  settleReservationOf,
} from "./region.ts";
import type { LogStream } from "./stream.ts";

/** Check that an entry of `length` bytes fits region `k`. */
export function checkLength(
  core: LogCore,
  length: number,
  k: number,
  op: string,
): void {
  const size = core.shared.size(k);
  if (length > MAX_ENTRY || entryTotal(length) + ENTRY_HEADER > size) {
    // an entry's header and the terminator after it take 32 bytes
    const largest = Math.min(
      MAX_ENTRY,
      Math.max(0, size - 2 * ENTRY_HEADER - (size - 2 * ENTRY_HEADER) % 8),
    );
    throw new RangeError(
      `Cannot ${op}: an entry of ${length} bytes does not fit region ${k} of ${size} bytes (the largest it takes is ${largest} bytes)`,
    );
  }
}

/** Check `data` for an append to region `k`; its length. */
export function checkData(
  core: LogCore,
  data: unknown,
  k: number,
  op: string,
): number {
  if (!isBytes(data)) {
    throw new TypeError(`Cannot ${op}: data must be a Uint8Array`);
  }
  // the engine's length (see `byteLengthOf`), as every later step takes
  // it: a `byteLength` property claiming more had the native append copy
  // heap into the log, claiming less had the copy overrun its place
  const n = byteLengthOf(data);
  // a view of a transferred (or shrunk) buffer reads as empty: an empty
  // entry would stand for data that was never written (asked only of
  // empty data)
  if (n === 0 && isDetached(data)) throw detachedData(op, data);
  checkLength(core, n, k, op);
  return n;
}

/** Reserve, committing and persisting to make room when the ring is full. */
export function reserveRoom(
  core: LogCore,
  k: number,
  gen: number,
  length: number,
  op: string,
): Reserved {
  for (;;) {
    const res = core.reserve(k, gen, length, op);
    if (res !== null) return res;
    waitFor(core, core.shared.persisted + 1, "persisted", op);
  }
}

/**
 * A synchronous append that could not go alone (others are in flight, or
 * the ring is full): reserve, copy, mark ready, wait until persisted.
 */
export function appendWaiting(
  core: LogCore,
  k: number,
  gen: number,
  data: Uint8Array,
  op: string,
): number {
  const res = reserveRoom(core, k, gen, byteLengthOf(data), op);
  core.media.set(res.at + ENTRY_HEADER, data);
  core.ready(res.ts);
  waitFor(core, res.ts, "persisted", op);
  return res.ts;
}

/** Throw EDEADLK when a reservation of this isolate is outstanding. */
export function noReservation(core: LogCore, op: string): void {
  const oldest = core.oldestReservation();
  if (oldest !== Infinity) throw deadlock(op, oldest);
}

/**
 * What one open of a stream has in flight: its reservations not yet
 * published or cancelled and its asynchronous appends, with the copy
 * scheduler they share; {@linkcode Writes.drain} settles them at close.
 */
export class Writes {
  #core: LogCore;
  #scheduler: CopyScheduler;
  #inflight = new FutureRegistry();
  /** Reservations not yet published or cancelled (cancelled at close). */
  #reservations = new Set<Reservation>();
  /** Whether the open was closed. */
  #closed: () => boolean;

  /**
   * @param core the stream's engine
   * @param mover the mover of asynchronous appends
   * @param closed whether the open was closed (its appends in flight
   *   fail when it closes in the middle of their step)
   */
  constructor(core: LogCore, mover: Vdm, closed: () => boolean) {
    this.#core = core;
    this.#scheduler = new CopyScheduler(core, mover);
    this.#closed = closed;
  }

  /** The data mover of asynchronous appends. */
  get mover(): Vdm {
    return this.#scheduler.mover;
  }

  /** Reserve `n` bytes in `region` (slot `k`, its length checked). */
  reserve(
    stream: LogStream,
    region: Region,
    k: number,
    n: number,
    op: string,
  ): Reservation {
    const core = this.#core;
    const res = reserveRoom(core, k, region.generation, n, op);
    core.own(res.ts, RESERVATION);
    const out = new Reservation(
      MINT,
      stream,
      region,
      res,
      core.media.bytes(res.at + ENTRY_HEADER, n),
    );
    this.#reservations.add(out);
    return out;
  }

  /** The place of an outstanding reservation of `stream`. */
  static take(res: unknown, stream: LogStream, op: string): Reserved {
    const r = res instanceof Reservation && res.stream === stream
      ? reservationPlace(res)
      : undefined;
    if (r === undefined) {
      throw new TypeError(
        `Cannot ${op}: not an outstanding reservation of this stream`,
      );
    }
    return r;
  }

  /** Publish `reservation` (at `res`): committed and persisted on return. */
  publish(reservation: Reservation, res: Reserved, op: string): number {
    const core = this.#core;
    if (core.reservations > 1) {
      const oldest = core.oldestReservation();
      if (oldest < res.ts) throw deadlock(op, oldest);
    }
    this.#reservations.delete(reservation);
    settleReservationOf(reservation);
    core.disown(res.ts);
    core.ready(res.ts);
    if (!core.publishAlone(res)) waitFor(core, res.ts, "persisted", op);
    return res.ts;
  }

  /**
   * Give `reservation` (at `res`) up: committed as padding, which gives
   * its room back when it is its region's last (see
   * {@linkcode LogCore.cancel}).
   */
  cancel(reservation: Reservation, res: Reserved): void {
    const core = this.#core;
    // first: when it throws, the reservation is still outstanding
    core.cancel(res, "cancel");
    this.#reservations.delete(reservation);
    settleReservationOf(reservation);
    core.disown(res.ts);
    advance(core, res.ts, "committed");
  }

  /** Append `data` (checked: `length` bytes) to `region` through the mover. */
  appendAsync(
    region: Region,
    k: number,
    data: Uint8Array,
    length: number,
    options: AppendOptions | undefined,
    op: string,
    live: (op: string) => void,
  ): AppendFuture {
    // checked before the reservation (refused after it, the timestamp
    // would be held for good, and every later append would wait for it):
    // not an object, an unknown key, a signal that is no AbortSignal;
    // each option read once
    const read = checkFutureOptions(options, op, ["level"]);
    // a getter of the options may have closed the stream: its words are
    // unmapped then, or still mapped by another open, which this one's
    // append would use after its close
    live(op);
    const level = read?.level ?? "persisted";
    if (level !== "persisted" && level !== "committed") {
      throw new TypeError(
        `Cannot ${op}: level must be "persisted" or "committed"`,
      );
    }
    const signal = read?.signal;
    const core = this.#core;
    const res = reserveRoom(core, k, region.generation, length, op);
    let slot = -1;
    const f = new StreamAppendFuture(
      core,
      this.#scheduler,
      res,
      data,
      level,
      () => this.#inflight.remove(slot, f),
      this.#closed,
      // the signal checked above, not options read again: a getter giving
      // something else now would throw after the reservation
      signal === undefined ? undefined : { signal },
    );
    slot = this.#inflight.add(f);
    return f;
  }

  /**
   * A future of `ts` reaching `level`; `live` throws once the stream is
   * closed.
   */
  wait(
    ts: number,
    level: Level,
    live: (op: string) => void,
    options?: FutureOptions,
  ): Future<void> {
    const op = level === "committed" ? "waitCommitted" : "waitPersisted";
    live(op);
    options = checkFutureOptions(options, op);
    live(op); // (a getter of the options may have closed the stream)
    const core = this.#core;
    checkInt(ts, "timestamp", op);
    const last = core.lastReserved(ts, op);
    if (ts > last) {
      // nothing may ever reserve it: a blocking wait for it (or one whose
      // signal needs the event loop) would never return
      throw new RangeError(
        `Cannot ${op}: timestamp ${ts} was never reserved (the last reserved is ${last})`,
      );
    }
    return new WaitFuture(core, ts, level, live, options);
  }

  /**
   * Before close changes anything: throw EDEADLK when an append of this
   * open in flight is behind a reservation of another open of the stream
   * in this isolate (close would wait for it forever).
   */
  checkClose(): void {
    const core = this.#core;
    if (core.reservations <= this.#reservations.size) return;
    const ours = new Set<number>();
    for (const res of this.#reservations) ours.add(res.timestamp);
    let oldest = Infinity;
    for (const ts of core.ownedReservations()) {
      if (!ours.has(ts)) {
        oldest = ts;
        break;
      }
    }
    for (const f of this.#inflight.pending()) {
      if ((f as StreamAppendFuture).timestamp > oldest) {
        throw deadlock("close", oldest);
      }
    }
  }

  /**
   * At close: cancel the reservations not published, wait for the
   * appends in flight, persist everything committed. Cancelled first:
   * an append behind a reservation commits only once it is settled, and
   * nothing can publish it during close.
   */
  drain(): void {
    const core = this.#core;
    for (const res of this.#reservations) {
      const r = reservationPlace(res)!;
      settleReservationOf(res);
      core.abandon(r.ts);
      core.disown(r.ts);
    }
    this.#reservations.clear();
    const running = this.#inflight.pending();
    this.#inflight.clear();
    try {
      waitAll(running);
    } catch {
      // each failure is reported to its own awaiter
    }
    persistAtClose(core);
  }
}
