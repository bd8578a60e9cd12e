// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The write groups of a `BlockPool` between their block queues and their
 * commit ({@linkcode WriteScheduler}): the writes polled in one sweep
 * start together (one mover batch) and commit together (one fence per
 * phase for all of them). The futures that hand it their groups are in
 * `async_io.ts`. Internal to `blk/`.
 *
 * @module
 */
import type { Future, PollContext } from "../future/future.ts";
import { waitAll } from "../future/blocking.ts";
import type { Mapping } from "../pmem2/mapping.ts";
import type { BatchEntry } from "../mover/vdm.ts";
import { refusedBy } from "../mover/_refused.ts";
import { moverFuture } from "../mover/_user_future.ts";
import type { Arena, WriteTicket } from "./arena.ts";
import { commitUpdates, type LaneUpdate } from "./commit.ts";
import type { Media } from "./media.ts";
import { byteLengthOf, trueBytes } from "../ffi/validate.ts";
import { detachedError } from "../ffi/still_attached.ts";

/** One block update: its place in its block's queue, its data and lane. */
export interface Slot extends WriteTicket, LaneUpdate {
  /** The bytes to write. */
  data: Uint8Array;
  /** The lane taken for the update, or -1. */
  lane: number;
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

/**
 * The first of `slots` that does not head its block's queue (its head's
 * owner driven once), or undefined when all do.
 */
function blockedSlot(slots: Slot[]): Slot | undefined {
  for (const s of slots) {
    if (!atHead(s.arena, s)) return s;
  }
  return undefined;
}

/**
 * Take an idle lane for each slot (each heads its block's queue): all or
 * none. Returns whether the slots hold lanes now.
 */
function takeLanes(slots: Slot[]): boolean {
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
  return true;
}

/**
 * The error for a group whose data no longer holds a whole block (its
 * buffer was resized or detached since the write was called), if any:
 * grown, its block would be a prefix of what the caller passes now.
 */
function changedData(slots: Slot[], op: string): Error | undefined {
  for (const { data, arena } of slots) {
    const n = byteLengthOf(data);
    if (n === arena.blockSize) continue;
    // detached: the caller's error, as at the call (its mapping closed:
    // ClosedError)
    return (n === 0 ? detachedError(data, "data", op) : undefined) ??
      new RangeError(
        `Cannot ${op}: the data ${
          n < arena.blockSize ? "shrank" : "grew"
        } to ${n} bytes before the write started; a block is ${arena.blockSize}`,
      );
  }
  return undefined;
}

/**
 * `data` itself when its `byteLength` property can only be the engine's
 * (a plain Uint8Array without an own one), else a plain view of its
 * bytes: the windows (Bun, above 64 MiB) split a block by that property,
 * which a getter honest at the write's check may answer otherwise now (a
 * short split left stale bytes in the block). No array made for the
 * arrays nearly every write passes.
 */
function ownLength(data: Uint8Array): Uint8Array {
  return Object.getPrototypeOf(data) === Uint8Array.prototype &&
      !Object.hasOwn(data, "byteLength")
    ? data
    : trueBytes(data);
}

/** Give back everything a slot holds (a failed or abandoned update). */
function releaseSlot(slot: Slot): void {
  if (slot.lane >= 0) slot.arena.releaseLane(slot.lane);
  slot.lane = -1;
  slot.arena.leave(slot);
}

// Where a write's group of block updates is (Group.stage):
/** In its blocks' queues, waiting to be started with others. */
export const WAITING = 0;
/** Its data is being copied (with the other groups of its copy). */
export const COPYING = 1;
/** Copied, not yet durable: queued for the next commit. */
export const READY = 2;
/** Committed, or failed (`error`); its slots are given back. */
export const DONE = 3;

/** One write future's group of block updates, from its queues to its commit. */
export interface Group {
  slots: Slot[];
  /** What its errors name: "writeAsync" or "writeMany". */
  op: string;
  /** WAITING, COPYING, READY or DONE. */
  stage: number;
  /**
   * While WAITING behind another update of a block: its slot there. The
   * group is then out of the scheduler's list until that slot heads its
   * queue (`onHead`).
   */
  parkedOn?: Slot | undefined;
  /** The copy it was started with (shared with the groups started together). */
  copy?: Copy;
  error?: unknown;
}

/** The data copy of the groups started together: one mover operation. */
interface Copy {
  future: Future<void>;
  groups: Group[];
  /** Whether its outcome was passed on to its groups. */
  seen: boolean;
}

/**
 * The write groups of a pool between their block queues and their
 * commit. Groups are started together by whichever write polls first
 * (one mover batch for all their data, not yet durable), and committed
 * together once copied: one persist for all their data, one (or, below
 * page granularity, two) for all their flog entries, and their map
 * entries join the arena's pending ones. So the writes one thread keeps
 * in flight share their copies and fences, whoever issued them.
 */
export class WriteScheduler {
  #media: Media;
  #map: Mapping;
  #waiting: Group[] = [];
  #ready: Group[] = [];
  /** The copies started and not yet passed on to their groups. */
  #copies: Copy[] = [];
  #mayCommit: () => void;
  /** Commits running now (one may run another's, from a tracer). */
  #committing = 0;
  /**
   * Set by {@linkcode WriteScheduler.close}: the error of a write of the
   * pool from then on, by its op.
   */
  #closedError: ((op: string) => Error) | undefined;

  /**
   * @param media the pool's media; its mapping's mover copies, and every
   *   persist goes through the mapping
   * @param mayCommit throws when the pool cannot commit now (its check
   *   runs): the groups ready to commit then fail with that error
   */
  constructor(media: Media, mayCommit: () => void = () => {}) {
    this.#media = media;
    this.#map = media.mapping;
    this.#mayCommit = mayCommit;
  }

  /**
   * Whether a commit of this pool runs now: a close then comes from code
   * it ran (a testing tracer's callback).
   */
  get committing(): boolean {
    return this.#committing !== 0;
  }

  /**
   * The pool closes from inside one of its updates (a testing tracer's
   * callback): no write of it starts, copies or commits from now on, and
   * each fails at its next poll with `error(op)` (see
   * {@linkcode WriteGroupFuture}), the one whose commit called the close
   * too. The copies in flight are waited for first: the mover may still
   * be writing the pool's memory, which the close unmaps. The lanes and
   * stripes the writes hold, the close gives back (`LaneTable.leave`).
   */
  close(error: (op: string) => Error): void {
    this.#closedError = error;
    this.#waiting = [];
    this.#ready = [];
    const copies = this.#copies;
    this.#copies = [];
    try {
      waitAll(copies.map((c) => c.future));
    } catch {
      // a failed copy fails its writes, as the close does
    }
  }

  /** The error of a write of the pool after {@linkcode close}, if any. */
  closedError(op: string): Error | undefined {
    return this.#closedError?.(op);
  }

  /** Queue a group that joined its block queues, to be started. */
  wait(group: Group): void {
    this.#waiting.push(group);
  }

  /**
   * Start every waiting group whose blocks all head their queues and for
   * which lanes are idle (all or none per group, so a group never holds
   * lanes while it waits for more): one copy for all of them.
   */
  startAll(): void {
    const waiting = this.#waiting;
    if (waiting.length === 0 || this.#closedError !== undefined) return;
    this.#waiting = [];
    const started: Group[] = [];
    const still: Group[] = [];
    for (const g of waiting) {
      if (g.stage !== WAITING) continue; // released meanwhile
      const changed = changedData(g.slots, g.op);
      if (changed !== undefined) {
        // its data shrank or was detached after the call: copying what is
        // left would commit a block whose tail is another block's bytes
        g.error = changed;
        g.stage = DONE;
        for (const s of g.slots) releaseSlot(s);
        continue;
      }
      const blocked = blockedSlot(g.slots);
      if (blocked !== undefined) this.#park(g, blocked);
      else if (takeLanes(g.slots)) started.push(g);
      else still.push(g);
    }
    // (a head's owner driven by takeLanes may have queued new groups)
    for (const g of this.#waiting) still.push(g);
    this.#waiting = still;
    if (started.length === 0) return;
    let future: Future<void>;
    try {
      future = this.#copy(started);
    } catch (e) {
      // the mover refused the batch (closed, say): fail every group
      // started with it, not only the poller's, and give back their lanes
      // and queue places; the others would wait for a copy never made.
      // Each fails in the words of its own call (a closed mover's error
      // named its batch)
      for (const g of started) {
        g.error = refusedBy(e, this.#map.mover, g.op);
        g.stage = DONE;
        for (const s of g.slots) releaseSlot(s);
      }
      return;
    }
    const copy: Copy = { future, groups: started, seen: false };
    for (const g of started) {
      g.stage = COPYING;
      g.copy = copy;
    }
    this.#copies.push(copy);
  }

  /**
   * Keep `group` out of the list to start until `slot` heads its block's
   * queue: each start pass looked at every waiting group, and the
   * executor polls every write in each sweep, so thousands of writes of
   * one block in flight took a time quadratic in their number (20 000:
   * 32 s).
   */
  #park(group: Group, slot: Slot): void {
    group.parkedOn = slot;
    slot.onHead = () => {
      if (group.parkedOn !== slot) return;
      group.parkedOn = undefined;
      if (group.stage === WAITING) this.#waiting.push(group);
    };
  }

  /**
   * Drive the writer ahead of a parked group: a write whose later blocks
   * are not yet in a group is completed by whoever needs it (its owner
   * may never be polled again).
   */
  driveBlocker(group: Group): void {
    const slot = group.parkedOn;
    if (slot === undefined) return;
    slot.arena.head(slot.pre)?.owner?.poll();
  }

  /**
   * Finish the groups started earlier whose copies are done (commit
   * them), whoever owns them: a write waiting for lanes gets those of
   * writes whose futures nobody polls any more (polled by hand, then
   * dropped), which only their owners' polls committed before.
   *
   * @param ctx the poller's context (the copies' movers register in it)
   * @returns whether a group settled: lanes may be idle again
   */
  finishStarted(ctx: PollContext): boolean {
    if (this.#closedError !== undefined) return false;
    let settled = false;
    for (const copy of this.#copies.slice()) {
      if (!copy.future.done) copy.future.poll(ctx);
      if (!copy.future.done) continue;
      this.copied(copy);
      settled = true;
    }
    return this.commitAll() || settled;
  }

  /** One mover operation copying the data of `groups` into their free blocks. */
  #copy(groups: Group[]): Future<void> {
    const media = this.#media;
    const ops: BatchEntry[] = [];
    for (const g of groups) {
      for (const { arena, lane, data } of g.slots) {
        const at = arena.blockOffset(arena.freeBlock(lane));
        media.storeOps(at, ownLength(data), ops);
      }
    }
    // (a fault of a user's mover is worded for each group: see refusedBy)
    const mover = this.#map.mover;
    return moverFuture(mover.batch(ops), mover, "batch", groups[0].op);
  }

  /**
   * Pass a settled copy's outcome on to all its groups (once): on success
   * they queue for the next commit; on failure they fail and give back
   * their slots.
   */
  copied(copy: Copy): void {
    if (copy.seen) return;
    copy.seen = true;
    const at = this.#copies.indexOf(copy);
    if (at >= 0) this.#copies.splice(at, 1);
    const failed = copy.future.state === "failed";
    for (const g of copy.groups) {
      if (g.stage !== COPYING) continue;
      if (failed) {
        g.error = refusedBy(copy.future.error, this.#map.mover, g.op);
        g.stage = DONE;
        for (const s of g.slots) releaseSlot(s);
      } else {
        g.stage = READY;
        this.#ready.push(g);
      }
    }
  }

  /**
   * Take a waiting group out of the list to start, its slots kept in
   * their block queues: its write makes smaller groups of them (fewer
   * lanes can go round than it holds updates).
   */
  regroup(group: Group): void {
    if (group.stage !== WAITING) return;
    group.stage = DONE; // (the start pass drops it)
    group.parkedOn = undefined;
  }

  /** Take a group out of the queues before it started (its write settled). */
  withdraw(group: Group): void {
    if (group.stage !== WAITING) return;
    group.stage = DONE;
    group.parkedOn = undefined;
    for (const s of group.slots) releaseSlot(s);
  }

  /**
   * Commit every queued group (steps 3 and 4 of each update): one persist
   * for all their data, then the commit every write goes through.
   *
   * @param poller the group of the write that polls, if any: the one that
   *   fails when the pool cannot commit now
   * @returns whether a group was committed or failed
   */
  commitAll(poller?: Group): boolean {
    if (this.#ready.length === 0 || this.#closedError !== undefined) {
      return false;
    }
    try {
      this.#mayCommit();
    } catch (e) {
      // not now (check()'s callback polls): the poller's group fails
      // alone, the others commit at a later poll
      const at = poller === undefined ? -1 : this.#ready.indexOf(poller);
      if (at < 0) return false;
      this.#ready.splice(at, 1);
      poller!.error = e;
      poller!.stage = DONE;
      for (const s of poller!.slots) releaseSlot(s);
      return true;
    }
    const groups = this.#ready;
    this.#ready = [];
    let slots: Slot[];
    if (groups.length === 1) slots = groups[0].slots;
    else {
      slots = [];
      for (const g of groups) for (const s of g.slots) slots.push(s);
    }
    this.#committing++;
    try {
      const ranges = new Array<{ offset: number; length: number }>(
        slots.length,
      );
      for (let i = 0; i < slots.length; i++) {
        const { arena, lane } = slots[i];
        ranges[i] = {
          offset: arena.blockOffset(arena.freeBlock(lane)),
          length: arena.blockSize,
        };
      }
      this.#map.persistRanges(ranges);
      // (a failure names the poller's operation, or the first group's)
      commitUpdates(this.#media, slots, (poller ?? groups[0]).op);
      for (const s of slots) {
        s.lane = -1; // published: the lane is back in its arena
        s.arena.leave(s);
      }
    } catch (e) {
      for (const g of groups) g.error = e;
      // (a close from inside the commit gave the lanes back already)
      if (this.#closedError === undefined) {
        for (const s of slots) if (s.lane >= 0) releaseSlot(s);
      }
    } finally {
      this.#committing--;
      for (const g of groups) g.stage = DONE;
    }
    return true;
  }
}
