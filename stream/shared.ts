// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * {@linkcode SharedState}: the coordination state of one stream file,
 * kept in the process-wide block of its {@linkcode FileShare} so every
 * opener in the process (Workers included) sees the same; its layout and
 * plain accessors are {@linkcode SharedBlock}'s (`shared_block.ts`).
 *
 * Two spin locks in the block serialise the short critical sections:
 * the reserve lock (a timestamp and a place in a region, taken together
 * so a region's entries lie in timestamp order; region table changes)
 * and the commit lock (entry headers, persists). A lock word holds its
 * holder's token: a lock whose holder's thread ended is taken over, and
 * what that holder left half done is finished or rolled back (see
 * {@linkcode SharedState.lockCommit} and
 * {@linkcode SharedState.lockReserve}). The opens of the stream in the
 * process count by their tokens too, and one whose thread ended stops
 * counting ({@linkcode SharedState.addOpen}).
 *
 * @module
 */
import { PmemError } from "../errors/mod.ts";
import { FileShare, lockToken } from "../pmem2/file_share.ts";
import { sleepMs } from "../pmem2/share_wait.ts";
import { EOWNERDEAD } from "../errors/errno.ts";
import {
  COMMIT_LOCK,
  FREES,
  FREES_SEEN,
  HOLD,
  HOLD_ARGS,
  HOLD_REGION,
  NEXT_F,
  OPENERS,
  OPENS,
  REGION_ALLOCATED,
  REGION_FREEING,
  RESERVE_LOCK,
  RING_READY,
  RING_RESERVED,
  SharedBlock,
  SLOT_OWNER,
} from "./shared_block.ts";

export {
  COMMITTED_F,
  NEXT_F,
  PERSISTED_F,
  REGION_ALLOCATED,
  REGION_FREE,
  REGION_FREEING,
  RING_COMMITTED,
  RING_EMPTY,
  RING_READY,
  RING_RESERVED,
  RING_VOID,
  sleepMs,
  STATE_FAILED,
  STATE_NEW,
  STATE_READY,
  STATE_RECOVERING,
} from "./shared_block.ts";

/** Reserve lock hold: cancel of a reservation (timestamp, logical
 * position, length). */
export const HOLD_CANCEL = 1;
/** Reserve lock hold: a region allocated in the slot. */
export const HOLD_ALLOCATE = 2;
/** Reserve lock hold: a region marked as being freed. */
export const HOLD_FREE_BEGIN = 3;
/** Reserve lock hold: a region's slot cleared (its entries settled). */
export const HOLD_FREE = 4;
/** Reserve lock hold: a region's head moved (truncate). */
export const HOLD_TRUNCATE = 5;
/** Reserve lock hold: the last close of the process. */
export const HOLD_CLOSE = 6;

/** What an error names for each `HOLD_` code. */
const HOLD_NAMES = [
  "",
  "cancel a reservation",
  "allocate a region",
  "free a region",
  "free a region",
  "truncate a region",
  "close the stream (the last close)",
];

/**
 * Takes over the reserve lock's work that an unmarked holder whose
 * thread ended left half done (`hold`: its `HOLD_` code, region and
 * arguments): finishes it or rolls it back, or returns false where it
 * cannot be done soundly (the lock then stays held, and waits fail).
 */
export type HoldRepair = (
  hold: number,
  k: number,
  args: readonly number[],
) => boolean;

/**
 * Set in the reserve lock's word while its holder reserves (as the block
 * store marks a read-only hold of its layout lock): that holder can have
 * left only a reservation half made, which the next taker finishes.
 */
const RESERVING = 0x20000000;

/** The shared block of one stream, viewed by one open, with its locks. */
export class SharedState extends SharedBlock {
  /** The share of this open (absent for a block not from a share). */
  readonly #share: FileShare | undefined;

  /**
   * The token ({@linkcode SharedBlock.token}) is this open's share token,
   * so the others can tell when its thread ended; where it has none (a
   * share whose slots are all taken), a number apart from every token,
   * never taken for ended (token 1 was: for the open with slot 1, once
   * its Worker ended).
   *
   * @param memory the share's block, at least {@linkcode SharedBlock.bytes}
   * @param regionSlots region table slots
   * @param ringSize timestamps in flight at most (a power of two)
   */
  constructor(memory: ArrayBuffer, regionSlots: number, ringSize: number) {
    super(memory, regionSlots, ringSize, lockToken(FileShare.of(memory), 1));
    this.#share = FileShare.of(memory);
  }

  /**
   * Count this open of the stream in the process (once per isolate: its
   * core), by its token, in a free entry of the table of openers or one
   * whose open's thread ended: an open that ends with its thread (a
   * Worker terminated before it closed the stream) stops counting, so
   * the others' last close is still the last, as a lock its thread held
   * is taken over. Past the table, in the `OPENS` word alone.
   */
  addOpen(): void {
    const i32 = this.i32;
    const base = this.openersBase;
    for (let i = 0; i < OPENERS; i++) {
      const e = Atomics.load(i32, base + i);
      if (e !== 0 && !this.#ended(e)) continue;
      if (Atomics.compareExchange(i32, base + i, e, this.token) === e) return;
    }
    Atomics.add(i32, OPENS, 1);
  }

  /**
   * Count this open's close; returns the opens left. Of closes at once,
   * one at least sees none left (each clears its entry before it counts).
   */
  dropOpen(): number {
    const i32 = this.i32;
    const base = this.openersBase;
    let found = false;
    for (let i = 0; i < OPENERS && !found; i++) {
      found = Atomics.load(i32, base + i) === this.token &&
        Atomics.compareExchange(i32, base + i, this.token, 0) === this.token;
    }
    if (!found) Atomics.sub(i32, OPENS, 1);
    return this.opens;
  }

  /**
   * The opens of the stream in this process, as counted now: those whose
   * thread ended before they closed are not.
   */
  get opens(): number {
    const i32 = this.i32;
    const base = this.openersBase;
    let n = Atomics.load(i32, OPENS);
    for (let i = 0; i < OPENERS; i++) {
      const e = Atomics.load(i32, base + i);
      if (e !== 0 && !this.#ended(e)) n++;
    }
    return n;
  }

  // ---- locks ----

  /**
   * Take the reserve lock (spinning, then sleeping briefly). A holder
   * whose thread ended in a reserve or a lone append (`reserving`) is
   * taken over, and the reservation it may have left half made is
   * finished (`#finishReserve`); one that ended elsewhere is taken over
   * once what its hold ({@linkcode hold}) says it was doing is finished
   * or rolled back ({@linkcode repairHold}); where that cannot be done
   * (no repair set: a state not of an open's core) the wait fails,
   * naming it.
   *
   * @param op the operation named in errors
   * @param reserving whether the caller only reserves (see above)
   * @throws {PmemError} -130 (EOWNERDEAD) when its holder's thread ended
   *   in work that cannot be taken over (see above)
   */
  lockReserve(op: string, reserving = false): void {
    const word = reserving ? this.token | RESERVING : this.token;
    this.#lock(RESERVE_LOCK, "the reserve lock", op, (holder) => {
      if ((holder & RESERVING) === 0) {
        return this.#takeOverHold(holder, word, op);
      }
      if (!this.#takeOver(RESERVE_LOCK, holder, word)) return false;
      this.#finishReserve(holder & ~RESERVING);
      return true;
    }, word);
    // a plain read: written only under this lock
    if (this.i32[FREES] !== 0) this.#rollBackEndedFrees();
  }

  /**
   * Mark region `k` as being freed by this open (reserve lock held): no
   * new reservations. The free settles its entries with no lock held; if
   * this open's thread ends before it takes the lock again, the next
   * taker rolls the free back (`#rollBackEndedFrees`).
   */
  markFreeing(k: number): void {
    this.setFreer(k, this.token);
    this.i32[FREES]++;
    this.setRegionState(k, REGION_FREEING);
  }

  /**
   * Roll back the frees whose marker's thread ended between their two
   * holds of the reserve lock (reserve lock held), as the takeover rolls
   * back one that ended holding it after the mark ({@linkcode
   * repairHold} with `HOLD_FREE_BEGIN`): nothing of a free reaches the
   * media before its second hold, so the region is allocated again, as a
   * reopen finds it. Looked for only when regions were marked and an
   * open ended since the last look (the share's count of ended opens is
   * read first: it moves after the ended open's slot reads ended); the
   * marks still live are counted again.
   */
  #rollBackEndedFrees(): void {
    const share = this.#share;
    const ended = share === undefined ? 0 : share.endedOpens;
    const i32 = this.i32;
    if (ended === i32[FREES_SEEN]) return;
    const repair = this.repairHold;
    let left = 0;
    for (let k = 0; k < this.regionSlots; k++) {
      if (this.regionState(k) !== REGION_FREEING) continue;
      const freer = this.freer(k);
      if (
        repair === undefined || !this.#ended(freer) ||
        !repair(HOLD_FREE_BEGIN, k, [0, 0, 0])
      ) {
        left++;
      }
    }
    i32[FREES] = left;
    i32[FREES_SEEN] = ended;
  }

  /**
   * Whether region `k` is allocated, once a free of it whose marker's
   * thread ended between the free's two holds of the reserve lock is
   * rolled back ({@linkcode markFreeing}): that is left to the next taker
   * of the lock, and a check of a region that takes none (`regions()`, a
   * handle's) would find it being freed for good until then. Such a free
   * is rolled back here, under the lock (whose taking first repairs
   * anything its holder left half done: a free cleared on the media is
   * finished, not rolled back).
   *
   * @param op the operation named in errors
   * @throws {PmemError} -130 (EOWNERDEAD) as {@linkcode lockReserve}
   */
  allocated(k: number, op: string): boolean {
    const state = this.regionState(k);
    if (state === REGION_ALLOCATED) return true;
    if (state !== REGION_FREEING || !this.#ended(this.freer(k))) return false;
    this.lockReserve(op);
    try {
      const repair = this.repairHold;
      if (
        repair !== undefined && this.regionState(k) === REGION_FREEING &&
        this.#ended(this.freer(k))
      ) {
        repair(HOLD_FREE_BEGIN, k, [0, 0, 0]);
      }
    } finally {
      this.unlockReserve();
    }
    return this.regionState(k) === REGION_ALLOCATED;
  }

  /**
   * Set by the open's core: finishes or rolls back what an unmarked
   * holder of the reserve lock whose thread ended left half done.
   */
  repairHold: HoldRepair | undefined;

  /**
   * Say what this holder of the reserve lock (unmarked) is about to
   * change: `hold`, a `HOLD_` code, its region and arguments. Stored
   * before the first change, the code last (its arguments are in place
   * once it reads set); cleared as the lock is released. A thread that
   * ends before the code is stored changed nothing.
   */
  hold(hold: number, k: number, a = 0, b = 0, c = 0): void {
    const f64 = this.f64;
    f64[HOLD_ARGS] = a;
    f64[HOLD_ARGS + 1] = b;
    f64[HOLD_ARGS + 2] = c;
    this.i32[HOLD_REGION] = k;
    Atomics.store(this.i32, HOLD, hold);
  }

  /**
   * Take over the reserve lock from `holder`, unmarked, whose thread
   * ended: what its hold says it was doing is finished or rolled back
   * ({@linkcode repairHold}) first; where that cannot be done, the wait
   * fails with EOWNERDEAD naming it.
   */
  #takeOverHold(holder: number, word: number, op: string): boolean {
    const hold = Atomics.load(this.i32, HOLD);
    const repair = this.repairHold;
    if (hold !== 0 && repair === undefined) {
      throw this.#ownerEnded("the reserve lock", op, HOLD_NAMES[hold]);
    }
    if (!this.#takeOver(RESERVE_LOCK, holder, word)) return false;
    if (hold !== 0) {
      const f64 = this.f64;
      const k = this.i32[HOLD_REGION];
      const args = [f64[HOLD_ARGS], f64[HOLD_ARGS + 1], f64[HOLD_ARGS + 2]];
      let done = false;
      try {
        done = repair!(hold, k, args);
      } finally {
        // not done (or it threw): left as the ended holder left it, held
        // by that holder, so the waits fail rather than wait for this one
        if (!done) Atomics.store(this.i32, RESERVE_LOCK, holder);
      }
      if (!done) {
        throw this.#ownerEnded("the reserve lock", op, HOLD_NAMES[hold]);
      }
      Atomics.store(this.i32, HOLD, 0);
    }
    return true;
  }

  /**
   * Finish the reservation an open whose thread ended (token `holder`)
   * left half made in `LogCore.reserve` or `LogCore.appendAlone` (reserve
   * lock held): its ring slots at the next timestamp on, filled, are
   * counted in (the next timestamp and the region's reserved end move
   * past each), so no later reservation lands on room one of them took
   * and no timestamp is given twice. A slot still reserved is committed
   * as padding, as any of an ended open (`blocker` in `progress.ts`); one
   * marked ready, as its entry. A slot is filled before anything else
   * moves, and with no call inside (a runtime stops a thread only at a
   * call or a loop's turn).
   */
  #finishReserve(holder: number): void {
    const f64 = this.f64;
    const i32 = this.i32;
    for (;;) {
      const ts = f64[NEXT_F];
      const f = this.slotF(ts);
      const i = this.slotI(ts);
      const st = Atomics.load(i32, i);
      if (
        f64[f] !== ts || i32[i + SLOT_OWNER] !== holder ||
        (st !== RING_RESERVED && st !== RING_READY)
      ) {
        return;
      }
      this.setTail(i32[i + 1], f64[f + 2]);
      f64[NEXT_F] = ts + 1;
    }
  }

  /** Release the reserve lock. */
  unlockReserve(): void {
    // only this holder sets it (a plain read sees its own store): a
    // reserve, which sets none, pays no second atomic store
    if (this.i32[HOLD] !== 0) Atomics.store(this.i32, HOLD, 0);
    Atomics.store(this.i32, RESERVE_LOCK, 0);
  }

  /**
   * Take the commit lock if it is free, or if its holder's thread ended
   * (taken over, as {@linkcode lockCommit} does).
   */
  tryLockCommit(): boolean {
    const holder = Atomics.compareExchange(
      this.i32,
      COMMIT_LOCK,
      0,
      this.token,
    );
    if (holder === 0) return true;
    return this.#ended(holder) && this.#takeOver(COMMIT_LOCK, holder);
  }

  /**
   * Take the commit lock (spinning, then sleeping briefly). A holder
   * whose thread ended (a Worker terminated in the middle of a commit) is
   * taken over, as the block store takes over a lock whose holder left
   * nothing half done (`lockWord` in `blk/shared.ts`): what this one can
   * have left half done, the next commit pass finishes. Slots it marked
   * committed past the committed timestamp are committed again (the same
   * headers, from the slots); a region's committed end, last timestamp
   * and live count move in one call with no call inside
   * ({@linkcode setCommitted}: a runtime stops a thread only at a call or
   * a loop's turn), and an entry counts as live only past its region's
   * last committed timestamp; a persist, and the settled timestamp W,
   * are made again from the counters.
   */
  lockCommit(op: string): void {
    this.#lock(
      COMMIT_LOCK,
      "the commit lock",
      op,
      (holder) => this.#takeOver(COMMIT_LOCK, holder),
    );
  }

  /** Take lock word `at` from `holder`, ended; false: another took it. */
  #takeOver(at: number, holder: number, token = this.token): boolean {
    return Atomics.compareExchange(this.i32, at, holder, token) === holder;
  }

  /**
   * Spin for a lock word, then sleep in growing steps. A holder whose
   * thread ended never lets go: `ended(holder)` then takes the lock over
   * (true: the caller holds it) or not (false: wait on), with the
   * contract of the block store's `lockWord`; without it the wait fails
   * with EOWNERDEAD.
   */
  #lock(
    at: number,
    what: string,
    op: string,
    ended?: (holder: number) => boolean,
    token = this.token,
  ): void {
    const i32 = this.i32;
    for (let spin = 0; spin < 256; spin++) {
      if (Atomics.compareExchange(i32, at, 0, token) === 0) return;
    }
    let ms = 0.01;
    for (;;) {
      const holder = Atomics.compareExchange(i32, at, 0, token);
      if (holder === 0) return;
      if (this.#ended(holder & ~RESERVING)) {
        // what it left half done stays so: only a reopen recovers it
        if (ended === undefined) throw this.#ownerEnded(what, op);
        if (ended(holder)) return;
        continue;
      }
      sleepMs(ms);
      ms = Math.min(ms * 2, 1);
    }
  }

  /** Whether the open whose token is `holder` ended with its thread. */
  #ended(holder: number): boolean {
    return holder !== this.token && this.#share !== undefined &&
      this.#share.ended(holder);
  }

  #ownerEnded(what: string, op: string, doing = ""): PmemError {
    const to = doing === "" ? "" : ` to ${doing}`;
    return new PmemError(
      op,
      -EOWNERDEAD,
      `'${this.#share?.path}': an open of the stream in this process ended ` +
        `with its thread (a Worker terminated before it closed the stream) ` +
        `while it held ${what}${to}; close the stream in every thread of this ` +
        "process and open it again (recovery keeps every whole entry)",
    );
  }

  /**
   * Whether the ring slot of `ts` was reserved by an open whose thread
   * ended (its data will never be put in place).
   */
  slotOwnerEnded(ts: number): boolean {
    return this.#ended(this.slotOwner(ts));
  }

  /** Release the commit lock. */
  unlockCommit(): void {
    Atomics.store(this.i32, COMMIT_LOCK, 0);
  }
}
