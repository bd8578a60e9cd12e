// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * How timestamps of a {@linkcode LogCore} reach their level: one attempt
 * at progress ({@linkcode advance}: commit what is ready, persist what is
 * committed), the blocking wait that drives this isolate's futures owning
 * earlier timestamps ({@linkcode waitFor}), and the marks on the media
 * that spare recovery work: the settled timestamp W ({@linkcode settle}),
 * the persist owed at a close ({@linkcode persistAtClose}) and the last
 * close's W = R ({@linkcode finish}).
 *
 * A core's listeners and the owners of its timestamps stay `#private`:
 * `LogCore` grants the reach into them once, from its static block
 * ({@linkcode grantProgressAccess}). Internal.
 *
 * @module
 */
import { PmemError } from "../errors/mod.ts";
import { wait } from "../future/blocking.ts";
import { BOUND_AT, SETTLED_AT } from "./layout.ts";
import { commitReady, persistCommitted } from "./commit.ts";
import type { Level, LogCore } from "./core.ts";
import { type Owner, RESERVATION } from "./owners.ts";
import {
  HOLD_CLOSE,
  RING_RESERVED,
  RING_VOID,
  type SharedState,
  sleepMs,
} from "./shared.ts";
import { EDEADLK } from "../errors/errno.ts";

/** The reach into a core's `#private` state that `LogCore` grants. */
export interface ProgressAccess {
  /** Call the core's listeners (after a commit or persist). */
  notify(core: LogCore): void;
  /** The owner in this isolate of timestamp `ts`, if any. */
  ownerOf(core: LogCore, ts: number): Owner | undefined;
}

// each held in a variable of its own: called as the core's own private
// methods were, with no object in between
let notify: ProgressAccess["notify"];
let ownerOf: ProgressAccess["ownerOf"];

/**
 * Take the access `LogCore`'s static block grants. Once only: a second
 * grant is refused, so no other module replaces what the functions below
 * reach.
 *
 * @throws {Error} when the access was granted already
 */
export function grantProgressAccess(access: ProgressAccess): void {
  if (notify !== undefined) {
    throw new Error("Cannot grant progress access: it was granted already");
  }
  ({ notify, ownerOf } = access);
}

/**
 * One attempt at progress without blocking: commit what can be
 * committed and, for `level` "persisted", persist it. Returns whether
 * `ts` reached `level`; false when the commit lock was busy too.
 */
export function advance(core: LogCore, ts: number, level: Level): boolean {
  const s = core.shared;
  if (reached(s, ts, level)) return true;
  if (!s.tryLockCommit()) return false;
  let progressed = false;
  try {
    progressed = commitReady(core.shared, core.media, core.geometry.seed);
    if (level === "persisted" && s.persisted < Math.min(ts, s.committed)) {
      persistCommitted(core.shared, core.media);
      progressed = true;
    }
  } finally {
    s.unlockCommit();
  }
  if (progressed) notify(core);
  return reached(s, ts, level);
}

/**
 * The owner in this isolate of the first timestamp not committed, when
 * that timestamp is still reserved (its data not in place).
 */
export function blocker(
  core: LogCore,
): { ts: number; owner: Owner | undefined } | null {
  const s = core.shared;
  const b = s.committed + 1;
  if (b >= s.next || s.slotState(b) !== RING_RESERVED) return null;
  if (s.slotOwnerEnded(b)) {
    // reserved by a Worker that ended: its data never comes, so it is
    // committed as padding, as a reservation given up is
    s.casSlotState(b, RING_RESERVED, RING_VOID);
    return null;
  }
  return { ts: b, owner: ownerOf(core, b) };
}

/**
 * Block until `ts` reached `level`, driving this isolate's futures that
 * own earlier timestamps.
 *
 * @throws {PmemError} EDEADLK when a reservation of this isolate that
 *   was not published holds an earlier timestamp
 */
export function waitFor(
  core: LogCore,
  ts: number,
  level: Level,
  op: string,
): void {
  let idle = 0;
  for (;;) {
    if (advance(core, ts, level)) return;
    const b = blocker(core);
    if (b !== null && b.owner !== undefined) {
      if (b.owner === RESERVATION) throw deadlock(op, b.ts);
      try {
        wait(b.owner);
      } catch {
        // its own awaiter sees the failure; it voided its timestamp
      }
      idle = 0;
      continue;
    }
    if (++idle > 64) sleepMs(Math.min(1, 0.01 * (idle - 64)));
  }
}

/**
 * Persist everything committed, and set the settled timestamp W on the
 * media to at least `ts` (entries up to W need no gap check at
 * recovery), waiting for `ts` to be persisted first.
 */
export function settle(core: LogCore, ts: number, op: string): void {
  const s = core.shared;
  if (ts > s.settled) waitFor(core, ts, "persisted", op);
  s.lockCommit(op);
  try {
    commitReady(core.shared, core.media, core.geometry.seed);
    persistCommitted(core.shared, core.media);
    const w = s.persisted;
    if (w > s.settled) {
      core.media.write64(SETTLED_AT, w);
      core.media.persist(SETTLED_AT, 8);
      s.settled = w;
    }
  } finally {
    s.unlockCommit();
  }
  notify(core);
}

/** At close: persist everything committed. */
export function persistAtClose(core: LogCore): void {
  const s = core.shared;
  if (s.persisted >= s.committed) return;
  s.lockCommit("close");
  try {
    persistCommitted(s, core.media);
  } finally {
    s.unlockCommit();
  }
  notify(core);
}

/**
 * The last close in the process: every timestamp reserved is committed
 * (reservations nobody can publish any more as padding) and persisted,
 * then W and R are both set to the last timestamp, so the next open
 * has nothing to recover. Nothing is done when an open joined since
 * the close counted itself out: its reservations are live (they were
 * turned into padding, and its publish returned a timestamp with no
 * entry), and its own last close finishes the stream.
 */
export function finish(core: LogCore): void {
  const s = core.shared;
  s.lockReserve("close");
  try {
    // under the lock: a joiner reserves only after its count is added
    if (s.opens > 0) return;
    // a thread that ends from here on leaves the rest to the next taker
    // of the lock (a joiner), which does it again: it has reserved nothing
    s.hold(HOLD_CLOSE, 0);
    finishStream(core);
  } finally {
    s.unlockReserve();
  }
}

/**
 * The work of {@linkcode finish} (reserve lock held, no open left that
 * reserved): every reservation committed as padding, everything
 * committed and persisted, W = R = the last timestamp.
 */
export function finishStream(core: LogCore): void {
  const s = core.shared;
  s.lockCommit("close");
  try {
    for (let ts = s.committed + 1; ts < s.next; ts++) {
      s.casSlotState(ts, RING_RESERVED, RING_VOID);
    }
    commitReady(core.shared, core.media, core.geometry.seed);
    persistCommitted(core.shared, core.media);
    const last = s.next - 1;
    // W = R = last: nothing above it was ever written
    core.media.write64(SETTLED_AT, last);
    core.media.write64(BOUND_AT, last);
    core.media.persist(SETTLED_AT, 16);
    s.settled = last;
    s.bound = last;
  } finally {
    s.unlockCommit();
  }
}

/** Whether `ts` reached `level`. */
function reached(s: SharedState, ts: number, level: Level): boolean {
  return level === "committed" ? s.committed >= ts : s.persisted >= ts;
}

/** The error of a wait behind a reservation of the same isolate. */
export function deadlock(op: string, ts: number): PmemError {
  return new PmemError(
    op,
    -EDEADLK,
    `timestamp ${ts} is held by a reservation of this thread that was not published: publish or cancel it first`,
  );
}
