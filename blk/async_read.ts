// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The block store's asynchronous reads: the reads polled in one executor
 * sweep start together ({@linkcode ReadScheduler}): their blocks are
 * looked up and published in the read-tracking table one after the
 * other, the first line of each is loaded (so their TLB walks and first
 * cache misses overlap), and all are copied by one batch of the pool's
 * mover; when that batch would run on the polling thread anyway (a
 * CpuMover's; a ThreadMover's or DsaMover's below its inline threshold:
 * `runsInline`), by the pool's reader (small blocks gathered in
 * one native call, larger ones one call each as in a synchronous read),
 * and released at once; copied there while the pool has no other opener,
 * they are not published at all. Internal to `blk/`.
 *
 * @module
 */
import { BadBlockError } from "../errors/mod.ts";
import {
  Future,
  type FutureOptions,
  PENDING,
  type PollContext,
  type Step,
} from "../future/future.ts";
import { runsInline } from "../mover/_inline.ts";
import type { BatchEntry, Vdm } from "../mover/vdm.ts";
import { refusedBy } from "../mover/_refused.ts";
import { moverFuture } from "../mover/_user_future.ts";
import type { Mapping } from "../pmem2/mapping.ts";
import type { Arena } from "./arena.ts";
import { MAP_ERROR, MAP_FLAGS, MAP_LBA_MASK, MAP_NORMAL } from "./layout.ts";
import type { Media } from "./media.ts";
import { detachedError } from "../ffi/still_attached.ts";
import { byteLengthOf } from "../ffi/validate.ts";
import { hasRoom } from "../pmem2/reader.ts";
import { alone, stillAlone } from "./reads.ts";

/** What a read needs from its pool. */
export interface ReadAccess {
  /** The reads between their first poll and their copy. */
  readonly reads: ReadScheduler;
  /** Throw `ClosedError` once the pool is closed. */
  live(op: string): void;
  /** Track a future of the pool until it settles; returns its slot. */
  track(future: Future<unknown>): number;
  /** The future in `slot` settled: stop tracking it. */
  settled(slot: number, future: Future<unknown>): void;
  /**
   * The arena of `lba` to read (its pre-map block is `lba -
   * arena.firstLba`); null before any layout. An arena, not an object
   * made per read: reads at QD 32 are a few hundred nanoseconds.
   */
  forRead(lba: number): Arena | null;
  /**
   * The shared control words: whether this `BlockPool` is the pool's only
   * opener in the process (see `alone` in `reads.ts`).
   */
  readonly control: Int32Array;
}

// Where a read is (ReadFuture stage):
/** Polled once, waiting to start with the others of its sweep. */
const WAITING = 0;
/** Its block is published and being copied by its batch. */
const COPYING = 1;
/** Copied, or read without a copy (zeros), or failed. */
const DONE = 2;

/** The copy of the reads started together: one mover batch. */
interface ReadCopy {
  future: Future<void>;
  /** The reads it copies. */
  reads: ReadFuture[];
  /** The mover that copies them (for its errors: see `refusedBy`). */
  mover: Vdm;
}

/** The offsets of a batch's blocks (grown as needed; one per isolate). */
let offsets = new Float64Array(64);
/** Where small blocks read inline are gathered (one per isolate). */
let scratch = new Uint8Array(0);
/**
 * Views of `scratch`, one per block of `viewSize` bytes, made once: a
 * `subarray` per read cost a third of a 512 B read at QD 32 on Deno.
 */
let views: Uint8Array[] = [];
let viewSize = 0;
/** The largest block read inline by gathering (see startAll). */
const GATHER_MAX = 1024;
/** The most bytes gathered in one call (the scratch's largest size). */
const GATHER_BYTES = 64 << 10;
/**
 * The engine's own copy and fill: `into` may be a subclass that overrides
 * them, and its code must not run between a sweep's lookups and copies
 * (it may read another pool, reusing `offsets` and `scratch`, or throw
 * with the sweep's blocks published). The sync read and the movers copy
 * natively, never through `into`'s methods, either.
 */
const SET = Uint8Array.prototype.set;
const FILL = Uint8Array.prototype.fill;

/**
 * The reads of a pool waiting to start. The first read polled in a sweep
 * after others queued starts them all: one lookup pass, one batch.
 */
export class ReadScheduler {
  #media: Media;
  #map: Mapping;
  #blockSize: number;
  #waiting: ReadFuture[] = [];
  /** The copies started whose reads may not all have settled. */
  #copies: ReadCopy[] = [];

  /**
   * @param media the pool's media (its mapping's mover copies)
   * @param blockSize bytes per block
   */
  constructor(media: Media, blockSize: number) {
    this.#media = media;
    this.#map = media.mapping;
    this.#blockSize = blockSize;
  }

  /** Queue a read polled for the first time. */
  wait(read: ReadFuture): void {
    this.#waiting.push(read);
  }

  /**
   * Start every waiting read: look its block up and publish it (reads of
   * zero blocks complete now, of error blocks fail now), then one copy.
   */
  startAll(access: ReadAccess): void {
    const waiting = this.#waiting;
    if (waiting.length === 0) return;
    this.#waiting = [];
    const media = this.#media;
    const size = this.#blockSize;
    const entries: BatchEntry[] = [];
    const started: ReadFuture[] = [];
    // copies the mover would make on this thread anyway (a CpuMover's, a
    // small batch of a ThreadMover's) are made here, without its batch
    const inline = runsInline(this.#map.mover, waiting.length * size);
    // Copied inline while this BlockPool is the pool's only opener, the
    // blocks need no publishing, as in a synchronous read: no other code
    // runs until the copies end. If another opener came meanwhile (a
    // Worker's, whose writes may have reused a block during the copies),
    // the reads are looked up again, published, and copied again.
    let untracked = inline && alone(access.control);
    for (let i = 0; i < waiting.length; i++) {
      const r = waiting[i];
      if (r.stage !== WAITING) continue; // settled meanwhile
      // checked as the runtime compiles in: a call out of the compiled
      // code in each lookup keeps their cache misses from overlapping
      if (!hasRoom(r.out, size)) {
        const room = byteLengthOf(r.out);
        // `into` shrank or was detached after the call
        r.fail(
          (room === 0
            ? detachedError(r.out, "into", "readAsync")
            : undefined) ??
            new RangeError(
              `Cannot readAsync: the array to read into shrank to ${room} bytes before the read started; a block is ${size}`,
            ),
        );
        continue;
      }
      const at = r.place(access, size, !untracked);
      if (at < 0) continue;
      if (offsets.length === started.length) {
        const grown = new Float64Array(2 * offsets.length);
        grown.set(offsets);
        offsets = grown;
      }
      offsets[started.length] = at;
      // the block by its offset in the pool's view or windows: no view
      // per block
      if (!inline) media.loadOps(at, size, r.out, entries);
      started.push(r);
    }
    if (started.length === 0) return;
    // Prefetch every block, then copy: a copy alone waits for its source a
    // few lines at a time, the prefetches of all blocks miss in parallel.
    let n = started.length;
    if (inline && size <= GATHER_MAX) {
      // small blocks: one gathering call into a scratch array, then a
      // copy of each block out of the cache. A call per block passes a
      // different array each time, which on Deno takes V8's slower
      // typed-array call path (no pointer cache hit): 512 B blocks at
      // QD 32 226-266 ns a read this way against 376-597 (bench/NOTES.md).
      // At most GATHER_BYTES a call, so the scratch stays small.
      const per = Math.floor(GATHER_BYTES / size);
      const most = Math.min(n, per) * size;
      if (scratch.length < most) scratch = new Uint8Array(most);
      // (a grown scratch is larger than the views reach: made again)
      if (viewSize !== size || views.length * size < most) {
        views = [];
        viewSize = size;
        for (let at = 0; at < most; at += size) {
          views.push(scratch.subarray(at, at + size));
        }
      }
      for (let from = 0; from < n; from += per) {
        const count = Math.min(per, n - from);
        try {
          media.readBlocks(
            from === 0 ? offsets : offsets.subarray(from, from + count),
            count,
            size,
            scratch,
          );
          if (untracked && !stillAlone(access.control)) {
            // every read not copied out yet is looked up again, published
            untracked = false;
            n = this.#retrack(access, started, from, n, size);
            from -= per;
            continue;
          }
        } catch (e) {
          for (let i = from; i < n; i++) started[i].fail(e);
          return;
        }
        for (let i = 0; i < count; i++) {
          const r = started[from + i];
          SET.call(r.out, views[i]);
          r.copied();
        }
      }
      return;
    }
    media.prefetchBlocks(offsets, n, size);
    if (inline) {
      // larger blocks: the second copy would cost more than the calls.
      // Copied untracked, as gathered ones are, and again, published, if
      // another opener came meanwhile.
      copyEach(media, started, n, size);
      if (untracked && !stillAlone(access.control)) {
        n = this.#retrack(access, started, 0, n, size);
        copyEach(media, started, n, size);
      }
      for (let i = 0; i < n; i++) {
        if (started[i].stage !== DONE) started[i].copied();
      }
      return;
    }
    let copy: ReadCopy;
    try {
      const mover = this.#map.mover;
      const future = moverFuture(
        mover.batch(entries),
        mover,
        "batch",
        "readAsync",
      );
      copy = { future, reads: started, mover };
    } catch (e) {
      // (a closed mover's error named its batch, not the user's call)
      const error = refusedBy(e, this.#map.mover, "readAsync");
      for (const r of started) r.fail(error);
      return;
    }
    for (const r of started) r.copying(copy);
    // forget the copies whose reads all settled (their owners polled them)
    this.#copies = this.#copies.filter((c) => c.reads.some((r) => !r.done));
    this.#copies.push(copy);
  }

  /**
   * Look the reads `started[from .. n)` up again, publishing their blocks,
   * after an untracked gather was overtaken by another opener; the offsets
   * are rewritten in place. A read that finished meanwhile (a zero or error
   * block now) is dropped from `started`. Returns how many are left.
   */
  #retrack(
    access: ReadAccess,
    started: ReadFuture[],
    from: number,
    n: number,
    size: number,
  ): number {
    let k = from;
    for (let i = from; i < n; i++) {
      const r = started[i];
      if (r.stage === DONE) continue; // its copy failed
      const at = r.place(access, size, true);
      if (at < 0) continue;
      offsets[k] = at;
      started[k++] = r;
    }
    started.length = k;
    return k;
  }

  /**
   * Settle the reads whose copies are done, whoever owns them: each keeps
   * its block published as being read until it settles, and writes skip
   * the lanes whose free block is published, so reads polled by hand and
   * then dropped would keep those lanes from every write.
   *
   * @param ctx the poller's context (the copies' movers register in it)
   * @returns whether a read settled: lanes may be usable again
   */
  finishStarted(ctx: PollContext): boolean {
    let settled = false;
    const copies = this.#copies;
    for (let i = 0; i < copies.length; i++) {
      const copy = copies[i];
      if (!copy.future.done) copy.future.poll(ctx);
      if (!copy.future.done) continue;
      copies.splice(i--, 1);
      for (const r of copy.reads) {
        if (!r.done) {
          r.poll(ctx);
          settled = true;
        }
      }
    }
    return settled;
  }
}

/**
 * Copy each started read's block (at `offsets[i]`) into its array, one
 * call each; a read whose copy fails fails.
 */
function copyEach(
  media: Media,
  started: readonly ReadFuture[],
  n: number,
  size: number,
): void {
  for (let i = 0; i < n; i++) {
    const r = started[i];
    if (r.stage === DONE) continue;
    try {
      media.read(offsets[i], r.out, size);
    } catch (e) {
      r.fail(e);
    }
  }
}

/**
 * A read: polled once, it waits for the others of its sweep; then its
 * block is looked up and published in the read-tracking table (so no
 * writer reuses it meanwhile, in any thread) and copied with theirs.
 */
export class ReadFuture extends Future<Uint8Array> {
  #pool: ReadAccess;
  #lba: number;
  /** Where the block is copied. */
  readonly out: Uint8Array;
  /** WAITING, COPYING or DONE (see the scheduler). */
  stage = WAITING;
  #copy: ReadCopy | undefined;
  #tracked: Arena | undefined;
  #block = -1;
  #error: unknown;
  #queued = false;
  /**
   * Its slot in the pool's registry of operations in flight, from its
   * first poll (-1 before: a future never polled holds nothing).
   */
  #slot = -1;

  constructor(
    pool: ReadAccess,
    lba: number,
    out: Uint8Array,
    options?: FutureOptions,
  ) {
    super(options);
    this.#pool = pool;
    this.#lba = lba;
    this.out = out;
  }

  /**
   * Look the block up and publish it; returns its file offset, or -1 when
   * the read finished without a copy (zeros, or an error to report).
   */
  place(access: ReadAccess, size: number, track: boolean): number {
    let arena;
    try {
      arena = access.forRead(this.#lba);
    } catch (e) {
      this.fail(e);
      return -1;
    }
    if (arena === null) {
      this.#zeros(size);
      return -1;
    }
    const pre = this.#lba - arena.firstLba;
    for (;;) {
      const entry = arena.mapEntry(pre);
      const flags = (entry & MAP_FLAGS) >>> 0;
      if (flags === MAP_ERROR) {
        this.fail(new BadBlockError("readAsync", this.#lba));
        return -1;
      }
      if (flags !== MAP_NORMAL) {
        this.#zeros(size);
        return -1;
      }
      const block = entry & MAP_LBA_MASK;
      if (block >= arena.internalNlba) {
        this.fail(arena.corruptEntry("readAsync", pre, block));
        return -1;
      }
      if (!track) return arena.blockOffset(block);
      // publish, then look again: a writer elsewhere may have reused it
      arena.trackRead(block);
      if (arena.mapEntry(pre) === entry) {
        this.#tracked = arena;
        this.#block = block;
        return arena.blockOffset(block);
      }
      arena.untrackRead(block);
    }
  }

  #zeros(size: number): void {
    FILL.call(this.out, 0, 0, size);
    this.stage = DONE;
  }

  /** Finish with `error` (reported at the next poll). */
  fail(error: unknown): void {
    this.#error = error;
    this.stage = DONE;
  }

  /** Copied inline: its block is no longer read, and it is done. */
  copied(): void {
    if (this.#tracked !== undefined) {
      this.#tracked.untrackRead(this.#block);
      this.#tracked = undefined;
    }
    this.stage = DONE;
  }

  /** Its copy started (with others). */
  copying(copy: ReadCopy): void {
    this.#copy = copy;
    this.stage = COPYING;
  }

  protected step(ctx: PollContext): Step<Uint8Array> {
    if (this.#slot < 0) this.#slot = this.#pool.track(this);
    if (this.stage === WAITING) {
      this.#pool.live("readAsync");
      if (!this.#queued) {
        // yield once, so the reads polled after this one start with it
        this.#queued = true;
        this.#pool.reads.wait(this);
        ctx.pollSoon?.();
        return PENDING;
      }
      this.#pool.reads.startAll(this.#pool);
      if (this.stage === WAITING) {
        // its sweep's batch was started without it (queued later)
        this.#pool.reads.wait(this);
        ctx.pollSoon?.();
        return PENDING;
      }
    }
    if (this.stage === COPYING) {
      const copy = this.#copy!.future;
      const state = copy.poll(ctx);
      if (state === "failed") {
        throw refusedBy(copy.error, this.#copy!.mover, "readAsync");
      }
      if (state !== "complete") return PENDING;
      this.stage = DONE;
      return this.out;
    }
    if (this.#error !== undefined) throw this.#error;
    return this.out;
  }

  protected override settle(): void {
    if (this.#tracked !== undefined) {
      this.#tracked.untrackRead(this.#block);
      this.#tracked = undefined;
    }
    this.stage = DONE;
    this.#copy = undefined;
    if (this.#slot >= 0) this.#pool.settled(this.#slot, this);
    this.#slot = -1;
  }
}
