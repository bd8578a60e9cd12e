// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * {@linkcode BlockQueues}: per block, the queue of this isolate's
 * writers, in issue order; only its head may commit. Internal to `blk/`.
 *
 * A queue keeps the order of one `BlockPool`'s own updates of a block
 * (its asynchronous writes take effect in the order they start); updates
 * from other `BlockPool`s of the pool — other Workers — are ordered at
 * their commit by the arena's stripe locks, which live in shared memory.
 * The queues hold futures, which belong to one isolate, so they are not
 * shared.
 *
 * @module
 */
import { PmemError } from "../errors/mod.ts";
import { IntMap } from "./int_map.ts";
import { EBUSY } from "../errors/errno.ts";

/**
 * A queued writer of one block ({@linkcode BlockQueues.join}). The queue
 * is a list threaded through the tickets themselves (its head knows its
 * last), so joining and leaving the head cost one map operation.
 */
export interface WriteTicket {
  /** The pre-map block. */
  readonly pre: number;
  /**
   * What completes this update when driven (an asynchronous write), so a
   * writer queued behind it can drive it instead of waiting on nobody.
   */
  owner?: { poll(): unknown };
  /** Set by the queues: the writer queued right behind this one. */
  behind?: WriteTicket | undefined;
  /** Set by the queues: whether this ticket heads its block's queue. */
  heads?: boolean;
  /** Set by the queues: whether this ticket is in a queue. */
  queued?: boolean;
  /** Set by the queues on a head: the last ticket of its queue. */
  last?: WriteTicket | undefined;
  /**
   * Set by its writer: called (once, then cleared) when this ticket comes
   * to head its queue, so a writer waiting behind others need not look
   * again until then.
   */
  onHead?: (() => void) | undefined;
}

/** The writer queues of one arena's blocks in this isolate. */
export class BlockQueues {
  /**
   * Per pre-map block: the head of its writers' queue (issue order,
   * linked through {@linkcode WriteTicket.behind}); the head may commit.
   */
  #writers = new IntMap<WriteTicket>();

  /**
   * Queue `ticket` behind the writers of its block (call in issue order);
   * returns it. A ticket is in at most one queue at a time.
   */
  join<T extends WriteTicket>(ticket: T): T {
    ticket.behind = undefined;
    ticket.queued = true;
    const head = this.#writers.get(ticket.pre);
    if (head === undefined) {
      ticket.heads = true;
      ticket.last = ticket;
      this.#writers.set(ticket.pre, ticket);
    } else {
      // (no walk to the end: thousands of writes of one block in flight
      // made joining quadratic)
      ticket.heads = false;
      head.last!.behind = ticket;
      head.last = ticket;
    }
    return ticket;
  }

  /** Whether any update waits in a queue (async writes in flight). */
  get busy(): boolean {
    return this.#writers.size !== 0;
  }

  /** The ticket at the head of `pre`'s queue, if any. */
  head(pre: number): WriteTicket | undefined {
    return this.#writers.get(pre);
  }

  /** Leave the queue (after the commit, or on failure). Idempotent. */
  leave(ticket: WriteTicket): void {
    if (ticket.queued !== true) return;
    ticket.queued = false;
    const next = ticket.behind;
    ticket.behind = undefined;
    if (ticket.heads) {
      ticket.heads = false;
      const last = ticket.last;
      ticket.last = undefined;
      if (next === undefined) this.#writers.delete(ticket.pre);
      else {
        next.heads = true;
        next.last = last;
        this.#writers.set(ticket.pre, next);
        const woken = next.onHead;
        if (woken !== undefined) {
          next.onHead = undefined;
          woken();
        }
      }
      return;
    }
    const head = this.#writers.get(ticket.pre);
    let before = head;
    while (before !== undefined && before.behind !== ticket) {
      before = before.behind;
    }
    if (before === undefined) return;
    before.behind = next;
    if (head!.last === ticket) head!.last = before;
  }

  /**
   * Join the queue of `pre` for a synchronous update, which cannot wait:
   * it fails if an asynchronous update of the block is in flight.
   *
   * @param name the block as the user knows it, for the error
   * @throws {PmemError} code -16 (EBUSY) when the block is busy
   */
  enterNow(pre: number, op: string, name: number): WriteTicket {
    const ticket = this.join<WriteTicket>({ pre });
    if (ticket.heads !== true) {
      this.leave(ticket);
      throw new PmemError(
        op,
        -EBUSY,
        `block ${name} has an update in flight`,
      );
    }
    return ticket;
  }
}
