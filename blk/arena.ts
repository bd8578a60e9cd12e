// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * {@linkcode Arena}: the run-time state of one BTT arena and the steps of
 * its failure-atomic write. Internal to `blk/`.
 *
 * A write of pre-map block `p` runs four steps, each a method here (the
 * data copy of step 2 is the pool's, to a destination this class names):
 *
 * 1. {@linkcode Arena.takeLane}: take a lane (a flog slot) from the
 *    idle-lane ring whose free block no read in flight is copying.
 * 2. Copy the data durably to {@linkcode Arena.blockOffset} of
 *    {@linkcode Arena.freeBlock}.
 * 3. Commit through the lane's flog slot (`commitUpdates` in
 *    `commit.ts`, with {@linkcode Arena.stageFlogHead} and
 *    {@linkcode Arena.stageFlogTail}): the second half of the entry is
 *    the commit point.
 * 4. {@linkcode Arena.publish}: store the map entry; the old block becomes
 *    the lane's free block and the lane goes back. The map entry is
 *    persisted later with others (recovery would redo it from the flog);
 *    lanes are reused oldest first, and a lane or block whose last map
 *    entry is still pending first persists the pending ones.
 *
 * Nothing is locked across a step boundary. Within one `BlockPool`,
 * writes of one block are ordered by a per-block queue
 * ({@linkcode Arena.enter}, in issue order): a write commits only at the
 * head of its queue. An asynchronous writer should also take its lane
 * only at the head, so that every lane holder can finish; otherwise
 * writers queued behind one block could hold all lanes while the head
 * waits for one. Across the `BlockPool`s of a pool (Workers), a commit of
 * a block holds the block's stripe lock from step 3 to step 4 (`commit.ts`),
 * so commits of one block never interleave.
 *
 * Lanes, free blocks, read tracking and pending map entries live in
 * shared memory ({@linkcode LaneTable}): what one `BlockPool` frees,
 * another may take. Reads publish the block they copy
 * ({@linkcode Arena.trackRead}) when the copy can be overtaken by other
 * code (an asynchronous copy, or any copy while other `BlockPool`s of
 * the pool are open); step 1 then skips lanes whose free block is being
 * read. A synchronous read with no other opener ends before any other
 * code runs and needs no tracking.
 *
 * @module
 */
import type { PmemError } from "../errors/mod.ts";
import {
  INFO_FLAG_ERROR,
  MAP_ENTRY_SIZE,
  MAP_LBA_MASK,
  MAP_NORMAL,
} from "./layout.ts";
import type { BttInfo } from "./layout.ts";
import type { Media } from "./media.ts";
import { flogEntryAt, NEXT_SEQ, storeFlogHead, storeFlogTail } from "./flog.ts";
import {
  corruptArena,
  markInfoError,
  recoverEndedLane,
  recoverFlog,
  settleEndedStripe,
} from "./arena_load.ts";
import {
  ARENA_BAD_FLOG,
  ARENA_FLOG_PERSIST,
  ARENA_INFO_FLAG,
  ARENA_MAP_PERSIST,
  arenaInErrorState,
  corruptMapEntry,
  ERROR_REASONS,
} from "./arena_errors.ts";
import {
  currentEntry,
  flushPendingMaps,
  publishOnly,
  setMapFlag,
} from "./arena_maps.ts";
import { LaneTable } from "./lanes.ts";
import { BlockQueues, type WriteTicket } from "./queues.ts";
import { OPENS_WORD } from "./shared.ts";
import { ARENA_WORDS, MAX_LANES } from "./arena_words.ts";

export type { WriteTicket };

/** Where an arena lies and what its info block says. */
export interface ArenaPlace {
  /** The arena's number. */
  index: number;
  /** File offset of the arena (its primary info block). */
  base: number;
  /** The first pool-wide LBA of the arena. */
  firstLba: number;
  /** The arena's info block (validated). */
  info: BttInfo;
}

/**
 * One arena as a `BlockPool` sees it: its geometry, the pool's media, the
 * coordination state it shares with every other `BlockPool` of the pool
 * in the process ({@linkcode LaneTable}), and this isolate's writer
 * queues ({@linkcode BlockQueues}).
 */
export class Arena {
  /** The arena's number. */
  readonly index: number;
  /** File offset of the arena. */
  readonly base: number;
  /** The first pool-wide LBA of the arena. */
  readonly firstLba: number;
  /** User blocks in the arena. */
  readonly externalNlba: number;
  /** Data blocks in the arena. */
  readonly internalNlba: number;
  /** The user block size. */
  readonly blockSize: number;
  /** The internal block size. */
  readonly internalLbaSize: number;
  /** Flog slots. */
  readonly nfree: number;
  /** File offset of data block 0. */
  readonly dataOff: number;
  /** File offset of the map. */
  readonly mapOff: number;
  /** File offset of the flog. */
  readonly flogOff: number;
  /** File offset of the backup info block. */
  readonly backupOff: number;
  /** The shared coordination state. */
  readonly table: LaneTable;
  /**
   * The arena for the native read of a block (`Media.indexed`): its map,
   * its data blocks, and the shared control word that counts the pool's
   * openers, which must stay 1. Over an ArrayBuffer of its own, so its
   * storage never moves.
   */
  readonly readDesc: Float64Array = new Float64Array(new ArrayBuffer(72));

  #media: Media;
  #queues = new BlockQueues();

  private constructor(
    media: Media,
    place: ArenaPlace,
    words: Int32Array,
    token: number,
  ) {
    const { info, base } = place;
    this.#media = media;
    this.index = place.index;
    this.base = base;
    this.firstLba = place.firstLba;
    this.externalNlba = info.externalNlba;
    this.internalNlba = info.internalNlba;
    this.blockSize = info.externalLbaSize;
    this.internalLbaSize = info.internalLbaSize;
    this.nfree = info.nfree;
    this.dataOff = base + info.dataOff;
    this.mapOff = base + info.mapOff;
    this.flogOff = base + info.flogOff;
    this.backupOff = base + info.infoOff;
    this.table = new LaneTable(
      words,
      token,
      (lane) => recoverEndedLane(this, media, lane),
      (stripe) => settleEndedStripe(this, media, stripe),
    );
    this.readDesc.set([
      this.mapOff,
      this.externalNlba,
      MAP_LBA_MASK,
      MAP_NORMAL,
      this.dataOff,
      this.internalNlba,
      this.internalLbaSize,
      OPENS_WORD,
      1,
    ]);
  }

  /**
   * Load an arena's flog into its shared state and finish any write that
   * committed in the flog but did not reach the map (the roll-forward of
   * libpmemblk's open). Only the pool's first opener in the process does
   * this; the others {@linkcode Arena.attach}.
   *
   * @param media the pool
   * @param place where the arena is and its info block
   * @param repaired receives one line per recovery action
   * @param words the arena's region of the shared state (zero) @default a
   *   private one
   * @param token the opener's number (see `LaneTable`) @default 1
   * @param maxLanes lanes to use at most (flog slots beyond stay unused,
   *   as libpmemblk leaves those beyond its nlane) @default 256
   * @param persistMap make the whole map durable (see `recoverFlog`)
   *   @default false
   * @returns the arena
   * @throws {PmemError} code -22 when a flog entry points outside the arena
   */
  static load(
    media: Media,
    place: ArenaPlace,
    repaired: string[],
    words: Int32Array = new Int32Array(ARENA_WORDS),
    token = 1,
    maxLanes = MAX_LANES,
    persistMap = false,
  ): Arena {
    const a = new Arena(media, place, words, token);
    const t = a.table;
    t.lanes = Math.max(1, Math.min(a.nfree, maxLanes, MAX_LANES));
    const { usable, badPairs } = recoverFlog(
      media,
      a,
      repaired,
      (what) => corruptArena(a.index, what),
      persistMap,
    );
    t.give(usable);
    if ((place.info.flags & INFO_FLAG_ERROR) !== 0) t.setError(ARENA_INFO_FLAG);
    if (badPairs > 0) {
      t.setError(ARENA_BAD_FLOG, badPairs);
      markInfoError(media, a.base, a.backupOff);
    }
    return a;
  }

  /**
   * An arena whose shared state another opener of the pool in this
   * process loaded: no recovery, the state is already there.
   */
  static attach(
    media: Media,
    place: ArenaPlace,
    words: Int32Array,
    token: number,
  ): Arena {
    return new Arena(media, place, words, token);
  }

  /** Lanes in use: flog slots, at most `MAX_LANES` (256). */
  get lanes(): number {
    return this.table.lanes;
  }

  /** Why the arena refuses writes, or `null` when it accepts them. */
  get error(): string | null {
    const code = this.table.error;
    if (code === 0) return null;
    return ERROR_REASONS[code]?.(this.table.errorCount) ?? `error ${code}`;
  }

  /**
   * Refuse writes from now on (a persist failed), in every opener.
   *
   * @param code `ARENA_FLOG_PERSIST` or `ARENA_MAP_PERSIST`
   */
  fail(code: number): void {
    this.table.setError(code);
    try {
      markInfoError(this.#media, this.base, this.backupOff);
    } catch {
      // the media already failed; the shared flag still protects it
    }
  }

  /**
   * Whether a persist of the arena failed in this process (its error is
   * `ARENA_FLOG_PERSIST` or `ARENA_MAP_PERSIST`, set by any opener).
   */
  get persistFailed(): boolean {
    const code = this.table.error;
    return code === ARENA_FLOG_PERSIST || code === ARENA_MAP_PERSIST;
  }

  /** Throw the arena's error, if it has one. */
  checkWritable(op: string): void {
    const reason = this.error;
    if (reason !== null) throw arenaInErrorState(op, this.index, reason);
  }

  /** The map entry of pre-map block `pre` as stored (flags included). */
  mapEntry(pre: number): number {
    return this.#media.getU32(this.mapOff + pre * MAP_ENTRY_SIZE);
  }

  /** File offset of post-map data block `block`. */
  blockOffset(block: number): number {
    return this.dataOff + block * this.internalLbaSize;
  }

  /** Idle lanes (a snapshot: other openers take and return lanes). */
  get idleLanes(): number {
    return this.table.idle;
  }

  /** The free block a lane writes to next (valid while the lane is held). */
  freeBlock(lane: number): number {
    return this.table.free(lane);
  }

  // ---- read tracking ----

  /**
   * Publish that a read is copying `block`; writers will not reuse it. A
   * reader that looked the block up before must look it up again after
   * this (a full fence), and copy only if the map still names it.
   */
  trackRead(block: number): void {
    this.table.reads.track(block);
  }

  /** End a read published by {@linkcode Arena.trackRead}. */
  untrackRead(block: number): void {
    this.table.reads.untrack(block);
  }

  /** Whether a read in flight may be copying `block`. */
  isBeingRead(block: number): boolean {
    return this.table.reads.tracked(block);
  }

  // ---- this isolate's per-block write order ----

  /** Join the queue of writers of `pre` (call in issue order). */
  enter(pre: number): WriteTicket {
    return this.#queues.join({ pre });
  }

  /**
   * Queue `ticket` behind the writers of its block (call in issue order);
   * returns it. A ticket is in at most one queue at a time.
   */
  join<T extends WriteTicket>(ticket: T): T {
    return this.#queues.join(ticket);
  }

  /** Whether any update of this isolate waits in a block queue. */
  get hasQueuedUpdates(): boolean {
    return this.#queues.busy;
  }

  /** The ticket at the head of `pre`'s queue, if any. */
  head(pre: number): WriteTicket | undefined {
    return this.#queues.head(pre);
  }

  /** Whether `ticket` heads its queue, so its update may commit now. */
  mayCommit(ticket: WriteTicket): boolean {
    return ticket.heads === true;
  }

  /** Leave the queue (after step 4, or on failure). Idempotent. */
  leave(ticket: WriteTicket): void {
    this.#queues.leave(ticket);
  }

  /**
   * Join the queue of `pre` for a synchronous update, which cannot wait:
   * it fails if an asynchronous update of the block is in flight here.
   *
   * @throws {PmemError} code -16 (EBUSY) when the block is busy
   */
  enterNow(pre: number, op: string): WriteTicket {
    return this.#queues.enterNow(pre, op, this.firstLba + pre);
  }

  // ---- the four steps of a write ----

  /**
   * Step 1: take an idle lane whose free block no read in flight is
   * copying. The lane's free block ({@linkcode Arena.freeBlock}) is then
   * private to the caller until {@linkcode Arena.publish} or
   * {@linkcode Arena.releaseLane}.
   *
   * @returns the lane, or -1 when every idle lane's block is being read
   *   or no lane is idle (retry after a read or a write completes)
   */
  takeLane(): number {
    return this.table.takeOne();
  }

  /**
   * Step 1 for `n` updates at once: all or none.
   *
   * @returns whether `out[at .. at + n)` now hold lanes
   */
  takeLanes(n: number, out: number[], at = 0): boolean {
    return this.table.take(n, out, at);
  }

  /**
   * The error for a map entry of `pre` that names data block `block`,
   * beyond the arena (a corrupt pool): code -22 (EINVAL).
   */
  corruptEntry(op: string, pre: number, block: number): PmemError {
    return corruptMapEntry(op, this.firstLba + pre, block, this.internalNlba);
  }

  /** Give back a lane taken by {@linkcode Arena.takeLane} unused. */
  releaseLane(lane: number): void {
    this.table.giveOne(lane);
  }

  /**
   * Persist every pending map entry (this opener's and the others') with
   * one fence (see `flushPendingMaps` in `arena_maps.ts`).
   *
   * @throws {PmemError} code -5 (EIO) when the persist fails
   */
  flushPendingMaps(): void {
    flushPendingMaps(this, this.#media);
  }

  /**
   * Before `lane` commits an update of `pre` (holding `pre`'s stripe):
   * persist pending map entries if the lane's previous one, or (perhaps:
   * the filter is shared by many blocks) `pre`'s, is among them. A lane's
   * flog slot is not reused, and a block not committed again, while its
   * previous map entry is pending: recovery then stays exact.
   */
  settleMapsFor(lane: number, pre: number): void {
    const t = this.table;
    if (t.pending(lane) !== 0 || t.maybePending(pre)) this.flushPendingMaps();
  }

  /**
   * Step 4: publish the committed write in the map (see `publishOnly` in
   * `arena_maps.ts`); the caller gives the lane back.
   *
   * @param lane the lane the update committed through
   * @param pre the pre-map block
   * @param old the value {@linkcode Arena.stageFlogHead} returned
   */
  publishOnly(lane: number, pre: number, old: number): void {
    publishOnly(this, this.#media, lane, pre, old);
  }

  /**
   * Step 4 with the lane given back (see {@linkcode Arena.publishOnly}).
   */
  publish(lane: number, pre: number, old: number): void {
    this.publishOnly(lane, pre, old);
    this.table.giveOne(lane);
  }

  /**
   * Set the zero or error flag of `pre`'s map entry, persisted (see
   * `setMapFlag` in `arena_maps.ts`); the caller holds `pre`'s stripe.
   *
   * @returns whether the map changed
   * @throws {PmemError} code -5 (EIO) when the persist fails
   */
  setFlag(pre: number, flag: number, op: string): boolean {
    return setMapFlag(this, this.#media, pre, flag, op);
  }

  // ---- step 3, staged: commit.ts persists the halves, one fence each ----

  /** File offset of the flog entry the lane's next update writes. */
  flogEntryOffset(lane: number): number {
    return flogEntryAt(this.flogOff, lane, this.table.next(lane));
  }

  /**
   * Store the first half `{lba, old_map}` of the lane's next flog entry
   * ({@linkcode Arena.flogEntryOffset}) without persisting it; the caller
   * persists it, then calls {@linkcode Arena.stageFlogTail}. The caller
   * must head `pre`'s queue and hold its stripe.
   *
   * @returns the old map entry, for {@linkcode Arena.publish}
   */
  stageFlogHead(lane: number, pre: number): number {
    const old = currentEntry(this, pre);
    storeFlogHead(this.#media, this.flogEntryOffset(lane), pre, old);
    return old;
  }

  /**
   * Store `{new_map, seq}` (the commit point once durable) in the entry
   * staged by {@linkcode Arena.stageFlogHead}.
   */
  stageFlogTail(lane: number): void {
    const t = this.table;
    storeFlogTail(
      this.#media,
      this.flogEntryOffset(lane),
      t.free(lane),
      NEXT_SEQ[t.seq(lane)],
    );
  }

  /** The entry's tail is durable: the lane's flog state advances. */
  committed(lane: number): void {
    const t = this.table;
    t.setFlog(lane, t.next(lane) ^ 1, NEXT_SEQ[t.seq(lane)]);
  }

  /** A snapshot of every lane's free block (for checks and tests). */
  freeBlocks(): number[] {
    return Array.from({ length: this.lanes }, (_, l) => this.table.free(l));
  }
}
