// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The block store's asynchronous operations as futures: a write is the
 * BTT's four steps with the data copy done by the pool's data mover, a
 * batch of writes commits as a group (one fence per phase for the whole
 * batch), and a read copies through the mover while its block is
 * published in the read-tracking table. No lock is held across a future
 * boundary: between polls a write owns only its lane's free block and its
 * place in its block's queue. Internal to `blk/`.
 *
 * @module
 */
import { BadBlockError, PmemError } from "../ffi/errors.ts";
import {
  Future,
  type FutureOptions,
  NOT_STARTED,
  PENDING,
  type PollContext,
  type Step,
} from "../future/future.ts";
import type { Mapping } from "../pmem2/mapping.ts";
import type { BatchEntry } from "../mover/vdm.ts";
import type { Arena, WriteTicket } from "./arena.ts";
import { MAP_ERROR, MAP_FLAGS, MAP_LBA_MASK, MAP_NORMAL } from "./layout.ts";

const EIO = 5;
/** The slots of a write between groups (never mutated). */
const NO_SLOTS: Slot[] = [];
const EINVAL = 22;

/** What the futures need from their pool. */
export interface PoolAccess {
  /** The pool's mapping (its mover copies the data). */
  readonly map: Mapping;
  /** Copied updates waiting to commit, shared by the pool's futures. */
  readonly commits: CommitQueue;
  /** Bytes per block. */
  readonly blockSize: number;
  /** Throw `ClosedError` once the pool is closed. */
  live(op: string): void;
  /** The arena of `lba` for an update (lays out first). */
  forUpdate(lba: number, op: string): Arena;
  /** A future of the pool settled: stop tracking it. */
  settled(future: Future<unknown>): void;
  /** The arena and pre-map block of `lba` to read; null before any layout. */
  forRead(lba: number): { arena: Arena; pre: number } | null;
}

/** One block update: its place in its block's queue, its data and lane. */
interface Slot extends WriteTicket {
  /** The bytes to write. */
  data: Uint8Array;
  /** The block's arena. */
  arena: Arena;
  /** The lane taken for the update, or -1. */
  lane: number;
  /** The map entry the update replaces (known once its flog head is staged). */
  old: number;
}

/**
 * Whether `ticket` heads its block's queue. If not, drive the head's
 * owner: a write that entered a queue is completed by whoever needs it.
 */
function atHead(arena: Arena, ticket: WriteTicket): boolean {
  if (arena.mayCommit(ticket)) return true;
  const head = arena.head(ticket.pre);
  if (head?.owner !== undefined) head.owner.poll();
  return arena.mayCommit(ticket);
}

/** Give back everything a slot holds (a failed or abandoned update). */
function releaseSlot(slot: Slot): void {
  if (slot.lane >= 0) slot.arena.releaseLane(slot.lane);
  slot.lane = -1;
  slot.arena.leave(slot);
}

/** The error for a group commit whose persist failed part-way. */
function persistFailure(cause: unknown, what: string): PmemError {
  return new PmemError("write", -EIO, `cannot persist ${what}`, {
    errno: EIO,
    cause,
  });
}

/** Updates whose data is copied (not yet durable), ready to commit. */
interface ReadyGroup {
  slots: Slot[];
  committed: boolean;
  error?: unknown;
}

/**
 * The updates of a pool whose data copies have finished, committed
 * together by whichever future polls first: one persist for all their
 * data, one (or, below page granularity, two) for all their flog
 * entries, and their map entries join the arena's pending ones. So the
 * writes one thread keeps in flight share their fences, whoever issued
 * them.
 */
export class CommitQueue {
  #map: Mapping;
  #ready: ReadyGroup[] = [];

  /** @param map the pool's mapping: every persist goes through it */
  constructor(map: Mapping) {
    this.#map = map;
  }

  /** Queue a group whose copies are done. */
  add(group: ReadyGroup): void {
    this.#ready.push(group);
  }

  /** Commit every queued group (steps 3 and 4 of each update). */
  commitAll(): void {
    const groups = this.#ready;
    if (groups.length === 0) return;
    this.#ready = [];
    let slots: Slot[];
    if (groups.length === 1) slots = groups[0].slots;
    else {
      slots = [];
      for (const g of groups) for (const s of g.slots) slots.push(s);
    }
    const map = this.#map;
    const n = slots.length;
    const ranges = new Array<{ offset: number; length: number }>(n);
    try {
      for (let i = 0; i < n; i++) {
        const { arena, lane } = slots[i];
        ranges[i] = {
          offset: arena.blockOffset(arena.freeBlock(lane)),
          length: arena.blockSize,
        };
      }
      map.persistRanges(ranges);
      for (const s of slots) s.arena.settleMapsFor(s.lane, s.pre);
      const whole = map.granularity === "page";
      for (const s of slots) s.old = s.arena.stageFlogHead(s.lane, s.pre);
      try {
        if (!whole) {
          for (let i = 0; i < n; i++) {
            const { arena, lane } = slots[i];
            ranges[i] = { offset: arena.flogEntryOffset(lane), length: 8 };
          }
          map.persistRanges(ranges);
        }
        for (let i = 0; i < n; i++) {
          const { arena, lane } = slots[i];
          arena.stageFlogTail(lane);
          const at = arena.flogEntryOffset(lane);
          ranges[i] = whole
            ? { offset: at, length: 16 }
            : { offset: at + 8, length: 8 };
        }
        map.persistRanges(ranges);
      } catch (cause) {
        for (const s of slots) s.arena.fail("a flog update failed to persist");
        throw persistFailure(cause, "the flog entries");
      }
      // committed: map entries join the arena's pending ones (persisted
      // later, a span at a time; recovery redoes them from the flog)
      for (const s of slots) {
        s.arena.committed(s.lane);
        s.arena.publish(s.lane, s.pre, s.old);
        s.lane = -1;
        s.arena.leave(s);
      }
    } catch (e) {
      for (const g of groups) g.error = e;
      for (const s of slots) if (s.lane >= 0) releaseSlot(s);
    } finally {
      for (const g of groups) g.committed = true;
    }
  }
}

/**
 * Writes of one or many blocks. Each takes its blocks' queue places, a
 * lane per block, copies the data through the mover (not yet durable),
 * then commits with every other copied update of the pool (see
 * {@linkcode CommitQueue}). Each block is failure-atomic on its own.
 */
export class WriteGroupFuture extends Future<void> {
  #pool: PoolAccess;
  #lbas: readonly number[];
  #data: readonly Uint8Array[];
  /** Index of the first update not yet in a block queue. */
  #next = 0;
  #slots: Slot[] = NO_SLOTS;
  #copy: Future<void> | undefined;
  #ready: ReadyGroup | undefined;
  #groupSize: number;

  /**
   * @param pool the pool
   * @param lbas checked LBAs, each at most once
   * @param data the checked bytes of each
   * @param groupSize blocks copied together at most
   */
  constructor(
    pool: PoolAccess,
    lbas: readonly number[],
    data: readonly Uint8Array[],
    groupSize: number,
    options?: FutureOptions,
  ) {
    super(options);
    this.#pool = pool;
    this.#lbas = lbas;
    this.#data = data;
    this.#groupSize = groupSize;
  }

  protected step(ctx: PollContext): Step<void> {
    for (;;) {
      const ready = this.#ready;
      if (ready !== undefined) {
        if (!ready.committed) this.#pool.commits.commitAll();
        this.#ready = undefined;
        this.#slots = NO_SLOTS;
        if (ready.error !== undefined) throw ready.error;
        continue;
      }
      if (this.#slots.length === 0) {
        if (this.#next === this.#lbas.length) return;
        this.#enter();
      }
      if (this.#copy === undefined && !this.#acquire()) {
        return PENDING;
      }
      const state = this.#copy!.poll(ctx);
      if (state === "failed") throw this.#copy!.error;
      if (state !== "complete") return PENDING;
      // copied: queue for the next commit and yield once, so updates
      // polled after this one can share its fences
      this.#copy = undefined;
      this.#ready = { slots: this.#slots, committed: false };
      this.#pool.commits.add(this.#ready);
      ctx.pollSoon?.();
      return PENDING;
    }
  }

  /** Join the queues of the next group's blocks (in issue order). */
  #enter(): void {
    this.#pool.live("write");
    const end = Math.min(this.#lbas.length, this.#next + this.#groupSize);
    const slots = new Array<Slot>(end - this.#next);
    this.#slots = slots;
    let k = 0;
    try {
      for (let i = this.#next; i < end; i++) {
        const lba = this.#lbas[i];
        const arena = this.#pool.forUpdate(lba, "write");
        slots[k++] = arena.join<Slot>({
          pre: lba - arena.firstLba,
          owner: this,
          data: this.#data[i],
          arena,
          lane: -1,
          old: 0,
        });
      }
    } finally {
      if (k !== slots.length) slots.length = k; // forUpdate threw
      this.#next += k;
    }
  }

  /**
   * Once every block of the group heads its queue, take a lane for each
   * (all or none, so groups never hold lanes while waiting for more) and
   * start the copy (not durable yet: the commit persists it).
   */
  #acquire(): boolean {
    this.#pool.live("write");
    const slots = this.#slots;
    for (const s of slots) {
      if (!atHead(s.arena, s)) return false;
    }
    for (const s of slots) {
      s.lane = s.arena.takeLane();
      if (s.lane < 0) {
        for (const t of slots) {
          if (t.lane >= 0) t.arena.releaseLane(t.lane);
          t.lane = -1;
        }
        return false;
      }
    }
    const map = this.#pool.map;
    if (slots.length === 1) {
      const { arena, lane, data } = slots[0];
      const dst = map.view(
        arena.blockOffset(arena.freeBlock(lane)),
        data.byteLength,
      );
      this.#copy = map.mover.memcpy(dst, data);
      return true;
    }
    const ops = new Array<BatchEntry>(slots.length);
    for (let i = 0; i < slots.length; i++) {
      const { arena, lane, data } = slots[i];
      const dst = map.view(
        arena.blockOffset(arena.freeBlock(lane)),
        data.byteLength,
      );
      ops[i] = { op: "memcpy", dst, src: data };
    }
    this.#copy = map.mover.batch(ops);
    return true;
  }

  protected override settle(): void {
    // (a group queued for commit settles only after its commit)
    if (this.#ready === undefined) {
      for (const s of this.#slots) {
        releaseSlot(s);
      }
    }
    this.#slots = NO_SLOTS;
    this.#lbas = [];
    this.#data = [];
    this.#copy = undefined;
    this.#pool.settled(this);
  }
}

/**
 * A read: resolve the map entry, publish the block in the read-tracking
 * table (so no writer reuses it meanwhile), copy it through the mover.
 */
export class ReadFuture extends Future<Uint8Array> {
  #pool: PoolAccess;
  #lba: number;
  #out: Uint8Array;
  #copy: Future<void> | undefined;
  #tracked: { arena: Arena; block: number } | undefined;

  constructor(
    pool: PoolAccess,
    lba: number,
    out: Uint8Array,
    options?: FutureOptions,
  ) {
    super(options);
    this.#pool = pool;
    this.#lba = lba;
    this.#out = out;
  }

  protected step(ctx: PollContext): Step<Uint8Array> {
    const size = this.#pool.blockSize;
    if (this.#copy === undefined) {
      this.#pool.live("read");
      const place = this.#pool.forRead(this.#lba);
      if (place === null) {
        this.#out.fill(0, 0, size);
        return this.#out;
      }
      const { arena, pre } = place;
      const entry = arena.mapEntry(pre);
      const flags = (entry & MAP_FLAGS) >>> 0;
      if (flags === MAP_ERROR) throw new BadBlockError("read", this.#lba);
      if (flags !== MAP_NORMAL) {
        this.#out.fill(0, 0, size);
        return this.#out;
      }
      const block = entry & MAP_LBA_MASK;
      if (block >= arena.internalNlba) {
        throw new PmemError(
          "read",
          -EINVAL,
          `the pool is corrupt: block ${this.#lba} maps to data block ${block}, beyond the arena's ${arena.internalNlba}`,
          { errno: EINVAL },
        );
      }
      const map = this.#pool.map;
      arena.trackRead(block);
      this.#tracked = { arena, block };
      this.#copy = map.mover.memcpy(
        this.#out.subarray(0, size),
        map.view(arena.blockOffset(block), size),
      );
    }
    const state = this.#copy.poll(ctx);
    if (state === "failed") throw this.#copy.error;
    if (state !== "complete") return state === "idle" ? NOT_STARTED : PENDING;
    return this.#out;
  }

  protected override settle(): void {
    if (this.#tracked !== undefined) {
      this.#tracked.arena.untrackRead(this.#tracked.block);
      this.#tracked = undefined;
    }
    this.#copy = undefined;
    this.#pool.settled(this);
  }
}
