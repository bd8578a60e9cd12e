// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The handles a {@linkcode LogStream} gives out: {@linkcode Region} (a
 * circular log of entries in the stream), {@linkcode Reservation} (a
 * place for one entry, filled in place and then published) and the
 * {@linkcode LogEntry} that iteration yields.
 *
 * @module
 */
import type { Reserved } from "./core.ts";
import type { LogStream } from "./stream.ts";

let reservedOf: (r: Reservation) => Reserved | undefined;

/**
 * Passed by the stream to the constructors of {@linkcode Region} and
 * {@linkcode Reservation}, which refuse a call without it: a handle made
 * elsewhere would reach the stream's tables with a slot it never checked,
 * or have a header written where it says. Internal.
 */
export const MINT: unique symbol = Symbol("asyncpmem.region");
let settleReservation: (r: Reservation) => void;

/** The place a reservation holds; undefined once settled. Internal. */
export function reservationPlace(r: Reservation): Reserved | undefined {
  return reservedOf(r);
}

/** Mark a reservation published or cancelled. Internal. */
export function settleReservationOf(r: Reservation): void {
  settleReservation(r);
}

/** One entry, as iteration yields it. */
export interface LogEntry {
  /** Its timestamp: entries of all regions are ordered by it. */
  readonly timestamp: number;
  /**
   * Its data: a zero-copy view of the stream's mapping. Copy it to keep
   * it past a truncation or free of its region, or the stream's close
   * (which detaches it, unless another open of the file in the same
   * thread still maps it). Read it only: a write changes the durable
   * entry behind its checksum, and the next open refuses the file.
   */
  readonly data: Uint8Array;
}

/** What a region handle reads from its stream. Internal. */
export interface RegionSource {
  /** Bytes of region `k`'s space (generation `gen`, else ClosedError). */
  size(k: number, gen: number): number;
  /** Bytes its entries take (headers and padding included). */
  used(k: number, gen: number): number;
  /** Whether slot `k` still holds generation `gen`. */
  alive(k: number, gen: number): boolean;
}

/**
 * A region of a {@linkcode LogStream}: a circular log. Appends go to its
 * end; {@linkcode LogStream.truncate} drops entries from its start and
 * makes their space reusable. A handle stays valid until the region is
 * freed (then every operation on it throws `ClosedError`).
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
 * s.append(r, new Uint8Array(100));
 * assert.equal(r.size, 64 << 10);
 * assert.equal(r.used, 16 + 104); // a 16-byte header, data padded to 8
 * ```
 */
export class Region {
  #source: RegionSource;
  #id: number;
  #generation: number;
  /** The stream that made it. @internal */
  readonly stream: LogStream;

  /** Made by the stream only. @internal */
  constructor(
    mint: typeof MINT,
    stream: LogStream,
    source: RegionSource,
    id: number,
    generation: number,
  ) {
    if (mint !== MINT) {
      throw new TypeError(
        "Cannot construct Region: regions are made by LogStream.allocateRegion",
      );
    }
    this.stream = stream;
    this.#source = source;
    this.#id = id;
    this.#generation = generation;
  }

  /** The region's slot in the stream's region table. */
  get id(): number {
    return this.#id;
  }

  /** How often the slot was allocated (tells reuses of an id apart). */
  get generation(): number {
    return this.#generation;
  }

  /** Bytes of the region's space (a multiple of the block size). */
  get size(): number {
    return this.#source.size(this.#id, this.#generation);
  }

  /**
   * Bytes its entries take, headers and padding included (reserved
   * entries count too). An entry of `n` bytes takes `16 + n` rounded up
   * to 8; 16 bytes always stay free.
   */
  get used(): number {
    return this.#source.used(this.#id, this.#generation);
  }

  /**
   * Whether the handle is spent: its region was freed, or its stream
   * closed (true from then on: a handle never outlives its stream's
   * open, and every call given it throws).
   */
  get freed(): boolean {
    return !this.#source.alive(this.#id, this.#generation);
  }
}

/**
 * A place for one entry, from {@linkcode LogStream.reserve}: fill
 * {@linkcode Reservation.data} in place (zero-copy), then
 * {@linkcode LogStream.publish} it (or {@linkcode LogStream.cancel}).
 * Its timestamp is taken at reserve: later entries, in any region, are
 * committed only once it is published or cancelled.
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
 * const res = s.reserve(r, 5);
 * res.data.set(new TextEncoder().encode("hello"));
 * const ts = s.publish(res);
 * assert.equal(ts, res.timestamp);
 * ```
 */
export class Reservation {
  #stream: LogStream;
  #timestamp: number;
  #data: Uint8Array;
  #region: Region;
  #reserved: Reserved | undefined;

  /** Made by the stream only. @internal */
  constructor(
    mint: typeof MINT,
    stream: LogStream,
    region: Region,
    reserved: Reserved,
    data: Uint8Array,
  ) {
    if (mint !== MINT) {
      throw new TypeError(
        "Cannot construct Reservation: reservations are made by LogStream.reserve",
      );
    }
    this.#stream = stream;
    this.#reserved = reserved;
    this.#region = region;
    this.#timestamp = reserved.ts;
    this.#data = data;
  }

  static {
    reservedOf = (r) => r.#reserved;
    settleReservation = (r) => void (r.#reserved = undefined);
  }

  /** The stream that made it. @internal */
  get stream(): LogStream {
    return this.#stream;
  }

  /** Whether it was published or cancelled. */
  get settled(): boolean {
    return this.#reserved === undefined;
  }

  /** The entry's timestamp. */
  get timestamp(): number {
    return this.#timestamp;
  }

  /** The entry's region. */
  get region(): Region {
    return this.#region;
  }

  /**
   * The entry's data, in the stream's mapping: write it in place, before
   * publishing. After {@linkcode LogStream.publish} or
   * {@linkcode LogStream.cancel} it still views the entry (close detaches
   * it, unless another open of the file in the same thread still maps
   * it): a write then changes a durable entry behind its checksum, or
   * entries written later in its place, and the next open refuses the
   * file.
   */
  get data(): Uint8Array {
    return this.#data;
  }
}
