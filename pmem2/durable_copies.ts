// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * {@linkcode DurableCopies}: a mapping's asynchronous copies, whose futures
 * complete only when the bytes are durable (pmem2's async API), and the
 * registry of them that the mapping's `close()` waits for. Internal to
 * `pmem2/`: `Mapping.memcpyAsync` and friends check their arguments, then
 * come here.
 *
 * @module
 */
import { chain, fromStep, map } from "../future/combinators.ts";
import {
  Future,
  type FutureOptions,
  NOT_STARTED,
  PENDING,
  type PollContext,
  type Step,
} from "../future/future.ts";
import { FutureRegistry } from "../future/registry.ts";
import { checkStillAttached } from "../ffi/still_attached.ts";
import { type Vdm, VdmFlags } from "../mover/vdm.ts";
import type { Granularity } from "./config.ts";
import { MemFlags } from "./flags.ts";
import type { PersistTracer } from "./tracer.ts";

/** A byte range of a mapping. */
export interface Range {
  /** Its start. */
  offset: number;
  /** Its length. */
  length: number;
}

/** What the copies need from their mapping. */
export interface DurableHost {
  /** The mapping's mover. */
  readonly mover: Vdm;
  /** The mapping's effective store granularity. */
  readonly granularity: Granularity;
  /** The tracer attached now, if any. */
  tracer(): PersistTracer | undefined;
  /** A view of `[offset, offset + length)`. */
  view(offset: number, length: number): Uint8Array;
  /** Flush and drain a range. */
  persist(offset: number, length: number): void;
  /** Flush a range. */
  flush(offset: number, length: number): void;
  /** Flush several ranges, then drain once. */
  persistRanges(ranges: readonly Range[]): void;
}

/**
 * The user arrays a copy reads, checked again at its first poll (see
 * `checkStillAttached`): detached since the call, the copy fails with the
 * TypeError naming its argument and call, not the mover's words.
 */
export interface Sources {
  /** The arrays. */
  arrays: readonly Uint8Array[];
  /** Their argument's name. */
  name: string;
  /** The call. */
  op: string;
}

/** The asynchronous copies of one mapping. */
export class DurableCopies {
  #host: DurableHost;
  /** The operations started and not settled. */
  #inflight = new FutureRegistry();

  /** @param host the mapping */
  constructor(host: DurableHost) {
    this.#host = host;
  }

  /**
   * An operation whose completion means "durable": pmem2's rule by
   * granularity and mover capability, with the `PMEM2_F_MEM_*` flags
   * honoured. `begin` builds the mover operation with the VdmFlags given.
   */
  one(
    begin: (vdmFlags: number) => Future<void>,
    offset: number,
    length: number,
    flags: number,
    sources?: Sources,
  ): Future<void> {
    const host = this.#host;
    const noCache = (flags & (MemFlags.NONTEMPORAL | MemFlags.WC)) !== 0
      ? VdmFlags.NO_CACHE_HINT
      : 0;
    const vdmFlags = host.mover.supports(noCache) ? noCache : 0;
    let future: Future<void>;
    const needsPersist = host.granularity !== "byte" &&
      (flags & MemFlags.NOFLUSH) === 0;
    if (!needsPersist) {
      // on byte granularity the copy is durable as it lands: reported as
      // the synchronous copy reports it (nothing with NOFLUSH)
      future = (flags & MemFlags.NOFLUSH) !== 0
        ? begin(vdmFlags)
        : this.#traced(begin(vdmFlags), [{ offset, length }], flags);
    } else if (
      (flags & MemFlags.NODRAIN) === 0 &&
      host.mover.supports(VdmFlags.DURABLE)
    ) {
      future = this.#traced(begin(vdmFlags | VdmFlags.DURABLE), [
        { offset, length },
      ], flags);
    } else {
      const nodrain = (flags & MemFlags.NODRAIN) !== 0;
      future = chain(begin(vdmFlags), () =>
        fromStep(() => {
          if (nodrain) host.flush(offset, length);
          else host.persist(offset, length);
        }));
    }
    return new TrackedCopy(future, this.#inflight, sources);
  }

  /**
   * Copy several checked buffers as one batch of the mover (`move`: as a
   * memmove, for a source that overlaps its destination), complete when
   * all are durable: the mover writes durably below page granularity; on
   * page granularity one persist of all the ranges follows (one msync over
   * their span beats one per buffer).
   */
  many(
    entries: readonly { offset: number; data: Uint8Array; move: boolean }[],
    options?: FutureOptions,
  ): Future<void> {
    const host = this.#host;
    const durable = host.granularity === "cache-line" &&
      host.mover.supports(VdmFlags.DURABLE);
    const flags = durable ? VdmFlags.DURABLE : 0;
    const batch = host.mover.batch(
      entries.map((e) => ({
        // a source over its own destination is moved
        op: e.move ? "memmove" as const : "memcpy" as const,
        dst: host.view(e.offset, e.data.byteLength),
        src: e.data,
        flags,
      })),
      options,
    );
    const ranges = () =>
      entries.map((e) => ({ offset: e.offset, length: e.data.byteLength }));
    const future = durable || host.granularity === "byte"
      ? this.#traced(batch, ranges(), 0)
      : chain(batch, () => fromStep(() => host.persistRanges(ranges())));
    return new TrackedCopy(future, this.#inflight, {
      arrays: entries.map((e) => e.data),
      name: "data",
      op: "memcpyManyAsync",
    });
  }

  /**
   * A copy the mover makes durable itself (or that lands durable, on
   * byte granularity) reaches the persistence funnel at its completion: a
   * tracer attached when it started sees a flush of each range and one
   * drain (none with NODRAIN in `flags`), as the synchronous copies
   * report theirs. The traced program so runs the same path as an
   * untraced one (the mover's durable copy, not a chained persist).
   */
  #traced(
    future: Future<void>,
    ranges: readonly Range[],
    flags: number,
  ): Future<void> {
    // untraced (production): the mover's future itself, nothing added
    if (this.#host.tracer() === undefined) return future;
    return map(future, () => {
      const t = this.#host.tracer();
      if (t === undefined) return;
      for (const r of ranges) t.flush(r.offset, r.length);
      if ((flags & MemFlags.NODRAIN) === 0) t.drain();
    });
  }

  /** Operations in the registry. */
  get tracked(): number {
    return this.#inflight.size;
  }

  /** The operations started and not settled; the registry is emptied. */
  takeRunning(): Future<unknown>[] {
    const running = this.#inflight.running();
    this.#inflight.clear();
    return running;
  }
}

/**
 * An asynchronous copy of a mapping, in its registry from its first poll
 * that leaves it running until it settles: close() waits for it, and a
 * future made and dropped without a poll (a lazy one never starts) costs
 * the mapping nothing.
 */
class TrackedCopy extends Future<void> {
  #inner: Future<void>;
  #registry: FutureRegistry;
  /** Its slot in the registry; -1 while not in it. */
  #slot = -1;
  /** The user arrays to check at the first poll; undefined after it. */
  #sources: Sources | undefined;

  constructor(
    inner: Future<void>,
    registry: FutureRegistry,
    sources?: Sources,
  ) {
    super();
    this.#inner = inner;
    this.#registry = registry;
    this.#sources = sources;
  }

  protected step(ctx: PollContext): Step<void> {
    const sources = this.#sources;
    if (sources !== undefined) {
      this.#sources = undefined;
      for (const a of sources.arrays) {
        checkStillAttached(a, sources.name, sources.op);
      }
    }
    const state = this.#inner.poll(ctx);
    if (state === "complete") return;
    if (state === "failed") throw this.#inner.error;
    if (state === "idle") return NOT_STARTED;
    if (this.#slot < 0) this.#slot = this.#registry.add(this);
    return PENDING;
  }

  protected override settle(): void {
    if (this.#slot >= 0) this.#registry.remove(this.#slot, this);
    this.#slot = -1;
  }
}
