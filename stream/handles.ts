// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * {@linkcode RegionHandles}: the {@linkcode Region} handles of one open
 * of a {@linkcode LogStream}, one per allocated slot and generation (a
 * slot freed and allocated again gets a new handle), what they read from
 * the stream, and the check that a handle passed back is one of this
 * open's and still allocated. Internal.
 *
 * @module
 */
import { ClosedError } from "../errors/mod.ts";
import type { LogCore } from "./core.ts";
import { MINT, Region, type RegionSource } from "./region.ts";
import { REGION_ALLOCATED } from "./shared.ts";
import type { LogStream } from "./stream.ts";

/**
 * Whether slot `k` is allocated, for a check of a region by an open (its
 * handle's, `regions()`, an iteration's step). A free of it whose Worker
 * ended between the free's two holds of the reserve lock is rolled back
 * first (`SharedState.allocated`), else the region read as freed until
 * some open took that lock; not inside an operation of this isolate,
 * which may hold the lock (a testing tracer's callback): the mirror as it
 * reads.
 *
 * @param op the operation named in errors
 */
export function regionAllocated(core: LogCore, k: number, op: string): boolean {
  if (core.operating) return core.shared.regionState(k) === REGION_ALLOCATED;
  return core.shared.allocated(k, op);
}

/** The region handles of one open stream. */
export class RegionHandles implements RegionSource {
  #stream: LogStream;
  #core: LogCore | null;
  #handles = new Map<number, Region>();

  constructor(stream: LogStream, core: LogCore) {
    this.#stream = stream;
    this.#core = core;
  }

  #live(op: string): LogCore {
    const core = this.#core;
    if (core === null) throw new ClosedError("LogStream", op);
    return core;
  }

  /** The engine, when slot `k` still holds generation `gen`. */
  #held(k: number, gen: number, op: string): LogCore {
    const core = this.#live(op);
    const s = core.shared;
    if (!regionAllocated(core, k, op) || s.generation(k) !== gen) {
      // else a freed handle reads the region that reused its slot
      throw new ClosedError(`region ${k} (freed)`, op);
    }
    return core;
  }

  /** Bytes of region `k`'s space. */
  size(k: number, gen: number): number {
    return this.#held(k, gen, "size").shared.size(k);
  }

  /** Bytes region `k`'s entries take. */
  used(k: number, gen: number): number {
    const s = this.#held(k, gen, "used").shared;
    return s.tail(k) - s.head(k);
  }

  /** Whether the stream is open and slot `k` still holds generation `gen`. */
  alive(k: number, gen: number): boolean {
    const core = this.#core;
    return core !== null && regionAllocated(core, k, "regions") &&
      core.shared.generation(k) === gen;
  }

  /** The handle of allocated region `k`. */
  get(k: number): Region {
    const gen = this.#live("regions").shared.generation(k);
    let r = this.#handles.get(k);
    if (r === undefined || r.generation !== gen) {
      r = new Region(MINT, this.#stream, this, k, gen);
      this.#handles.set(k, r);
    }
    return r;
  }

  /** Check a region handle for `op`; its slot. */
  slot(r: unknown, op: string): number {
    const core = this.#live(op);
    if (!(r instanceof Region) || r.stream !== this.#stream) {
      // (entries is a method's name, not a verb)
      throw new TypeError(
        `Cannot ${
          op === "entries" ? "iterate entries" : op
        }: region must be a Region of this stream`,
      );
    }
    if (
      !regionAllocated(core, r.id, op) ||
      core.shared.generation(r.id) !== r.generation
    ) {
      throw new ClosedError(`region ${r.id} (freed)`, op);
    }
    return r.id;
  }

  /** The handles of the allocated regions, by id. */
  all(): Region[] {
    const core = this.#live("regions");
    const out: Region[] = [];
    for (let k = 0; k < core.geometry.regionSlots; k++) {
      if (regionAllocated(core, k, "regions")) out.push(this.get(k));
    }
    return out;
  }

  /** Forget the handle of freed region `k`. */
  forget(k: number): void {
    this.#handles.delete(k);
  }

  /** The stream closed: every handle reads as closed or freed. */
  close(): void {
    this.#core = null;
    this.#handles.clear();
  }
}
