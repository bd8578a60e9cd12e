// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * {@linkcode DurableCopies}: a mapping's asynchronous copies, whose futures
 * complete only when the bytes are durable (pmem2's async API), and the
 * registry of them that the mapping's `close()` waits for, with the
 * checks of their arguments. Internal to `pmem2/`: `Mapping.memcpyAsync`
 * and friends check that the mapping is open and writable, then come
 * here.
 *
 * @module
 */
import { chain, fromStep, map } from "../future/combinators.ts";
import {
  checkFutureOptions,
  Future,
  type FutureOptions,
  NOT_STARTED,
  PENDING,
  type PollContext,
  type Step,
} from "../future/future.ts";
import { FutureRegistry } from "../future/registry.ts";
import { checkStillAttached } from "../ffi/still_attached.ts";
import {
  byteLengthOf,
  checkAttached,
  checkByte,
  checkBytes,
  checkRange,
  holds,
  trueBytes,
} from "../ffi/validate.ts";
import { type Vdm, VdmFlags } from "../mover/vdm.ts";
import { moverFuture } from "../mover/_user_future.ts";
import type { Granularity } from "./config.ts";
import { checkMemFlags, MemFlags } from "./flags.ts";
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
  /** The mapped length in bytes. */
  readonly size: number;
  /** The tracer attached now, if any. */
  tracer(): PersistTracer | undefined;
  /** A view of `[offset, offset + length)`. */
  view(offset: number, length: number): Uint8Array;
  /**
   * Where a view the mapping handed out starts in it, or -1 for an array
   * that is no such view (`ViewBuffers.offsetOf`).
   */
  offsetOf(view: Uint8Array): number;
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
  /** Their bytes at the call: the copy's lengths. */
  lengths: readonly number[];
  /** Their argument's name. */
  name: string;
  /** The call. */
  op: string;
}

/**
 * Assert that a source taken with `trueBytes` still holds its bytes once
 * the call's options were read: a getter of theirs may have resized its
 * buffer (or transferred it), and the view's length, now 0, would make the
 * copy one of nothing that resolves as durable. The movers fail a source
 * that shrank after the call; this one shrank within it.
 */
function checkUnchanged(
  bytes: Uint8Array,
  length: number,
  name: string,
  op: string,
): void {
  const n = byteLengthOf(bytes);
  if (n === length) return;
  checkAttached(bytes, name, op);
  throw new RangeError(
    `Cannot ${op}: ${name} shrank from ${length} to ${n} bytes (its buffer was resized) while the options were read; nothing was copied`,
  );
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

  /** `Mapping.memcpyAsync` of a mapping the caller found writable. */
  memcpy(
    dstOffset: number,
    src: Uint8Array,
    flags: number,
    options: FutureOptions | undefined,
  ): Future<void> {
    const host = this.#host;
    checkAttached(checkBytes(src, "src", "memcpyAsync"), "src", "memcpyAsync");
    // the mover gets an array whose length is the engine's: movers hand
    // `byteLength` to native copies and to their worker threads
    const bytes = trueBytes(src);
    const length = byteLengthOf(bytes);
    checkRange(dstOffset, length, host.size, "memcpyAsync");
    flags = checkMemFlags(flags, "memcpyAsync");
    options = checkFutureOptions(options, "memcpyAsync");
    checkUnchanged(bytes, length, "src", "memcpyAsync");
    const dst = host.view(dstOffset, bytes.byteLength);
    // a source over the destination is moved, as memcpy moves it: a
    // mover's memcpy takes ranges that do not overlap (a device copies a
    // large one in ascending chunks, on several threads)
    const move = this.#overlaps(bytes, dstOffset);
    return this.#one(
      (f) =>
        move
          ? moverFuture(
            host.mover.memmove(dst, bytes, f, options),
            host.mover,
            "memmove",
            "memcpyAsync",
          )
          : moverFuture(
            host.mover.memcpy(dst, bytes, f, options),
            host.mover,
            "memcpy",
            "memcpyAsync",
          ),
      dstOffset,
      bytes.byteLength,
      flags,
      { arrays: [bytes], lengths: [length], name: "src", op: "memcpyAsync" },
    );
  }

  /**
   * Whether `src` is a view of this mapping that overlaps the `src.length`
   * bytes at `dstOffset`.
   */
  #overlaps(src: Uint8Array, dstOffset: number): boolean {
    const at = this.#host.offsetOf(src);
    return at >= 0 && at < dstOffset + src.length &&
      dstOffset < at + src.length;
  }

  /** `Mapping.memmoveAsync` of a mapping the caller found writable. */
  memmove(
    dstOffset: number,
    srcOffset: number,
    length: number,
    flags: number,
    options: FutureOptions | undefined,
  ): Future<void> {
    const host = this.#host;
    checkRange(dstOffset, length, host.size, "memmoveAsync");
    checkRange(srcOffset, length, host.size, "memmoveAsync");
    flags = checkMemFlags(flags, "memmoveAsync");
    options = checkFutureOptions(options, "memmoveAsync");
    const dst = host.view(dstOffset, length);
    const src = host.view(srcOffset, length);
    return this.#one(
      (f) =>
        moverFuture(
          host.mover.memmove(dst, src, f, options),
          host.mover,
          "memmove",
          "memmoveAsync",
        ),
      dstOffset,
      length,
      flags,
    );
  }

  /** `Mapping.memsetAsync` of a mapping the caller found writable. */
  memset(
    dstOffset: number,
    value: number,
    length: number,
    flags: number,
    options: FutureOptions | undefined,
  ): Future<void> {
    const host = this.#host;
    value = checkByte(value, "value", "memsetAsync");
    checkRange(dstOffset, length, host.size, "memsetAsync");
    flags = checkMemFlags(flags, "memsetAsync");
    options = checkFutureOptions(options, "memsetAsync");
    const dst = host.view(dstOffset, length);
    return this.#one(
      (f) =>
        moverFuture(
          host.mover.memset(dst, value, f, options),
          host.mover,
          "memset",
          "memsetAsync",
        ),
      dstOffset,
      length,
      flags,
    );
  }

  /** `Mapping.memcpyManyAsync` of a mapping the caller found writable. */
  memcpyMany(
    entries: readonly { offset: number; data: Uint8Array }[],
    options: FutureOptions | undefined,
  ): Future<void> {
    if (!Array.isArray(entries)) {
      throw new TypeError("Cannot memcpyManyAsync: entries must be an array");
    }
    // each entry read once, into arrays of the engine's lengths: an
    // entry's getters could answer a second read otherwise
    const checked: { offset: number; data: Uint8Array; move: boolean }[] = [];
    const lengths: number[] = [];
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i];
      const offset = e?.offset;
      const data = trueBytes(
        checkAttached(
          checkBytes(e?.data, "data", "memcpyManyAsync"),
          "data",
          "memcpyManyAsync",
        ),
      );
      lengths.push(byteLengthOf(data));
      checkRange(offset, data.byteLength, this.#host.size, "memcpyManyAsync");
      // a view over its own destination is moved (see memcpy)
      checked.push({ offset, data, move: this.#overlaps(data, offset) });
    }
    options = checkFutureOptions(options, "memcpyManyAsync");
    for (let i = 0; i < checked.length; i++) {
      checkUnchanged(checked[i].data, lengths[i], "data", "memcpyManyAsync");
    }
    return this.#many(checked, options);
  }

  /**
   * An operation whose completion means "durable": pmem2's rule by
   * granularity and mover capability, with the `PMEM2_F_MEM_*` flags
   * honoured. `begin` builds the mover operation with the VdmFlags given.
   */
  #one(
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
  #many(
    entries: readonly { offset: number; data: Uint8Array; move: boolean }[],
    options?: FutureOptions,
  ): Future<void> {
    const host = this.#host;
    const durable = host.granularity === "cache-line" &&
      host.mover.supports(VdmFlags.DURABLE);
    const flags = durable ? VdmFlags.DURABLE : 0;
    const batch = moverFuture(
      host.mover.batch(
        entries.map((e) => ({
          // a source over its own destination is moved
          op: e.move ? "memmove" as const : "memcpy" as const,
          dst: host.view(e.offset, e.data.byteLength),
          src: e.data,
          flags,
        })),
        options,
      ),
      host.mover,
      "batch",
      "memcpyManyAsync",
    );
    const ranges = () =>
      entries.map((e) => ({ offset: e.offset, length: e.data.byteLength }));
    const future = durable || host.granularity === "byte"
      ? this.#traced(batch, ranges(), 0)
      : chain(batch, () => fromStep(() => host.persistRanges(ranges())));
    return new TrackedCopy(future, this.#inflight, {
      arrays: entries.map((e) => e.data),
      lengths: entries.map((e) => e.data.byteLength),
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
      const { arrays, lengths, name, op } = sources;
      for (let i = 0; i < arrays.length; i++) {
        checkStillAttached(arrays[i], name, op);
        // shrunk: the mover would fail the copy in the words of its own
        // operation ("memcpy"); a grown array's first bytes are copied
        // (the length was taken at the call)
        if (lengths[i] !== 0 && !holds(arrays[i], lengths[i])) {
          throw new RangeError(
            `Cannot ${op}: ${name} shrank from ${lengths[i]} to ${
              byteLengthOf(arrays[i])
            } bytes (its buffer was resized) before the copy started; nothing was copied`,
          );
        }
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
