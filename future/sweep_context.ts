// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * What one sweep of pending futures records ({@linkcode SweepContext}: the
 * wake sources polled futures registered, whether any was blind, a
 * refusal of a blocking wait), and how a combined future polls its
 * members with it ({@linkcode pollMember}). Shared by the pump behind
 * `await` (`executor.ts`) and the blocking waits (`blocking.ts`).
 * Internal to `future/`.
 *
 * @module
 */
import type { Future, FutureState, PollContext, WakeSource } from "./future.ts";

/** Keep sweeping without sleeping for this long after progress (ms). */
export const SPIN_MS = 0.05;

/** A wake source as one sweep saw it. */
export interface Registration {
  /** Its sequence when first registered (before any future checked it). */
  seq: number;
  /** Futures that registered it. */
  waiting: number;
}

const NO_SOURCES: ReadonlyMap<WakeSource, Registration> = new Map();

/**
 * `SweepContext.refused` when no future refused the wait, and what
 * {@linkcode pollMember} returns for a member that did not. Internal.
 */
export const NOT_REFUSED: unique symbol = Symbol("asyncpmem.notRefused");

/** Records the wake sources of one sweep; reset and reused between sweeps. */
export class SweepContext implements PollContext {
  #sources: Map<WakeSource, Registration> | undefined;
  readonly sweeping = true;
  blind = false;
  registered = false;
  soon = false;
  /** Futures driven in this sweep (see `PollContext.pending`). */
  pending = 0;
  /** Whether the poller blocks its thread (see `PollContext.blocking`). */
  readonly blocking: boolean;
  /** A refusal reported by the future last polled (see `refuse`). */
  refused: unknown = NOT_REFUSED;

  constructor(blocking: boolean) {
    this.blocking = blocking;
  }

  refuse(reason: unknown): void {
    // only a blocking poller refuses (the pump awaits: it never blocks)
    if (this.blocking && this.refused === NOT_REFUSED) this.refused = reason;
  }

  /** The sources registered since the last reset. */
  get sources(): ReadonlyMap<WakeSource, Registration> {
    return this.#sources ?? NO_SOURCES;
  }

  reset(): void {
    this.#sources?.clear();
    this.blind = false;
    this.registered = false;
    this.soon = false;
  }

  pollSoon(): void {
    this.soon = true;
    this.registered = true;
  }

  waitOn(source: WakeSource): void {
    this.registered = true;
    const map = this.#sources ??= new Map();
    const r = map.get(source);
    if (r !== undefined) r.waiting++;
    else map.set(source, { seq: source.sequence(), waiting: 1 });
  }

  /**
   * Tell every registered source the sweep is over (`sweepEnded`). A
   * source that throws is passed over: its futures meet the failure on
   * their next poll, and the pump (which this runs in) must not die with
   * every other future still pending.
   */
  ended(): void {
    for (const s of this.sources.keys()) {
      try {
        s.sweepEnded?.();
      } catch {
        // see above
      }
    }
  }

  /**
   * Whether every registered source wants to be spun on. A source whose
   * `shouldSpin` throws is slept on instead: the exception escaped the
   * pump, which stopped with every awaited future pending (and Deno
   * exited on the unhandled rejection).
   */
  spinWorthwhile(): boolean {
    for (const s of this.sources.keys()) {
      try {
        if (s.shouldSpin?.() === false) return false;
      } catch {
        return false;
      }
    }
    return true;
  }
}

/**
 * Poll `member` as one of `members` futures a combined future (`all`,
 * `race`) polls with `ctx`, as it would be polled awaited on its own:
 *
 * - one left pending that registered no wake source makes the sweep
 *   blind. The sweep saw only whether the combined future registered
 *   anything, and a member waiting on a source hid a blind one: the pump
 *   slept 50 ms on the source (a blocking wait 10 ms) before each poll
 *   of the blind member.
 * - `pending` counts the other members. The combined future counted
 *   once, so each member was told it was alone, and a leaf that works on
 *   the polling thread when nothing else waits (a ThreadMover's batch
 *   takes a share inline) did so for each member in turn.
 * - a member's refusal of a blocking wait (`PollContext.refuse`) is
 *   returned, not passed on: the combined future refuses only once no
 *   member still pending can settle (see `Refusals`, _refusals.ts).
 *   Passed on, one
 *   member refused the whole `all`, whose other members were then left
 *   half done, or `race`, which another member could still settle.
 *
 * Returns the member's refusal, or {@linkcode NOT_REFUSED}. Internal.
 */
export function pollMember(
  member: Future<unknown>,
  ctx: PollContext,
  members: number,
): unknown {
  if (!(ctx instanceof SweepContext)) {
    member.poll(ctx);
    return NOT_REFUSED;
  }
  const registered = ctx.registered;
  const pending = ctx.pending;
  const refused = ctx.refused;
  ctx.registered = false;
  ctx.refused = NOT_REFUSED;
  ctx.pending = pending + Math.max(0, members - 1);
  let state: FutureState;
  let refusal: unknown;
  try {
    state = member.poll(ctx);
  } finally {
    ctx.pending = pending;
    refusal = ctx.refused;
    ctx.refused = refused;
  }
  if (!ctx.registered && (state === "idle" || state === "running")) {
    ctx.blind = true;
  }
  ctx.registered ||= registered;
  return member.done ? NOT_REFUSED : refusal;
}
