// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * {@linkcode ReadTracker}: which post-map blocks reads are copying, in an
 * arena's shared region, so that no writer of any `BlockPool` of the pool
 * reuses one as a free block meanwhile. Internal to `blk/`.
 *
 * A counter per bucket of blocks (a false hit only makes a writer skip a
 * lane). Each opener also counts its own reads per bucket in a ledger of
 * its own: when an opener's thread ends (a Worker terminated) with reads
 * counted, the counters it left are taken back from its ledger. Without
 * that, a lane whose free block fell into such a bucket was skipped for
 * good, and as each write moves a lane's free block to a random block,
 * every lane was soon skipped: writes failed with EBUSY.
 *
 * Openers past the ledgers' number count without one (a count of theirs
 * that a thread's end leaves stays, as before).
 *
 * @module
 */
import type { FileShare } from "../pmem2/file_share.ts";
import {
  ARENA_WORDS,
  LEDGER_BASE,
  LEDGER_OWNER_BASE,
  LEDGERS,
  READ_BASE,
  READ_BUCKETS,
} from "./arena_words.ts";

/** The index of the read-tracking bucket of post-map block `block`. */
export function readBucket(block: number): number {
  return Math.imul(block, 0x9e3779b1) >>> 20;
}

// the bucket hash's shift assumes this size
if (READ_BUCKETS !== 4096) {
  throw new Error(
    "blk/read_tracking.ts: bucket count changed without the hash",
  );
}

/** One opener's read tracking in one arena. */
export class ReadTracker {
  /** The arena's region (its ledgers too, or up to `LEDGER_BASE`). */
  readonly #words: Int32Array;
  /** The openers' ledgers (counts per bucket) viewed so far, by slot. */
  readonly #ledgers: Uint32Array[] = [];
  readonly #share: FileShare | undefined;
  readonly #token: number;
  /** This opener's ledger, or undefined (none left, or not shared). */
  #ledger: Uint32Array | undefined;
  /** Its index. */
  #slot = -1;

  /**
   * @param words the arena's region
   * @param share the share the region is in (none for a private state)
   * @param token this opener's lock token
   */
  constructor(words: Int32Array, share: FileShare | undefined, token: number) {
    this.#words = words;
    this.#share = share;
    this.#token = token;
  }

  /**
   * Ledger `s`: in the region's words when they hold the ledgers, else a
   * part of the share of its own (an open views its own ledger, and
   * another's only to take its counts back: Bun counts a view's length
   * as allocated memory, and the 64 ledgers are 1 MiB).
   */
  #ledgerAt(s: number): Uint32Array {
    const known = this.#ledgers[s];
    if (known !== undefined) return known;
    const w = this.#words;
    const at = w.byteOffset + (LEDGER_BASE + s * READ_BUCKETS) * 4;
    const ledger = w.length >= ARENA_WORDS
      ? new Uint32Array(w.buffer, at, READ_BUCKETS)
      : new Uint32Array(
        this.#share!.part(this.#share!.baseOf(w.buffer) + at, READ_BUCKETS * 4),
      );
    this.#ledgers[s] = ledger;
    return ledger;
  }

  /**
   * Under the arena's ring lock: take a ledger, one no open holds (never
   * taken, left, or whose opener ended: its counts are taken back first).
   */
  claim(): void {
    const share = this.#share;
    if (share === undefined || this.#ledger !== undefined) return;
    const w = this.#words;
    for (let s = 0; s < LEDGERS; s++) {
      const owner = w[LEDGER_OWNER_BASE + s];
      if (owner !== 0 && owner !== this.#token && share.live(owner)) continue;
      this.#giveBack(s);
      Atomics.store(w, LEDGER_OWNER_BASE + s, this.#token);
      this.#slot = s;
      this.#ledger = this.#ledgerAt(s);
      return;
    }
  }

  /** Under the ring lock: give the ledger up (its counts taken back). */
  leave(): void {
    if (this.#ledger === undefined) return;
    this.#giveBack(this.#slot);
    Atomics.store(this.#words, LEDGER_OWNER_BASE + this.#slot, 0);
    this.#ledger = undefined;
    this.#slot = -1;
  }

  /**
   * Under the ring lock: take back the counts of openers that ended with
   * reads counted.
   *
   * @returns whether a count was taken back
   */
  reclaimEnded(): boolean {
    const share = this.#share;
    if (share === undefined || share.endedOpens === 0) return false;
    const w = this.#words;
    let back = false;
    for (let s = 0; s < LEDGERS; s++) {
      const owner = w[LEDGER_OWNER_BASE + s];
      if (owner === 0 || owner === this.#token || !share.ended(owner)) {
        continue;
      }
      back = this.#giveBack(s) || back;
      Atomics.store(w, LEDGER_OWNER_BASE + s, 0);
    }
    return back;
  }

  /**
   * Zero ledger `s`, taking each count off its counter. The ledger's
   * count goes first: a thread that ends between the two steps (its ring
   * lock is taken over) leaves its counter a count too many (a lane
   * skipped), as a track's end does. The other way round, its ledger
   * still held the count after it left the counter, and the next
   * give-back of the ledger took it off again: the counter then read 0
   * while that many reads of the bucket were copying, a block being read
   * reusable as a free block.
   */
  #giveBack(s: number): boolean {
    const w = this.#words;
    const ledger = this.#ledgerAt(s);
    let any = false;
    for (let b = 0; b < READ_BUCKETS; b++) {
      const n = ledger[b];
      if (n === 0) continue;
      Atomics.store(ledger, b, 0);
      Atomics.sub(w, READ_BASE + b, n);
      any = true;
    }
    return any;
  }

  /** Count a reader of `block` (a full fence: re-read the map after it). */
  track(block: number): void {
    const b = readBucket(block);
    // the counter first: a thread that ends between the two leaves a
    // count too many (a lane skipped), never one too few (a torn read)
    Atomics.add(this.#words, READ_BASE + b, 1);
    const ledger = this.#ledger;
    if (ledger !== undefined) ledger[b]++;
  }

  /** Uncount a reader of `block`. */
  untrack(block: number): void {
    const b = readBucket(block);
    const ledger = this.#ledger;
    if (ledger !== undefined) ledger[b]--;
    Atomics.sub(this.#words, READ_BASE + b, 1);
  }

  /** Whether a reader may be copying `block`. */
  tracked(block: number): boolean {
    return Atomics.load(this.#words, READ_BASE + readBucket(block)) !== 0;
  }
}
