// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * {@linkcode Arena}: the run-time state of one BTT arena and the steps of
 * its failure-atomic write. Internal to `blk/`.
 *
 * A write of pre-map block `p` runs four steps, each a method here (the
 * data copy of step 2 is the pool's, to a destination this class names):
 *
 * 1. {@linkcode Arena.takeLane}: take a lane (a flog slot) from the
 *    free-lane stack whose free block no read in flight is copying.
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
 * Nothing is locked across a step boundary. Writes of one block are
 * ordered by a per-block queue ({@linkcode Arena.enter}, in issue order):
 * a write commits only at the head of its queue. An asynchronous writer
 * should also take its lane only at the head, so that every lane holder
 * can finish; otherwise writers queued behind one block could hold all
 * lanes while the head waits for one.
 *
 * Reads publish the block they copy ({@linkcode Arena.trackRead}) when
 * the copy can be overtaken by other code (an asynchronous copy); step 1
 * then skips lanes whose free block is being read. A synchronous read
 * ends before any other code runs and needs no tracking.
 *
 * @module
 */
import { PmemError } from "../errors/mod.ts";
import { storeChecksum } from "../pmdk/checksum.ts";
import {
  BTT_ALIGN,
  encodeBttInfo,
  FLOG_ENTRY_SIZE,
  FLOG_SLOT_SIZE,
  INFO_CHECKSUM_OFFSET,
  INFO_FLAG_ERROR,
  INFO_SIZE,
  infoFromGeometry,
  MAP_ENTRY_SIZE,
  MAP_FLAGS,
  MAP_LBA_MASK,
  MAP_NORMAL,
  MAP_ZERO,
  roundUp,
} from "./layout.ts";
import type { ArenaGeometry, BttInfo } from "./layout.ts";
import type { Media } from "./media.ts";
import { IntMap } from "./int_map.ts";
import {
  currentFlogEntry,
  effectiveMapEntry,
  flogEntryAt,
  initialFlog,
  NEXT_SEQ,
  readFlogEntry,
  storeFlogHead,
  storeFlogTail,
} from "./flog.ts";

const EIO = 5;
const EBUSY = 16;

/**
 * A queued writer of one block ({@linkcode Arena.enter} or
 * {@linkcode Arena.join}). The queue is a list threaded through the
 * tickets themselves, so joining and leaving cost one map operation.
 */
export interface WriteTicket {
  /** The pre-map block. */
  readonly pre: number;
  /**
   * What completes this update when driven (an asynchronous write), so a
   * writer queued behind it can drive it instead of waiting on nobody.
   */
  owner?: { poll(): unknown };
  /** Set by the arena: the writer queued right behind this one. */
  behind?: WriteTicket | undefined;
  /** Set by the arena: whether this ticket heads its block's queue. */
  heads?: boolean;
  /** Set by the arena: whether this ticket is in a queue. */
  queued?: boolean;
}

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

/** The run-time state of one arena. */
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
  /** Flog slots (and lanes). */
  readonly nfree: number;
  /** File offset of data block 0. */
  readonly dataOff: number;
  /** File offset of the map. */
  readonly mapOff: number;
  /** File offset of the flog. */
  readonly flogOff: number;
  /** File offset of the backup info block. */
  readonly backupOff: number;

  #media: Media;
  #error: string | null = null;
  /** Per lane: index (0/1) of the entry the next update writes. */
  #next: Uint8Array;
  /** Per lane: sequence number of the current entry. */
  #seq: Uint8Array;
  /** Per lane: the free post-map block. */
  #free: Uint32Array;
  /**
   * Idle lanes, oldest first (a ring of `#idle` entries from `#head`): a
   * lane is reused as late as possible, so the map updates of its last
   * write have long been persisted with others (see `#pendingLane`).
   */
  #ring: Uint32Array;
  #head = 0;
  #idle = 0;
  /**
   * Map entries stored but not yet persisted: per lane, the pre-map block
   * its last update published, or -1. A write is durable once its flog
   * entry is, so the map entry can wait, under two rules that keep
   * recovery exact: a lane's flog slot is not reused, and a block is not
   * committed again, while its previous map entry is pending. So a lane
   * has at most one pending entry, and pending entries are persisted
   * together, a page at a time.
   */
  #pendingLane: Int32Array;
  /** Lanes with a pending map entry. */
  #pending = 0;
  /**
   * A filter of the blocks with a pending map entry: bit `pre & 0xffff` is
   * set when one is published; all clear when they are persisted. A false
   * hit only persists the pending entries early.
   */
  #pendingBits = new Int32Array(2048);
  /** Read tracking: post-map block → reads in flight copying it. */
  #reading = new IntMap<number>();
  /**
   * Per pre-map block: the head of its writers' queue (issue order,
   * linked through {@linkcode WriteTicket.behind}); the head may commit.
   */
  #writers = new IntMap<WriteTicket>();

  private constructor(media: Media, place: ArenaPlace) {
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
    this.#next = new Uint8Array(this.nfree);
    this.#seq = new Uint8Array(this.nfree);
    this.#free = new Uint32Array(this.nfree);
    this.#ring = new Uint32Array(this.nfree);
    this.#pendingLane = new Int32Array(this.nfree).fill(-1);
    if ((info.flags & INFO_FLAG_ERROR) !== 0) {
      this.#error = "its info block has the error flag set";
    }
  }

  /**
   * Write a fresh layout for one arena: zero the map (when the file was
   * not known to be zero), the initial flog, the backup info block, then
   * the primary info block, which makes the layout valid. Each step is
   * durable before the next starts.
   *
   * @param media the pool
   * @param base file offset of the arena
   * @param g the arena's geometry
   * @param uuid the BTT's UUID
   * @param parentUuid the pool set UUID
   * @param zeroMap whether the map must be zeroed first
   */
  static format(
    media: Media,
    base: number,
    g: ArenaGeometry,
    uuid: Uint8Array,
    parentUuid: Uint8Array,
    zeroMap: boolean,
  ): void {
    if (zeroMap) {
      media.memset(
        base + g.mapOff,
        0,
        roundUp(g.externalNlba * MAP_ENTRY_SIZE, BTT_ALIGN),
      );
    }
    const flog = initialFlog(
      g.externalNlba,
      g.nfree,
      roundUp(g.nfree * FLOG_SLOT_SIZE, BTT_ALIGN),
    );
    media.memcpy(base + g.flogOff, flog);
    const info = encodeBttInfo(infoFromGeometry(g, uuid, parentUuid));
    media.memcpy(base + g.infoOff, info);
    media.memcpy(base, info);
  }

  /**
   * Load an arena's flog and finish any write that committed in the flog
   * but did not reach the map (the roll-forward of libpmemblk's open).
   *
   * @param media the pool
   * @param place where the arena is and its info block
   * @param repaired receives one line per recovery action
   * @returns the arena
   * @throws {PmemError} code -22 when a flog entry points outside the arena
   */
  static load(
    media: Media,
    place: ArenaPlace,
    repaired: string[],
  ): Arena {
    const a = new Arena(media, place);
    const frees = new Set<number>();
    let badPairs = 0;
    for (let lane = a.nfree - 1; lane >= 0; lane--) {
      const pair = [
        readFlogEntry(media, flogEntryAt(a.flogOff, lane, 0)),
        readFlogEntry(media, flogEntryAt(a.flogOff, lane, 1)),
      ];
      for (const e of pair) {
        if (e.seq !== 0 && e.lba >= a.externalNlba) {
          throw a.#corrupt(
            `flog slot ${lane} names block ${e.lba}, beyond the arena's ${a.externalNlba}`,
          );
        }
      }
      const cur = currentFlogEntry(pair[0].seq, pair[1].seq);
      if (cur < 0) {
        badPairs++;
        continue; // the lane stays off the stack: the arena is read-only
      }
      const e = pair[cur];
      const oldBlock = (e.oldMap & MAP_LBA_MASK) >>> 0;
      const newBlock = (e.newMap & MAP_LBA_MASK) >>> 0;
      if (oldBlock >= a.internalNlba || newBlock >= a.internalNlba) {
        throw a.#corrupt(
          `flog slot ${lane} names data block ${
            Math.max(oldBlock, newBlock)
          }, beyond the arena's ${a.internalNlba}`,
        );
      }
      a.#next[lane] = 1 - cur;
      a.#seq[lane] = e.seq;
      const other = pair[1 - cur];
      if (other.seq === 0 && (other.lba | other.oldMap | other.newMap) !== 0) {
        // A lane's first update persisted its head {lba, old_map} but not
        // its commit. Harmless, but check() and pmempool accept old_map ==
        // new_map only in the exact initial form: zero the entry again.
        media.memset(flogEntryAt(a.flogOff, lane, 1 - cur), 0, FLOG_ENTRY_SIZE);
        repaired.push(
          `arena ${a.index}: cleared the uncommitted first update of flog slot ${lane}`,
        );
      }
      if (e.oldMap !== e.newMap) {
        const at = a.mapOff + e.lba * MAP_ENTRY_SIZE;
        const entry = effectiveMapEntry(media.getU32(at), e.lba);
        if (entry === e.oldMap && entry !== e.newMap) {
          media.setU32(at, e.newMap);
          media.persist(at, MAP_ENTRY_SIZE);
          repaired.push(
            `arena ${a.index}: finished the interrupted write of block ${
              a.firstLba + e.lba
            } (flog slot ${lane})`,
          );
        }
      }
      a.#free[lane] = oldBlock;
      if (frees.has(oldBlock)) {
        a.#error ??= `flog slots share the free block ${oldBlock}`;
      }
      frees.add(oldBlock);
      a.#pushLane(lane);
    }
    if (badPairs > 0) {
      a.#error ??= `${badPairs} flog slot(s) have invalid sequence numbers`;
      a.#markInfoError();
    }
    return a;
  }

  #corrupt(what: string): PmemError {
    return new PmemError(
      "open",
      -22,
      `the pool is corrupt: arena ${this.index}: ${what}`,
      { errno: 22 },
    );
  }

  /** Set the error flag in both info blocks, as libpmemblk does. */
  #markInfoError(): void {
    const info = this.#media.copy(this.base, INFO_SIZE);
    const dv = new DataView(info.buffer);
    dv.setUint32(48, dv.getUint32(48, true) | INFO_FLAG_ERROR, true);
    storeChecksum(info, INFO_CHECKSUM_OFFSET);
    this.#media.memcpy(this.base, info);
    this.#media.memcpy(this.backupOff, info);
  }

  /** Why the arena refuses writes, or `null` when it accepts them. */
  get error(): string | null {
    return this.#error;
  }

  /** Refuse writes from now on (a map update failed to persist). */
  fail(reason: string): void {
    this.#error ??= reason;
    try {
      this.#markInfoError();
    } catch {
      // the media already failed; the in-memory flag still protects it
    }
  }

  /** Throw the arena's error, if it has one. */
  checkWritable(op: string): void {
    if (this.#error !== null) {
      throw new PmemError(
        op,
        -EIO,
        `arena ${this.index} is in the error state (${this.#error}); ` +
          "reads still work, run pmempool check to repair it",
        { errno: EIO },
      );
    }
  }

  /** The map entry of pre-map block `pre` as stored (flags included). */
  mapEntry(pre: number): number {
    return this.#media.getU32(this.mapOff + pre * MAP_ENTRY_SIZE);
  }

  /** File offset of post-map data block `block`. */
  blockOffset(block: number): number {
    return this.dataOff + block * this.internalLbaSize;
  }

  /** Idle lanes. */
  get idleLanes(): number {
    return this.#idle;
  }

  /** The free block a lane writes to next (valid while the lane is held). */
  freeBlock(lane: number): number {
    return this.#free[lane];
  }

  // ---- read tracking ----

  /** Publish that a read is copying `block`; writers will not reuse it. */
  trackRead(block: number): void {
    this.#reading.set(block, (this.#reading.get(block) ?? 0) + 1);
  }

  /** End a read published by {@linkcode Arena.trackRead}. */
  untrackRead(block: number): void {
    const n = this.#reading.get(block) ?? 0;
    if (n <= 1) this.#reading.delete(block);
    else this.#reading.set(block, n - 1);
  }

  /** Whether a read in flight is copying `block`. */
  isBeingRead(block: number): boolean {
    return this.#reading.has(block);
  }

  // ---- per-block write order ----

  /** Join the queue of writers of `pre` (call in issue order). */
  enter(pre: number): WriteTicket {
    return this.join({ pre });
  }

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
      this.#writers.set(ticket.pre, ticket);
    } else {
      ticket.heads = false;
      let last = head;
      while (last.behind !== undefined) last = last.behind;
      last.behind = ticket;
    }
    return ticket;
  }

  /** Whether any update waits in a block queue (async writes in flight). */
  get hasQueuedUpdates(): boolean {
    return this.#writers.size !== 0;
  }

  /** The ticket at the head of `pre`'s queue, if any. */
  head(pre: number): WriteTicket | undefined {
    return this.#writers.get(pre);
  }

  /** Whether `ticket` heads its queue, so its update may commit now. */
  mayCommit(ticket: WriteTicket): boolean {
    return ticket.heads === true;
  }

  /** Leave the queue (after step 4, or on failure). Idempotent. */
  leave(ticket: WriteTicket): void {
    if (ticket.queued !== true) return;
    ticket.queued = false;
    const next = ticket.behind;
    ticket.behind = undefined;
    if (ticket.heads) {
      ticket.heads = false;
      if (next === undefined) this.#writers.delete(ticket.pre);
      else {
        next.heads = true;
        this.#writers.set(ticket.pre, next);
      }
      return;
    }
    let before = this.#writers.get(ticket.pre);
    while (before !== undefined && before.behind !== ticket) {
      before = before.behind;
    }
    if (before !== undefined) before.behind = next;
  }

  /**
   * Join the queue of `pre` for a synchronous update, which cannot wait:
   * it fails if an asynchronous update of the block is in flight.
   *
   * @throws {PmemError} code -16 (EBUSY) when the block is busy
   */
  enterNow(pre: number, op: string): WriteTicket {
    const ticket = this.enter(pre);
    if (!this.mayCommit(ticket)) {
      this.leave(ticket);
      throw new PmemError(
        op,
        -EBUSY,
        `block ${this.firstLba + pre} has an update in flight`,
        { errno: EBUSY },
      );
    }
    return ticket;
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
    const n = this.nfree;
    for (let i = 0; i < this.#idle; i++) {
      const at = (this.#head + i) % n;
      const lane = this.#ring[at];
      if (this.#reading.size !== 0 && this.#reading.has(this.#free[lane])) {
        continue;
      }
      // swap the oldest idle lane into the taken one's place, pop the head
      this.#ring[at] = this.#ring[this.#head];
      this.#head = (this.#head + 1) % n;
      this.#idle--;
      return lane;
    }
    return -1;
  }

  /**
   * The map entry an update of `pre` replaces (initial entries as NORMAL).
   * Its block becomes a lane's free block, so it must lie in the arena:
   * otherwise a later data copy would land outside it.
   *
   * @throws {PmemError} code -22 when the entry points beyond the arena
   */
  #currentEntry(pre: number): number {
    const old = effectiveMapEntry(this.mapEntry(pre), pre);
    if ((old & MAP_LBA_MASK) >= this.internalNlba) {
      throw this.corruptEntry("write", pre, old & MAP_LBA_MASK);
    }
    return old;
  }

  /**
   * The error for a map entry of `pre` that names data block `block`,
   * beyond the arena (a corrupt pool): code -22 (EINVAL).
   */
  corruptEntry(op: string, pre: number, block: number): PmemError {
    return new PmemError(
      op,
      -22,
      `the pool is corrupt: block ${
        this.firstLba + pre
      } maps to data block ${block}, beyond the arena's ${this.internalNlba}`,
      { errno: 22 },
    );
  }

  /** Give back a lane taken by {@linkcode Arena.takeLane} unused. */
  releaseLane(lane: number): void {
    this.#pushLane(lane);
  }

  #pushLane(lane: number): void {
    this.#ring[(this.#head + this.#idle) % this.nfree] = lane;
    this.#idle++;
  }

  /** Whether flog granularity is a page: a 16-byte entry then persists whole. */
  get #pageGranular(): boolean {
    return this.#media.granularity === "page";
  }

  /**
   * Persist every pending map entry with one fence: on page granularity
   * one msync over the span of their pages (msync costs little per page,
   * and only dirty pages are written), otherwise each cache line once.
   */
  flushPendingMaps(): void {
    if (this.#pending === 0) return;
    const page = this.#pageGranular;
    const lines: { offset: number; length: number }[] = [];
    let lo = Infinity;
    let hi = -1;
    const lanes = this.#pendingLane;
    for (let lane = 0; lane < lanes.length; lane++) {
      const pre = lanes[lane];
      if (pre < 0) continue;
      lanes[lane] = -1;
      const at = this.mapOff + pre * MAP_ENTRY_SIZE;
      if (at < lo) lo = at;
      if (at > hi) hi = at;
      if (!page) lines.push({ offset: at, length: MAP_ENTRY_SIZE });
    }
    this.#pending = 0;
    this.#pendingBits.fill(0);
    try {
      if (page) this.#media.persist(lo, hi + MAP_ENTRY_SIZE - lo);
      else this.#media.persistRanges(lines);
    } catch (cause) {
      // the flog still holds these updates: the next open rolls forward
      this.fail("a map update failed to persist");
      throw new PmemError("write", -EIO, "cannot persist map entries", {
        errno: EIO,
        cause,
      });
    }
  }

  /**
   * Before `lane` commits an update of `pre`: persist pending map entries
   * if the lane's previous one, or (perhaps: see `#pendingBits`) `pre`'s,
   * is among them.
   */
  settleMapsFor(lane: number, pre: number): void {
    if (this.#pending === 0) return;
    const bit = pre & 0xffff;
    if (
      this.#pendingLane[lane] >= 0 ||
      (this.#pendingBits[bit >>> 5] & (1 << (bit & 31))) !== 0
    ) {
      this.flushPendingMaps();
    }
  }

  /**
   * Step 4: publish the committed write in the map (stored now, persisted
   * with the next batch of pending map entries: the write is durable
   * already through its flog entry), make the old block the lane's free
   * block and return the lane.
   *
   * @param lane the lane the update committed through
   * @param pre the pre-map block
   * @param old the value {@linkcode Arena.stageFlogHead} returned
   */
  publish(lane: number, pre: number, old: number): void {
    const at = this.mapOff + pre * MAP_ENTRY_SIZE;
    this.#media.setU32(at, (this.#free[lane] | MAP_NORMAL) >>> 0);
    if (this.#pendingLane[lane] < 0) this.#pending++;
    this.#pendingLane[lane] = pre;
    const bit = pre & 0xffff;
    this.#pendingBits[bit >>> 5] |= 1 << (bit & 31);
    this.#free[lane] = (old & MAP_LBA_MASK) >>> 0;
    this.#pushLane(lane);
  }

  /**
   * Set the zero or error flag of `pre`'s map entry (persisted). The
   * block stays with the LBA; no flog update. Setting zero on a block
   * that already reads as zeros does nothing.
   *
   * @param pre the pre-map block
   * @param flag `MAP_ZERO` or `MAP_ERROR`
   * @returns whether the map changed
   */
  setFlag(pre: number, flag: number): boolean {
    const at = this.mapOff + pre * MAP_ENTRY_SIZE;
    const entry = this.#media.getU32(at);
    const flags = entry & MAP_FLAGS;
    if (flag === MAP_ZERO && (flags === 0 || flags === MAP_ZERO)) return false;
    const block = effectiveMapEntry(entry, pre) & MAP_LBA_MASK;
    this.#media.setU32(at, (block | flag) >>> 0);
    this.#media.persist(at, MAP_ENTRY_SIZE);
    const lane = this.#pendingLane.indexOf(pre);
    if (lane >= 0) { // the flag's entry supersedes it, durably
      this.#pendingLane[lane] = -1;
      this.#pending--;
    }
    return true;
  }

  // ---- step 3, staged: commit.ts persists the halves, one fence each ----

  /** File offset of the flog entry the lane's next update writes. */
  flogEntryOffset(lane: number): number {
    return flogEntryAt(this.flogOff, lane, this.#next[lane]);
  }

  /**
   * Store the first half `{lba, old_map}` of the lane's next flog entry
   * ({@linkcode Arena.flogEntryOffset}) without persisting it; the caller
   * persists it, then calls {@linkcode Arena.stageFlogTail}. The caller
   * must head `pre`'s queue.
   *
   * @returns the old map entry, for {@linkcode Arena.publish}
   */
  stageFlogHead(lane: number, pre: number): number {
    const old = this.#currentEntry(pre);
    storeFlogHead(this.#media, this.flogEntryOffset(lane), pre, old);
    return old;
  }

  /**
   * Store `{new_map, seq}` (the commit point once durable) in the entry
   * staged by {@linkcode Arena.stageFlogHead}.
   */
  stageFlogTail(lane: number): void {
    storeFlogTail(
      this.#media,
      this.flogEntryOffset(lane),
      this.#free[lane],
      NEXT_SEQ[this.#seq[lane]],
    );
  }

  /** The entry's tail is durable: the lane's flog state advances. */
  committed(lane: number): void {
    this.#next[lane] ^= 1;
    this.#seq[lane] = NEXT_SEQ[this.#seq[lane]];
  }

  /** A snapshot of every lane's free block (for checks and tests). */
  freeBlocks(): number[] {
    return Array.from(this.#free);
  }
}
