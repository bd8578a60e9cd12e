// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The Worker of `tests/blk_pending_filter_test.ts`: over an arena's words
 * in a SharedArrayBuffer, it plays the holder of its own lanes as commits
 * do (a lane's last entry is flushed before its next is recorded, see
 * `Arena.settleMapsFor`), and a flusher of every lane's entries, for a
 * number of rounds, while the test's thread checks the filter.
 *
 * @module
 */
import {
  addPending,
  clearPending,
  pendingBlock,
  pendingSeq,
} from "../../blk/pending_filter.ts";

/** A job: the words, this Worker's lanes, the blocks to record. */
export interface PendingFilterJob {
  /** The arena's words (`ARENA_WORDS` int32s). */
  words: SharedArrayBuffer;
  /** The lanes this Worker holds. */
  lanes: number[];
  /** Every lane's count: the flusher clears the entries of all. */
  allLanes: number;
  /** Blocks whose entries it records, in turn. */
  blocks: number[];
  /** Updates per lane. */
  rounds: number;
  /** A seed for the choice of blocks. */
  seed: number;
}

/** The Worker's scope, as much of it as this file uses. */
const self_ = globalThis as unknown as {
  onmessage: ((e: MessageEvent<PendingFilterJob>) => void) | null;
  postMessage(message: unknown): void;
};

/** Clear `lane`'s entry as a flush does: seen, (persisted,) cleared. */
function flushLane(w: Int32Array, lane: number): void {
  const seq = pendingSeq(w, lane);
  if (seq === 0) return;
  if (pendingBlock(w, lane, seq) === 0) return; // cleared meanwhile
  clearPending(w, lane, seq);
}

self_.onmessage = ({ data: job }) => {
  try {
    const w = new Int32Array(job.words);
    let x = job.seed | 1;
    let updates = 0;
    for (let r = 0; r < job.rounds; r++) {
      for (const lane of job.lanes) {
        // the commit's settle: the lane's last entry is no longer pending
        if (pendingSeq(w, lane) !== 0) flushLane(w, lane);
        x ^= x << 13;
        x ^= x >>> 17;
        x ^= x << 5;
        addPending(w, lane, job.blocks[(x >>> 0) % job.blocks.length]);
        updates++;
        // now and then a flusher of every lane (another commit's settle)
        if ((x & 7) === 0) {
          for (let l = 0; l < job.allLanes; l++) flushLane(w, l);
        }
      }
    }
    self_.postMessage({ ok: updates });
  } catch (e) {
    self_.postMessage({ error: String((e as Error)?.stack ?? e) });
  }
};
self_.postMessage({ ready: true });
