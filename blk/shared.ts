// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The coordination state of one pool file, kept in the block of native
 * memory of its process-wide {@linkcode FileShare}, so every `BlockPool`
 * of the file in this process — one per Worker, or several in one
 * isolate — takes part in one protocol: a control block (who opened the
 * pool, whether its BTT is laid out), then one arena state
 * region per arena (lanes, idle lanes, read tracking, pending map
 * entries, per-block stripe locks). Internal to `blk/`.
 *
 * The words are int32s read and written with `Atomics` where another
 * thread may race (locks, counters, publication points) and plainly
 * where a lock or an owned lane protects them: `Atomics` operations are
 * barriers for the JIT and, on x86, the locked ones are full fences.
 *
 * A lock word holds the {@linkcode FileShare.token} of the open holding
 * it, so a waiter can tell when its holder's thread ended without
 * closing the pool (a Worker terminated mid-write): it then fails with a
 * `PmemError` -130 (EOWNERDEAD) instead of waiting for good, or, where
 * the lock's state can be put right, takes it over (the idle-lane ring,
 * the layout lock and stripes of an open that only read the pool) or puts
 * it right and waits on (a block's stripe held by a commit, whose commits
 * the waiter recovers: see `lanes.ts`).
 *
 * @module
 */
import { PmemError } from "../errors/mod.ts";
import {
  ARENA_WORDS,
  LEDGER_BASE,
  STRIPE_BASE,
  STRIPES,
} from "./arena_words.ts";
import { EOWNERDEAD } from "../errors/errno.ts";
import { backend } from "../ffi/lib.ts";
import { FileShare, lockToken } from "../pmem2/file_share.ts";
import {
  SHARE_FAILED,
  SHARE_NEW,
  SHARE_SETTING_UP,
  sleepMs,
} from "../pmem2/share_wait.ts";
import {
  ARENA_MAX_SIZE,
  ARENA_MIN_SIZE,
  BTT_ALIGN,
  BTT_OFFSET,
} from "./layout.ts";

/** Bytes of the control block. */
const CONTROL = 256;

// int32 indexes of the control block
const STATE = 0;
const OPENS = 1;
const NEXT_ID = 2;
const LAYOUT = 3;
const LAYOUT_LOCK = 4;
const READ_ONLY = 5;
const STATE_LOCK = 6;
const KEEP_DIRTY = 7;

export {
  SHARE_FAILED as STATE_FAILED,
  SHARE_NEW as STATE_NEW,
  SHARE_READY as STATE_READY,
  SHARE_SETTING_UP as STATE_LOADING,
  sleepMs,
} from "../pmem2/share_wait.ts";

/**
 * Set, with its holder's token, in the word of a lock held by an open
 * that only reads the pool: the layout lock of a check(), or of an attach
 * to a BTT another opener laid out (it reads the info blocks, and in the
 * shared state only takes each arena's ring lock and a read ledger, which
 * others take back from a holder that ended), and the stripes of a
 * check(). One whose thread ended left nothing half done, and its lock is
 * taken over; a holder without it was laying the BTT out or committing,
 * and may have left that half done. Lock tokens stay below it (see
 * `lockToken`).
 */
export const READ_ONLY_HOLD = 0x20000000;

/** The token of the holder of lock word value `word`. */
function holderOf(word: number): number {
  return word & ~READ_ONLY_HOLD;
}

/**
 * The error of a wait for a lock whose holder's thread ended before it
 * closed the pool: code -130 (EOWNERDEAD).
 */
export function ownerEnded(
  path: string,
  what: string,
  op = "write",
): PmemError {
  return new PmemError(
    op,
    -EOWNERDEAD,
    `'${path}': an open of the pool in this process ended with its thread ` +
      `(a Worker terminated before it closed the pool) while it held ${what}; ` +
      "close the pool in every thread of this process and open it again " +
      "(the open finishes or undoes the update it left)",
  );
}

/**
 * The error of a write that needs a lane of an arena when none can go
 * round, some lost by a close (`LANES_LOST`): code -130 (EOWNERDEAD), as
 * when ended openers keep them all ({@linkcode ownerEnded}).
 */
export function lanesLost(path: string, op: string): PmemError {
  return new PmemError(
    op,
    -EOWNERDEAD,
    `'${path}': no lane of an arena can go round: opens of the pool in ` +
      "this process closed in the middle of their updates (from a testing " +
      "tracer's callback), or ended with their thread, leaving lanes that " +
      "could not be recovered from their flog slots; close the pool in " +
      "every thread of this process and open it again (the open settles " +
      "them, or reports the damage)",
  );
}

/**
 * The locks held by the check()s running in this isolate, as
 * `share address:holder token` (the address of a share's memory is the
 * same for every open of the file in the process): a check's progress
 * callback runs holding them, so a wait for one here, by another open of
 * the pool in this thread, would never end.
 */
const checksHere = new Set<string>();

/** What names the locks `token` holds in `share` in `checksHere`. */
function checkKey(share: FileShare, token: number): string {
  return `${backend.addressOf(new Uint8Array(share.memory, 0, 1))}:${token}`;
}

/**
 * The error of a wait for a lock that a check() running in this thread
 * holds: a `TypeError`, as for the check's own pool.
 */
function heldByCheck(share: FileShare): TypeError {
  return new TypeError(
    `Cannot wait for a lock of '${share.path}' inside check()'s progress ` +
      "callback: the check holds the pool's locks (in this thread)",
  );
}

/**
 * Take the lock word `at` of `i32` (0 free, else its holder's token):
 * spin a little, then sleep in growing steps. A holder may be a thread
 * the OS preempted, and this machine may have as few CPUs as threads, so
 * a waiter does not spin for long.
 *
 * With `share`, a holder whose open ended with its thread (see
 * {@linkcode FileShare.ended}) never lets go: `ended(holder, at)` is
 * called then (with the word as it holds it), and takes the lock over
 * (returns true: the caller holds it),
 * returns false (another waiter took it over: wait on) or throws;
 * without `ended`, the wait fails with {@linkcode ownerEnded} naming
 * `what` (the lock) and `op` (the caller's operation, so the error says
 * what the caller did rather than what the holder was doing). A holder
 * that is a check() running in this thread (see
 * {@linkcode PoolShared.checking}) fails the wait with a `TypeError`.
 * `beforeSleep` runs before each sleep (not while spinning).
 */
export function lockWord(
  i32: Int32Array,
  at: number,
  token = 1,
  share?: FileShare,
  ended?: (holder: number, at: number) => boolean,
  op = "write",
  what = "a lock of it",
  beforeSleep?: () => void,
): void {
  if (Atomics.compareExchange(i32, at, 0, token) === 0) return;
  for (let spin = 0; spin < 64; spin++) {
    if (
      Atomics.load(i32, at) === 0 &&
      Atomics.compareExchange(i32, at, 0, token) === 0
    ) {
      return;
    }
  }
  let ms = 0.005;
  for (;;) {
    const holder = Atomics.compareExchange(i32, at, 0, token);
    if (holder === 0) return;
    if (share !== undefined && share.ended(holderOf(holder))) {
      if (ended === undefined) throw ownerEnded(share.path, what, op);
      if (ended(holder, at)) return;
      continue;
    }
    if (
      checksHere.size !== 0 && share !== undefined &&
      checksHere.has(checkKey(share, holderOf(holder)))
    ) {
      throw heldByCheck(share);
    }
    beforeSleep?.();
    sleepMs(ms);
    ms = Math.min(ms * 2, 1);
  }
}

/** Release a lock word taken by {@linkcode lockWord}. */
export function unlockWord(i32: Int32Array, at: number): void {
  Atomics.store(i32, at, 0);
}

/** The arenas a file of `fileSize` bytes holds at most. */
export function maxArenas(fileSize: number): number {
  let left = Math.floor(fileSize / BTT_ALIGN) * BTT_ALIGN - BTT_OFFSET;
  let n = 0;
  while (left >= ARENA_MIN_SIZE) {
    left -= Math.min(left, ARENA_MAX_SIZE);
    n++;
  }
  return Math.max(n, 1);
}

/** The control block of a pool's shared state, and its arenas' regions. */
export class PoolShared {
  readonly #i32: Int32Array;
  /** The memory, when this was made over all of it (else: parts). */
  readonly #memory: ArrayBuffer | undefined;
  readonly #arenas: number;
  /** The open of the share whose memory this is, if it is one. */
  readonly #share: FileShare | undefined;
  /** The arenas' words, by index, once asked for. */
  readonly #words: Int32Array[] = [];

  /**
   * @param memory the share's block, {@linkcode PoolShared.bytes} long, or
   *   the open of the share: then the control block and each arena's
   *   words are viewed as parts of it, without the read ledgers, which
   *   are most of the block (1 MiB an arena) and which an opener views
   *   one at a time (`read_tracking.ts`): Bun counts a buffer's length as
   *   allocated memory at every open
   * @param arenas arena regions it holds
   */
  constructor(memory: ArrayBuffer | FileShare, arenas: number) {
    if (memory instanceof FileShare) {
      this.#share = memory;
      this.#i32 = new Int32Array(memory.part(0, CONTROL));
    } else {
      this.#memory = memory;
      this.#i32 = new Int32Array(memory, 0, CONTROL >> 2);
      this.#share = FileShare.of(memory);
    }
    this.#arenas = arenas;
  }

  /** Bytes of shared memory for a pool file of `fileSize` bytes. */
  static bytes(fileSize: number): number {
    return CONTROL + maxArenas(fileSize) * ARENA_WORDS * 4;
  }

  /**
   * The words of arena `k`'s region: all `ARENA_WORDS` of them over the
   * whole memory, or up to its read ledgers (`LEDGER_BASE`) when this
   * was made over the share's parts.
   */
  arena(k: number): Int32Array {
    if (k >= this.#arenas) {
      throw new RangeError(
        `Cannot share arena ${k}: the pool has room for ${this.#arenas}`,
      );
    }
    const at = CONTROL + k * ARENA_WORDS * 4;
    const memory = this.#memory;
    if (memory !== undefined) return new Int32Array(memory, at, ARENA_WORDS);
    return this.#words[k] ??= new Int32Array(
      this.#share!.part(at, LEDGER_BASE * 4),
    );
  }

  /**
   * STATE_NEW, STATE_LOADING, STATE_READY or STATE_FAILED: failed too
   * while the first opener's setup is unfinished and its thread ended (a
   * Worker terminated during its open), so the openers waiting for it
   * give up at once.
   */
  get state(): number {
    const s = Atomics.load(this.#i32, STATE);
    if (
      (s === SHARE_NEW || s === SHARE_SETTING_UP) &&
      this.#share?.creatorEnded === true
    ) {
      return SHARE_FAILED;
    }
    return s;
  }

  set state(s: number) {
    Atomics.store(this.#i32, STATE, s);
  }

  /** `BlockPool`s of the file open in this process. */
  get opens(): number {
    return Atomics.load(this.#i32, OPENS) & ~LEFT_ALONE;
  }

  /** Count an open; returns a number naming it (never 0). */
  addOpen(): number {
    Atomics.add(this.#i32, OPENS, 1);
    return Atomics.add(this.#i32, NEXT_ID, 1) + 1;
  }

  /**
   * Count a close; returns the opens left. A close that leaves one open
   * sets {@linkcode LEFT_ALONE} with the count, in one step.
   */
  dropOpen(): number {
    const i32 = this.#i32;
    for (;;) {
      const was = Atomics.load(i32, OPENS);
      const left = (was & ~LEFT_ALONE) - 1;
      const now = left === 1 ? left | LEFT_ALONE : (was & LEFT_ALONE) | left;
      if (Atomics.compareExchange(i32, OPENS, was, now) === was) return left;
    }
  }

  /** The control words (for the read path's one-load test of the opens). */
  get control(): Int32Array {
    return this.#i32;
  }

  /** Whether the BTT was laid out (by any opener). */
  get laidOut(): boolean {
    return Atomics.load(this.#i32, LAYOUT) !== 0;
  }

  /** Record that the BTT is laid out and its arena regions are set up. */
  setLaidOut(): void {
    Atomics.store(this.#i32, LAYOUT, 1);
  }

  /**
   * Take the layout lock (held while an opener lays out the BTT or
   * attaches to one another opener laid out, or a check() runs). A holder
   * whose thread ended while it only read the pool (a check, an attach:
   * {@linkcode READ_ONLY_HOLD}) is taken over: it left nothing half done.
   * So is one that ended after its layout was marked done
   * ({@linkcode PoolShared.setLaidOut} is a layout's last shared write:
   * what it did after, before its unlock, was its own). Only one that
   * ended in the middle of laying the BTT out fails the wait.
   *
   * A hold taken once the BTT is laid out is marked read-only: the BTT is
   * laid out only by a holder that found it was not, and once laid out
   * it stays so, so such a holder attaches to it (or checks it).
   *
   * @param op the caller's operation (`"read"`, `"check"`, ...), named by
   *   the error of a wait that fails: reads, checks and infos wait for
   *   this lock too, not only writes
   * @param readOnly whether the caller only reads the pool whether or not
   *   it is laid out (a check())
   * @throws {PmemError} code -130 (EOWNERDEAD), op `op`, when its holder's
   *   thread ended before it closed the pool, in the middle of a layout
   */
  lockLayout(op: string, readOnly = false): void {
    const i32 = this.#i32;
    const mark = readOnly || this.laidOut ? READ_ONLY_HOLD : 0;
    const token = this.lockToken | mark;
    const what = "the lock of its BTT layout";
    lockWord(
      i32,
      LAYOUT_LOCK,
      token,
      this.#share,
      (holder) => {
        if ((holder & READ_ONLY_HOLD) === 0 && !this.laidOut) {
          throw ownerEnded(this.#share?.path ?? "", what, op);
        }
        return Atomics.compareExchange(i32, LAYOUT_LOCK, holder, token) ===
          holder;
      },
      op,
      what,
    );
    // laid out by the holder it waited for: this one only attaches
    if (mark === 0 && this.laidOut) {
      Atomics.store(i32, LAYOUT_LOCK, token | READ_ONLY_HOLD);
    }
  }

  /** What this open's layout lock holds (its lock token). */
  get lockToken(): number {
    return lockToken(this.#share, 1);
  }

  /** Release the layout lock. */
  unlockLayout(): void {
    unlockWord(this.#i32, LAYOUT_LOCK);
  }

  /**
   * Release the layout lock if this open holds it: its close from inside
   * its own layout (a testing tracer's callback at one of the layout's
   * persists) stops the layout there, which never lets the lock go (the
   * close detaches this open's view of the words). A BTT layout is
   * written whole from scratch by whoever lays it out next, and marked
   * laid out only at its end (see `BlockPool`'s layout).
   */
  leaveLayout(): void {
    const word = Atomics.load(this.#i32, LAYOUT_LOCK);
    if (word !== 0 && holderOf(word) === this.lockToken) {
      Atomics.compareExchange(this.#i32, LAYOUT_LOCK, word, 0);
    }
  }

  /**
   * Whether a check() of this isolate holding the locks of `token` runs
   * (set while its progress callback may run): other opens of the pool in
   * this thread then fail their waits for those locks instead of waiting
   * for good (see {@linkcode lockWord}).
   */
  checking(token: number, on: boolean): void {
    const share = this.#share;
    if (share === undefined) return;
    const key = checkKey(share, token);
    if (on) checksHere.add(key);
    else checksHere.delete(key);
  }

  /**
   * Take the lock of the pool header's shutdown state (marked dirty by
   * each open, clean by the last close). A holder that ended is taken
   * over: a mark is one idempotent store of the state, which the new
   * holder makes again.
   */
  lockShutdownState(): void {
    const token = lockToken(this.#share, 1);
    lockWord(
      this.#i32,
      STATE_LOCK,
      token,
      this.#share,
      (holder) =>
        Atomics.compareExchange(this.#i32, STATE_LOCK, holder, token) ===
          holder,
    );
  }

  /** Release the lock of the shutdown state. */
  unlockShutdownState(): void {
    unlockWord(this.#i32, STATE_LOCK);
  }

  /**
   * Whether the pool's last close in the process must leave the shutdown
   * state dirty: an open of it saw a persist fail, or gave up before it
   * made durable what it trusted, so stores may be visible that the media
   * lacks, and the next open must make them durable (see `PoolFile.unclean`).
   * Set, never cleared, under the state's lock: the last close reads it
   * under that lock.
   */
  get keepsDirty(): boolean {
    return Atomics.load(this.#i32, KEEP_DIRTY) !== 0;
  }

  /** Set {@linkcode PoolShared.keepsDirty}; hold the state's lock. */
  keepDirty(): void {
    Atomics.store(this.#i32, KEEP_DIRTY, 1);
  }

  /** Whether the first opener opened the pool read-only (no joiners). */
  get readOnly(): boolean {
    return Atomics.load(this.#i32, READ_ONLY) !== 0;
  }

  set readOnly(v: boolean) {
    Atomics.store(this.#i32, READ_ONLY, v ? 1 : 0);
  }
}

/** The index of `OPENS` in {@linkcode PoolShared.control}. */
export const OPENS_WORD = OPENS;

/**
 * The index of the layout lock's word in {@linkcode PoolShared.control}
 * (tests watch it).
 */
export const LAYOUT_LOCK_WORD = LAYOUT_LOCK;

/**
 * Set in the `OPENS` word, with the count, when a close leaves one open:
 * the opens word then reads 1 only once that open cleared it, between two
 * of its reads. A read copies untracked while the word is 1 before and
 * after the copy; without the flag, openers that came, wrote over the
 * block being copied and left during a long copy (a readMany of many
 * blocks, in another thread) put the count back to 1, and the copy was
 * taken for whole.
 */
export const LEFT_ALONE = 0x40000000;

/**
 * Release every stripe lock that `token` holds in the arena regions of
 * `memory` (a pool's shared state): what a commit took before it met a
 * stripe it cannot have.
 */
export function releaseStripes(memory: ArrayBufferLike, token: number): void {
  // (a part of a share: its arena's words) every arena's stripes
  const share = FileShare.of(memory);
  if (share !== undefined) memory = share.memory;
  const bytes = ARENA_WORDS * 4;
  const arenas = Math.floor((memory.byteLength - CONTROL) / bytes);
  for (let k = 0; k < arenas; k++) {
    const words = new Int32Array(
      memory,
      CONTROL + k * bytes + STRIPE_BASE * 4,
      STRIPES,
    );
    for (let s = 0; s < STRIPES; s++) {
      if (words[s] === token) Atomics.compareExchange(words, s, token, 0);
    }
  }
}
