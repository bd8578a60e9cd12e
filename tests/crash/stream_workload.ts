// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The log-stream workloads the crash simulator traces (and the kill test
 * runs), and the driver that runs their operations while labelling them
 * for a {@linkcode StreamLedger}: every append is labelled with its
 * timestamp when issued and again when acknowledged.
 *
 * @module
 */
import { OutOfSpaceError } from "../../errors/mod.ts";
import { type Future, waitAll } from "../../future/mod.ts";
import type { LogStream, Region } from "../../stream/mod.ts";
import { pick } from "./random.ts";

/** The geometry of every traced stream: small, so diffs stay cheap. */
export const STREAM_OPTIONS: StreamGeometry = {
  size: 256 * 1024,
  blockSize: 4096,
  regionSlots: 8,
  maxInFlight: 64,
} as const;

/** "LOGS", little-endian, at offset 0 of every payload. */
const MAGIC = 0x53474f4c;
/** The smallest entry a payload fits. */
export const MIN_ENTRY = 12;

/** The data of op `op`'s entry: it names the op and checks itself. */
export function entryPayload(op: number, length: number): Uint8Array {
  const b = new Uint8Array(length);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, MAGIC, true);
  dv.setUint32(4, op, true);
  let x = Math.imul(op + 1, 0x9e3779b1) >>> 0 || 1;
  for (let i = 12; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  dv.setUint32(8, fnv(b), true);
  return b;
}

/** FNV-1a of a payload, its check field read as zero. */
function fnv(b: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < b.length; i++) {
    h = Math.imul(h ^ (i >= 8 && i < 12 ? 0 : b[i]), 0x01000193);
  }
  return h >>> 0;
}

/**
 * The op an entry's data names, or a sentence saying what is wrong (torn,
 * not a payload, or another op's length).
 *
 * @param lengthOf the length the ledger knows for an op (null: unknown)
 */
export function decodeEntry(
  data: Uint8Array,
  lengthOf: (op: number) => number | null,
): number | string {
  if (data.length < MIN_ENTRY) return `${data.length} bytes, not a payload`;
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  if (dv.getUint32(0, true) !== MAGIC) return "not a payload";
  const op = dv.getUint32(4, true);
  const length = lengthOf(op);
  if (length === null) return `op ${op}'s payload, an op never issued`;
  if (length !== data.length) {
    return `op ${op}'s payload with ${data.length} bytes, not ${length}`;
  }
  if (dv.getUint32(8, true) !== fnv(data)) return `op ${op}'s payload, torn`;
  const want = entryPayload(op, length);
  for (let i = 0; i < length; i++) {
    if (data[i] !== want[i]) return `op ${op}'s payload, torn at byte ${i}`;
  }
  return op;
}

/** The key of a region for a ledger: `slot/generation`. */
export function regionKey(r: Region): string {
  return `${r.id}/${r.generation}`;
}

/** The movers traces use, by name (as tests/_harness.ts's MOVERS). */

/** Runs stream operations, labelling them. */
export class StreamDriver {
  #s: LogStream;
  #mark: (label: string) => void;
  #rand: () => number;
  #op: number;
  /** Operations issued (appends and others). */
  issued = 0;

  /**
   * @param stream the stream
   * @param mark where labels go
   * @param rand a seeded random source
   * @param firstOp the first op number
   */
  constructor(
    stream: LogStream,
    mark: (label: string) => void,
    rand: () => number,
    firstOp = 1,
  ) {
    this.#s = stream;
    this.#mark = mark;
    this.#rand = rand;
    this.#op = firstOp;
  }

  /** The driver's seeded random source (for a workload's preparation). */
  get rand(): () => number {
    return this.#rand;
  }

  /** The next op number. */
  get nextOp(): number {
    return this.#op;
  }

  /** The live regions. */
  regions(): Region[] {
    return this.#s.regions();
  }

  #length(): number {
    const r = this.#rand();
    return MIN_ENTRY + (r < 0.6 ? pick(this.#rand, 40) : pick(this.#rand, 900));
  }

  #issue(op: number, ts: number, r: Region, length: number): void {
    this.issued++;
    this.#mark(`I entry ${op} ${ts} ${regionKey(r)} ${length}`);
  }

  /** Run `fn`; when the region is full, truncate half of it and retry once. */
  #roomy<T>(r: Region, fn: () => T): T | null {
    try {
      return fn();
    } catch (e) {
      if (!(e instanceof OutOfSpaceError)) throw e;
      this.truncate(r, 0.6);
      try {
        return fn();
      } catch (e2) {
        if (e2 instanceof OutOfSpaceError) return null;
        throw e2;
      }
    }
  }

  /** A synchronous append. */
  append(r: Region): void {
    const op = this.#op++;
    const length = this.#length();
    const data = entryPayload(op, length);
    // the timestamp is known only on return: until then the ledger knows
    // the op as pending in its region
    this.#mark(`P entry ${op} ${regionKey(r)} ${length}`);
    const ts = this.#roomy(r, () => this.#s.append(r, data));
    if (ts === null) return;
    this.#issue(op, ts, r, length);
    this.#mark(`A entry ${op}`);
  }

  /** Reserve, fill in place, publish (or, with `cancel`, cancel). */
  reserve(r: Region, cancel = false): void {
    const op = this.#op++;
    const length = this.#length();
    const res = this.#roomy(r, () => this.#s.reserve(r, length));
    if (res === null) return;
    this.#issue(op, res.timestamp, r, length);
    if (cancel) {
      this.#s.cancel(res);
      this.#mark(`X entry ${op}`);
      return;
    }
    res.data.set(entryPayload(op, length));
    this.#s.publish(res);
    this.#mark(`A entry ${op}`);
  }

  /**
   * Asynchronous appends to random regions, waited for together; with
   * `committed`, they resolve at commit and are then persisted by one
   * wait; with `nudge`, a synchronous append is made before waiting (it
   * drives them).
   */
  appendAsync(
    regions: readonly Region[],
    count: number,
    options: { committed?: boolean; nudge?: boolean } = {},
  ): void {
    const futures: { op: number; f: Future<number> }[] = [];
    for (let i = 0; i < count; i++) {
      const r = regions[pick(this.#rand, regions.length)];
      const op = this.#op++;
      const length = this.#length();
      let f;
      try {
        f = this.#s.appendAsync(r, entryPayload(op, length), {
          level: options.committed ? "committed" : "persisted",
        });
      } catch (e) {
        if (e instanceof OutOfSpaceError) break;
        throw e;
      }
      this.#issue(op, f.timestamp, r, length);
      futures.push({ op, f });
    }
    if (options.nudge && regions.length > 0) this.append(regions[0]);
    waitAll(futures.map((x) => x.f));
    for (const { op } of futures) {
      this.#mark(`${options.committed ? "C" : "A"} entry ${op}`);
    }
    if (options.committed && futures.length > 0) {
      waitAll([this.#s.waitPersisted(futures[futures.length - 1].f.value!)]);
      for (const { op } of futures) this.#mark(`A entry ${op}`);
    }
  }

  /** Truncate about `share` of a region's entries. */
  truncate(r: Region, share = 0.5): void {
    const stamps = [...this.#s.entries(r)].map((e) => e.timestamp);
    if (stamps.length === 0) return;
    const upto =
      stamps[Math.min(stamps.length - 1, Math.floor(stamps.length * share))];
    this.issued++;
    this.#mark(`I truncate ${regionKey(r)} ${upto}`);
    this.#s.truncate(r, upto);
    this.#mark(`A truncate ${regionKey(r)} ${upto}`);
  }

  /** Free a region. */
  free(r: Region): void {
    this.issued++;
    this.#mark(`I free ${regionKey(r)}`);
    this.#s.freeRegion(r);
    this.#mark(`A free ${regionKey(r)}`);
  }

  /** Allocate a region of `size` bytes (a multiple of 4 KiB); null when none is free. */
  allocate(size: number): Region | null {
    this.issued++;
    this.#mark(`I alloc ${size}`);
    let r: Region;
    try {
      r = this.#s.allocateRegion(size);
    } catch (e) {
      if (e instanceof OutOfSpaceError) return null;
      throw e;
    }
    this.#mark(`A alloc ${regionKey(r)} ${size}`);
    return r;
  }
}

/** The geometry of a traced stream. */
export interface StreamGeometry {
  size: number;
  blockSize: number;
  regionSlots: number;
  maxInFlight: number;
}

/** A traced workload. */
export interface StreamWorkload {
  /** Its name. */
  name: string;
  /** Trace from the stream's creation (else: prepared, then reopened). */
  fromCreate: boolean;
  /** Its stream's geometry; unset: {@linkcode STREAM_OPTIONS}. */
  geometry?: StreamGeometry;
  /**
   * The ranges the traced operations store to, read from the prepared
   * stream at `path` (a large stream's tracer scans only them: see
   * `CrashTracer`'s `scan`); unset: the whole file.
   */
  scan?(path: string): { offset: number; length: number }[];
  /** Untraced preparation (regions, a few entries). */
  prepare(d: StreamDriver): void;
  /** The traced operations. */
  run(d: StreamDriver, rand: () => number, ops: number): void;
}

/** Region sizes the workloads allocate. */
const SIZES = [16384, 24576, 32768];

function prepareRegions(d: StreamDriver, n: number): void {
  for (let i = 0; i < n; i++) d.allocate(SIZES[i % SIZES.length]);
  for (const r of d.regions()) d.append(r);
}

/** The workloads, in the order sweeps use them. */
export const STREAM_WORKLOADS: readonly StreamWorkload[] = [
  {
    name: "sync",
    fromCreate: false,
    prepare: (d) => prepareRegions(d, 3),
    run(d, rand, ops) {
      for (let i = 0; i < ops; i++) {
        const rs = d.regions();
        const r = rs[pick(rand, rs.length)];
        const x = rand();
        if (x < 0.7) d.append(r);
        else if (x < 0.85) d.reserve(r, rand() < 0.3);
        else d.truncate(r, rand());
      }
    },
  },
  {
    name: "async",
    fromCreate: false,
    prepare: (d) => prepareRegions(d, 2),
    run(d, rand, ops) {
      let done = 0;
      while (done < ops) {
        const n = 1 + pick(rand, 6);
        const x = rand();
        d.appendAsync(d.regions(), n, {
          committed: x < 0.3,
          nudge: x > 0.8,
        });
        done += n;
        if (rand() < 0.15) {
          const rs = d.regions();
          d.truncate(rs[pick(rand, rs.length)], rand());
        }
      }
    },
  },
  {
    name: "regions",
    fromCreate: true,
    prepare() {},
    run(d, rand, ops) {
      d.allocate(SIZES[0]);
      for (let i = 0; i < ops; i++) {
        const rs = d.regions();
        const x = rand();
        if (rs.length === 0 || (x < 0.15 && rs.length < 5)) {
          d.allocate(SIZES[pick(rand, SIZES.length)]);
        } else if (x < 0.25 && rs.length > 1) {
          d.free(rs[pick(rand, rs.length)]);
        } else if (x < 0.6) d.append(rs[pick(rand, rs.length)]);
        else if (x < 0.8) d.appendAsync(rs, 1 + pick(rand, 4));
        else d.truncate(rs[pick(rand, rs.length)], rand());
      }
    },
  },
];
