// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// The pending-map-entry filter (blk/pending_filter.ts) over an arena's
// words: a commit of a block asks it whether a map entry of the block may
// still be pending, and must never hear "no" while one is (the map could
// then point at a block reused meanwhile after a power failure). Step by
// step on one thread (lane handover, a lane's next entry in its last one's
// bucket, a flusher's late clear, the sequence number's wrap, every lane's
// bit), and with Workers recording and flushing entries while this thread
// checks every entry it sees pending the whole time.
import {
  ARENA_WORDS,
  LANE_BASE,
  LANE_PENDING,
  LANE_PENDING_GEN,
  LANE_WORDS,
  MAX_LANES,
} from "../blk/arena_words.ts";
import {
  addPending,
  clearPending,
  maybePending,
  pendingBlock,
  pendingSeq,
} from "../blk/pending_filter.ts";
import { assert, test } from "./_harness.ts";
import { ask, startWorker } from "./workers/jobs.ts";
import type { PendingFilterJob } from "./workers/pending_filter_worker.ts";

const WORKER =
  new URL("./workers/pending_filter_worker.ts", import.meta.url).href;

/** Fresh words of an arena, in shared memory. */
function words(): Int32Array {
  return new Int32Array(new SharedArrayBuffer(ARENA_WORDS * 4));
}

/**
 * Blocks of `first`'s bucket of the filter (`first` included), found
 * through the filter itself: with one entry pending, a look-up of a block
 * says yes exactly for the blocks of the entry's bucket.
 */
function bucketOf(first: number, n: number): number[] {
  const w = words();
  addPending(w, 0, first);
  const out = [first];
  // (about one block in 1024 shares a bucket)
  for (let b = 0; out.length < n && b < 1 << 20; b++) {
    if (b !== first && maybePending(w, b)) out.push(b);
  }
  assert.equal(out.length, n, `blocks of ${first}'s bucket`);
  return out;
}

/** A block of another bucket than every block of `blocks`. */
function otherBucket(blocks: number[]): number {
  const w = words();
  blocks.forEach((b, i) => addPending(w, i, b));
  let b = 0;
  while (maybePending(w, b) && b < 1 << 20) b++;
  return b;
}

/** Flush `lane`'s entry as `flushPendingMaps` does (seen, persisted, cleared). */
function flush(w: Int32Array, lane: number): void {
  const seq = pendingSeq(w, lane);
  if (seq !== 0 && pendingBlock(w, lane, seq) !== 0) clearPending(w, lane, seq);
}

test("pending filter: every lane's entry is found, lane 0 to the last, with every lane marking one bucket", () => {
  const [a, b] = bucketOf(100, 2);
  for (let lane = 0; lane < MAX_LANES; lane++) {
    const w = words();
    addPending(w, lane, a);
    assert.ok(maybePending(w, a), `lane ${lane} alone`);
    assert.ok(maybePending(w, b), `lane ${lane} alone, a block of its bucket`);
    flush(w, lane);
    assert.ok(!maybePending(w, a), `lane ${lane} flushed`);
  }
  // every lane's bit in the bucket at once: each flush leaves the others'
  const w = words();
  for (let lane = 0; lane < MAX_LANES; lane++) addPending(w, lane, b);
  for (let lane = MAX_LANES - 1; lane >= 0; lane--) {
    assert.ok(maybePending(w, a), `lanes 0 to ${lane} pending`);
    flush(w, lane);
  }
  assert.ok(!maybePending(w, a));
});

test("pending filter: a lane's next entry in its last entry's bucket stays found, and one in another bucket moves the look-up", () => {
  const [a, b] = bucketOf(7, 2);
  const c = otherBucket([a]);
  const w = words();
  addPending(w, 3, a);
  flush(w, 3); // the next commit's settle
  addPending(w, 3, b);
  assert.ok(maybePending(w, b), "the same bucket's next entry");
  assert.ok(maybePending(w, a), "(a block of its bucket)");
  flush(w, 3);
  addPending(w, 3, c);
  assert.ok(maybePending(w, c), "an entry of another bucket");
  assert.ok(!maybePending(w, a), "the last bucket no longer");
  // another lane's move out of the bucket leaves this lane's mark there
  addPending(w, 4, a);
  flush(w, 3);
  addPending(w, 3, a);
  flush(w, 4);
  addPending(w, 4, c);
  assert.ok(maybePending(w, a), "lane 3's entry of a, after lane 4 moved");
});

test("pending filter: a flusher's late clear of a lane's older entry leaves its newer one pending, across the sequence number's wrap", () => {
  const [a, b] = bucketOf(42, 2);
  for (const gen of [0, 0x7ffffffe, 0x7fffffff]) {
    const w = words();
    const lane = 9;
    w[LANE_BASE + lane * LANE_WORDS + LANE_PENDING_GEN] = gen;
    addPending(w, lane, a);
    const old = pendingSeq(w, lane);
    assert.notEqual(old, 0, `gen ${gen}: a pending entry's number`);
    // a flusher saw `old`; the lane's next holder flushed it, and recorded
    // an entry of the same bucket; the flusher's clear comes late
    flush(w, lane);
    addPending(w, lane, b);
    const seq = pendingSeq(w, lane);
    assert.ok(seq !== 0 && seq !== old, `gen ${gen}: ${old} then ${seq}`);
    assert.equal(pendingBlock(w, lane, old), 0, `gen ${gen}`);
    clearPending(w, lane, old);
    assert.equal(pendingSeq(w, lane), seq, `gen ${gen}: the newer entry`);
    assert.ok(maybePending(w, b), `gen ${gen}: still found`);
  }
});

test("pending filter: an update cut short leaves no look-up saying yes for good, and no entry unfound", () => {
  const [a, b] = bucketOf(300, 2);
  const c = otherBucket([a]);
  const w = words();
  const lane = 31; // the top bit of its plane
  const at = LANE_BASE + lane * LANE_WORDS;
  // a thread that ended after its mark and block, before naming the entry
  addPending(w, lane, a);
  const seq = pendingSeq(w, lane);
  Atomics.store(w, at + LANE_PENDING, 0); // never named
  assert.ok(!maybePending(w, a), "a mark with no entry named");
  assert.ok(!maybePending(w, b));
  // the lane's next holder moves on: its entry found, the old bucket's not
  addPending(w, lane, c);
  assert.ok(maybePending(w, c));
  assert.ok(!maybePending(w, a));
  assert.notEqual(pendingSeq(w, lane), seq);
});

/** A seeded draw of the lanes to check. */
function* draw(seed: number): Generator<number> {
  let x = seed | 1;
  for (;;) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    yield x >>> 0;
  }
}

test("pending filter: Workers recording and flushing entries while a look-up runs: an entry pending throughout is always found", async () => {
  const lanes = 8;
  // blocks of two buckets, so a lane's next entry is often in its last
  // one's bucket, and often not
  const near = bucketOf(1000, 3);
  const blocks = [...near, ...bucketOf(otherBucket(near), 3)];
  const w = words();
  const workers = await Promise.all([startWorker(WORKER), startWorker(WORKER)]);
  try {
    const jobs = workers.map((wk, i) =>
      ask<number>(
        wk,
        {
          words: w.buffer as SharedArrayBuffer,
          lanes: Array.from({ length: lanes / 2 }, (_, k) => k * 2 + i),
          allLanes: lanes,
          blocks,
          rounds: 500_000,
          seed: 12345 + i,
        } satisfies PendingFilterJob,
      )
    );
    let done = false;
    const all = Promise.all(jobs).finally(() => done = true);
    const pick = draw(777);
    let checked = 0;
    const missed: string[] = [];
    while (!done) {
      for (let k = 0; k < 50_000 && missed.length < 5; k++) {
        const lane = pick.next().value % lanes;
        const seq = pendingSeq(w, lane);
        if (seq === 0) continue;
        const block = pendingBlock(w, lane, seq);
        if (block === 0) continue;
        const found = maybePending(w, block - 1);
        // the number still there: the entry was pending all along
        if (!found && pendingSeq(w, lane) === seq) {
          missed.push(`lane ${lane} entry ${seq} of block ${block - 1}`);
        }
        checked++;
      }
      await new Promise((r) => setTimeout(r, 0));
    }
    const updates = await all;
    assert.deepEqual(missed, []);
    assert.ok(checked > 1000, `${checked} look-ups`);
    assert.equal(updates[0] + updates[1], lanes * 500_000);
  } finally {
    for (const wk of workers) wk.terminate();
  }
});
