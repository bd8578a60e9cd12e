// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The block store's asynchronous operations as futures: a write is the
 * BTT's four steps with the data copy done by the pool's data mover; the
 * writes polled in one sweep start together (one mover batch) and commit
 * together (one fence per phase for all of them: `write_scheduler.ts`);
 * reads are in `async_read.ts`. No lock is held across a future
 * boundary: between polls a write owns only its lane's free block and its
 * place in its block's queue. Internal to `blk/`.
 *
 * @module
 */
import {
  Future,
  type FutureOptions,
  PENDING,
  type PollContext,
  type Step,
} from "../future/future.ts";
import type { Mapping } from "../pmem2/mapping.ts";
import type { Arena } from "./arena.ts";
import type { ReadAccess } from "./async_read.ts";
import {
  COPYING,
  DONE,
  type Group,
  READY,
  type Slot,
  WAITING,
  type WriteScheduler,
} from "./write_scheduler.ts";

/** What the futures need from their pool. */
export interface PoolAccess extends ReadAccess {
  /** The pool's mapping (its mover copies the data). */
  readonly map: Mapping;
  /** The write groups between their block queues and their commit. */
  readonly writes: WriteScheduler;
  /** Bytes per block. */
  readonly blockSize: number;
  /** The arena of `lba` for an update (lays out first). */
  forUpdate(lba: number, op: string): Arena;
}

/**
 * What every open `BlockPool` of this isolate has started: a write short
 * of lanes finishes the writes and reads of the others too, as another
 * open of the pool here may hold the lanes and only this thread can
 * commit its writes (a blocking wait polls only the futures it waits for).
 */
const isolatePools = new Set<PoolAccess>();

/** Count a pool's operations among this isolate's (at its open). */
export function addIsolateAccess(access: PoolAccess): void {
  isolatePools.add(access);
}

/** Stop counting them (at its close). */
export function removeIsolateAccess(access: PoolAccess): void {
  isolatePools.delete(access);
}

/**
 * Finish the writes and reads started by the other pools of this isolate
 * whose copies are done; returns whether one settled.
 */
function finishOthers(mine: PoolAccess, ctx: PollContext): boolean {
  let settled = false;
  for (const access of isolatePools) {
    if (access === mine) continue;
    if (access.writes.finishStarted(ctx)) settled = true;
    if (access.reads.finishStarted(ctx)) settled = true;
  }
  return settled;
}

/**
 * The fewest lanes that can still go round (`LaneTable.lanesLeft`) in
 * the arenas of `slots`.
 */
function lanesLeftOf(slots: Slot[]): number {
  let left = Infinity;
  let last: Arena | undefined;
  for (const { arena } of slots) {
    if (arena === last) continue;
    last = arena;
    left = Math.min(left, arena.table.lanesLeft());
  }
  return left;
}

/**
 * Writes of one or many blocks. At its first poll the future takes the
 * queue place of every block it writes (so a write started after it
 * comes after it on each of them); then each group of up to `groupSize`
 * blocks is started (a lane per block, the data copied by the mover, not
 * yet durable) and committed together with every other group of the
 * pool at the same point (see {@linkcode WriteScheduler}). Each block is
 * failure-atomic on its own.
 */
export class WriteGroupFuture extends Future<void> {
  #pool: PoolAccess;
  #lbas: readonly number[];
  #data: readonly Uint8Array[];
  /**
   * Every update, in its block's queue since the first poll; undefined
   * before it.
   */
  #slots: Slot[] | undefined;
  /** Index of the first update of `#slots` not yet in a group. */
  #next = 0;
  #group: Group | undefined;
  #groupSize: number;
  /** What its errors name. */
  #op: string;
  /**
   * Its slot in the pool's registry of operations in flight, from its
   * first poll (-1 before: a future never polled holds nothing).
   */
  #slot = -1;

  /**
   * @param pool the pool
   * @param lbas checked LBAs, each at most once
   * @param data the checked bytes of each
   * @param groupSize blocks copied together at most
   * @param op what its errors name: "writeAsync" or "writeMany"
   */
  constructor(
    pool: PoolAccess,
    lbas: readonly number[],
    data: readonly Uint8Array[],
    groupSize: number,
    op: string,
    options?: FutureOptions,
  ) {
    super(options);
    this.#pool = pool;
    this.#lbas = lbas;
    this.#data = data;
    this.#groupSize = groupSize;
    this.#op = op;
  }

  protected step(ctx: PollContext): Step<void> {
    if (this.#slot < 0) this.#slot = this.#pool.track(this);
    const writes = this.#pool.writes;
    for (;;) {
      // the pool closed from inside one of its updates: this write stops
      // where it is (also when it is the update, polled again by the
      // close: its commit resumes after the close, and finds the pool
      // gone)
      const closed = writes.closedError(this.#op);
      if (closed !== undefined) throw closed;
      const g = this.#group;
      if (g === undefined) {
        const slots = this.#slots ?? this.#enter();
        if (this.#next === slots.length) return;
        this.#group = this.#nextGroup(slots);
        // yield once, so the writes polled after this one start with it
        ctx.pollSoon?.();
        return PENDING;
      }
      switch (g.stage) {
        case WAITING:
          this.#pool.live(this.#op);
          writes.driveBlocker(g);
          writes.startAll();
          // still waiting: behind another update of a block, or no lane
          // (then the writes holding lanes may be done but not committed,
          // or reads of their free blocks done but not settled, here or
          // in another pool of this isolate)
          if (
            g.stage === WAITING && !writes.finishStarted(ctx) &&
            !this.#pool.reads.finishStarted(ctx) &&
            !finishOthers(this.#pool, ctx)
          ) {
            // lanes an ended opener kept (a commit of its may be half
            // done) that cannot be recovered online stay out until the
            // pool is opened again (lanesLeft recovers the others): a
            // group of more updates than can go round would wait for good
            const left = lanesLeftOf(g.slots);
            if (left >= g.slots.length) return PENDING;
            if (left === 0) {
              throw g.slots[0].arena.table.noLanesLeft(this.#op);
            }
            writes.regroup(g);
            this.#next -= g.slots.length;
            this.#groupSize = left;
            this.#group = undefined;
          }
          continue;
        case COPYING: {
          const copy = g.copy!;
          if (!copy.future.done && copy.future.poll(ctx) === "running") {
            return PENDING;
          }
          if (copy.future.state === "idle") return PENDING; // not started
          writes.copied(copy);
          if ((g.stage as number) === READY) {
            // queued: yield once, so the copies finishing after this one
            // share its commit
            ctx.pollSoon?.();
            return PENDING;
          }
          continue;
        }
        case READY:
          writes.commitAll(g);
          continue;
        case DONE:
          this.#group = undefined;
          if (g.error !== undefined) throw g.error;
          continue;
      }
    }
  }

  /**
   * Join the queue of every block written (in issue order), all at once:
   * a group joining only when the one before it was done would queue
   * behind the writes of its blocks started after this one, and its older
   * data would replace theirs.
   */
  #enter(): Slot[] {
    this.#pool.live(this.#op);
    const n = this.#lbas.length;
    const slots = new Array<Slot>(n);
    let k = 0;
    try {
      for (; k < n; k++) {
        const lba = this.#lbas[k];
        const arena = this.#pool.forUpdate(lba, this.#op);
        slots[k] = arena.join<Slot>({
          pre: lba - arena.firstLba,
          owner: this,
          data: this.#data[k],
          arena,
          lane: -1,
          old: 0,
          behind: undefined,
          heads: false,
          queued: false,
          last: undefined,
          onHead: undefined,
        });
      }
    } catch (e) {
      // (forUpdate threw) nothing was started: give back the places taken
      for (let i = 0; i < k; i++) slots[i].arena.leave(slots[i]);
      throw e;
    }
    this.#slots = slots;
    return slots;
  }

  /** The next group of queued updates, handed to the scheduler. */
  #nextGroup(slots: Slot[]): Group {
    this.#pool.live(this.#op);
    const end = Math.min(slots.length, this.#next + this.#groupSize);
    const group: Group = {
      slots: this.#next === 0 && end === slots.length
        ? slots
        : slots.slice(this.#next, end),
      stage: WAITING,
      op: this.#op,
    };
    this.#next = end;
    this.#pool.writes.wait(group);
    return group;
  }

  protected override settle(): void {
    // a group that started settles with its copy or its commit
    if (this.#group !== undefined) this.#pool.writes.withdraw(this.#group);
    this.#group = undefined;
    // the updates of the groups never started leave their queues
    const slots = this.#slots;
    if (slots !== undefined) {
      for (let i = this.#next; i < slots.length; i++) {
        slots[i].arena.leave(slots[i]);
      }
    }
    this.#slots = undefined;
    this.#lbas = [];
    this.#data = [];
    if (this.#slot >= 0) this.#pool.settled(this.#slot, this);
    this.#slot = -1;
  }
}
